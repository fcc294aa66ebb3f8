import FoundationEssentials

extension ImageStore {
    /// What is wrong with an image archive given to `image load` or asked of `image save`, each as
    /// one line a person can act on. (Damaged content, unpack failures and system errors are the
    /// store's own `Error`.)
    public enum ArchiveError: Swift.Error, CustomStringConvertible, Equatable {
        /// An entry of the outer tar that an image archive never holds: a link, a device, a path
        /// that leaves the archive. Refused rather than skipped, so nothing of it is ever followed.
        case hostileEntry(archive: String, entry: String, reason: String)
        /// The archive's documents (manifest.json, index.json, a manifest, a config) do not
        /// describe images berth can load.
        case invalid(archive: String, reason: String)
        /// A file the archive's documents name is not in the archive.
        case missing(archive: String, path: String)
        /// A JSON document larger than any real image's: refused before it is read into memory.
        case tooLarge(archive: String, path: String, limit: Int64)
        /// An OCI index lists no image for this host's platform.
        case noPlatform(archive: String, platform: String)
        /// libarchive could not write the archive `image save` makes: what it said.
        case writeFailed(String)
        /// `image save` was asked to write to a terminal.
        case terminal

        public var description: String {
            switch self {
            case .hostileEntry(let archive, let entry, let reason):
                return "refusing to load \(archive): entry \(entry) \(reason)"
            case .invalid(let archive, let reason):
                return "\(archive) is not an image archive berth can load: \(reason)"
            case .missing(let archive, let path):
                return "\(archive) is incomplete: it has no \(path)"
            case .tooLarge(let archive, let path, let limit):
                return "refusing to load \(archive): \(path) is larger than \(limit / (1 << 20)) MiB"
            case .noPlatform(let archive, let platform):
                return "\(archive) holds no image for this host's platform \(platform)"
            case .writeFailed(let reason):
                return "cannot write the image archive: \(reason)"
            case .terminal:
                return "cowardly refusing to save to a terminal. Use the -o flag or redirect"
            }
        }
    }
}
