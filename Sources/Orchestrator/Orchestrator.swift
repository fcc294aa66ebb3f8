import Build
import Compose
import ContainerNetworking
import ContainerSpecs
import FoundationEssentials
import Images
import Runtime
import Support
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A compose project's lifecycle on one root: the only place where a compose service becomes
/// containers, networks and volumes (docs/architecture.md). `up`, `down` and the everyday
/// commands are methods here; the CLI parses flags and renders `progress`.
public final class Orchestrator: @unchecked Sendable {
    public let root: String
    public let projectName: String
    public let store: ProjectStore
    /// The berth binary: what berth-shim runs when a container exits, and the supervisor's program.
    public let berth: String
    let progress: ProgressSink
    let warn: @Sendable (String) -> Void
    /// Pulls an image into the store (the CLI's, which shows the pull's progress).
    let pull: @Sendable (String) throws -> Void
    /// Whether the person asked to stop (Ctrl-C): the waits for dependencies give up.
    public var isInterrupted: @Sendable () -> Bool = { false }
    /// Where a service's build reports its steps (the CLI draws them as `berth build` does).
    public var buildProgress: BuildProgress = { _ in }

    public init(
        root: String, projectName: String, berth: String, progress: @escaping ProgressSink = { _ in },
        warn: @escaping @Sendable (String) -> Void = { _ in }, pull: @escaping @Sendable (String) throws -> Void
    ) {
        self.root = root
        self.projectName = projectName
        self.store = ProjectStore(root: root, name: projectName)
        self.berth = berth
        self.progress = progress
        self.warn = warn
        self.pull = pull
    }

    var networking: ContainerNetworking { ContainerNetworking(root: root) }

    /// The project lock's descriptor while this object's calls hold it, and how many do (`up`
    /// inside `run` takes it again).
    private let projectLock = Mutex<(depth: Int, fd: Int32)>((0, -1))

    /// Runs `body` holding ROOT/projects/NAME/project.lock: two commands that change one project
    /// (two `up`s, an `up` and a `down`) take turns, so they never start or remove one container
    /// twice. Reentrant within this object.
    func withProjectLock<T>(_ body: () throws -> T) throws -> T {
        let outermost = projectLock.withLock { lock -> Bool in
            lock.depth += 1
            return lock.depth == 1
        }
        defer {
            projectLock.withLock { lock in
                lock.depth -= 1
                if lock.depth == 0 && lock.fd >= 0 {
                    close(lock.fd)
                    lock.fd = -1
                }
            }
        }
        if outermost {
            let fd = try takeProjectLock()
            projectLock.withLock { $0.fd = fd }
        }
        return try body()
    }

    /// The flock of the lock file now at its path: a `down` removes the file while it holds it,
    /// and a lock taken on the removed file guards nothing, so that one is let go and the new
    /// file locked.
    private func takeProjectLock() throws -> Int32 {
        let path = store.directory + "/project.lock"
        func failure(_ step: String) -> OrchestratorError {
            OrchestratorError("project \(projectName): \(step) its lock: \(String(cString: strerror(errno)))")
        }
        while true {
            try Files.makeDirectories(store.directory, mode: 0o700)
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw failure("open") }
            var locked: Int32
            repeat { locked = flock(fd, LOCK_EX) } while locked != 0 && errno == EINTR
            guard locked == 0 else {
                let error = failure("take")
                close(fd)
                throw error
            }
            var held = stat()
            var current = stat()
            if fstat(fd, &held) == 0, stat(path, &current) == 0, held.st_ino == current.st_ino,
                held.st_dev == current.st_dev
            {
                return fd
            }
            close(fd)
        }
    }

    /// The project's containers of `services` (all when empty), one-offs too when asked.
    public func containers(of services: [String] = [], oneoff: Bool = false) -> [Container] {
        store.containers(oneoff: oneoff).filter { services.isEmpty || services.contains($0.service) }
    }

    // MARK: starting and stopping one container

    /// Starts a project container detached (its stop mark cleared first, so the supervisor
    /// restarts it by its policy again).
    func start(_ container: Container) throws {
        store.clearStopped(container.id)
        progress(ProgressEvent(.container, container.name, "Starting", .working))
        do {
            try networking.startDetached(container, berth: berth)
        } catch {
            progress(ProgressEvent(.container, container.name, "Error", .failed, detail: "\(error)"))
            throw error
        }
        progress(ProgressEvent(.container, container.name, "Started"))
    }

    /// Stops it (marked first, so the supervisor leaves it stopped): the stop signal, then SIGKILL
    /// after the grace period, at once when PID 1 does not catch the signal (Runtime's stop).
    func stop(_ container: Container, timeout: Int?) throws {
        store.markStopped(container.id)
        guard container.isRunning else { return }
        progress(ProgressEvent(.container, container.name, "Stopping", .working))
        try container.stop(timeout: timeout)
        progress(ProgressEvent(.container, container.name, "Stopped"))
    }

    /// Stops and removes it, with what it had on its networks and its supervisor files (its
    /// anonymous volumes stay, for the container that replaces it, or for `down -v` / `rm -v`).
    func remove(_ container: Container, timeout: Int?) throws {
        try stop(container, timeout: timeout)
        progress(ProgressEvent(.container, container.name, "Removing", .working))
        try networking.remove(container, force: true)
        store.forget(container.id)
        progress(ProgressEvent(.container, container.name, "Removed"))
    }

    /// Runs `body` for each item on threads of their own (a level's services, a service's
    /// replicas) and waits for all; the first error is thrown once all are done.
    func inParallel<T>(_ items: [T], _ body: @escaping (T) throws -> Void) throws {
        guard items.count > 1 else {
            for item in items { try body(item) }
            return
        }
        let works = items.map { item in BackgroundWork { try body(item) } }
        var first: Swift.Error?
        for work in works {
            do { try work.wait() } catch { first = first ?? error }
        }
        if let first { throw first }
    }

    /// Whether the supervisor is going to start this exited container again (its policy, not
    /// stopped by a person): its log is not complete yet.
    public func willRestart(_ container: Container) -> Bool {
        let state = container.state()
        guard state.status == .exited, !store.isStopped(container.id), supervisor.isRunning,
            let policy = store.load()?.service(container.service)?.restart
        else { return false }
        return policy.restarts(exitCode: state.exitCode ?? 0, restarts: store.restartCount(of: container.id))
    }

    /// The supervisor's control, for this project.
    public var supervisor: SupervisorControl { SupervisorControl(store: store, berth: berth) }
}

extension Container {
    /// The compose service a project container belongs to.
    public var service: String { record.spec.labels[ComposeLabel.service] ?? "" }
    /// Its replica number (com.docker.compose.container-number).
    public var number: Int { Int(record.spec.labels[ComposeLabel.containerNumber] ?? "") ?? 0 }
    public var isOneoff: Bool { record.spec.labels[ComposeLabel.oneoff] == "True" }
}
