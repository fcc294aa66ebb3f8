import CRuntime
import Support
#if canImport(Glibc)
import Glibc
#endif

/// Network namespaces the runtime makes, as descriptors the container's first process joins
/// (setns) before it builds its root.
public enum NetworkNamespace {
    /// A new namespace with `lo` up, for `Container.create(networkNamespace:)`: made early, on a
    /// thread of the caller's choosing, it costs the container's start nothing. nil when the
    /// kernel refused (create then makes its own and reports why).
    public static func make() -> FileDescriptor? {
        FileDescriptor(taking: berth_netns_open())
    }

}
