import ContainerNetworking
import ContainerSpecs
import FoundationEssentials
import Images
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A RUN step: a berth container of the stage's image so far (the runtime's defaults: seccomp,
/// dropped capabilities, its own namespaces and cgroup), whose upper dir, once the command has
/// exited with 0, is what the step adds.
struct RunStep {
    var argv: [String]
    /// KEY=VALUE over the image's Env: the build args in scope that ENV does not set.
    var env: [String]
    var user: String?
    var workingDir: String?
    var network: NetworkMode
    var mounts: [MountSpec]
    /// The mount targets the container made (to take out of the layer when empty).
    var mountTargets: [String]

    /// Lines of output kept for a failure's message.
    static let keptLines = 10

    /// Runs the command; on success returns the captured upper dir, moved to `step` (a workspace
    /// directory), with nothing else of the container left. `output` gets each line.
    func run(image: Image, root: String, step: String, cancellation: Cancellation, output: (String) -> Void) throws
        -> String
    {
        var spec = ContainerSpec(image: image, reference: image.reference.isEmpty ? image.id : image.reference)
        spec.name = "berth-build-" + String(UUID().uuidString.lowercased().filter { $0 != "-" }.prefix(12))
        spec.entrypoint = []
        spec.command = argv
        spec.env = env
        spec.user = user
        spec.workingDir = workingDir
        spec.network = network
        spec.mounts = mounts
        spec.labels = [Self.label: "true"]
        spec.logDriver = "none"
        let networking = ContainerNetworking(root: root)
        let plan = try networking.plan(spec)
        let container = try Container.create(spec: spec, root: root, startingNow: true)
        defer {
            try? networking.remove(container, force: true)
        }
        let process = try container.start(
            stdio: .pipes(stdin: false),
            beforeResume: plan.isEmpty
                ? nil : { pid, netns in try networking.attach(container, pid: pid, namespace: netns, to: plan) })
        let followed = cancellation.started(container)
        defer { cancellation.ended(container) }
        var pending: [UInt8] = []
        var last: [String] = []
        func line(_ bytes: ArraySlice<UInt8>) {
            let text = String(decoding: bytes, as: UTF8.self)
            output(text)
            last.append(text)
            if last.count > Self.keptLines { last.removeFirst() }
        }
        let code = withoutActuallyEscaping(line) { line in
            withExtendedLifetime(process) {
                process.wait(removing: true) { bytes, _ in
                    pending.append(contentsOf: bytes)
                    while let newline = pending.firstIndex(of: 10) {
                        line(pending[..<newline])
                        pending.removeSubrange(...newline)
                    }
                }
            }
        }
        if !pending.isEmpty { line(pending[...]) }
        if !followed || cancellation.isCancelled { throw BuildError(message: "cancelled") }
        guard code == 0 else {
            throw BuildError(
                message: "\(Self.shown(argv)) did not complete successfully: exit code \(code)", exitCode: code,
                lastOutput: last)
        }
        let upper = container.file("upper")
        let captured = step + "/upper"
        guard rename(upper, captured) == 0 else { throw BuildError("move \(upper)", errno: errno) }
        removeMountStubs(captured, layers: image.layerPaths)
        return captured
    }

    /// The RUN containers a build killed half-way left (kill -9 of berth while a step ran); called
    /// when no build runs.
    static func removeLeftovers(root: String) {
        let networking = ContainerNetworking(root: root)
        for container in Container.list(root: root) where container.record.spec.labels[label] == "true" {
            try? networking.remove(container, force: true)
        }
    }

    /// What marks a RUN step's container.
    static let label = "berth.build"

    /// The mount points the runtime made (an empty directory, or an empty file for a file's
    /// bind: a secret), and the parents it made for them, when the image had none there: a cache
    /// or secret mount leaves nothing in the image (BuildKit's mount stub cleaning).
    /// The upper dir and the layers are trees the image and the command wrote: a target is
    /// cleaned first (the runtime resolved its ".." inside the root) and every component is
    /// opened by name without following links, so neither ".." nor a link the command planted
    /// leads a check or an rmdir out of them onto the host.
    private func removeMountStubs(_ upper: String, layers: [String]) {
        guard let top = Descriptor(open(upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) else { return }
        for target in mountTargets {
            var parts = StageBuild.cleanAbsolute(target).split(separator: "/").map(String.init)
            var isTarget = true
            while let last = parts.last {
                if layers.contains(where: { Self.exists(parts[...], under: $0) }) { break }
                guard let parent = Self.directory(parts.dropLast(), in: top.fd) else { break }
                var removed = unlinkat(parent.fd, last, AT_REMOVEDIR) == 0
                var info = stat()
                if !removed, isTarget, fstatat(parent.fd, last, &info, AT_SYMLINK_NOFOLLOW) == 0,
                    info.st_mode & S_IFMT == S_IFREG, info.st_size == 0
                {
                    removed = unlinkat(parent.fd, last, 0) == 0
                }
                guard removed else { break }
                isTarget = false
                parts.removeLast()
            }
        }
    }

    /// The directory `parts` below `root`, each component opened without following a link.
    static func directory(_ parts: ArraySlice<String>, in root: Int32) -> Descriptor? {
        guard var current = Descriptor(dup(root)) else { return nil }
        for part in parts {
            guard let next = Descriptor(openat(current.fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC))
            else { return nil }
            current = next
        }
        return current
    }

    /// Whether `parts` names an entry below the directory `path`, no link followed.
    static func exists(_ parts: ArraySlice<String>, under path: String) -> Bool {
        guard let last = parts.last,
            let top = Descriptor(open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)),
            let parent = directory(parts.dropLast(), in: top.fd)
        else { return false }
        var info = stat()
        return fstatat(parent.fd, last, &info, AT_SYMLINK_NOFOLLOW) == 0
    }

    /// The command as the error shows it: `/bin/sh -c "make all"`.
    static func shown(_ argv: [String]) -> String {
        argv.map { $0.contains(" ") || $0.isEmpty ? "\"\($0)\"" : $0 }.joined(separator: " ")
    }
}
