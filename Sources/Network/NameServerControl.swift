import CNetlink
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// How berth talks to berth-netd, the process that runs a root's embedded DNS server: one line
/// over the unix socket ROOT/netd.sock (`reload`, `stop`), one line back (`ok` or `error: TEXT`).
/// Plain system calls, no swift-nio: the CLI links this module.
///
/// `reload` starts the daemon when none listens. Only one runs per root: it holds an exclusive
/// flock of ROOT/netd.lock for its lifetime, and one that cannot take it exits at once, so
/// callers racing to start it just connect again to the one that won.
public enum NameServerControl {
    /// What went wrong, the step and the errno (DaemonControl's, named "berth-netd").
    public typealias Error = DaemonControl.Error
    static let daemon = "berth-netd"

    /// How long a call waits for a daemon to start and answer.
    static let startTimeout: Int64 = 5_000_000_000
    /// How long a reply may take (a reload binds listeners before it answers).
    static let replyTimeout: Int = 10

    /// Makes the root's berth-netd read the networks and endpoints again, starting it (the
    /// binary at `netd`) when none runs; returns once it has its listeners bound. Starts none
    /// when no network with the embedded DNS server has an endpoint: there is nothing to serve
    /// (a running one is still told, and exits).
    /// `networks`: those the caller needs served (their listeners' failures are thrown; the
    /// others' only logged); none: all.
    public static func reload(root: String, netd: String, networks: [String] = []) throws {
        let deadline = DaemonControl.now() + startTimeout
        while true {
            let unreachable: Int32
            switch try send((["reload"] + networks).joined(separator: " "), root: root) {
            case .ok: return
            case .unreachable(let error): unreachable = error
            }
            guard needsServer(root: root) else { return }
            guard DaemonControl.now() < deadline else {
                throw Error(
                    daemon: daemon, step: "reach berth-netd at \(socketPath(root)) (see \(root)/netd.log)",
                    errno: unreachable)
            }
            // berth-netd forks once more (`--detach`), so it is nobody's child.
            let started = try DaemonControl.spawnDetached(
                [netd, "--root", root, "--detach", "--ready-fd", "3"],
                environment: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], daemon: daemon,
                reap: true, deadline: deadline, log: root + "/netd.log")
            if !started {
                // Another daemon holds the lock (one starting, or one going away): ask again shortly.
                var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)
                nanosleep(&pause, nil)
            }
        }
    }

    /// Stops the root's berth-netd, if one runs, and returns once it is gone (its lock free).
    public static func stop(root: String) throws {
        _ = try send("stop", root: root)
        try DaemonControl.waitUntilFree(
            root + "/netd.lock", daemon: daemon, deadline: DaemonControl.now() + startTimeout)
    }

    public static func socketPath(_ root: String) -> String { root + "/netd.sock" }

    /// Whether any network that uses the embedded DNS server has an endpoint.
    static func needsServer(root: String) -> Bool {
        let store = NetworkStore(root: root)
        return store.networks().contains { $0.embeddedDNS && !store.endpoints(of: $0.name).isEmpty }
    }

    /// One command, one reply line.
    static func send(_ command: String, root: String) throws -> DaemonControl.Outcome {
        try DaemonControl.send(command, socket: socketPath(root), daemon: daemon, replyTimeout: replyTimeout)
    }
}
