import ContainerNetworking
import FoundationEssentials
import Runtime
import Support
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A project's supervisor: the process `berth supervise PROJECT` that `up` leaves behind. It
/// runs the health checks and applies the restart policies of the project's containers; it does
/// not hold them (each runs under its own berth-shim, which logs and records its exit), so
/// killing it stops no container and loses nothing, and a new one adopts what runs (same PIDs).
/// Everything it knows is on disk (ProjectStore): health, restart counts. DNS answers and
/// published ports are served per root and per container (berth-netd, berth-proxy), so that
/// `container run` has them without a project.
///
/// One thread per container follows it: it waits on PID 1's pidfd, with the health check's
/// interval as the timeout when there is one (a probe each time it passes); at the exit it
/// applies the policy (Docker's backoff: 100 ms doubling to a minute, reset after a run of 10 s)
/// unless the container was stopped by a person (its stop mark). A `reload` on the socket starts
/// threads for containers it does not follow yet.
public final class Supervisor: @unchecked Sendable {
    let store: ProjectStore
    let berth: String
    private let followed = Mutex<Set<String>>([])
    private var threads: [BackgroundWork<Void>] = []
    private let threadsLock = Mutex(())

    public init(root: String, project: String, berth: String) {
        store = ProjectStore(root: root, name: project)
        self.berth = berth
    }

