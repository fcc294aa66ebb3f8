import ArgumentParser
import Foundation

/// The `berth` command: compose commands at the top level, single objects under nouns,
/// named and flagged like `docker compose` and `docker`.
@main
struct Berth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth",
        abstract: "A daemonless compose tool with its own container runtime.",
        subcommands: [
            ConfigCommand.self,
            VersionCommand.self,
            ContainerCommand.self,
            ImageCommand.self,
        ]
    )

    /// Errors print as one line starting `berth:` and exit with status 1, never a stack trace.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            if let code = (error as? CommandFailure)?.status {
                Foundation.exit(code)
            }
            if Berth.isArgumentParserError(error) {
                Berth.exit(withError: error)
            }
            FileHandle.standardError.write(Data("berth: \(error)\n".utf8))
            Foundation.exit(1)
        }
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

/// Options every command accepts, as `docker compose` spells them.
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

    @Option(name: .customLong("root"), help: "State directory (default: $BERTH_ROOT or /var/lib/berth).")
    var root: String?

    /// The state root: --root, then BERTH_ROOT, then /var/lib/berth.
    var stateRoot: String {
        root ?? ProcessInfo.processInfo.environment["BERTH_ROOT"] ?? "/var/lib/berth"
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
