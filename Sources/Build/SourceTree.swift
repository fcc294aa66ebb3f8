import CRuntime
import Dockerfile
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A descriptor owned by one value, closed when it goes. A class rather than Support's
/// non-copyable FileDescriptor: walks keep them in arrays and closures.
final class Descriptor {
    let fd: Int32
    init?(_ fd: Int32) {
        guard fd >= 0 else { return nil }
        self.fd = fd
    }
    deinit { close(fd) }
}

/// What COPY and ADD read: a file or tree found by path under a root directory (the context, or a
/// stage's image through a read-only overlay), never leaving it: every path is resolved with
/// openat2(RESOLVE_IN_ROOT), so a link in the context or in an image that points at /etc names
/// the root's own /etc, and every entry below is opened by name, without following links.
struct SourceTree {
    /// The root the path is resolved in (not owned).
    let root: Int32
    /// Cleaned, relative to the root, "/"-separated; "" is the root itself.
    let path: String
    /// `.dockerignore` of the context (paths relative to the context root); nil for an image.
    let ignore: DockerIgnore?
    /// COPY --exclude patterns, matched against paths relative to the source.
    let excludes: [String]
    /// `path` as the bytes to open: a name a wildcard matched need not be UTF-8.
    let bytes: [UInt8]

    init(root: Int32, path: String, ignore: DockerIgnore?, excludes: [String], bytes: [UInt8]? = nil) {
        self.root = root
        self.path = path
        self.ignore = ignore
        self.excludes = excludes
        self.bytes = bytes ?? Array(path.utf8)
    }

    /// One step of a walk: a directory begins or ends, or any other entry.
    enum Event {
        case enter(Entry)
        case leave(Entry)
        case leaf(Entry)
    }

    struct Entry {
        /// Below the source ("" for the source itself).
        var relative: String
        /// The entry's directory, and its name there (with a NUL), for the *at calls.
        var parent: Int32
        var name: [CChar]
        var info: stat
        /// Open, for a directory's events (O_RDONLY | O_DIRECTORY).
        var directory: Int32?

        var isDirectory: Bool { info.st_mode & S_IFMT == S_IFDIR }

        /// The entry opened for reading. A source reached through a link is held as an O_PATH
        /// descriptor of the file itself (named "."), reopened through /proc: the same inode.
        func openFile() -> Int32 {
            if name == [46, 0] && !isDirectory {
                return Glibc.open("/proc/self/fd/\(parent)", O_RDONLY | O_NOCTTY | O_CLOEXEC)
            }
            return openat(parent, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)
        }
    }

    /// Deeper trees are refused: each level holds a descriptor while it is walked.
    static let maxDepth = 512

