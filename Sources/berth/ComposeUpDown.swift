import ArgumentParser
import Compose
import FoundationEssentials
import Orchestrator
import Runtime
import Support
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `berth up`, as `docker compose up`: the project made and started (Orchestrator.up); with -d
/// or --wait it returns, otherwise it streams the containers' logs until they have all stopped,
/// and Ctrl-C stops the project in reverse dependency order (a second one kills).
struct ComposeUp: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "up", abstract: "Create and start containers.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Flag(name: [.customShort("d"), .customLong("detach")], help: "Run containers in the background.")
    var detach = false
    @Flag(name: .customLong("wait"), help: "Wait for services to be running|healthy. Implies detached mode.")
    var wait = false
    @Option(
        name: .customLong("wait-timeout"),
        help: "Maximum duration in seconds to wait for the project to be running|healthy.")
    var waitTimeout: Double?
    @Flag(name: .customLong("build"), help: "Build images before starting containers.")
    var build = false
    @Flag(name: .customLong("no-build"), help: "Don't build an image, even if it's policy.")
    var noBuild = false
    @Option(name: .customLong("pull"), help: "Pull image before running (always|missing|never).")
    var pull: String?
    @Option(name: .customLong("scale"), help: "Scale SERVICE to NUM instances.")
    var scale: [String] = []
    @Flag(name: .customLong("no-deps"), help: "Don't start linked services.")
    var noDeps = false
    @Flag(name: .customLong("force-recreate"), help: "Recreate containers even if their configuration hasn't changed.")
    var forceRecreate = false
    @Flag(name: .customLong("no-recreate"), help: "If containers already exist, don't recreate them.")
    var noRecreate = false
    @Flag(name: .customLong("no-start"), help: "Don't start the services after creating them.")
    var noStart = false
    @Flag(name: .customLong("remove-orphans"), help: "Remove containers for services not defined in the Compose file.")
    var removeOrphans = false
    @Flag(name: .customLong("abort-on-container-exit"), help: "Stops all containers if any container was stopped.")
    var abortOnContainerExit = false
    @Flag(
        name: .customLong("abort-on-container-failure"),
        help: "Stops all containers if any container exited with failure.")
    var abortOnContainerFailure = false
    @Option(name: .customLong("exit-code-from"), help: "Return the exit code of the selected service container.")
    var exitCodeFrom: String?
    @Option(name: [.customShort("t"), .customLong("timeout")], help: "Shutdown timeout in seconds.")
    var timeout: Int?
    @Flag(name: .customLong("no-color"), help: "Produce monochrome output.")
    var noColor = false
    @Flag(name: .customLong("no-log-prefix"), help: "Don't print prefix in logs.")
    var noLogPrefix = false
    @Flag(name: .customLong("timestamps"), help: "Show timestamps.")
    var timestamps = false
    @Argument var services: [String] = []

    func validate() throws {
        if build && noBuild { throw ValidationError("--build and --no-build are incompatible") }
        if forceRecreate && noRecreate { throw ValidationError("--force-recreate and --no-recreate are incompatible") }
        if detach && (abortOnContainerExit || abortOnContainerFailure || exitCodeFrom != nil) {
            throw ValidationError(
                "--abort-on-container-exit, --abort-on-container-failure and --exit-code-from cannot be combined with --detach"
            )
        }
        if abortOnContainerExit && abortOnContainerFailure {
            throw ValidationError("--abort-on-container-exit and --abort-on-container-failure are incompatible")
        }
        if let pull, !["always", "missing", "never", "build"].contains(pull) {
            throw ValidationError("invalid --pull option \"\(pull)\": use always, missing or never")
        }
    }

    func run() throws {
        let context = try global.composeContext(
            output, needsModel: true, services: services + (exitCodeFrom.map { [$0] } ?? []))
        guard let project = context.project else { return }
        var options = UpOptions()
        options.services = services
        options.noDeps = noDeps
        options.forceRecreate = forceRecreate
        options.noRecreate = noRecreate
        options.noStart = noStart
        options.removeOrphans = removeOrphans
        options.pull = pull
        options.wait = wait
        options.waitTimeout = waitTimeout
        options.timeout = timeout
        options.build = build
        options.noBuild = noBuild
        for entry in scale {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let count = Int(parts[1]), count >= 0 else {
                throw ContainerCommandError(description: "invalid --scale \"\(entry)\": use SERVICE=NUM")
            }
            options.scale[parts[0]] = count
        }
        // Ctrl-C is handled from the start, not only once attached: one that comes while `up`
        // waits for a dependency stops what it started.
        let signals = Foreground.SignalForwarding()
        defer { signals.stop() }
        let interruption = Interruption(signals)
        context.orchestrator.isInterrupted = { interruption.check() }
        let since = LogTimestamp.now
        let containers: [Container]
        do {
            containers = try context.orchestrator.up(project, options)
        } catch  where interruption.check() {
            StandardStreams.writeError("Gracefully stopping...\n")
            try context.orchestrator.stop(services: services, timeout: timeout)
            throw CommandFailure(status: 130)
        }
        if detach || wait || noStart { return }
        // Attached to the named services only (their dependencies run unattached), as docker
        // compose: their logs are shown, and only their exits end or abort the run.
        let attached = services.isEmpty ? containers : containers.filter { services.contains($0.service) }
        let code = try foreground(context, attached, since: since, interruption: interruption)
        if code != 0 { throw CommandFailure(status: code) }
    }

    /// Attached: the logs until every container has stopped for good; Ctrl-C (or an exit that
    /// aborts) stops the project, a second Ctrl-C kills it. The status: --exit-code-from's
    /// service's, else that of the container whose exit aborted, else 130 after Ctrl-C.
    private func foreground(
        _ context: ComposeContext, _ containers: [Container], since: LogTimestamp, interruption: Interruption
    ) throws -> Int32 {
        let orchestrator = context.orchestrator
        let printer = ComposeLogPrinter(
            containers, colour: !noColor && output.useANSI, prefix: !noLogPrefix, timestamps: timestamps)
        var selection = ContainerLogSelection()
        selection.since = since
        let followers = ComposeLogFollowers(
            containers, printer: printer, selection: selection, orchestrator: orchestrator)
        // docker compose's: --exit-code-from implies --abort-on-container-exit, unless
        // --abort-on-container-failure is given (then only a failure aborts: one-shot jobs that
        // end with 0, a migration, a fixture loader, do not; the service's own exit still ends it).
        let abortOnExit = abortOnContainerExit || (exitCodeFrom != nil && !abortOnContainerFailure)
        var stopping: BackgroundWork<Void>?
        var abortedBy: Container?
        var interrupts = 0
        while true {
            // The containers' ends show only in their files: looked at every 100 ms, or at once
            // when a signal comes.
            var poller = pollfd(fd: interruption.descriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&poller, 1, 100)
            _ = interruption.check()
            let count = interruption.count
            if count >= 1 && interrupts == 0 {
                StandardStreams.writeError("Gracefully stopping... (press Ctrl+C again to force)\n")
                stopping =
                    stopping ?? BackgroundWork { try orchestrator.stop(services: self.services, timeout: self.timeout) }
            }
            if count >= 2 && interrupts < 2 { try? orchestrator.kill(services: services, signal: SIGKILL) }
            interrupts = count
            let settled = containers.filter { !$0.isRunning && !orchestrator.willRestart($0) }
            let aborting = settled.first { container in
                abortOnExit || container.service == exitCodeFrom
                    || (abortOnContainerFailure && container.state().exitCode != 0)
            }
            if stopping == nil, let exited = aborting {
                abortedBy = exited
                printer.say("\(exited.name) exited with code \(exited.state().exitCode ?? 255)\n")
                StandardStreams.writeError("Aborting on container exit...\n")
                stopping = BackgroundWork { try orchestrator.stop(services: self.services, timeout: self.timeout) }
            }
            if settled.count == containers.count { break }
        }
        try stopping?.wait()
        followers.finish()
        if let exitCodeFrom {
            return containers.first { $0.service == exitCodeFrom }?.state().exitCode ?? 0
        }
        if let abortedBy { return abortedBy.state().exitCode ?? 0 }
        return interrupts > 0 ? 130 : 0
    }
}

