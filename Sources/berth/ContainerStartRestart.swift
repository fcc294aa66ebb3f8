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
        let spec = container.record.spec
        let networking = try ContainerNetworking(root: root)
        let plan = try networking.plan(spec)
        _ = try container.start(
            stdio: .detached(stdin: spec.interactive, tty: spec.tty),
            exitCommand: spec.autoRemove ? ContainerRun.removal(container, root) : nil,
            beforeResume: plan.isEmpty
                ? nil : { pid, netns in try networking.attach(container, pid: pid, namespace: netns, to: plan) })
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
