import ArgumentParser
import Build
import Compose
import FoundationEssentials
import Images
import Orchestrator
import Runtime
import Support
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What `docker build` and `docker compose build` share: the build's inputs and its output.
struct BuildFlags: ParsableArguments {
    @Option(name: [.customShort("t"), .customLong("tag")], help: "Name and optionally a tag (name:tag).")
    var tags: [String] = []
    @Option(name: .customLong("build-arg"), help: "Set build-time variables (KEY=VALUE, or KEY from the environment).")
    var buildArgs: [String] = []
    @Option(name: .customLong("target"), help: "Set the target build stage to build.")
    var target: String?
    @Flag(name: .customLong("no-cache"), help: "Do not use cache when building the image.")
    var noCache = false
    @Flag(name: .customLong("pull"), help: "Always attempt to pull a newer version of the image.")
    var pull = false
    @Flag(
        name: [.customShort("q"), .customLong("quiet")],
        help: "Suppress the build output and print image ID on success.")
    var quiet = false
    @Option(name: .customLong("label"), help: "Set metadata for an image (KEY=VALUE).")
    var labels: [String] = []
    @Option(name: .customLong("iidfile"), help: "Write the image ID to the file.")
    var iidfile: String?
    @Option(name: .customLong("secret"), help: "Secret to expose to the build: id=ID,src=PATH.")
    var secrets: [String] = []
    @Option(name: .customLong("network"), help: "Networking mode for the RUN instructions: default, none or host.")
    var network: String = "default"

    @Option(name: .customLong("allow"), help: "Extra privileged entitlement: network.host (RUN --network=host).")
    var allow: [String] = []

    func validate() throws {
        for entitlement in allow where entitlement != "network.host" {
            throw ValidationError("entitlement \"\(entitlement)\" not supported: only network.host is")
        }
        guard ["default", "none", "host", "bridge"].contains(network) else {
            throw ValidationError("network mode \"\(network)\" not supported by buildkit: use default, none or host")
        }
    }

    /// The build's options, for `context` and the Dockerfile given.
    func options(context: String, dockerfile given: String?) throws -> BuildOptions {
        // docker build's -f is relative to the current directory; the context's is the fallback.
        var dockerfile = given
        if let given, !given.hasPrefix("/"), access(given, F_OK) == 0 {
            dockerfile = FileManager.default.currentDirectoryPath + "/" + given
        }
        var args: [String: String?] = [:]
        for a in buildArgs {
            if let eq = a.firstIndex(of: "=") {
                args[String(a[..<eq])] = String(a[a.index(after: eq)...])
            } else {
                args[a] = .some(nil)
            }
        }
        var labelValues: [String: String] = [:]
        for l in labels {
            let parts = l.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            labelValues[String(parts[0])] = parts.count == 2 ? String(parts[1]) : ""
        }
        var secretFiles: [String: String] = [:]
        var secretValues: [String: String] = [:]
        for s in secrets {
            var id: String?
            var src: String?
            var env: String?
            for field in s.split(separator: ",") {
                let kv = field.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { continue }
                switch kv[0] {
                case "id": id = kv[1]
                case "src", "source": src = kv[1]
                case "env": env = kv[1]
                default: break
                }
            }
            guard let id else { throw ValidationError("invalid secret \"\(s)\": id= is required") }
            if let src {
                secretFiles[id] = src
                continue
            }
            // Without src=, the variable's value is the secret (as docker's), never a path: read
            // as one, a token ended up in a "bind source path does not exist" message.
            let variable = env ?? id
            guard let value = getenv(variable) else {
                throw ValidationError("secret \(id): no src= given and no variable \(variable) in the environment")
            }
            secretValues[id] = String(cString: value)
        }
        for tag in tags { _ = try ImageReference(parsing: tag) }
        return BuildOptions(
            context: context, dockerfile: dockerfile, buildArgs: args, target: target, noCache: noCache, pull: pull,
            tags: tags, labels: labelValues, secrets: secretFiles, network: network == "bridge" ? "default" : network,
            sourceDateEpoch: getenv("SOURCE_DATE_EPOCH").flatMap { Int64(String(cString: $0)) },
            allowHostNetwork: allow.contains("network.host"), secretValues: secretValues)
    }

