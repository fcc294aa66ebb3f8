import CRuntime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Network namespaces the runtime makes or joins, as descriptors the container's first process
/// joins (setns) before it builds its root.
public enum NetworkNamespace {
    /// A new namespace with `lo` up, for `Container.create(networkNamespace:)`: made early, on a
    /// thread of the caller's choosing, it costs the container's start nothing. nil when the
    /// kernel refused (create then makes its own and reports why).
    public static func make() -> FileDescriptor? {
        FileDescriptor(taking: berth_netns_open())
    }

    /// The namespace of the running container `id` (Docker's `--network container:NAME`), as
    /// /proc/PID/ns/net of its first process. The process is held by a pidfd meanwhile: while
    /// it can still be signalled it has not been reaped, so its pid cannot have been reused for
    /// another process by the time the namespace file was opened.
    static func ofContainer(id: String, root: String, for container: String) throws -> FileDescriptor {
        guard let other = Container.load(id: id, root: root), let process = other.openProcess() else {
            throw Container.Error(
                container: container, stage: .networkNamespace,
                detail: "cannot join network of a non running container: \(id.prefix(12))")
        }
        let path = "/proc/\(process.pid)/ns/net"
        guard let namespace = FileDescriptor(taking: open(path, O_RDONLY | O_CLOEXEC)) else {
            throw Container.Error(
                container: container, stage: .networkNamespace,
                step: "open network namespace \(path)", errno: errno)
        }
        guard berth_pidfd_send_signal(process.pidfd.rawValue, 0) == 0 else {
            throw Container.Error(
                container: container, stage: .networkNamespace,
                detail: "cannot join network of a non running container: \(id.prefix(12))")
        }
        return namespace
    }
}
