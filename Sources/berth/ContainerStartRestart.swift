import ArgumentParser
import ContainerNetworking
import Runtime
import Support

/// `docker container start`: a created or exited container runs again, detached, under its shim;
/// what it wrote in its upper dir is still there and its log goes on.
struct ContainerStart: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Start one or more stopped containers.")

    @OptionGroup var global: RootOptions
    @Argument var containers: [String]

    func run() throws {
        let root = global.stateRoot
        try forEachContainer(containers) { name in
            try Self.start(try Container.lookup(name, root: root), root: root)
        }
    }

    /// Starts it again on its networks (the last run's endpoints are taken down first).
    static func start(_ container: Container, root: String) throws {
        try ContainerNetworking(root: root).startDetached(container, berth: ContainerRun.selfPath())
    }
}

/// What berth-shim runs when a container on bridge networks has exited: its endpoints, ports
/// and addresses released, unless it runs again by then (a start holds its lifecycle lock).
/// Not a Docker command; hidden.
struct ContainerReleaseNetwork: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release-network", abstract: "Release the network resources of an exited container.",
        shouldDisplay: false)

    @OptionGroup var global: RootOptions
    @Argument var container: String

    func run() throws {
        let root = global.stateRoot
        let target = try Container.lookup(container, root: root)
        _ = try target.ifNotRunning { try ContainerNetworking(root: root).tearDown(container: target.id) }
    }
}

/// `docker container restart`: stop (the stop signal, then SIGKILL after the timeout), then start.
struct ContainerRestart: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Restart one or more containers.")

    @OptionGroup var global: RootOptions
    @Option(name: [.customShort("t"), .customLong("time")], help: "Seconds to wait before killing the container.")
    var time: Int?
    @Argument var containers: [String]

    func run() throws {
        let root = global.stateRoot
        try forEachContainer(containers) { name in
            let container = try Container.lookup(name, root: root)
            try container.stop(timeout: time)
            try ContainerStart.start(container, root: root)
        }
    }
}
