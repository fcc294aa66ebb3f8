import Support

#if canImport(Glibc)
    import Glibc
#endif

/// How the CLI talks to a project's supervisor (`berth supervise PROJECT`): DaemonControl's one
/// line over ROOT/projects/NAME/supervisor.sock, `ping`, `reload` (read the project's containers
/// again), `stop`. It is started detached by the first command that needs it (`up`, `start`) and
/// stopped by `down`; one runs per project (it holds supervisor.lock).
public struct SupervisorControl: Sendable {
    public let store: ProjectStore
    public let berth: String

    public init(store: ProjectStore, berth: String) {
        self.store = store
        self.berth = berth
    }

    var daemon: String { "supervisor of \(store.name)" }
    static let startTimeout: Int64 = 10_000_000_000

    public var isRunning: Bool { DaemonControl.isHeld(store.lockPath) }

    /// Starts it unless one runs; returns once it answers.
    public func ensureRunning() throws {
        let deadline = DaemonControl.now() + Self.startTimeout
        while true {
            if case .ok = try send("ping") { return }
            guard DaemonControl.now() < deadline else {
                throw DaemonControl.Error(
                    daemon: daemon, step: "reach it at \(store.socketPath) (see \(store.logPath))", errno: ETIMEDOUT)
            }
            try Files.makeDirectories(store.directory, mode: 0o700)
            // argv is what `ps` shows: `berth supervise PROJECT`; the root comes in the environment.
            var environment = ["BERTH_ROOT=" + store.root, "BERTH_READY_FD=3"]
            for name in ["PATH", "BERTH_SHIM", "BERTH_NETD", "BERTH_PROXY", "DOCKER_CONFIG", "HOME"] {
                if let value = getenv(name) { environment.append(name + "=" + String(cString: value)) }
            }
            let ready = try DaemonControl.spawnDetached(
                [berth, "supervise", store.name], environment: environment, daemon: daemon, reap: false,
                deadline: deadline, log: store.logPath)
            if !ready {
                // Another one holds the lock (starting, or going away): ask again shortly.
                var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)
                nanosleep(&pause, nil)
            }
        }
    }

    /// Tells it the project's containers changed (made, started, removed).
    public func reload() throws {
        if case .unreachable = try send("reload") { try ensureRunning() }
    }

    /// The IDs of the containers it follows now (health checks, restart policy); nil when none runs.
    public func followed() throws -> [String]? {
        guard case .ok(let list) = try send("status") else { return nil }
        return list.split(separator: ",").map(String.init)
    }

    /// Stops it, if one runs, and returns once it is gone.
    public func stop() throws {
        _ = try send("stop")
        try DaemonControl.waitUntilFree(
            store.lockPath, daemon: daemon, deadline: DaemonControl.now() + Self.startTimeout)
    }

    func send(_ command: String) throws -> DaemonControl.Outcome {
        try DaemonControl.send(command, socket: store.socketPath, daemon: daemon)
    }
}
