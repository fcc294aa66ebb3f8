import ArgumentParser
import FoundationEssentials
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// The `berth` command: compose commands at the top level, single objects under nouns,
/// named and flagged like `docker compose` and `docker`.
@main
struct Berth: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth",
        abstract: "A daemonless compose tool with its own container runtime.",
        subcommands: [
            ConfigCommand.self,
            ComposeUp.self,
            ComposeDown.self,
            ComposePs.self,
            ComposeLogsCommand.self,
            ComposeExec.self,
            ComposeRun.self,
            ComposeCreate.self,
            ComposeStart.self,
            ComposeStop.self,
            ComposeRestart.self,
            ComposeKill.self,
            ComposeRm.self,
            ComposePull.self,
            ComposeLs.self,
            ComposeWait.self,
            ComposePort.self,
            ComposeSupervise.self,
            BuildCommand.self,
            VersionCommand.self,
            ContainerCommand.self,
            ImageCommand.self,
            BuilderCommand.self,
            NetworkCommand.self,
            VolumeCommand.self,
            SystemCommand.self,
            Login.self,
            Logout.self,
            Search.self,
            // Docker's top-level shortcuts for image commands (hidden from help, as Docker's).
            LoadShortcut.self,
            SaveShortcut.self,
            RmiShortcut.self,
            HistoryShortcut.self,
        ]
    )

    /// `berth container run ...`, the command whose start-up time is a budget, is parsed on its
    /// own: the root's parse first checks every argument for a completion-script request, about
    /// a third of the parse (bench/run). Anything but a clean parse (help, a bad flag) goes the
    /// whole way, so output and errors are the root's.
    static func parse(_ arguments: [String]) throws -> ParsableCommand {
        if arguments.count >= 2, arguments[0] == "container", arguments[1] == "run" {
            // Most runs use the default network: its namespace is made on the second core while
            // the arguments are parsed; `run` takes it, and create() uses it or closes it.
            ContainerRun.earlyNetworkNamespace = BackgroundWork { NetworkNamespace.make() }
            if let run = try? ContainerRun.parseAsRoot(Array(arguments.dropFirst(2))) as? ContainerRun {
                return run
            }
        }
        return try parseAsRoot(arguments)
    }

    /// Errors print as one line starting `berth:` and exit with status 1, never a stack trace.
    /// Synchronous on purpose: no command needs Swift concurrency, and not starting its runtime
    /// keeps every CLI call's start-up short.
    static func main() {
        // `berth container run ... | head -1`: a vanished reader must be an EPIPE that berth
        // handles (it still reaps, logs and removes), not a signal that kills it mid-way.
        // Containers start with default signal handling (the C child resets every signal).
        signal(SIGPIPE, SIG_IGN)
        // Started with 0, 1 or 2 closed (`<&-`, some service managers), the next pipe would get
        // that number, and what expects a standard stream (berth-shim's /dev/null on 0-2) would
        // take it over.
        for fd in Int32(0)...2 where fcntl(fd, F_GETFD) < 0 { _ = open("/dev/null", O_RDWR) }
        do {
            var command = try parse(
                GlobalOptions.composeShortFlags(GlobalOptions.hoisted(Array(CommandLine.arguments.dropFirst()))))
            try command.run()
        } catch let exit as ExitCode {
            Glibc.exit(exit.rawValue)
        } catch {
            if let code = (error as? CommandFailure)?.status {
                Glibc.exit(code)
            }
            if Berth.isArgumentParserError(error) {
                // `docker run` and `docker create` exit 125 for a flag they cannot parse, as for
                // any other problem before the container runs; help and the rest keep theirs.
                if Berth.exitCode(for: error) == .validationFailure, Berth.takesDockerStatuses(CommandLine.arguments) {
                    StandardStreams.writeError(Berth.fullMessage(for: error) + "\n")
                    Glibc.exit(125)
                }
                Berth.exit(withError: error)
            }
            StandardStreams.writeError("berth: \(error)\n")
            Glibc.exit(1)
        }
    }

    /// `container run` or `container create`, the global options before the noun or not.
    private static func takesDockerStatuses(_ arguments: [String]) -> Bool {
        let words = GlobalOptions.hoisted(Array(arguments.dropFirst()))
        return words.count >= 2 && words[0] == "container" && (words[1] == "run" || words[1] == "create")
    }

    private static func isArgumentParserError(_ error: Error) -> Bool {
        String(reflecting: type(of: error)).hasPrefix("ArgumentParser.")
    }
}

/// A command that already reported its problem and wants a specific exit status
/// (e.g. `container run` passing on the container's exit code).
struct CommandFailure: Error {
    var status: Int32
}

