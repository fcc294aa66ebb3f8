#if canImport(Glibc)
    import Glibc
#endif

/// `rm -rf` for berth's trees (unpacked layers, the store's tmp/, containers' upper dirs),
/// relative to directory descriptors: a layer or a container's writes may be deeper than
/// PATH_MAX, where every whole-path call (and so FileManager.removeItem) fails, and deeper than
/// a recursive walk's stack can go, which a container can arrange on purpose.
///
/// It holds one directory descriptor at a time whatever the depth, going back up through ".."
/// and checking that it lands on the directory it came from. It never follows a symlink and never
/// crosses into another file system: a mount inside a layer is an error, not something to empty.
/// (A bind mount from the same file system has the same st_dev and is not told apart; nothing in
/// berth mounts inside these trees.)
public enum TreeRemoval {
    /// A system call that failed, on which path (shortened for display), with its errno.
    public typealias Failure = FileError

    /// Removes `path` and everything below it; a missing `path` is not an error. The parent of
    /// `path` is opened by name, so `path` itself must be a short store path.
    public static func remove(path: String) throws {
        let components = path.split(separator: "/")
        guard let last = components.last, last != ".", last != ".." else {
            throw Failure(operation: "remove", path: path, errno: EINVAL)
        }
        let parent = components.dropLast().joined(separator: "/")
        let parentPath = path.hasPrefix("/") ? "/" + parent : parent
        let parentFD = open(parentPath.isEmpty ? "." : parentPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parentFD >= 0 else {
            if errno == ENOENT { return }
            throw Failure(operation: "open", path: parentPath, errno: errno)
        }
        defer { close(parentFD) }
        try remove(Array(last.utf8).map { CChar(bitPattern: $0) } + [0], in: parentFD, display: path)
    }

    /// Removes the entry `name` (a NUL-terminated C string) of the directory `parent` and,
    /// if it is a directory, everything below it. `display` names it in errors.
    public static func remove(_ name: [CChar], in parent: Int32, display: String) throws {
        if unlinkat(parent, name, 0) == 0 || errno == ENOENT { return }
        guard errno == EISDIR else { throw Failure(operation: "remove", path: display, errno: errno) }

        /// One directory on the way down: its name in its parent, its identity (to check the way
        /// back up), and the subdirectories still to remove.
        struct Level {
            var name: [CChar]
            var device: UInt
            var inode: UInt
            var subdirectories: [[CChar]]
        }
        func describe(_ levels: [Level], _ child: [CChar]? = nil) -> String {
            let names = levels.dropFirst().map(\.name) + (child.map { [$0] } ?? [])
            return DisplayPath.under(display, names.map { $0.dropLast().map { UInt8(bitPattern: $0) } })
        }

        var current = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard current >= 0 else { throw Failure(operation: "open", path: display, errno: errno) }
        defer { close(current) }
        var st = stat()
        guard fstat(current, &st) == 0 else { throw Failure(operation: "inspect", path: display, errno: errno) }
        let device = UInt(st.st_dev)
        var levels = [
            Level(
                name: name, device: device, inode: UInt(st.st_ino),
                subdirectories: try removeFiles(in: current, display: display))
        ]

        while let top = levels.last {
            if let child = levels[levels.count - 1].subdirectories.popLast() {
                let fd = openat(current, child, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if fd < 0 {
                    let err = errno
                    if err == ENOENT { continue }
                    throw Failure(operation: "open", path: describe(levels, child), errno: err)
                }
                guard fstat(fd, &st) == 0 else {
                    let err = errno
                    close(fd)
                    throw Failure(operation: "inspect", path: describe(levels, child), errno: err)
                }
                guard UInt(st.st_dev) == device else {
                    close(fd)
                    throw Failure(operation: "remove a mount point at", path: describe(levels, child), errno: EBUSY)
                }
                close(current)
                current = fd
                levels.append(Level(name: child, device: device, inode: UInt(st.st_ino), subdirectories: []))
                levels[levels.count - 1].subdirectories = try removeFiles(in: current, display: describe(levels))
                continue
            }
            // Everything below `top` is gone: step up and remove it.
            if levels.count == 1 {
                guard unlinkat(parent, top.name, AT_REMOVEDIR) == 0 || errno == ENOENT else {
                    throw Failure(operation: "remove", path: display, errno: errno)
                }
                return
            }
            let up = openat(current, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard up >= 0 else { throw Failure(operation: "open the parent of", path: describe(levels), errno: errno) }
            let expected = levels[levels.count - 2]
            guard fstat(up, &st) == 0, UInt(st.st_ino) == expected.inode, UInt(st.st_dev) == expected.device else {
                close(up)
                throw Failure(operation: "remove", path: describe(levels), errno: ESTALE)
            }
            close(current)
            current = up
            guard unlinkat(current, top.name, AT_REMOVEDIR) == 0 || errno == ENOENT else {
                throw Failure(operation: "remove", path: describe(levels), errno: errno)
            }
            levels.removeLast()
        }
    }

    /// Unlinks every entry of the directory `fd` that is not a directory, and returns the names
    /// (NUL-terminated) of those that are. Names are read in full before anything is unlinked.
    private static func removeFiles(in fd: Int32, display: @autoclosure () -> String) throws -> [[CChar]] {
        let listing = dup(fd)
        guard listing >= 0, let dir = fdopendir(listing) else {
            let err = errno
            if listing >= 0 { close(listing) }
            throw Failure(operation: "list", path: display(), errno: err)
        }
        defer { closedir(dir) }
        var names: [(name: [CChar], isDirectory: Bool?)] = []
        errno = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: &entry.pointee.d_name) { raw -> [CChar] in
                let bytes = raw.prefix { $0 != 0 }
                return bytes.map { CChar(bitPattern: $0) } + [0]
            }
            if name == [46, 0] || name == [46, 46, 0] { continue }  // "." and ".."
            let type = Int(entry.pointee.d_type)
            names.append((name, type == Int(DT_UNKNOWN) ? nil : type == Int(DT_DIR)))
            errno = 0
        }
        guard errno == 0 else { throw Failure(operation: "list", path: display(), errno: errno) }
        var subdirectories: [[CChar]] = []
        for (name, isDirectory) in names {
            if isDirectory == true {
                subdirectories.append(name)
                continue
            }
            if unlinkat(fd, name, 0) == 0 || errno == ENOENT { continue }
            // A file system without d_type reports nothing; unlink tells directories apart.
            if errno == EISDIR {
                subdirectories.append(name)
                continue
            }
            let err = errno
            let shown = DisplayPath.under(display(), [name.dropLast().map { UInt8(bitPattern: $0) }])
            throw Failure(operation: "remove", path: shown, errno: err)
        }
        return subdirectories
    }
}

extension TreeRemoval {
    /// Removes everything inside the directory `path`, keeping the directory.
    public static func removeContents(of path: String) throws {
        let dir = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard dir >= 0 else {
            if errno == ENOENT { return }
            throw Failure(operation: "open", path: path, errno: errno)
        }
        defer { close(dir) }
        for name in try removeFiles(in: dir, display: path) {
            try remove(name, in: dir, display: DisplayPath.under(path, [name.dropLast().map { UInt8(bitPattern: $0) }]))
        }
    }
}
