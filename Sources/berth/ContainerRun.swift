import ArgumentParser
import ContainerNetworking
import ContainerSpecs
import FoundationEssentials
import Images
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `docker run`: create (ContainerOptions: the flags it shares with `create`), start, and follow
/// the container in the foreground, or print its ID (-d).
struct ContainerRun: ParsableCommand {
    // The super-command name matters only when `run` is parsed as the root (Berth.main's fast
    // path): help then reads `berth container run`, and ArgumentParser skips its check for
    // `--generate-completion-script`, which re-parses every argument twice.
    static let configuration = CommandConfiguration(
        commandName: "run", _superCommandName: "berth container",
        abstract: "Create and run a new container from an image.")

    @OptionGroup var global: RootOptions
    @OptionGroup var options: ContainerOptions
    @Flag(name: [.customShort("d"), .customLong("detach")], help: "Run in the background and print the container ID.")
    var detach = false

    /// Made by Berth.parse while the arguments were parsed (see there).
    static var earlyNetworkNamespace: BackgroundWork<FileDescriptor?>?

    func run() throws {
        do {
            try runContainer()
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            StandardStreams.writeError("berth: \(error)\n")
            throw CommandFailure(status: Self.startFailureStatus(error))
        }
    }

    /// Docker's statuses for a container that never ran its command: 127 when the command is not
    /// found, 126 when it cannot be executed, 125 for every other problem (image, flags, mounts),
    /// read from the runtime error's stage and errno (Container.Error.startFailureStatus).
    static func startFailureStatus(_ error: Error) -> Int32 {
        (error as? Container.Error)?.startFailureStatus ?? 125
    }

    private func runContainer() throws {
        let root = global.stateRoot
        var netns: FileDescriptor? = nil
        if let early = Self.earlyNetworkNamespace, let made = early.leftover() { netns = made }
        Self.earlyNetworkNamespace = nil
        // Every flag is checked before anything is made under ROOT (Docker's status 125).
        let spec = try options.makeSpec(root: root)
        let networking = ContainerNetworking(root: root)
        let plan = try networking.plan(spec)
        // The image is read while the runtime makes the cgroup (and the network namespace,
        // unless Berth.parse made it already, and the container has one of its own).
        let image = options.image
        let container = try Self.pulling(options, root: root) {
            try Container.create(spec: spec, root: root, startingNow: true, networkNamespace: netns.take()) { spec in
                try spec.complete(image: image, root: root)
            }
        }
        // Detached or not, the container runs under berth-shim, which outlives this process.
        let (interactive, tty, autoRemove) = (options.interactive, options.tty, options.autoRemove)
        let stdio: Container.Stdio =
            detach
            ? .detached(stdin: interactive, tty: tty)
            : tty ? .tty(TerminalSize.of(STDOUT_FILENO)) : .pipes(stdin: interactive)
        let process: ContainerProcess
        do {
            process = try container.start(
                stdio: stdio,
                exitCommand: ContainerNetworking.exitCommand(container, root: root, berth: Self.selfPath(), plan: plan),
                beforeResume: plan.isEmpty
                    ? nil : { pid, netns in try networking.attach(container, pid: pid, namespace: netns, to: plan) })
        } catch {
            if autoRemove {
                try? networking.remove(container, force: true)
            } else {
                try? networking.tearDown(container: container.id)
            }
            throw error
        }
        if detach {
            print(container.id)
            return
        }
        let code = Foreground.attach(process, interactive: interactive, tty: tty, removing: autoRemove)
        // The shim holds back its own removal while `process` lives (see ContainerProcess.wait).
        if autoRemove { try withExtendedLifetime(process) { try networking.remove(container, force: true) } }
        if code != 0 { throw CommandFailure(status: code) }
    }

    /// Docker's `--pull` around making a container: `always` pulls first; `missing` pulls once the
    /// store has turned out not to have the image (and makes the container again), so a run whose
    /// image is there pays nothing for the policy; `never` leaves the store's "not found" error.
    static func pulling(_ options: ContainerOptions, root: String, _ make: () throws -> Container) throws
        -> Container
    {
        if options.pull == .always { try pullForContainer(options.image, root: root) }
        do {
            return try make()
        } catch ImageStore.Error.notFound(let name) where options.pull == .missing && name == options.image {
            guard let reference = try? ImageReference(parsing: name) else { throw ImageStore.Error.notFound(name) }
            StandardStreams.writeError("Unable to find image '\(reference.familiar)' locally\n")
            try pullForContainer(options.image, root: root)
            return try make()
        }
    }

    /// This very binary, for commands the shim runs with an empty environment.
    static func selfPath() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0
            ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }
}

/// `docker create`: the container made from the same flags as `run` (ContainerOptions), its
/// full ID printed, its state "created"; `container start` runs it (detached), and `--rm`
/// removes it once it has exited.
struct ContainerCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a new container.")

    @OptionGroup var global: RootOptions
    @OptionGroup var options: ContainerOptions

    func run() throws {
        do {
            let root = global.stateRoot
            let spec = try options.makeSpec(root: root)
            let image = options.image
            let container = try ContainerRun.pulling(options, root: root) {
                try Container.create(spec: spec, root: root) { spec in try spec.complete(image: image, root: root) }
            }
            print(container.id)
        } catch {
            StandardStreams.writeError("berth: \(error)\n")
            throw CommandFailure(status: ContainerRun.startFailureStatus(error))
        }
    }
}
