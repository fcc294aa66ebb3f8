#if canImport(Glibc)
    import Glibc
#endif

/// A system call on a path that failed, with its errno: what `Files` and `TreeRemoval` throw.
/// Each module turns it into its own error at its edge (Runtime's `Container.Error`, the image
/// store's `ImageStore.Error`), keeping the errno as a number.
public struct FileError: Error, CustomStringConvertible, Equatable, Sendable {
    public var operation: String
    public var path: String
    public var errno: Int32

    public init(operation: String, path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var description: String { "cannot \(operation) \(path): \(String(cString: strerror(errno)))" }
}

/// The file steps that Runtime (on every container's start and removal) and the image store
/// both build on, as plain system calls: Foundation's writes fsync, and its listings and reads
/// cost more than these. Written once here; they were written twice (Runtime's FileTree, the
/// store's StoreFiles), which keep only what is theirs (in-place rewrites, atomic writes, locks).
public enum Files {
    /// mkdir -p. The whole path is tried first, so the common case (it exists) is one call;
    /// the error names the component that could not be made.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        if mkdir(path, mode) == 0 || errno == EEXIST { return }
        guard errno == ENOENT else { throw FileError(operation: "mkdir", path: path, errno: errno) }
        let parent = parentDirectory(path)
        if parent != path && !parent.isEmpty { try makeDirectories(parent, mode: mode) }
        if mkdir(path, mode) != 0 && errno != EEXIST { throw FileError(operation: "mkdir", path: path, errno: errno) }
    }

    /// The path without its last component, as NSString's `deletingLastPathComponent` gave it:
    /// "/a/b/" -> "/a", "/a" -> "/", "/" -> "/", "a" -> "".
    public static func parentDirectory(_ path: String) -> String {
        let components = path.split(separator: "/")
        let parent = components.dropLast().joined(separator: "/")
        return path.hasPrefix("/") ? "/" + parent : parent
    }

    /// True when something (a link too, even a dangling one) is at `path`.
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// The names in a directory, without "." and ".."; empty when it cannot be read.
    public static func names(in dir: String) -> [String] {
        guard let handle = opendir(dir) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The whole file; nil (errno set) when it cannot be opened or read.
    public static func readAll(_ path: String) -> [UInt8]? {
        guard let fd = FileDescriptor(taking: open(path, O_RDONLY | O_CLOEXEC)) else { return nil }
        return readAll(fd: fd.rawValue)
    }

    /// What is left to read on `fd`, to its end; nil (errno set) when a read fails.
    public static func readAll(fd: Int32) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { return out }
            out.append(contentsOf: buffer[0..<n])
        }
    }

    /// The whole file as UTF-8 text (invalid bytes replaced); nil when it cannot be read.
    public static func readText(_ path: String) -> String? {
        readAll(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Writes all of `bytes` to `fd` at its offset, going on after short writes and EINTR; the
    /// error's path is `path`.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(operation: "write", path: path, errno: errno)
            }
            offset += n
        }
    }

    /// Replaces `path` with `bytes` at once: written to a temporary file beside it, renamed
    /// over, so a reader sees the old or the new content, never a part.
    public static func replace(_ path: String, with bytes: UnsafeRawBufferPointer, mode: mode_t = 0o644) throws {
        let temp = path + ".tmp\(getpid())"
        // A new file, never one a crash left (or someone planted) with another mode or as a link:
        // the content may be secret (credentials, written 0600).
        unlink(temp)
        guard
            let out = FileDescriptor(
                taking: open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode))
        else {
            throw FileError(operation: "create", path: temp, errno: errno)
        }
        do { try writeAll(out.rawValue, bytes, path: temp) } catch {
            unlink(temp)
            throw error
        }
        guard rename(temp, path) == 0 else {
            let e = errno
            unlink(temp)
            throw FileError(operation: "rename to", path: path, errno: e)
        }
    }

    /// Makes a rename or a new entry in `dir` durable: the directory itself must reach the disk.
    public static func syncDirectory(_ dir: String) {
        guard let fd = FileDescriptor(taking: open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) else { return }
        fsync(fd.rawValue)
    }
}
