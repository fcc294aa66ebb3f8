import CRuntime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// COPY's and ADD's writes into the step's tree (the workspace overlay). Every file is made by
/// name in a directory descriptor: an existing non-directory is unlinked first and the new one
/// made with O_EXCL, directories are opened O_NOFOLLOW, so a link the image planted where a file
/// goes is replaced, never followed out of the root.
struct FileCopy {
    /// Owner of everything written; nil keeps the source's (COPY --from) or gives root (context).
    var owner: (uid: UInt32, gid: UInt32)?
    /// Keep the sources' owners when `owner` is nil (copies from an image); root otherwise.
    var keepsOwners: Bool
    /// `--chmod`, for files and directories alike.
    var mode: mode_t?

    /// Copies `source` (a file, or a directory's contents) to `name` in `directory`, or for a
    /// directory source with `name` nil, into `directory` itself.
    func copy(_ source: SourceTree, into directory: Int32, name: [CChar]?) throws {
        var targets: [Descriptor] = []
        try source.walk { event in
            switch event {
            case .enter(let entry):
                if entry.relative.isEmpty && name == nil {
                    guard let same = Descriptor(dup(directory)) else { throw BuildError("dup", errno: errno) }
                    targets.append(same)
                    return
                }
                let parent = targets.last?.fd ?? directory
                let made = try makeDirectory(
                    entry.relative.isEmpty ? name! : entry.name, in: parent, source.display(entry.relative))
                targets.append(made)
            case .leave(let entry):
                let target = targets.removeLast()
                if !(entry.relative.isEmpty && name == nil) {
                    try setAttributes(
                        target.fd, like: entry.info, from: entry.directory ?? -1, source.display(entry.relative))
                }
            case .leaf(let entry):
                let parent = targets.last?.fd ?? directory
                let target = entry.relative.isEmpty ? (name ?? entry.name) : entry.name
                try copyLeaf(entry, as: target, in: parent, source.display(entry.relative))
            }
        }
    }

    private func ownerOf(_ info: stat) -> (uid_t, gid_t) {
        if let owner { return (owner.uid, owner.gid) }
        return keepsOwners ? (info.st_uid, info.st_gid) : (0, 0)
    }

    private func permissions(_ info: stat) -> mode_t { mode ?? (info.st_mode & 0o7777) }

    /// An existing directory is kept (and takes the source's attributes when it is left); any
    /// other entry of that name is replaced.
    private func makeDirectory(_ name: [CChar], in parent: Int32, _ display: String) throws -> Descriptor {
        if mkdirat(parent, name, 0o700) != 0 {
            guard errno == EEXIST else { throw BuildError("mkdir \(display)", errno: errno) }
            var st = stat()
            if fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_mode & S_IFMT != S_IFDIR {
                guard unlinkat(parent, name, 0) == 0, mkdirat(parent, name, 0o700) == 0 else {
                    throw BuildError("replace \(display) with a directory", errno: errno)
                }
            }
        }
        guard let dir = Descriptor(openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) else {
            throw BuildError("open \(display)", errno: errno)
        }
        return dir
    }

    /// Makes room for a non-directory: whatever is there goes, but a directory, which Docker
    /// refuses to replace with a file.
    private func clear(_ name: [CChar], in parent: Int32, _ display: String) throws {
        if unlinkat(parent, name, 0) != 0 && errno != ENOENT {
            if errno == EISDIR || errno == EPERM {
                throw BuildError(message: "cannot replace the directory \(display) with a file")
            }
            throw BuildError("replace \(display)", errno: errno)
        }
    }

    private func copyLeaf(_ entry: SourceTree.Entry, as name: [CChar], in parent: Int32, _ display: String) throws {
        let info = entry.info
        try clear(name, in: parent, display)
        let (uid, gid) = ownerOf(info)
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            guard let input = Descriptor(entry.openFile()) else { throw BuildError("open \(display)", errno: errno) }
            guard
                let output = Descriptor(
                    openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600))
            else { throw BuildError("create \(display)", errno: errno) }
            try Self.copyBytes(from: input.fd, to: output.fd, display)
            try setAttributes(output.fd, like: info, from: input.fd, display)
        case S_IFLNK:
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlinkat(entry.parent, entry.name, &buffer, buffer.count - 1)
            guard n >= 0 else { throw BuildError("readlink \(display)", errno: errno) }
            buffer[n] = 0
            guard symlinkat(buffer, parent, name) == 0, fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) == 0
            else { throw BuildError("symlink \(display)", errno: errno) }
            var times = [info.st_atim, info.st_mtim]
            utimensat(parent, name, &times, AT_SYMLINK_NOFOLLOW)
        default:
            // FIFOs, devices and sockets, made again as they are.
            guard mknodat(parent, name, (info.st_mode & S_IFMT) | 0o600, info.st_rdev) == 0,
                fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) == 0,
                berth_chmod_node(parent, name, permissions(info), info.st_mode & S_IFMT) == 0
            else { throw BuildError("make \(display)", errno: errno) }
            var times = [info.st_atim, info.st_mtim]
            utimensat(parent, name, &times, AT_SYMLINK_NOFOLLOW)
        }
    }

    /// Owner, extended attributes (from `source` when it is open), mode after the chown (which
    /// clears set-ID bits), and the source's times: COPY keeps mtimes, as Docker's does.
    private func setAttributes(_ fd: Int32, like info: stat, from source: Int32, _ display: String) throws {
        let (uid, gid) = ownerOf(info)
        guard fchown(fd, uid, gid) == 0 else { throw BuildError("chown \(display)", errno: errno) }
        if source >= 0 { _ = berth_copy_xattrs(source, fd) }
        guard fchmod(fd, permissions(info)) == 0 else { throw BuildError("chmod \(display)", errno: errno) }
        var times = [info.st_atim, info.st_mtim]
        futimens(fd, &times)
    }

    /// In the kernel where it can (sendfile), else through a buffer.
    static func copyBytes(from input: Int32, to output: Int32, _ display: String) throws {
        while true {
            let n = sendfile(output, input, nil, 1 << 30)
            if n > 0 { continue }
            if n == 0 { return }
            if errno == EINTR { continue }
            if errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP { break }
            throw BuildError("copy \(display)", errno: errno)
        }
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw BuildError("read \(display)", errno: errno) }
            if n == 0 { return }
            do {
                try buffer.withUnsafeBytes {
                    try Files.writeAll(output, UnsafeRawBufferPointer(rebasing: $0[0..<n]), path: display)
                }
            } catch let error as FileError {
                throw BuildError("write \(display)", errno: error.errno)
            }
        }
    }
}