    /// Builds with progress on stderr (none with -q), prints what docker prints, and writes the
    /// ID file.
    func build(_ options: BuildOptions, root: String, output: ComposeOutputOptions) throws -> Image {
        let view = BuildView(mode: quiet ? .quiet : BuildView.mode(output), colour: output.useANSI)
        let builder = try Builder(root: root, progress: view.sink, pull: { try pullForContainer($0, root: root) })
        // Ctrl-C (or SIGTERM, SIGHUP) cancels: the running steps' containers are killed and the
        // build's temporary state removed before berth exits with 130.
        let signals = Foreground.SignalForwarding()
        let watcher = signals.descriptor.map { fd in
            BackgroundWork<Void> {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                while poll(&poller, 1, -1) >= 0 || errno == EINTR {
                    let received = signals.received()
                    if received.contains(where: { [SIGINT, SIGTERM, SIGHUP].contains($0) }) { builder.cancel() }
                    // A 0 is no signal: the build is over and the watch ends.
                    if received.contains(0) { return }
                }
            }
        }
        defer {
            var stop: UInt8 = 0
            _ = write(Foreground.signalPipeWriter, &stop, 1)
            _ = try? watcher?.wait()
            signals.stop()
        }
        let image: Image
        do {
            image = try builder.build(options)
        } catch {
            view.finish()
            if builder.isCancelled {
                StandardStreams.writeError("berth: build cancelled\n")
                throw CommandFailure(status: 130)
            }
            throw error
        }
        view.finish()
        if let iidfile {
            try Array(image.id.utf8).withUnsafeBytes { try Files.replace(iidfile, with: $0) }
        }
        return image
    }
}

/// `berth image build [OPTIONS] CONTEXT` (and `berth build CONTEXT`): `docker build`.
struct ImageBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build", abstract: "Build an image from a Dockerfile.")

    @OptionGroup var global: RootOptions
    @OptionGroup var flags: BuildFlags
    @OptionGroup var output: ComposeOutputOptions
    @Option(name: [.customShort("f"), .customLong("file")], help: "Name of the Dockerfile (default: PATH/Dockerfile).")
    var dockerfile: String?
    @Argument(help: "PATH: the build context.")
    var context: String

    func run() throws {
        try Self.build(context: context, dockerfile: dockerfile, flags: flags, output: output, root: global.stateRoot)
    }

    static func build(
        context: String, dockerfile: String?, flags: BuildFlags, output: ComposeOutputOptions, root: String
    )
        throws
    {
        guard context != "-" && !context.contains("://") else {
            throw ContainerCommandError(
                description: "a build context from standard input or a URL is not supported: give a directory")
        }
        let image = try flags.build(flags.options(context: context, dockerfile: dockerfile), root: root, output: output)
        if flags.quiet {
            print(image.id)
        }
    }
}

/// `berth build`: `docker compose build [SERVICE...]`, or `docker build CONTEXT` when its one
/// argument is a directory and no service has that name (`berth build .`).
struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build", abstract: "Build or rebuild services (or, given a directory, an image).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var flags: BuildFlags
    @OptionGroup var output: ComposeOutputOptions
    @Option(name: .customLong("dockerfile"), help: "Name of the Dockerfile, for an image build (-f after build).")
    var dockerfile: String?
    @Argument(help: "SERVICE... to build, or the build context PATH.")
    var arguments: [String] = []

    func run() throws {
        if arguments.count == 1, isContext(arguments[0]) {
            try ImageBuild.build(
                context: arguments[0], dockerfile: dockerfile, flags: flags, output: output, root: global.stateRoot)
            return
        }
        let context = try global.composeContext(output, needsModel: true, services: arguments)
        guard let project = context.project else { return }
        if flags.quiet { context.orchestrator.buildProgress = { _ in } }
        try context.orchestrator.build(project, services: arguments, options: flags.composeOverrides())
    }

    /// A directory path, which no service of the project here is named.
    private func isContext(_ argument: String) -> Bool {
        var info = stat()
        guard stat(argument, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return false }
        if argument.contains("/") || argument.hasPrefix(".") { return true }
        guard let project = try? global.loadProject() else { return true }
        return !project.services.contains { $0.name == argument }
    }
}

extension BuildFlags {
    /// What the command line adds to each service's `build:`.
    func composeOverrides() throws -> BuildOverrides {
        let given = try options(context: ".", dockerfile: nil)
        return BuildOverrides(
            buildArgs: given.buildArgs, noCache: noCache, pull: pull,
            sourceDateEpoch: given.sourceDateEpoch)
    }
}