    /// Runs until `stop`; returns at once (false) when another supervisor holds the lock.
    /// `readyFD`: where to write a byte once it serves (DaemonControl.spawnDetached's fd 3).
    public func run(readyFD: Int32?) throws -> Bool {
        try Files.makeDirectories(store.directory, mode: 0o700)
        let lock = open(store.lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw OrchestratorError("supervisor: open \(store.lockPath): \(String(cString: strerror(errno)))") }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            close(lock)
            if let readyFD { close(readyFD) }
            return false
        }
        let pid = Array(String(getpid()).utf8)
        try? pid.withUnsafeBytes { try Files.replace(store.directory + "/supervisor.pid", with: $0, mode: 0o600) }
        let listener = try DaemonControl.listen(store.socketPath, daemon: "supervisor of \(store.name)")
        log("supervising \(store.name) (pid \(getpid()))")
        reconcile()
        if let readyFD {
            var byte: UInt8 = 1
            _ = write(readyFD, &byte, 1)
            close(readyFD)
        }
        serve(listener.rawValue)
        unlink(store.socketPath)
        unlink(store.directory + "/supervisor.pid")
        log("stopped")
        return true
    }

    /// One command a connection: `ping`, `reload`, `status` (the IDs of the containers it
    /// follows), `stop` (answered, then the process ends; the containers go on).
    private func serve(_ listener: Int32) {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                log("accept: \(String(cString: strerror(errno)))")
                return
            }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            let command = readLine(connection)
            var reply = "ok"
            var stopping = false
            switch command {
            case "ping": break
            case "reload": reconcile()
            case "status": reply = "ok " + followed.withLock { $0.sorted().joined(separator: ",") }
            case "stop": stopping = true
            default: reply = "error: unknown command \(command)"
            }
            let bytes = Array((reply + "\n").utf8)
            _ = bytes.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(connection)
            if stopping { return }
        }
    }

    private func readLine(_ fd: Int32) -> String {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while line.count < 1024 {
            let n = recv(fd, &byte, 1, 0)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 || byte == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        return String(decoding: line, as: UTF8.self)
    }

    /// Follows every project container it does not follow yet: those running, and those that
    /// exited by themselves and whose policy says to start them again (one that crashed before a
    /// `reload` reached this process, or while no supervisor ran: Docker's daemon too restarts
    /// them when it starts). One a person stopped, or whose policy is done with it, is followed
    /// again once something starts it.
    func reconcile() {
        let record = store.load()
        for container in store.containers() {
            guard let service = record?.service(container.service) else { continue }
            guard followed.withLock({ $0.insert(container.id).inserted }) else { continue }
            let state = container.state()
            let restartable =
                state.status == .exited && !store.isStopped(container.id)
                && service.restart.restarts(exitCode: state.exitCode ?? 0, restarts: store.restartCount(of: container.id))
            guard state.status == .running || restartable else {
                followed.withLock { _ = $0.remove(container.id) }
                continue
            }
            let work = BackgroundWork { [self] in
                follow(container, service: service)
                followed.withLock { _ = $0.remove(container.id) }
            }
            threadsLock.withLock { _ in threads.append(work) }
        }
    }

    /// The life of one container: health probes while it runs, its restart policy when it exits.
    private func follow(_ container: Container, service: ServiceRecord) {
        var restarts = store.restartCount(of: container.id)
        var backoff = 0
        while true {
            if container.isRunning {
                let state = container.state()
                let ranFrom = DaemonControl.now()
                watch(container, state: state, healthcheck: service.healthcheck)
                guard let code = try? container.waitForExit() else { return }
                // Docker's backoff starts again after a run of 10 s.
                if DaemonControl.now() - ranFrom >= 10_000_000_000 { backoff = 0 }
                log("\(container.name) exited with \(code)")
                guard !store.isStopped(container.id), (try? Container.lookup(container.id, root: store.root)) != nil,
                    service.restart.restarts(exitCode: code, restarts: restarts)
                else { return }
            } else {
                let code = container.state().exitCode ?? 0
                guard !store.isStopped(container.id), service.restart.restarts(exitCode: code, restarts: restarts)
                else { return }
            }
            // The policy says again: after the backoff, unless a person stops it meanwhile.
            let delay = RestartPolicy.delay(afterRestarts: backoff)
            var pause = timespec(tv_sec: Int(delay), tv_nsec: Int((delay - delay.rounded(.down)) * 1e9))
            nanosleep(&pause, nil)
            guard !store.isStopped(container.id), (try? Container.lookup(container.id, root: store.root)) != nil else {
                return
            }
            do {
                try ContainerNetworking(root: store.root).startDetached(container, berth: berth)
                restarts += 1
                backoff += 1
                try? store.saveRestartCount(restarts, of: container.id)
                log("\(container.name) restarted (\(restarts))")
            } catch {
                log("\(container.name): restart failed: \(error)")
                backoff += 1
                if backoff > 20 { return }
            }
        }
    }

    /// Until PID 1 exits: with a health check, a probe at each interval (the start interval
    /// during the start period), its outcome in the health record; without, just the wait.
    private func watch(_ container: Container, state: ContainerState, healthcheck: HealthcheckSpec?) {
        guard let healthcheck else {
            _ = container.waitForMainProcess(milliseconds: nil)
            return
        }
        // A record of this very run (an adopted container) goes on; a new run starts over.
        var health = store.health(of: container.id).flatMap { $0.startedAt == state.startedAt ? $0 : nil }
            ?? HealthRecord(startedAt: state.startedAt)
        try? store.saveHealth(health, of: container.id)
        let started = DaemonControl.now()
        while true {
            let inStartPeriod = Double(DaemonControl.now() - started) / 1e9 < healthcheck.startPeriod
            let wait = inStartPeriod ? healthcheck.startInterval : healthcheck.interval
            if container.waitForMainProcess(milliseconds: Int(wait * 1000)) { return }
            let probe = HealthProbe.run(healthcheck, in: container)
            guard container.isRunning else { return }
            let before = health.status
            health.record(
                probe, spec: healthcheck,
                inStartPeriod: Double(DaemonControl.now() - started) / 1e9 < healthcheck.startPeriod)
            try? store.saveHealth(health, of: container.id)
            if health.status != before { log("\(container.name) is \(health.status.rawValue)") }
        }
    }

    private func log(_ message: String) {
        StandardStreams.writeError("\(Timestamp.now()) \(message)\n")
    }
}
