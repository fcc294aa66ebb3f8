import CRuntime
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Docker's copy-up: a container created with a volume mount whose volume is empty gets what
/// the image has at the mount's target copied into the volume first (moby's populateVolume and
/// copyExistingContents: at create only, whenever the volume is empty then, unless the mount
/// says `nocopy`; there is no "populated" mark, so a volume the user emptied is filled again by
/// the next container made with it, as in Docker). The volume's root takes the mode, owner and
/// times of the image's directory; below it files, directories, symlinks (as links), device
/// nodes, FIFOs and sockets are made again with their modes, owners, times and extended
/// attributes. Hard links become separate files (Docker keeps them linked); a target that is
/// missing or not a directory in the image copies nothing.
///
/// Both ends are hostile: the target comes from a compose file, the tree from an image, and a
/// container that shares the volume may be changing it meanwhile. So the image is read through
/// a read-only overlay of its layers alone (a detached mount: no mount point, no upper dir,
/// gone with its descriptor), the target resolved in it by openat2(RESOLVE_IN_ROOT), so links
/// at or above it stay inside the image; and every file is made by name in a directory
/// descriptor with O_EXCL / mkdirat / symlinkat / mknodat and opened O_NOFOLLOW, so nothing is
/// ever written or changed outside the volume's _data.
enum VolumeCopyUp {
    /// What went wrong, and where: "volume data: copy /var/lib/app/x: No space left on device".
    struct Error: Swift.Error, CustomStringConvertible {
        var volume: String
        /// What was being done, with the image path it acted on.
        var step: String
        var errno: Int32?
        var detail: String?

        /// Without the volume's name (a container's error names it in its step).
        var reason: String {
            "\(step): " + (detail ?? errno.map { String(cString: strerror($0)) } ?? "failed")
        }

        var description: String { "volume \(volume): " + reason }
    }

    /// A tree deeper than this is refused: each level holds two descriptors while it is copied.
    static let maxDepth = 1024

    /// Fills the empty volumes that `spec`'s volume mounts name (made already, by MountPlan).
    /// Each volume is locked (flock on ROOT/volumes/NAME) while it is checked and filled, so two
    /// containers created at once with a new volume do not both copy into it. On a failure the
    /// volume is emptied again, as it was found.
    static func populate(spec: ContainerSpec, root: String) throws {
        let mounts = spec.mounts.filter { $0.kind == .volume && $0.noCopy != true }
        guard !mounts.isEmpty, !spec.layerPaths.isEmpty else { return }
        let store = VolumeStore(root: root)
        var image: FileDescriptor? = nil  // the layers' overlay, made for the first empty volume
        for m in mounts {
            let volume = m.source
            guard DockerNames.isValid(volume) else { continue }  // MountPlan refused it already
            let lockPath = store.directory(of: volume)
            guard let lock = FileDescriptor(taking: open(lockPath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC))
            else { throw Error(volume: volume, step: "open \(lockPath)", errno: errno) }
            while flock(lock.rawValue, LOCK_EX) != 0 && errno == EINTR {}
            defer { flock(lock.rawValue, LOCK_UN) }
            guard
                let data = FileDescriptor(
                    taking: openat(lock.rawValue, "_data", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC))
            else { throw Error(volume: volume, step: "open \(store.dataPath(of: volume))", errno: errno) }
            guard try isEmpty(data.rawValue, volume: volume) else { continue }
            if image.rawValue < 0 { image = try openImage(root: root, layers: spec.layerPaths, volume: volume) }
            let source = berth_in_root_open(image.rawValue, m.target, O_RDONLY | O_DIRECTORY)
            guard source >= 0 else {
                // Nothing there, or not a directory: nothing to copy (Docker's os.Stat check). A
                // link loop neither: the mount itself will fail at start, with its own words.
                if errno == ENOENT || errno == ENOTDIR || errno == ELOOP { continue }
                throw Error(volume: volume, step: "open \(m.target) in the image", errno: errno)
            }
            // A target that resolves to the image's root: the mount will be refused at start
            // (inroot.c), and the whole image must not be copied before that.
            var top = stat()
            var found = stat()
            if fstat(image.rawValue, &top) == 0, fstat(source, &found) == 0, top.st_dev == found.st_dev,
                top.st_ino == found.st_ino
            {
                close(source)
                continue
            }
            do {
                try copyTree(
                    from: source, to: openat(data.rawValue, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), volume: volume,
                    target: m.target)
            } catch {
                try? TreeRemoval.removeContents(of: store.dataPath(of: volume))
                throw error
            }
        }
    }