/// The SIGINTs, SIGTERMs and SIGHUPs (a closed terminal) a compose command got so far, read from Foreground's self-pipe by
/// whichever thread asks (the orchestrator's waits poll it).
final class Interruption: @unchecked Sendable {
    private let signals: Foreground.SignalForwarding
    private let received = Mutex(0)

    init(_ signals: Foreground.SignalForwarding) { self.signals = signals }

    /// The pipe to poll; -1 when signal handling could not be set up.
    var descriptor: Int32 { signals.descriptor ?? -1 }

    var count: Int { received.withLock { $0 } }

    /// Whether one came (reading those that are pending).
    func check() -> Bool {
        received.withLock { count in
            count += signals.received().filter { $0 == SIGINT || $0 == SIGTERM || $0 == SIGHUP }.count
            return count > 0
        }
    }
}

/// `berth down`, as `docker compose down`: from what is on disk, so it works after the compose
/// file changed or broke.
struct ComposeDown: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down", abstract: "Stop and remove containers, networks.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Flag(
        name: [.customShort("v"), .customLong("volumes")], help: "Remove named volumes declared in the volumes section."
    )
    var volumes = false
    @Option(name: .customLong("rmi"), help: "Remove images used by services: local or all.")
    var rmi: String?
    @Flag(name: .customLong("remove-orphans"), help: "Remove containers for services not defined in the Compose file.")
    var removeOrphans = false
    @Option(name: [.customShort("t"), .customLong("timeout")], help: "Shutdown timeout in seconds.")
    var timeout: Int?

    func validate() throws {
        if let rmi, rmi != "local", rmi != "all" { throw ValidationError("invalid --rmi \"\(rmi)\": use local or all") }
    }

    func run() throws {
        let context = try global.composeContext(output, needsModel: false)
        var options = DownOptions()
        options.volumes = volumes
        options.removeImages = rmi
        options.removeOrphans = removeOrphans
        options.timeout = timeout
        let current = context.project.map { Set($0.serviceNames + $0.disabledServices.map(\.name)) }
        try context.orchestrator.down(options, currentServices: current)
    }
}

