import ArgumentParser
import Compose
import FoundationEssentials
import Images
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

struct ContainerExec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec", abstract: "Execute a command in a running container.")

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("t"), .customLong("tty")], help: "Allocate a pseudo-TTY.")
    var tty = false
    @Flag(name: [.customShort("i"), .customLong("interactive")], help: "Keep STDIN open.")
    var interactive = false
    @Option(name: [.customShort("u"), .customLong("user")], help: "Username or UID (name|uid[:group|gid]).")
    var user: String?
    @Option(name: [.customShort("e"), .customLong("env")], help: "Set environment variables.")
    var env: [String] = []
    @Option(name: [.customShort("w"), .customLong("workdir")], help: "Working directory inside the container.")
    var workdir: String?
    @Argument var container: String
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() throws {
        guard !command.isEmpty else { throw ContainerCommandError(description: "exec needs a command to run") }
        let c = try Container.lookup(container, root: global.stateRoot)
        let environment = try env.flatMap { try ContainerOptions.envEntry($0) }
        let process = try c.exec(
            ExecSpec(
                argv: command, env: environment, user: user,
                workingDir: workdir, tty: tty, interactive: interactive,
                terminalSize: tty ? TerminalSize.of(STDOUT_FILENO) : nil))
        let code = Foreground.attach(process, interactive: interactive, tty: tty)
        if code != 0 { throw CommandFailure(status: code) }
    }
}