    /// True when the directory has no entry but "." and "..".
    static func isEmpty(_ fd: Int32, volume: String) throws -> Bool {
        let copy = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard copy >= 0, let dir = fdopendir(copy) else {
            let e = errno
            if copy >= 0 { close(copy) }
            throw Error(volume: volume, step: "read its directory", errno: e)
        }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            if !isDots(entryName(entry)) { return false }
        }
        return true
    }

    /// The image's layers as one read-only tree: overlayfs lists them topmost first, and wants
    /// two at least without an upper dir, so an empty one of berth's lies at the bottom.
    static func openImage(root: String, layers: [String], volume: String) throws -> FileDescriptor {
        let empty = root + "/cache/empty-layer"
        do { try Files.makeDirectories(empty) } catch let error as FileError {
            throw Error(volume: volume, step: "mkdir \(error.path)", errno: error.errno)
        }
        var message = [CChar](repeating: 0, count: 512)
        let lower = (layers.reversed() + [empty]).joined(separator: ":")
        let fd = berth_overlay_open_readonly(lower, &message, message.count)
        guard let mount = FileDescriptor(taking: fd) else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw Error(
                volume: volume, step: "mount the image's layers", errno: -fd,
                detail: reason.isEmpty ? nil : String(cString: strerror(-fd)) + " (\(reason))")
        }
        return mount
    }

    /// A directory being copied: its entries read from `source`, made in `target`.
    private final class Level {
        let source: OpaquePointer  // DIR*, owns the source descriptor
        let target: Int32
        let info: stat
        let path: String  // in the image, for messages
        init(source: OpaquePointer, target: Int32, info: stat, path: String) {
            self.source = source
            self.target = target
            self.info = info
            self.path = path
        }
        deinit {
            closedir(source)
            close(target)
        }
    }

    /// Copies the tree under the directory `sourceFD` into `targetFD` (both owned from here),
    /// depth first without recursion. A directory's own attributes are set once its entries are
    /// made (its mode may deny writing, its times would change).
    static func copyTree(from sourceFD: Int32, to targetFD: Int32, volume: String, target: String) throws {
        var rootInfo = stat()
        guard targetFD >= 0, fstat(sourceFD, &rootInfo) == 0, let rootDir = fdopendir(sourceFD) else {
            let e = errno
            close(sourceFD)
            if targetFD >= 0 { close(targetFD) }
            throw Error(volume: volume, step: "open \(target) in the image", errno: e)
        }
        var stack = [Level(source: rootDir, target: targetFD, info: rootInfo, path: target)]
        while let level = stack.last {
            errno = 0
            guard let entry = readdir(level.source) else {
                if errno != 0 { throw Error(volume: volume, step: "read \(level.path)", errno: errno) }
                try setAttributes(
                    level.target, like: level.info, from: dirfd(level.source), volume: volume, path: level.path)
                stack.removeLast()
                continue
            }
            // Bytes, not a String: a name need not be UTF-8.
            let name = entryName(entry)
            if isDots(name) { continue }
            let shown = String(decoding: name.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let path = level.path == "/" ? "/" + shown : level.path + "/" + shown
            let from = dirfd(level.source)
            var info = stat()
            guard fstatat(from, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw Error(volume: volume, step: "stat \(path)", errno: errno)
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                guard stack.count < maxDepth else {
                    throw Error(volume: volume, step: "copy \(path)", detail: "more than \(maxDepth) directory levels")
                }
                guard mkdirat(level.target, name, 0o700) == 0 else {
                    throw Error(volume: volume, step: "mkdir \(path)", errno: errno)
                }
                let made = openat(level.target, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard made >= 0 else { throw Error(volume: volume, step: "open \(path) in the volume", errno: errno) }
                let read = openat(from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard read >= 0, let dir = fdopendir(read) else {
                    let e = errno
                    if read >= 0 { close(read) }
                    close(made)
                    throw Error(volume: volume, step: "open \(path)", errno: e)
                }
                stack.append(Level(source: dir, target: made, info: info, path: path))
            case S_IFREG:
                try copyFile(name, from: from, to: level.target, info: info, volume: volume, path: path)
            case S_IFLNK:
                try copyLink(name, from: from, to: level.target, info: info, volume: volume, path: path)
            default:
                // Devices, FIFOs and sockets, made again as Docker does (continuity's mknod).
                guard mknodat(level.target, name, (info.st_mode & S_IFMT) | 0o600, info.st_rdev) == 0,
                    fchownat(level.target, name, info.st_uid, info.st_gid, AT_SYMLINK_NOFOLLOW) == 0,
                    berth_chmod_node(level.target, name, info.st_mode & 0o7777, info.st_mode & S_IFMT) == 0
                else { throw Error(volume: volume, step: "make \(path)", errno: errno) }
                setTimes(name, in: level.target, like: info)
            }
        }
    }

    /// A regular file: made new (O_EXCL: never an existing file or a link's target), its bytes
    /// copied, then owner, extended attributes, mode (after the chown, which clears set-ID bits
    /// and file capabilities) and times.
    static func copyFile(_ name: [CChar], from: Int32, to: Int32, info: stat, volume: String, path: String) throws {
        guard let input = FileDescriptor(taking: openat(from, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC))
        else {
            throw Error(volume: volume, step: "open \(path)", errno: errno)
        }
        guard
            let output = FileDescriptor(
                taking: openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600))
        else { throw Error(volume: volume, step: "create \(path) in the volume", errno: errno) }
        var buffer = [UInt8](repeating: 0, count: 128 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input.rawValue, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw Error(volume: volume, step: "read \(path)", errno: errno) }
            if n == 0 { break }
            do {
                try buffer.withUnsafeBytes {
                    try Files.writeAll(output.rawValue, UnsafeRawBufferPointer(rebasing: $0[0..<n]), path: path)
                }
            } catch let error as FileError {
                throw Error(volume: volume, step: "write \(path) in the volume", errno: error.errno)
            }
        }
        try setAttributes(output.rawValue, like: info, from: input.rawValue, volume: volume, path: path)
    }

    /// A symlink, as a link (never followed): its target is text, resolved by whoever uses it
    /// inside a container.
    static func copyLink(_ name: [CChar], from: Int32, to: Int32, info: stat, volume: String, path: String) throws {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(from, name, &buffer, buffer.count - 1)
        guard n >= 0 else { throw Error(volume: volume, step: "readlink \(path)", errno: errno) }
        buffer[n] = 0
        guard symlinkat(buffer, to, name) == 0,
            fchownat(to, name, info.st_uid, info.st_gid, AT_SYMLINK_NOFOLLOW) == 0
        else { throw Error(volume: volume, step: "symlink \(path) in the volume", errno: errno) }
        setTimes(name, in: to, like: info)
    }

    /// Owner, extended attributes, mode and times of `info` on the open file or directory `fd`.
    /// Extended attributes are best effort (the volume's file system may refuse some, such as
    /// security.selinux without SELinux), as Docker's copy is.
    static func setAttributes(_ fd: Int32, like info: stat, from source: Int32, volume: String, path: String) throws {
        guard fchown(fd, info.st_uid, info.st_gid) == 0 else {
            throw Error(volume: volume, step: "chown \(path) in the volume", errno: errno)
        }
        _ = berth_copy_xattrs(source, fd)
        guard fchmod(fd, info.st_mode & 0o7777) == 0 else {
            throw Error(volume: volume, step: "chmod \(path) in the volume", errno: errno)
        }
        var times = [info.st_atim, info.st_mtim]
        futimens(fd, &times)
    }

    static func setTimes(_ name: [CChar], in dir: Int32, like info: stat) {
        var times = [info.st_atim, info.st_mtim]
        utimensat(dir, name, &times, AT_SYMLINK_NOFOLLOW)
    }

    /// The entry's name with its terminating NUL, for the *at calls.
    static func entryName(_ entry: UnsafeMutablePointer<dirent>) -> [CChar] {
        withUnsafeBytes(of: entry.pointee.d_name) { $0.prefix { $0 != 0 }.map { CChar(bitPattern: $0) } + [0] }
    }

    static func isDots(_ name: [CChar]) -> Bool {
        name == [46, 0] || name == [46, 46, 0]
    }
}
