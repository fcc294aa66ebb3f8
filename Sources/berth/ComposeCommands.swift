import ArgumentParser
import Compose
import ContainerNetworking
import FoundationEssentials
import Network
import Orchestrator
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `berth ps`, as `docker compose ps`: the project's containers (running ones; all with -a).
struct ComposePs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List containers.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Flag(name: [.customShort("a"), .customLong("all")], help: "Show all stopped containers.")
    var all = false
    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Only display IDs.")
    var quiet = false
    @Option(name: .customLong("format"), help: "Format the output: table or json.")
    var format: String = "table"
    @Flag(name: .customLong("services"), help: "Display services.")
    var servicesOnly = false
    @Option(name: .customLong("status"), help: "Filter services by status: created, running, exited, dead.")
    var status: [String] = []
    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.")
    var noTrunc = false
    @Argument var services: [String] = []

    /// The command as one line (a multi-line script's newlines as spaces), truncated to 20
    /// characters for the table as docker compose does unless --no-trunc.
    func command(_ container: Container) -> String {
        let line = container.record.process.argv.joined(separator: " ").map { $0.isNewline ? " " : $0 }
        guard !noTrunc, format != "json", line.count > 20 else { return String(line) }
        return String(line.prefix(19)) + "…"
    }

    /// docker compose's `ps --format json` fields (Publishers as its structured ports).
    struct Row: Encodable {
        var id, name, image, command, project, service, createdAt, runningFor, state, status, health, ports: String
        var exitCode: Int32
        var publishers: [Publisher]

        enum CodingKeys: String, CodingKey {
            case id = "ID"
            case name = "Name"
            case image = "Image"
            case command = "Command"
            case project = "Project"
            case service = "Service"
            case createdAt = "CreatedAt"
            case runningFor = "RunningFor"
            case state = "State"
            case status = "Status"
            case health = "Health"
            case ports = "Ports"
            case exitCode = "ExitCode"
            case publishers = "Publishers"
        }
    }
    struct Publisher: Encodable {
        var url: String
        var targetPort, publishedPort: Int
        var proto: String

        enum CodingKeys: String, CodingKey {
            case url = "URL"
            case targetPort = "TargetPort"
            case publishedPort = "PublishedPort"
            case proto = "Protocol"
        }
    }

    func run() throws {
        let context = try global.composeContext(output, needsModel: false, services: services)
        let store = context.orchestrator.store
        let rows = context.orchestrator.containers(of: services).compactMap { container -> Row? in
            let state = container.state()
            if !status.isEmpty ? !status.contains(state.status.rawValue) : (!all && state.status != .running) {
                return nil
            }
            let health =
                state.status == .running
                ? store.health(of: container.id).flatMap { $0.startedAt == state.startedAt ? $0.status.rawValue : nil }
                    ?? "" : ""
            var shown = ContainerList.status(state)
            // Docker's word for one that waits out its restart backoff.
            if state.status == .exited && context.orchestrator.willRestart(container) {
                shown = "Restarting (\(state.exitCode ?? 0)) " + ago(state.finishedAt ?? "") + " ago"
            }
            if !health.isEmpty { shown += health == "starting" ? " (health: starting)" : " (\(health))" }
            return Row(
                id: container.id, name: container.name, image: container.record.spec.image,
                command: "\"" + command(container) + "\"", project: context.name,
                service: container.service, createdAt: container.record.created,
                runningFor: ago(container.record.created) + " ago", state: state.status.rawValue, status: shown,
                health: health, ports: ContainerList.ports(container, state), exitCode: state.exitCode ?? 0,
                publishers: state.status == .running
                    ? ContainerPort.published(container).map {
                        Publisher(
                            url: $0.hostIP?.description ?? "0.0.0.0", targetPort: Int($0.containerPort),
                            publishedPort: Int($0.hostPort), proto: $0.proto)
                    } : [])
        }
        if servicesOnly {
            for service in Array(Set(rows.map(\.service))).sorted() { print(service) }
        } else if quiet {
            for row in rows { print(row.id) }
        } else if format == "json" {
            for row in rows { print(jsonLine(row), terminator: "") }
        } else {
            let table =
                [["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]]
                + rows.map { [$0.name, $0.image, $0.command, $0.service, $0.runningFor, $0.status, $0.ports] }
            print(HumanFormat.table(table), terminator: "")
        }
    }
}

/// `berth ls`, as `docker compose ls`: the projects on this root.
struct ComposeLs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List running compose projects.")

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("a"), .customLong("all")], help: "Show all stopped Compose projects.")
    var all = false
    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Only display project names.")
    var quiet = false
    @Option(name: .customLong("format"), help: "Format the output: table or json.")
    var format: String = "table"

    struct Row: Encodable {
        var name, status, configFiles: String
        enum CodingKeys: String, CodingKey {
            case name = "Name"
            case status = "Status"
            case configFiles = "ConfigFiles"
        }
    }

    func run() throws {
        let root = global.stateRoot
        let rows = ProjectStore.projectNames(root: root).compactMap { name -> Row? in
            let store = ProjectStore(root: root, name: name)
            var counts: [String: Int] = [:]
            for container in store.containers() { counts[container.state().status.rawValue, default: 0] += 1 }
            guard all || counts["running"] != nil else { return nil }
            let status = counts.keys.sorted().map { "\($0)(\(counts[$0]!))" }.joined(separator: ", ")
            return Row(name: name, status: status, configFiles: store.load()?.configFiles.joined(separator: ",") ?? "")
        }
        if quiet {
            for row in rows { print(row.name) }
        } else if format == "json" {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(rows), as: UTF8.self))
        } else {
            print(
                HumanFormat.table(
                    [["NAME", "STATUS", "CONFIG FILES"]] + rows.map { [$0.name, $0.status, $0.configFiles] }),
                terminator: "")
        }
    }
}