/// `berth supervise PROJECT`: the project's supervisor (Orchestrator.Supervisor), started by `up`
/// detached with the root in BERTH_ROOT, so that `ps` shows just this. Not for people to run.
struct ComposeSupervise: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "supervise", abstract: "Run a project's supervisor (started by up).", shouldDisplay: false)

    @OptionGroup var global: RootOptions
    @Flag(name: .customLong("status"), help: "Print the IDs of the containers a running supervisor follows.")
    var status = false
    @Argument var project: String

    func run() throws {
        let root = global.stateRoot
        // It names a folder under ROOT/projects: only a valid project name.
        guard !project.isEmpty, ComposeLoader.normalizeProjectName(project) == project else {
            throw ContainerCommandError(description: "invalid project name \"\(project)\"")
        }
        let store = ProjectStore(root: root, name: project)
        if status {
            guard let followed = try SupervisorControl(store: store, berth: ContainerRun.selfPath()).followed() else {
                throw ContainerCommandError(description: "no supervisor runs for project \(project)")
            }
            for id in followed { print(id) }
            return
        }
        try Files.makeDirectories(store.directory, mode: 0o700)
        // Its own log on stdout and stderr (the starter gave it /dev/null).
        let log = open(store.logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        if log >= 0 {
            dup2(log, STDOUT_FILENO)
            dup2(log, STDERR_FILENO)
            close(log)
        }
        let ready = ProcessInfo.processInfo.environment["BERTH_READY_FD"].flatMap { Int32($0) }
        // Inherited descriptors other than stdio and the readiness socket are not ours to keep.
        for fd in Int32(3)..<1024 where fd != ready { close(fd) }
        let supervisor = Supervisor(root: root, project: project, berth: ContainerRun.selfPath())
        _ = try supervisor.run(readyFD: ready)
    }
}
