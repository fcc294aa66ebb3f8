import ArgumentParser
import Compose
import ContainerNetworking
import FoundationEssentials
import Images
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

struct ContainerStop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop one or more running containers.")

    @OptionGroup var global: RootOptions
    @Option(name: [.customShort("t"), .customLong("time")], help: "Seconds to wait before killing the container.")
    var time: Int?
    @Argument var containers: [String]

    func run() throws {
        try forEachContainer(containers) { name in
            try Container.lookup(name, root: global.stateRoot).stop(timeout: time)
        }
    }
}

struct ContainerKill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill", abstract: "Kill one or more running containers.")

    @OptionGroup var global: RootOptions
    @Option(name: [.customShort("s"), .customLong("signal")], help: "Signal to send to the container.")
    var signal: String = "KILL"
    @Argument var containers: [String]

    func run() throws {
        guard let number = Signals.number(signal) else {
            throw ContainerCommandError(description: "unknown signal \"\(signal)\"")
        }
        try forEachContainer(containers) { name in
            try Container.lookup(name, root: global.stateRoot).kill(signal: number)
        }
    }
}

struct ContainerRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove one or more containers.", aliases: ["remove"])

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("f"), .customLong("force")], help: "Force the removal of a running container.")
    var force = false
    @Argument var containers: [String]

    func run() throws {
        let root = global.stateRoot
        let networking = ContainerNetworking(root: root)
        try forEachContainer(containers) { name in
            let container: Container
            do { container = try Container.lookup(name, root: root) } catch let notFound as Container.Error {
                // Not a container, but perhaps what a killed berth process left while making one
                // (a name and a directory without a record): nothing of it runs, so `rm` with or
                // without -f reclaims it.
                guard notFound.stage == .lookup, try Container.removeLeftover(name, root: root) else { throw notFound }
                return
            }
            try networking.remove(container, force: force)
        }
    }
}
