import ArgumentParser
import Build
import Compose
import FoundationEssentials
import Orchestrator
import Runtime
import Support
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What a compose command works on: the project's model (when the files load), its name, and its
/// orchestrator on this root.
struct ComposeContext {
    let root: String
    /// The loaded model; nil when the command works from disk (ps, logs, down) and the files do
    /// not load any more.
    let project: Project?
    let name: String
    let orchestrator: Orchestrator
    let renderer: ProgressRenderer
}

/// docker compose's output options, global in its CLI.
struct ComposeOutputOptions: ParsableArguments {
    @Option(name: .customLong("progress"), help: "Progress output: auto, tty, plain, json or quiet.")
    var progress: String = "auto"
    @Option(name: .customLong("ansi"), help: "Control characters: never, always or auto.")
    var ansi: String = "auto"

    func validate() throws {
        guard ["auto", "tty", "plain", "json", "quiet"].contains(progress) else {
            throw ValidationError("invalid progress mode \"\(progress)\": use auto, tty, plain, json or quiet")
        }
        guard ["auto", "never", "always"].contains(ansi) else {
            throw ValidationError("invalid ansi mode \"\(ansi)\": use never, always or auto")
        }
    }

    /// Colours and terminal drawing on stderr's terminal, unless told otherwise.
    var useANSI: Bool { ansi == "always" || (ansi == "auto" && isatty(STDERR_FILENO) != 0) }
}

extension GlobalOptions {
    /// The compose model, every service of it (profiles applied).
    func loadProject() throws -> Project {
        let options = ProjectOptions(
            files: files, projectName: projectName, profiles: profiles, envFiles: envFiles,
            projectDirectory: projectDirectory, warn: { StandardStreams.writeError("WARN[0000] \($0)\n") })
        return try ComposeLoader.load(options)
    }

    /// The context of a compose command. `needsModel`: up, create, run and pull need the files;
    /// the others work from disk when the files no longer load (a project named by -p, or the
    /// one recorded for this directory). `services`: the names the command was given, each of which
    /// must be the project's (docker compose's "no such service").
    func composeContext(_ output: ComposeOutputOptions, needsModel: Bool, services: [String] = []) throws
        -> ComposeContext
    {
        let root = stateRoot
        var project: Project?
        var name: String
        do {
            let loaded = try loadProject()
            project = loaded
            name = loaded.name
        } catch {
            if needsModel { throw error }
            if let given = projectName ?? ProcessInfo.processInfo.environment["COMPOSE_PROJECT_NAME"] {
                // The loader's rule: a name it would not take names no folder here either.
                guard !given.isEmpty, ComposeLoader.normalizeProjectName(given) == given else {
                    throw ContainerCommandError(
                        description:
                            "invalid project name \"\(given)\": only lowercase letters, digits, dashes and underscores, starting with a letter or digit"
                    )
                }
                name = given
            } else if let recorded = recordedProject(root: root) {
                StandardStreams.writeError(
                    "WARN[0000] \(error); using project \(recorded) as recorded for this directory\n")
                name = recorded
            } else {
                throw error
            }
        }
        let renderer = ProgressRenderer(output)
        let orchestrator = Orchestrator(
            root: root, projectName: name, berth: ContainerRun.selfPath(), progress: renderer.sink,
            warn: { StandardStreams.writeError("WARN[0000] \($0)\n") },
            pull: { image in try pullForContainer(image, root: root) })
        // A build's steps as `berth build --progress plain` prints them; on a terminal the block's
        // "Building" line stands for them (two blocks redrawn in place would overwrite each other).
        if renderer.mode == .plain { orchestrator.buildProgress = BuildView(mode: .plain, colour: false).sink }
        let context = ComposeContext(
            root: root, project: project, name: name, orchestrator: orchestrator, renderer: renderer)
        try checkServices(services, context)
        return context
    }

    /// The project whose recorded working directory is this one (or --project-directory).
    private func recordedProject(root: String) -> String? {
        let directory = projectDirectory ?? FileManager.default.currentDirectoryPath
        let matches = ProjectStore.projectNames(root: root).filter { name in
            ProjectStore(root: root, name: name).load()?.workingDir == directory
        }
        return matches.count == 1 ? matches[0] : nil
    }
}

