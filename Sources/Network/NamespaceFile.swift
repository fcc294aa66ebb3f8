import CNetlink
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A network namespace kept as a file (a bind mount of its nsfs inode), as `ip netns add` keeps
/// them under /run/netns: the namespace lives as long as the mount, whatever happens to the
/// processes in it, so its interfaces can be found and removed after any crash.
public enum NamespaceFile {
    /// Binds the network namespace at `namespace` (/proc/PID/ns/net, /proc/self/fd/N) to `path`
    /// (made, empty, if missing).
    public static func keep(_ namespace: String, at path: String) throws {
        try Files.makeDirectories(Files.parentDirectory(path), mode: 0o700)
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Netlink.Error(operation: "create \(path)", errno: errno) }
        close(fd)
        guard mount(namespace, path, nil, UInt(MS_BIND), nil) == 0 else {
            let e = errno
            unlink(path)
            throw Netlink.Error(operation: "bind the network namespace \(namespace) to \(path)", errno: e)
        }
    }

    /// True when something is mounted on `path` (its device differs from its directory's), not
    /// the empty file under it.
    public static func isKept(_ path: String) -> Bool {
        var file = stat()
        var dir = stat()
        return stat(path, &file) == 0 && stat(Files.parentDirectory(path), &dir) == 0 && file.st_dev != dir.st_dev
    }

    /// Lets the namespace go (it ends once no process is in it) and removes the file. Nothing
    /// there is not an error: teardown runs again after a crash.
    public static func release(_ path: String) throws {
        while isKept(path) {
            guard umount2(path, Int32(MNT_DETACH)) == 0 else {
                throw Netlink.Error(operation: "unmount the network namespace at \(path)", errno: errno)
            }
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw Netlink.Error(operation: "remove \(path)", errno: errno)
        }
    }
}
