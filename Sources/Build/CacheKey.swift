import CRuntime
import Crypto
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A step's cache key: what it starts from (the parent image's ID, which covers its whole chain
/// and config), the instruction after substitution, the build args it sees, and for COPY and ADD
/// the sources' digest. Equal keys mean equal results, so the step's stored result is reused.
struct CacheKey {
    private var hasher = SHA256()

    init(parent: String) {
        add("berth-build-1")
        add(parent)
    }

    mutating func add(_ text: String) {
        hasher.update(data: Array(text.utf8))
        hasher.update(data: [0])
    }

    mutating func add(_ parts: [String]) {
        add(String(parts.count))
        for p in parts { add(p) }
    }

    var value: String { Array(hasher.finalize()).hexString }
}

/// The digest of what COPY would copy from a source: each entry's path, type, mode, owner, size
/// and content (a link's target, a device's number), in walk order. Times are left out: a file
/// touched but not changed is the same source.
enum ContentDigest {
    /// The extended attributes COPY copies (a file capability, an ACL), as text.
    static func attributes(_ fd: Int32, _ display: String) throws -> String {
        var text = [CChar](repeating: 0, count: 65536)
        let n = berth_xattrs_text(fd, &text, text.count)
        guard n >= 0 else { throw BuildError("read the extended attributes of \(display)", errno: Int32(-n)) }
        return String(decoding: text[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func of(_ source: SourceTree) throws -> String {
        var hasher = SHA256()
        func add(_ text: String) {
            hasher.update(data: Array(text.utf8))
            hasher.update(data: [0])
        }
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        try source.walk { event in
            let entry: SourceTree.Entry
            switch event {
            case .enter(let e): entry = e
            case .leaf(let e): entry = e
            case .leave: return
            }
            let info = entry.info
            add(entry.relative)
            add("\(info.st_mode) \(info.st_uid) \(info.st_gid)")
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                add(String(info.st_size))
                guard let file = Descriptor(entry.openFile()) else {
                    throw BuildError("open \(source.display(entry.relative))", errno: errno)
                }
                try add(attributes(file.fd, source.display(entry.relative)))
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(file.fd, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    guard n >= 0 else { throw BuildError("read \(source.display(entry.relative))", errno: errno) }
                    if n == 0 { break }
                    buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                }
            case S_IFLNK:
                var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlinkat(entry.parent, entry.name, &target, target.count - 1)
                guard n >= 0 else { throw BuildError("readlink \(source.display(entry.relative))", errno: errno) }
                add(String(decoding: target[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
            case S_IFDIR:
                if let fd = entry.directory { try add(attributes(fd, source.display(entry.relative))) }
            default:
                add(String(info.st_rdev))
            }
        }
        return Array(hasher.finalize()).hexString
    }
}
