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
    /// The containers followed, each with the run its thread follows (its start time): a
    /// container started again by someone else gets a thread for its new run, and the old one,
    /// seeing the run is not its own any more, ends.
    private let followed = Mutex<[String: String]>([:])
    /// The follow threads, joined once they have ended (at the next `reconcile`).
    private let threads = Mutex<[(work: BackgroundWork<Void>, ended: Ended)]>([])

    /// What `followed` says of a container its thread is starting again.
    static let restarting = "restarting"

    final class Ended: Sendable {
        let flag = Atomic(false)
    }

    public init(root: String, project: String, berth: String) {
        store = ProjectStore(root: root, name: project)
        self.berth = berth
    }

    /// Runs until `stop`; returns at once (false) when another supervisor holds the lock.
    /// `readyFD`: where to write a byte once it serves (DaemonControl.spawnDetached's fd 3).
    public func run(readyFD: Int32?) throws -> Bool {
        try Files.makeDirectories(store.directory, mode: 0o700)
        let lock = open(store.lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else {
            throw OrchestratorError("supervisor: open \(store.lockPath): \(String(cString: strerror(errno)))")
        }
        guard DaemonControl.lock(lock) else {
            close(lock)
            if let readyFD { close(readyFD) }
            return false
        }
        let pid = Array(String(getpid()).utf8)
        try? pid.withUnsafeBytes { try Files.replace(store.directory + "/supervisor.pid", with: $0, mode: 0o600) }
        let listener: FileDescriptor
        do {
            listener = try DaemonControl.listen(store.socketPath, daemon: "supervisor of \(store.name)")
        } catch {
            // Said on the readiness socket, so the starter reports it instead of starting another.
            log("cannot serve: \(error)")
            if let readyFD {
                var byte = DaemonControl.failureByte
                _ = write(readyFD, &byte, 1)
                close(readyFD)
            }
            throw error
        }
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
            case "status": reply = "ok " + followed.withLock { $0.keys.sorted().joined(separator: ",") }
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
        threads.withLock { threads in
            for thread in threads where thread.ended.flag.load(ordering: .acquiring) { try? thread.work.wait() }
            threads.removeAll { $0.ended.flag.load(ordering: .acquiring) }
        }
        let record = store.load()
        for container in store.containers() {
            guard let service = record?.service(container.service) else { continue }
            let state = container.state()
            let run = state.startedAt ?? ""
            let restartable =
                state.status == .exited && !store.isStopped(container.id)
                && service.restart.restarts(
                    exitCode: state.exitCode ?? 0, restarts: store.restartCount(of: container.id))
            guard state.status == .running || restartable else { continue }
            let isNew = followed.withLock { followed -> Bool in
                guard followed[container.id] != run, followed[container.id] != Self.restarting else { return false }
                followed[container.id] = run
                return true
            }
            guard isNew else { continue }
            let ended = Ended()
            let work = BackgroundWork { [self] in
                let last = follow(container, run: run, service: service)
                followed.withLock { if $0[container.id] == last { $0[container.id] = nil } }
                ended.flag.store(true, ordering: .releasing)
            }
            threads.withLock { $0.append((work, ended)) }
        }
    }

    /// The life of one container from `run` on: health probes while it runs, its restart policy
    /// when it exits, and so on through the runs it starts itself. Returns the last run it
    /// followed; it ends early when someone else started the container (that run has a thread).
    private func follow(_ container: Container, run first: String, service: ServiceRecord) -> String {
        var restarts = store.restartCount(of: container.id)
        var backoff = 0
        var run = first
        while true {
            if container.isRunning {
                let state = container.state()
                guard state.startedAt ?? "" == run else { return run }
                let ranFrom = DaemonControl.now()
                watch(container, state: state, healthcheck: service.healthcheck)
                guard container.state().startedAt ?? "" == run, let code = try? container.waitForExit() else {
                    return run
                }
                // Docker's backoff starts again after a run of 10 s.
                if DaemonControl.now() - ranFrom >= 10_000_000_000 { backoff = 0 }
                log("\(container.name) exited with \(code)")
                guard !store.isStopped(container.id), (try? Container.lookup(container.id, root: store.root)) != nil,
                    service.restart.restarts(exitCode: code, restarts: restarts)
                else { return run }
            } else {
                let code = container.state().exitCode ?? 0
                guard !store.isStopped(container.id), service.restart.restarts(exitCode: code, restarts: restarts)
                else { return run }
            }
            // The policy says again: after the backoff, unless a person stops it meanwhile.
            let delay = RestartPolicy.delay(afterRestarts: backoff)
            var pause = timespec(tv_sec: Int(delay), tv_nsec: Int((delay - delay.rounded(.down)) * 1e9))
            nanosleep(&pause, nil)
            guard !store.isStopped(container.id), (try? Container.lookup(container.id, root: store.root)) != nil,
                !container.isRunning
            else { return run }
            // This thread follows the run it starts: marked before, so that a `reload` meanwhile
            // starts no second thread for it.
            followed.withLock { $0[container.id] = Self.restarting }
            defer { followed.withLock { if $0[container.id] == Self.restarting { $0[container.id] = run } } }
            do {
                try ContainerNetworking(root: store.root).startDetached(container, berth: berth)
                run = container.state().startedAt ?? ""
                restarts += 1
                backoff += 1
                try? store.saveRestartCount(restarts, of: container.id)
                log("\(container.name) restarted (\(restarts))")
            } catch {
                log("\(container.name): restart failed: \(error)")
                backoff += 1
                if backoff > 20 { return run }
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
        var health =
            store.health(of: container.id).flatMap { $0.startedAt == state.startedAt ? $0 : nil }
            ?? HealthRecord(startedAt: state.startedAt)
        try? store.saveHealth(health, of: container.id)
        let started = DaemonControl.now()
        while true {
            let inStartPeriod = Double(DaemonControl.now() - started) / 1e9 < healthcheck.startPeriod
            let wait = inStartPeriod ? healthcheck.startInterval : healthcheck.interval
            if container.waitForMainProcess(milliseconds: Int(wait * 1000)) { return }
            let probe = HealthProbe.run(healthcheck, in: container)
            // Stopped, or started again meanwhile (that run has its own thread and record).
            guard container.isRunning, container.state().startedAt == state.startedAt else { return }
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