/// The commands that act on the services' existing containers.
struct ComposeStart: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start services.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Argument var services: [String] = []

    func run() throws {
        let context = try global.composeContext(output, needsModel: false, services: services)
        try context.orchestrator.start(services: services)
    }
}

struct ComposeStop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop services.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Option(name: [.customShort("t"), .customLong("timeout")], help: "Seconds to wait before killing.")
    var timeout: Int?
    @Argument var services: [String] = []

    func run() throws {
        let context = try global.composeContext(output, needsModel: false, services: services)
        try context.orchestrator.stop(services: services, timeout: timeout)
    }
}

struct ComposeRestart: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Restart service containers.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Option(name: [.customShort("t"), .customLong("timeout")], help: "Seconds to wait before killing.")
    var timeout: Int?
    @Argument var services: [String] = []

    func run() throws {
        let context = try global.composeContext(output, needsModel: false, services: services)
        try context.orchestrator.restart(services: services, timeout: timeout)
    }
}

struct ComposeKill: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Force stop service containers.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Option(name: [.customShort("s"), .customLong("signal")], help: "SIGNAL to send to the container.")
    var signal: String = "SIGKILL"
    @Argument var services: [String] = []

    func run() throws {
        let context = try global.composeContext(output, needsModel: false, services: services)
        guard let number = Signals.number(signal) else {
            throw ContainerCommandError(description: "unknown signal \"\(signal)\"")
        }
        try context.orchestrator.kill(services: services, signal: number)
    }
}

struct ComposeRm: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Removes stopped service containers.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Flag(name: .customLong("force"), help: "Don't ask to confirm removal (-f).")
    var force = false
    @Flag(name: [.customShort("s"), .customLong("stop")], help: "Stop the containers, if required, before removing.")
    var stop = false
    @Flag(
        name: [.customShort("v"), .customLong("volumes")], help: "Remove any anonymous volumes attached to containers.")
    var volumes = false
    @Argument var services: [String] = []

    func run() throws {
        let context = try global.composeContext(output, needsModel: false, services: services)
        try context.orchestrator.removeStopped(services: services, stopFirst: stop, timeout: nil, volumes: volumes)
    }
}

struct ComposeCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Creates containers for a service.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Flag(name: .customLong("force-recreate"), help: "Recreate containers even if their configuration hasn't changed.")
    var forceRecreate = false
    @Flag(name: .customLong("no-recreate"), help: "If containers already exist, don't recreate them.")
    var noRecreate = false
    @Option(name: .customLong("pull"), help: "Pull image before running (always|missing|never).")
    var pull: String?
    @Flag(name: .customLong("remove-orphans"), help: "Remove containers for services not defined in the Compose file.")
    var removeOrphans = false
    @Argument var services: [String] = []

    func run() throws {
        let context = try global.composeContext(output, needsModel: true, services: services)
        guard let project = context.project else { return }
        var options = UpOptions()
        options.services = services
        options.noStart = true
        options.forceRecreate = forceRecreate
        options.noRecreate = noRecreate
        options.pull = pull
        options.removeOrphans = removeOrphans
        try context.orchestrator.up(project, options)
    }
}

