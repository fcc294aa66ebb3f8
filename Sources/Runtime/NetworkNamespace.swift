import CRuntime

/// A network namespace with `lo` up, for `Container.create(networkNamespace:)`: made early, on
/// a thread of the caller's choosing, it costs the container's start nothing.
public enum NetworkNamespace {
    /// A namespace fd, or -1 when the kernel refused (create then makes its own and reports why).
    public static func make() -> Int32 {
        max(berth_netns_open(), -1)
    }
}