/// docker compose's progress lines, on stderr: on a terminal, a block of live lines redrawn in
/// place at each step (`[+] Running 2/3`, then ` ✔ Container x  Started  0.3s` for what is done
/// and ` ⠿ Container y  Starting  0.1s` for what goes on); otherwise plain ` Container x  Started`
/// lines, or JSON, or nothing.
final class ProgressRenderer: Sendable {
    enum Mode { case tty, plain, json, quiet }
    let mode: Mode
    let colour: Bool

    /// A resource's line in the terminal block.
    struct Line {
        var id: String
        var status: String
        var state: ProgressEvent.State
        var detail: String?
        var started: Int64
        var ended: Int64?
    }
    private struct Block {
        var lines: [Line] = []
        /// The terminal lines drawn last, which the next drawing replaces.
        var screen = TerminalBlock()
    }
    private let block = Mutex(Block())

    init(_ options: ComposeOutputOptions) {
        switch options.progress {
        case "tty": mode = .tty
        case "plain": mode = .plain
        case "json": mode = .json
        case "quiet": mode = .quiet
        // Drawing in place needs the terminal's control sequences.
        default: mode = isatty(STDERR_FILENO) != 0 && options.ansi != "never" ? .tty : .plain
        }
        colour = options.useANSI
    }

    var sink: ProgressSink { { [self] event in render(event) } }

    func render(_ event: ProgressEvent) {
        let id = event.kind.rawValue + " " + event.name
        switch mode {
        case .quiet:
            return
        case .json:
            StandardStreams.writeError(jsonLine(["id": id, "status": event.status, "text": event.detail ?? ""]))
        case .plain:
            StandardStreams.writeError(" \(id)  \(event.status)" + (event.detail.map { " " + $0 } ?? "") + "\n")
        case .tty:
            let now = DaemonControl.now()
            let text = block.withLock { block -> String in
                if let index = block.lines.firstIndex(where: { $0.id == id }) {
                    if block.lines[index].ended != nil && event.state == .working { block.lines[index].started = now }
                    block.lines[index].status = event.status
                    block.lines[index].state = event.state
                    block.lines[index].detail = event.detail
                    block.lines[index].ended = event.state == .working ? nil : now
                } else {
                    block.lines.append(
                        Line(
                            id: id, status: event.status, state: event.state, detail: event.detail, started: now,
                            ended: event.state == .working ? nil : now))
                }
                return block.screen.redraw(draw(block.lines, now: now))
            }
            StandardStreams.writeError(text)
        }
    }

    /// The block's lines: the header, then a line per resource (its error under it).
    func draw(_ lines: [Line], now: Int64) -> [String] {
        let done = lines.filter { $0.state != .working }.count
        let width = lines.map(\.id.count).max() ?? 0
        var out = ["[+] Running \(done)/\(lines.count)"]
        for line in lines {
            let mark: String
            switch line.state {
            case .done: mark = paint("✔", 32)
            case .failed: mark = paint("✘", 31)
            case .working: mark = paint("⠿", 34)
            }
            let seconds = Double((line.ended ?? now) - line.started) / 1e9
            let elapsed = String(Int(seconds * 10) / 10) + "." + String(Int(seconds * 10) % 10) + "s"
            let padded = line.id + String(repeating: " ", count: width - line.id.count)
            out.append(" \(mark) \(padded)  \(line.status)  \(paint(elapsed, 34))")
            if let detail = line.detail, line.state == .failed { out.append("   " + detail) }
        }
        return out
    }

    func paint(_ text: String, _ code: Int) -> String { TerminalBlock.paint(text, code, colour: colour) }
}

/// One JSON object on a line, keys sorted (docker compose's `--format json` and `--progress json`).
func jsonLine<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return ((try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}") + "\n"
}

/// docker compose's answer for a service the model does not have.
private func checkServices(_ names: [String], _ context: ComposeContext) throws {
    let known: Set<String>
    if let project = context.project {
        known = Set(project.serviceNames + project.disabledServices.map(\.name))
    } else {
        known = Set((context.orchestrator.store.load()?.services.map(\.name) ?? []))
            .union(context.orchestrator.containers(oneoff: true).map(\.service))
    }
    for name in names where !known.contains(name) {
        throw ContainerCommandError(description: "no such service: \(name)")
    }
}
