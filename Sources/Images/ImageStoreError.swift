import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

extension ImageStore {
    /// What went wrong in the image store, each as one line a person can act on.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        /// No image has this reference, ID or ID prefix.
        case notFound(String)
        /// The reference does not follow the name[:tag][@digest] grammar; the reason says which part.
        case invalidReference(String, String)
        /// An ID prefix matches several images.
        case ambiguous(String)
        /// An image ID names an image with several references; removing it needs force.
        case referencedMany(String, [String])
        /// A system call failed on a path.
        case system(String, String, Int32)
        /// The input is not a tar archive (plain or gzip-compressed).
        case notATar(String, String)
        /// A layer (the user's file or the blob's digest) could not be unpacked: which entry (empty
        /// when the layer as a whole failed) and why.
        case unpack(String, String, String)
        /// A reference was removed, but content only that image used could not be deleted; the
        /// next garbage collection (image import, tag or rm) tries again.
        case contentKept(String, String)
        /// Content did not hash to the digest it was announced with.
        case digestMismatch(what: String, expected: String, actual: String)
        /// A store file is damaged or was written by something else.
        case corrupt(String, String)
        /// A directory could not be made a layer: which entry (empty for the directory as a whole)
        /// and why.
        case capture(String, String, String)
        /// A build-cache key that cannot name a file of the cache.
        case invalidCacheKey(String)

        public var description: String {
            switch self {
            case .notFound(let ref):
                return "image not found: \(ref)"
            case .invalidReference(let ref, let reason):
                return "invalid image reference \"\(ref)\": \(reason)"
            case .ambiguous(let prefix):
                return "image ID prefix \(prefix) matches more than one image; give more characters"
            case .referencedMany(let id, let refs):
                return
                    "image \(id) is referenced by \(refs.joined(separator: ", ")); remove those references or use force"
            case .system(let op, let path, let err):
                return "cannot \(op) \(path): \(String(cString: strerror(err)))"
            case .notATar(let path, let detail):
                return "\(path) is not a tar archive (plain or gzip): \(detail)"
            case .unpack(let layer, let entry, let reason):
                return entry.isEmpty
                    ? "cannot unpack \(layer): \(reason)"
                    : "cannot unpack \(layer): entry \(entry): \(reason)"
            case .contentKept(let image, let reason):
                return "removed \(image), but not all of its content: \(reason); "
                    + "the next image rm, tag or import tries again"
            case .digestMismatch(let what, let expected, let actual):
                return "\(what) has digest \(actual) but \(expected) was expected; the content is damaged"
            case .corrupt(let path, let detail):
                return "image store file \(path) is damaged: \(detail); remove the image and import it again"
            case .capture(let directory, let entry, let reason):
                return entry.isEmpty
                    ? "cannot make a layer of \(directory): \(reason)"
                    : "cannot make a layer of \(directory): entry \(entry): \(reason)"
            case .invalidCacheKey(let key):
                return "invalid build cache key \"\(key)\": use letters, digits, '.', '_', '-' and ':'"
            }
        }
    }
}
