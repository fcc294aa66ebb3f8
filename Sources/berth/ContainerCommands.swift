import ArgumentParser
import Compose
import FoundationEssentials
import Images
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `berth container ...`, named and flagged like `docker container ...`.
struct ContainerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "container", abstract: "Manage containers.",
        subcommands: [
            ContainerRun.self, ContainerCreate.self, ContainerStart.self, ContainerRestart.self,
            ContainerList.self, ContainerLogs.self, ContainerExec.self, ContainerStop.self,
            ContainerKill.self, ContainerRemove.self, ContainerInspect.self, ContainerWait.self,
            ContainerRename.self, ContainerPort.self, ContainerReleaseNetwork.self,
        ])
}

/// Docker's rule for commands over several arguments: act on every one, write what each one
/// returns (its name, its exit code, ...) or its error at once, and exit 1 at the end if any
/// failed. Written unbuffered, so a caller reading the output sees each as it is done.
func forEachArgument(_ arguments: [String], _ body: (String) throws -> String) throws {
    var failed = false
    for argument in arguments {
        do {
            StandardStreams.write(try body(argument), to: STDOUT_FILENO)
        } catch {
            StandardStreams.writeError("berth: \(error)\n")
            failed = true
        }
    }
    if failed { throw CommandFailure(status: 1) }
}

/// `forEachArgument` for commands that print each container's name as given.
func forEachContainer(_ names: [String], _ body: (String) throws -> Void) throws {
    try forEachArgument(names) { name in
        try body(name)
        return name + "\n"
    }
}

/// Errors of the container commands that are about the command line, not the runtime.
struct ContainerCommandError: Error, CustomStringConvertible {
    var description: String
}

/// "64m", "1g", "512k", "1024" -> bytes: Docker's RAMInBytes, the same parser compose sizes use.
func parseBytes(_ text: String, what: String) throws -> Int64 {
    if let value = ByteSize.parse(text.trimmingWhitespace()), value >= -1 { return value }
    throw ContainerCommandError(description: "invalid size \"\(text)\" for \(what) (e.g. 64m, 1g)")
}
