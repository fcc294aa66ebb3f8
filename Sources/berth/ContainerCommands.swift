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
        subcommands: [ContainerRun.self, ContainerCreate.self, ContainerStart.self, ContainerRestart.self,
                      ContainerList.self, ContainerLogs.self, ContainerExec.self, ContainerStop.self,
                      ContainerKill.self, ContainerRemove.self, ContainerInspect.self, ContainerWait.self,
                      ContainerRename.self])
}

/// Docker's rule for commands over several containers: act on every one, print each name that
/// worked and each error on its own line, and exit 1 at the end if any failed.
func forEachContainer(_ names: [String], _ body: (String) throws -> Void) throws {
    var failed = false
    for name in names {
        do {
            try body(name)
            print(name)
        } catch {
            StandardStreams.writeError("berth: \(error)\n")
            failed = true
        }
    }
    if failed { throw CommandFailure(status: 1) }
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