/// `--root`: where all state lives. Every command that touches state takes it.
struct RootOptions: ParsableArguments {
    @Option(name: .customLong("root"), help: "State directory (default: $BERTH_ROOT or /var/lib/berth).")
    var root: String?

    /// The state root: --root, then BERTH_ROOT, then /var/lib/berth.
    var stateRoot: String {
        root ?? ProcessInfo.processInfo.environment["BERTH_ROOT"] ?? "/var/lib/berth"
    }
}

/// Options of the compose commands, as `docker compose` spells them. The single-object commands
/// (`container`, `image`) take only `RootOptions`, since their own flags reuse -f (`logs -f`,
/// `rm -f`) as docker's do.
struct GlobalOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .customLong("file")], help: "Compose configuration files.")
    var files: [String] = []

    @Option(name: [.customShort("p"), .customLong("project-name")], help: "Project name.")
    var projectName: String?

    @Option(name: .customLong("profile"), help: "Profiles to enable.")
    var profiles: [String] = []

    @Option(name: .customLong("env-file"), help: "Alternate environment files.")
    var envFiles: [String] = []

    @Option(name: .customLong("project-directory"), help: "Alternate working directory.")
    var projectDirectory: String?

    @OptionGroup var rootOptions: RootOptions

    var stateRoot: String { rootOptions.stateRoot }

    /// Options that take a value, as they may stand before the command name.
    private static let valued = [
        "-f", "--file", "-p", "--project-name", "--profile", "--env-file", "--project-directory", "--root",
        "--progress", "--ansi",
    ]

    private static let longForms = ["-f": "--file", "-p": "--project-name"]

    /// `docker compose logs -f` follows, `rm -f` forces and `run -p` publishes, while -f and -p are also every
    /// compose command's file and project options: after those commands' names (and, for `run`,
    /// before the service, whose command is its own), they are spelled long as the commands'
    /// own. Globals given before the command are spelled long by `hoisted` by then.
    static func composeShortFlags(_ arguments: [String]) -> [String] {
        switch arguments.first {
        case "logs":
            return arguments.map { $0 == "-f" ? "--follow" : $0 }
        case "rm":
            return arguments.map { $0 == "-f" ? "--force" : $0 }
        case "build":
            // `berth build -f Dockerfile.dev .` as `docker build` takes it; the compose file
            // given before the command is spelled --file by then.
            return arguments.map { $0 == "-f" ? "--dockerfile" : $0 }
        case "run":
            var result = arguments
            let valued = Set(
                [
                    "-e", "--env", "--publish", "--entrypoint", "-v", "--volume", "--name", "-u", "--user", "-w",
                    "--workdir",
                ]
                    + Self.valued)
            var index = 1
            while index < result.count, result[index].hasPrefix("-"), result[index] != "--" {
                if result[index] == "-p" { result[index] = "--publish" }
                index += valued.contains(result[index]) || result[index] == "--publish" ? 2 : 1
            }
            return result
        default:
            return arguments
        }
    }

    /// `berth -f x.yaml -p demo config` is how people type it (as with `docker compose`), but
    /// ArgumentParser reads options on the command that declares them. So global options written
    /// before the command move behind the innermost command name, where `@OptionGroup` finds them.
    static func hoisted(_ arguments: [String]) -> [String] {
        // The common case, a command name first, costs nothing.
        guard arguments.first?.hasPrefix("-") == true else { return arguments }
        var globals: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if valued.contains(argument), index + 1 < arguments.count {
                // Spelled long: after the command, `logs -f` and `run -p` are the command's own.
                globals += [longForms[argument] ?? argument, arguments[index + 1]]
                index += 2
            } else if let name = argument.split(separator: "=", maxSplits: 1).first,
                argument.contains("="), valued.contains(String(name)), argument.hasPrefix("--")
            {
                globals.append(argument)
                index += 1
            } else {
                break
            }
        }
        guard !globals.isEmpty else { return arguments }
        var rest = Array(arguments[index...])
        // Walk down the command tree as far as the names go.
        var command: ParsableCommand.Type = Berth.self
        var depth = 0
        while depth < rest.count,
            let sub = command.configuration.subcommands.first(where: {
                $0._commandName == rest[depth] || $0.configuration.aliases.contains(rest[depth])
            })
        {
            command = sub
            depth += 1
        }
        rest.insert(contentsOf: globals, at: depth)
        return rest
    }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Show the berth version.")

    @Option(name: .customLong("format"), help: "pretty or json.")
    var format: String = "pretty"

    @Flag(name: .customLong("short"), help: "Print only the version number.")
    var short = false

    static let version = "0.1.0"

    func run() throws {
        if short {
            print(Self.version)
        } else if format == "json" {
            print("{\"version\":\"\(Self.version)\"}")
        } else {
            print("berth version \(Self.version)")
        }
    }
}