struct ComposePull: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pull", abstract: "Pull service images.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Argument var services: [String] = []

    func run() throws {
        let context = try global.composeContext(output, needsModel: true, services: services)
        guard let project = context.project else { return }
        try context.orchestrator.pull(project, services: services)
    }
}

/// `berth wait SERVICE...`: blocks until the services' containers stop; the first one's exit
/// code is the status.
struct ComposeWait: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait", abstract: "Block until containers of all (or specified) services stop.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Argument var services: [String] = []

    func run() throws {
        let context = try global.composeContext(output, needsModel: false, services: services)
        var first: Int32?
        for container in context.orchestrator.containers(of: services) {
            let code = try container.waitForExit()
            first = first ?? code
        }
        if let first, first != 0 { throw CommandFailure(status: first) }
    }
}

/// `berth port SERVICE PRIVATE_PORT`: the public side of a published port.
struct ComposePort: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "port", abstract: "Print the public port for a port binding.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Option(name: .customLong("index"), help: "Index of the container if service has multiple replicas.")
    var index: Int = 1
    @Option(name: .customLong("protocol"), help: "tcp or udp.")
    var proto: String = "tcp"
    @Argument var service: String
    @Argument var privatePort: UInt16

    func run() throws {
        let context = try global.composeContext(output, needsModel: false, services: [service])
        guard let container = context.orchestrator.containers(of: [service]).first(where: { $0.number == index }),
            container.isRunning
        else { throw ContainerCommandError(description: "service \"\(service)\" is not running") }
        guard
            let mapping = ContainerPort.published(container).first(where: {
                $0.containerPort == privatePort && $0.proto == proto
            })
        else {
            throw ContainerCommandError(description: "no port \(privatePort)/\(proto) for container \(container.name)")
        }
        print(ContainerPort.hostSide(mapping))
    }
}

/// `berth exec SERVICE CMD...`: a command in the service's running container (the first, or
/// --index), with a terminal unless -T, as docker compose.
struct ComposeExec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec", abstract: "Execute a command in a running container.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Flag(name: .customShort("T"), help: "Disable pseudo-TTY allocation.")
    var noTTY = false
    @Flag(name: [.customShort("d"), .customLong("detach")], help: "Run command in the background.")
    var detach = false
    @Option(name: [.customShort("e"), .customLong("env")], help: "Set environment variables.")
    var env: [String] = []
    @Option(name: [.customShort("u"), .customLong("user")], help: "Run the command as this user.")
    var user: String?
    @Option(name: [.customShort("w"), .customLong("workdir")], help: "Path to workdir directory for this command.")
    var workdir: String?
    @Option(name: .customLong("index"), help: "Index of the container if service has multiple replicas.")
    var index: Int = 1
    @Argument var service: String
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() throws {
        guard !command.isEmpty else { throw ContainerCommandError(description: "exec needs a command to run") }
        let context = try global.composeContext(output, needsModel: false, services: [service])
        let replicas = context.orchestrator.containers(of: [service])
        guard let container = replicas.first(where: { $0.number == index }) else {
            throw ContainerCommandError(
                description: replicas.isEmpty
                    ? "service \"\(service)\" is not running" : "service \"\(service)\" has no container \(index)")
        }
        guard container.isRunning else {
            throw ContainerCommandError(description: "service \"\(service)\" is not running")
        }
        let tty = !noTTY && !detach && isatty(STDIN_FILENO) != 0
        let process: ContainerProcess
        do {
            process = try container.exec(
                ExecSpec(
                    argv: command, env: try env.flatMap { try ContainerOptions.envEntry($0) }, user: user,
                    workingDir: workdir, tty: tty, interactive: !detach,
                    terminalSize: tty ? TerminalSize.of(STDOUT_FILENO) : nil))
        } catch let error as Container.Error {
            // Docker's 126/127 for a command that cannot run, as `container exec`.
            StandardStreams.writeError("berth: \(error)\n")
            throw CommandFailure(status: error.startFailureStatus)
        }
        if detach { return }
        let code = Foreground.attach(process, interactive: true, tty: tty)
        if code != 0 { throw CommandFailure(status: code) }
    }
}

