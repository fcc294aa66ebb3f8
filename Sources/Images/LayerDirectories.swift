#if canImport(Glibc)
    import Support
    import Glibc
#endif

/// Directory descriptors inside a layer being unpacked, each opened relative to its parent's with
/// O_NOFOLLOW. No system call ever gets more than one path component, so a tree deeper than
/// PATH_MAX unpacks like any other, and a symlink the archive made (`etc -> /etc`) is never
/// followed: a parent that is not a real directory is an error, not a way out of the layer.
///
/// Tar entries come in tree order, so the descriptors of the last directory and its ancestors are
/// kept for the next entry. Only the top `cachedDepth` levels stay open (a hostile chain of
/// thousands of levels must not use up the process's descriptors); below that the directory of the
/// last entry is kept, and the others are opened and closed again on the way down.
final class LayerDirectories {
    static let cachedDepth = 64

    /// The layer's root directory; borrowed, not closed here.
    let root: Int32
    /// `chain[i]` is the directory root/chain[0].name/.../chain[i].name.
    private var chain: [(name: [UInt8], fd: Int32)] = []
    /// The last directory opened below `cachedDepth` levels.
    private var deep: (parts: [[UInt8]], fd: Int32)?

    init(root: Int32) {
        self.root = root
    }

    deinit { closeAll() }

    func closeAll() {
        for level in chain { close(level.fd) }
        chain.removeAll()
        if let deep { close(deep.fd) }
        deep = nil
    }

    /// The directory root/parts..., made (mode 0755, as Docker makes a missing parent) when
    /// `create` is set. The descriptor belongs to this object and stays valid until the next
    /// call; `dup` it to hold it longer.
    func open(_ parts: ArraySlice<[UInt8]>, create: Bool) throws -> Int32 {
        var shared = 0
        while shared < chain.count && shared < parts.count && chain[shared].name == parts[parts.startIndex + shared] {
            shared += 1
        }
        while chain.count > shared { close(chain.removeLast().fd) }
        if let deep {
            if deep.parts.elementsEqual(parts) { return deep.fd }
            close(deep.fd)
            self.deep = nil
        }
        var fd = shared == 0 ? root : chain[shared - 1].fd
        var level = shared
        for part in parts.dropFirst(shared) {
            let child: Int32
            do {
                child = try Self.openChild(part, in: fd, create: create)
            } catch {
                // Close a descriptor of the uncached part of the walk before giving up.
                if level > Self.cachedDepth { close(fd) }
                throw error
            }
            if level < Self.cachedDepth {
                chain.append((part, child))
            } else if level > Self.cachedDepth {
                close(fd)
            }
            fd = child
            level += 1
        }
        if parts.count > Self.cachedDepth { deep = (Array(parts), fd) }
        return fd
    }

    /// openat(parent, name, O_DIRECTORY | O_NOFOLLOW), making the directory first if asked.
    static func openChild(_ name: [UInt8], in parent: Int32, create: Bool) throws -> Int32 {
        let cName = LayerEntryWriter.cString(name)
        let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
        var fd = openat(parent, cName, flags)
        if fd < 0 && errno == ENOENT && create {
            guard mkdirat(parent, cName, 0o755) == 0 || errno == EEXIST else {
                throw LayerWriteFailure(
                    "cannot create its parent directory \(DisplayPath.of(name)): "
                        + LayerWriteFailure.text(errno))
            }
            fd = openat(parent, cName, flags)
            // mkdirat applied the umask; Docker's missing parents are 0755 whatever the umask.
            if fd >= 0 { fchmod(fd, 0o755) }
        }
        guard fd >= 0 else {
            let err = errno
            if err == ELOOP || err == ENOTDIR {
                throw LayerWriteFailure(
                    "its parent \(DisplayPath.of(name)) is a symlink or a file, "
                        + "not a directory")
            }
            if err == ENOENT {
                throw LayerWriteFailure("its parent \(DisplayPath.of(name)) is not in the layer", missing: true)
            }
            throw LayerWriteFailure(
                "cannot open its parent \(DisplayPath.of(name)): "
                    + LayerWriteFailure.text(err))
        }
        return fd
    }
}