    /// The source's own entry, opened: nil when it does not exist.
    func open() throws -> (parent: Descriptor, name: [CChar], info: stat)? {
        let parts = bytes.split(separator: UInt8(ascii: "/"))
        let parentPath = Self.cString(Array(parts.dropLast().joined(separator: [UInt8(ascii: "/")])))
        var name = Self.cString(parts.last.map(Array.init) ?? [])
        guard let parent = Descriptor(berth_in_root_open(root, parentPath, O_RDONLY | O_DIRECTORY)) else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw BuildError("open \(parentPath)", errno: errno)
        }
        var info = stat()
        guard fstatat(parent.fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            if errno == ENOENT { return nil }
            throw BuildError("stat \(path)", errno: errno)
        }
        // A link named as the source is followed (inside the root), as Docker follows it: what it
        // points at is copied under the link's name.
        if info.st_mode & S_IFMT == S_IFLNK {
            guard let target = Descriptor(berth_in_root_open(root, Self.cString(bytes), Int32(BERTH_O_PATH))) else {
                if errno == ENOENT || errno == ELOOP { return nil }
                throw BuildError("open \(path)", errno: errno)
            }
            guard fstat(target.fd, &info) == 0 else { throw BuildError("stat \(path)", errno: errno) }
            name = [CChar(UInt8(ascii: ".")), 0]
            return (target, name, info)
        }
        return (parent, name, info)
    }

    /// A path's bytes with a NUL, "." for none.
    static func cString(_ bytes: [UInt8]) -> [CChar] {
        (bytes.isEmpty ? [UInt8(ascii: ".")] : bytes).map { CChar(bitPattern: $0) } + [0]
    }

    func isExcluded(_ relative: String) -> Bool {
        if let ignore {
            let contextPath = path.isEmpty ? relative : relative.isEmpty ? path : path + "/" + relative
            if ignore.excludes(contextPath) { return true }
        }
        return excludes.contains { pattern in
            (try? PathPattern.matches(pattern, relative)) == true
                || relative.split(separator: "/").last.map { (try? PathPattern.matches(pattern, String($0))) == true }
                    == true
        }
    }

    /// Walks the source depth first, names in byte order (so a digest of the walk is stable),
    /// skipping what `.dockerignore` and `--exclude` leave out. A missing source throws.
    func walk(_ visit: (Event) throws -> Void) throws {
        guard let (parent, name, info) = try open() else {
            throw BuildError(message: "\"\(path.isEmpty ? "." : path)\": not found")
        }
        var pending: [Held] = []
        try withExtendedLifetime(parent) {
            try walk(
                Entry(relative: "", parent: parent.fd, name: name, info: info, directory: nil), depth: 0,
                held: false, &pending, visit)
        }
    }

    /// An excluded directory entered only because an exception may bring back something below
    /// it: its `.enter` waits until something below is emitted, and without one it is neither
    /// copied nor digested (as fsutil's walk, which emits a parent only for a child).
    private struct Held {
        var entry: Entry
        var emitted = false
    }

    private func walk(
        _ entry: Entry, depth: Int, held: Bool, _ pending: inout [Held], _ visit: (Event) throws -> Void
    ) throws {
        guard entry.isDirectory else {
            try emitHeld(&pending, visit)
            return try visit(.leaf(entry))
        }
        guard depth < Self.maxDepth else {
            throw BuildError(message: "\(entry.relative): more than \(Self.maxDepth) directory levels")
        }
        guard let dir = Descriptor(openat(entry.parent, entry.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC))
        else { throw BuildError("open \(display(entry.relative))", errno: errno) }
        var opened = entry
        opened.directory = dir.fd
        if held {
            pending.append(Held(entry: opened))
        } else {
            try emitHeld(&pending, visit)
            try visit(.enter(opened))
        }
        for name in try Self.names(dir.fd, display: display(entry.relative)) {
            let text = String(decoding: name.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let relative = entry.relative.isEmpty ? text : entry.relative + "/" + text
            var info = stat()
            guard fstatat(dir.fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw BuildError("stat \(display(relative))", errno: errno)
            }
            let excluded = isExcluded(relative)
            if excluded {
                guard info.st_mode & S_IFMT == S_IFDIR, let ignore,
                    ignore.mayIncludeUnder(path.isEmpty ? relative : path + "/" + relative)
                else { continue }
            }
            try walk(
                Entry(relative: relative, parent: dir.fd, name: name, info: info, directory: nil), depth: depth + 1,
                held: excluded, &pending, visit)
        }
        if held {
            if pending.removeLast().emitted { try visit(.leave(opened)) }
        } else {
            try visit(.leave(opened))
        }
    }

    /// The held directories' `.enter`s, outermost first, once something below them is emitted.
    private func emitHeld(_ pending: inout [Held], _ visit: (Event) throws -> Void) throws {
        for i in pending.indices where !pending[i].emitted {
            try visit(.enter(pending[i].entry))
            pending[i].emitted = true
        }
    }

    func display(_ relative: String) -> String {
        let joined = path.isEmpty ? relative : relative.isEmpty ? path : path + "/" + relative
        return joined.isEmpty ? "." : joined
    }

    /// A directory's entry names (with their NUL), in byte order.
    static func names(_ fd: Int32, display: String) throws -> [[CChar]] {
        guard let dir = fdopendir(dup(fd)) else { throw BuildError("read \(display)", errno: errno) }
        defer { closedir(dir) }
        var names: [[CChar]] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw BuildError("read \(display)", errno: errno) }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                $0.prefix { $0 != 0 }.map { CChar(bitPattern: $0) } + [0]
            }
            if name == [46, 0] || name == [46, 46, 0] { continue }
            names.append(name)
        }
        return names.sorted { $0.lexicographicallyPrecedes($1) { UInt8(bitPattern: $0) < UInt8(bitPattern: $1) } }
    }
}