/// `berth run SERVICE [CMD...]`: a one-off container of the service, its dependencies started
/// first; attached (its exit code is berth's) or -d.
struct ComposeRun: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run a one-off command on a service.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Flag(
        name: [.customShort("d"), .customLong("detach")], help: "Run container in background and print container ID.")
    var detach = false
    @Flag(name: .customLong("rm"), help: "Automatically remove the container when it exits.")
    var remove = false
    @Option(name: [.customShort("e"), .customLong("env")], help: "Set environment variables.")
    var env: [String] = []
    @Flag(name: .customLong("no-deps"), help: "Don't start linked services.")
    var noDeps = false
    @Option(name: .customLong("publish"), help: "Publish a container's port(s) to the host (-p).")
    var publish: [String] = []
    @Flag(
        name: .customLong("service-ports"), help: "Run command with the service's ports enabled and mapped to the host."
    )
    var servicePorts = false
    @Option(name: .customLong("entrypoint"), help: "Override the entrypoint of the image.")
    var entrypoint: String?
    @Flag(name: .customShort("T"), help: "Disable pseudo-TTY allocation.")
    var noTTY = false
    @Flag(name: [.customShort("i"), .customLong("interactive")], help: "Keep STDIN open even if not attached.")
    var interactive = false
    @Option(name: [.customShort("v"), .customLong("volume")], help: "Bind mount a volume (SRC:DST[:ro]).")
    var volumes: [String] = []
    @Option(name: .customLong("name"), help: "Assign a name to the container.")
    var name: String?
    @Option(name: [.customShort("u"), .customLong("user")], help: "Run as specified username or uid.")
    var user: String?
    @Option(name: [.customShort("w"), .customLong("workdir")], help: "Working directory inside the container.")
    var workdir: String?
    @Argument var service: String
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() throws {
        let context = try global.composeContext(output, needsModel: true, services: [service])
        guard let project = context.project else { return }
        var options = RunOptions()
        options.command = command.isEmpty ? nil : command
        options.entrypoint = entrypoint.map { $0.isEmpty ? [] : [$0] }
        options.env = try env.flatMap { try ContainerOptions.envEntry($0) }
        options.publish = publish
        options.servicePorts = servicePorts
        options.name = name
        options.user = user
        options.workingDir = workdir
        let tty = !noTTY && !detach && isatty(STDIN_FILENO) != 0 && isatty(STDOUT_FILENO) != 0
        options.tty = tty
        options.interactive = !detach && (interactive || tty)
        options.autoRemove = remove
        options.noDeps = noDeps
        for volume in volumes {
            let parts = volume.split(separator: ":").map(String.init)
            guard parts.count == 2 || parts.count == 3, parts[1].hasPrefix("/") else {
                throw ContainerCommandError(description: "invalid volume \"\(volume)\": use SRC:DST[:ro]")
            }
            options.mounts.append(
                MountSpec(
                    kind: parts[0].hasPrefix("/") ? .bind : .volume, source: parts[0], target: parts[1],
                    readOnly: parts.count == 3 && parts[2] == "ro", createHostPath: true))
        }
        let root = context.root
        let container = try context.orchestrator.prepareRun(project, service: service, options)
        let networking = ContainerNetworking(root: root)
        if detach {
            try networking.startDetached(container, berth: ContainerRun.selfPath())
            print(container.id)
            return
        }
        let plan = try networking.plan(container.record.spec)
        let process: ContainerProcess
        do {
            process = try container.start(
                stdio: tty ? .tty(TerminalSize.of(STDOUT_FILENO)) : .pipes(stdin: options.interactive),
                exitCommand: ContainerNetworking.exitCommand(
                    container, root: root, berth: ContainerRun.selfPath(), plan: plan),
                beforeResume: plan.isEmpty
                    ? nil : { pid, netns in try networking.attach(container, pid: pid, namespace: netns, to: plan) })
        } catch {
            try? networking.remove(container, force: true)
            throw error
        }
        let code = Foreground.attach(process, interactive: options.interactive, tty: tty, removing: remove)
        if remove { try withExtendedLifetime(process) { try networking.remove(container, force: true) } }
        if code != 0 { throw CommandFailure(status: code) }
    }
}