/// A build's steps on stderr: BuildKit's two forms, a block redrawn in place on a terminal
/// (`[+] Building 2.1s (4/6)`, a line per step with its time or CACHED, the running step's
/// last output lines), numbered lines otherwise (`#3 [build 2/6] RUN make`, `#3 DONE 0.4s`).
final class BuildView: Sendable {
    enum Mode { case tty, plain, quiet }
    let mode: Mode
    let colour: Bool

    struct Step {
        var number: Int
        var name: String
        var state = "running"
        var seconds: Double?
        var output: [String] = []
    }
    private struct State {
        var steps: [Step] = []
        var screen = TerminalBlock()
        var started = DaemonControl.now()
    }
    private let state = Mutex(State())

    init(mode: Mode, colour: Bool) {
        self.mode = mode
        self.colour = colour
    }

    static func mode(_ output: ComposeOutputOptions) -> Mode {
        switch output.progress {
        case "tty": return .tty
        case "plain", "json": return .plain
        case "quiet": return .quiet
        default: return isatty(STDERR_FILENO) != 0 && output.ansi != "never" ? .tty : .plain
        }
    }

    var sink: BuildProgress { { [self] event in render(event) } }

    func render(_ event: BuildEvent) {
        switch mode {
        case .quiet: return
        case .plain: StandardStreams.writeError(plainLine(event))
        case .tty: redraw(event)
        }
    }

    private func plainLine(_ event: BuildEvent) -> String {
        switch event {
        case .started(let n, let name): return "#\(n) \(name)\n"
        case .cached(let n): return "#\(n) CACHED\n"
        case .output(let n, let line): return "#\(n) \(line)\n"
        case .finished(let n, let s): return "#\(n) DONE \(Self.seconds(s))\n"
        case .failed(let n, let s): return "#\(n) ERROR \(Self.seconds(s))\n"
        case .note(let text): return text + "\n"
        }
    }

    static func seconds(_ s: Double) -> String {
        let tenths = Int((s * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)s"
    }

    private func redraw(_ event: BuildEvent) {
        let text = state.withLock { state -> String in
            switch event {
            case .started(let n, let name): state.steps.append(Step(number: n, name: name))
            case .cached(let n): update(&state, n) { $0.state = "cached" }
            case .output(let n, let line):
                update(&state, n) {
                    $0.output.append(line)
                    if $0.output.count > 6 { $0.output.removeFirst() }
                }
            case .finished(let n, let s):
                update(&state, n) {
                    $0.state = "done"
                    $0.seconds = s
                }
            case .failed(let n, let s):
                update(&state, n) {
                    $0.state = "failed"
                    $0.seconds = s
                }
            case .note(let text):
                return state.screen.erase() + text + "\n"
            }
            return state.screen.redraw(draw(state))
        }
        StandardStreams.writeError(text)
    }

    private func update(_ state: inout State, _ number: Int, _ change: (inout Step) -> Void) {
        if let i = state.steps.firstIndex(where: { $0.number == number }) { change(&state.steps[i]) }
    }

    private func draw(_ state: State) -> [String] {
        let done = state.steps.filter { $0.state != "running" }.count
        let elapsed = Self.seconds(Double(DaemonControl.now() - state.started) / 1e9)
        var out = ["[+] Building \(elapsed) (\(done)/\(state.steps.count))"]
        for step in state.steps {
            switch step.state {
            case "cached": out.append(paint(" => CACHED \(step.name)", 34))
            case "done": out.append(paint(" => \(step.name)  \(Self.seconds(step.seconds ?? 0))", 34))
            case "failed": out.append(paint(" => ERROR \(step.name)  \(Self.seconds(step.seconds ?? 0))", 31))
            default:
                out.append(" => \(step.name)")
                out += step.output.map { " => => " + String($0.prefix(200)) }
            }
        }
        return out
    }

    /// Once the build ended: the block stays as last drawn (with the final time).
    func finish() {
        guard mode == .tty else { return }
        let text = state.withLock { state -> String in
            defer { state.screen.detach() }
            return state.screen.redraw(draw(state))
        }
        StandardStreams.writeError(text)
    }

    private func paint(_ text: String, _ code: Int) -> String { TerminalBlock.paint(text, code, colour: colour) }
}
