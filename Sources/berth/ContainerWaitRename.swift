import ArgumentParser
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `docker wait`: blocks until each container stops, in the order given, and prints each exit
/// code on its own line as it comes; a container that is not found is an error line, and the
/// status is 1 at the end if any was. The waiting is Runtime's (Container.waitForExit), so it
/// works on a container started by any berth process.
struct ContainerWait: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait", abstract: "Block until one or more containers stop, then print their exit codes.")

    @OptionGroup var global: RootOptions
    @Argument var containers: [String]

    func run() throws {
        let root = global.stateRoot
        try forEachArgument(containers) { name in "\(try lookupContainer(name, root: root).waitForExit())\n" }
    }
}

/// `docker rename`: running or not; the messages are Docker's (Container.rename(to:)).
struct ContainerRename: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rename", abstract: "Rename a container.")

    @OptionGroup var global: RootOptions
    @Argument var container: String
    @Argument var newName: String

    func run() throws {
        // docker/cli trims both names and refuses an empty one before asking the daemon.
        let old = container.trimmingWhitespace()
        let new = newName.trimmingWhitespace()
        guard !old.isEmpty, !new.isEmpty else {
            throw ContainerCommandError(description: "Neither old nor new names may be empty")
        }
        try lookupContainer(old, root: global.stateRoot).rename(to: new)
    }
}

/// Container.lookup with Docker's words for a reference that names no container ("No such
/// container: NAME"), for the commands whose messages follow Docker's to the letter.
func lookupContainer(_ reference: String, root: String) throws -> Container {
    do {
        return try Container.lookup(reference, root: root)
    } catch let error as Container.Error where error.stage == .lookup && error.errno == ENOENT {
        throw ContainerCommandError(description: "No such container: \(reference)")
    }
}
