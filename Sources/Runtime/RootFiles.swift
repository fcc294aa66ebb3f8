import CRuntime
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Reads small files (the user and group files) of a container's root filesystem without ever
/// leaving it: an image's /etc/passwd may be a symlink to the host's /etc/shadow, a FIFO that
/// never answers, or /dev/zero. Links resolve inside the root; only a regular file of at most
/// `maxSize` bytes is read, anything else is an error that names it.
public enum RootFiles {
    public struct Error: Swift.Error, CustomStringConvertible {
        public var description: String
    }

    /// runc reads the user files whole too; 4 MiB holds some 50,000 passwd lines.
    static let maxSize = 4 << 20

    /// A file of a running container, through its /proc/PID/root, resolved inside that root by
    /// the kernel (a symlink followed by path from /proc/PID/root would restart at the host's /).
    /// nil when it does not exist.
    static func read(_ path: String, inRootOf pid: Int32) throws -> String? {
        let root = open("/proc/\(pid)/root", Int32(BERTH_O_PATH) | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else {
            throw Error(description: "cannot open the root of process \(pid): \(ProcFS.errnoText(errno))")
        }
        defer { close(root) }
        let fd = berth_in_root_open(root, path, O_RDONLY | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw Error(description: "cannot open \(path): \(ProcFS.errnoText(errno))")
        }
        defer { close(fd) }
        return try readRegular(fd, path)
    }

    /// A file of an image, from its unpacked layers (lowest first) as overlayfs will show them:
    /// the topmost layer that has a name wins, a whiteout (a 0:0 character device) or an opaque
    /// directory (`trusted.overlay.opaque=y`) hides the layers below, a directory hides lower
    /// non-directories, and symlinks resolve inside the merged root. Layers are berth's own,
    /// immutable once unpacked, so plain lookups by path within a layer are stable. nil when
    /// the file does not exist.
    static func read(_ path: String, layers: [String]) throws -> String? {
        let top = Array(layers.reversed())
        var resolved: [String] = []  // directories only, each present in `contributing`
        var contributing = Array(top.indices)  // layers (into `top`) that make up `resolved`
        var pending = components(path)
        var links = 0
        while !pending.isEmpty {
            let name = pending.removeFirst()
            if name == "." { continue }
            if name == ".." {
                if !resolved.isEmpty {
                    resolved.removeLast()
                    contributing = contributors(of: resolved, in: top)
                }
                continue
            }
            let relative = (resolved + [name]).joined(separator: "/")
            var dirs: [Int] = []
            var entry: (layer: Int, mode: mode_t)?
            for layer in contributing {
                var st = stat()
                guard lstat(top[layer] + "/" + relative, &st) == 0 else { continue }
                let type = st.st_mode & S_IFMT
                if type == S_IFCHR && st.st_rdev == 0 { break }  // whiteout
                if type != S_IFDIR {
                    if dirs.isEmpty { entry = (layer, st.st_mode) }
                    break
                }
                dirs.append(layer)
                if isOpaque(top[layer] + "/" + relative) { break }
            }
            if !dirs.isEmpty {
                resolved.append(name)
                contributing = dirs
                continue
            }
            guard let entry else { return nil }
            let full = top[entry.layer] + "/" + relative
            if entry.mode & S_IFMT == S_IFLNK {
                links += 1
                guard links <= 40 else { throw Error(description: "\(path): too many levels of symbolic links") }
                guard let target = readLink(full) else { return nil }
                if target.hasPrefix("/") {
                    resolved = []
                    contributing = Array(top.indices)
                }
                pending = components(target) + pending
                continue
            }
            guard pending.isEmpty else { return nil }  // a file where a directory should be
            let fd = open(full, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
            guard fd >= 0 else { throw Error(description: "cannot open \(path): \(ProcFS.errnoText(errno))") }
            defer { close(fd) }
            return try readRegular(fd, path)
        }
        return nil  // the path names a directory
    }

    /// The layers whose directory `dirs` (from the root) make up the merged directory.
    private static func contributors(of dirs: [String], in top: [String]) -> [Int] {
        var contributing = Array(top.indices)
        for depth in dirs.indices {
            let relative = dirs[...depth].joined(separator: "/")
            var kept: [Int] = []
            for layer in contributing {
                var st = stat()
                guard lstat(top[layer] + "/" + relative, &st) == 0 else { continue }
                guard st.st_mode & S_IFMT == S_IFDIR else { break }
                kept.append(layer)
                if isOpaque(top[layer] + "/" + relative) { break }
            }
            contributing = kept
        }
        return contributing
    }

    private static func components(_ path: String) -> [String] {
        path.split(separator: "/").map(String.init)
    }

    private static func isOpaque(_ path: String) -> Bool {
        berth_overlay_opaque(path) == 1
    }

    private static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The whole of an open file, which must be a regular one of at most `maxSize` bytes.
    private static func readRegular(_ fd: Int32, _ path: String) throws -> String {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Error(description: "cannot read \(path): \(ProcFS.errnoText(errno))") }
        guard st.st_mode & S_IFMT == S_IFREG else { throw Error(description: "\(path) is not a regular file") }
        guard st.st_size <= maxSize else { throw Error(description: "\(path) is larger than \(maxSize >> 20) MiB") }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size) + 1)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw Error(description: "cannot read \(path): \(ProcFS.errnoText(errno))") }
            if n == 0 { break }
            count += n
        }
        // It grew while being read: still bounded by the buffer, as if read at its old size.
        return String(decoding: bytes[0..<min(count, Int(st.st_size))], as: UTF8.self)
    }
}
