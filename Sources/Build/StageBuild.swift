import CRuntime
import Dockerfile
import FoundationEssentials
import Images
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// One stage, step by step. The state between steps is an image in the store (every step but
/// ARG commits one, metadata steps without a layer), so a step's cache entry is simply the
/// image it made, and the next step's key starts from that image's ID.
final class StageBuild {
    let session: BuildSession
    let index: Int
    let stage: Stage
    /// The image so far; nil while a FROM scratch stage has made nothing.
    var image: Image?
    var config = ImageConfig()
    /// The ARGs declared in this stage, with their values (nil: declared, no value).
    var args: [String: String?] = [:]
    /// Whether CMD was set in this stage (an ENTRYPOINT clears an inherited CMD, not this one's).
    var cmdSet = false
    /// "build" (the stage's name) or "stage-2": how the steps are shown.
    let label: String
    var position = 0
    var total: Int

    var store: ImageStore { session.builder.store }
    var escape: Character { session.dockerfile.escape }
    var file: String { session.dockerfile.path }

    init(session: BuildSession, index: Int) {
        self.session = session
        self.index = index
        stage = session.dockerfile.stages[index]
        label = stage.name ?? "stage-\(index)"
        total = stage.instructions.count + 1
    }

    /// The instruction's typed form, its errors as the build's.
    static func typed(
        _ instruction: Instruction, file: String, escape: Character, lookup: (String) -> String?
    ) throws -> Command {
        do {
            return try instruction.command(file: file, escape: escape, lookup: lookup)
        } catch let error as DockerfileError {
            throw BuildError(message: error.description)
        }
    }

    /// A variable as the stage's instructions see it: ENV first, then the ARGs.
    func lookup(_ name: String) -> String? {
        if let value = Self.envValue(name, in: config.env) { return value }
        if let declared = args[name] { return declared }
        return nil
    }

    static func envValue(_ name: String, in env: [String]?) -> String? {
        guard let env else { return nil }
        for entry in env.reversed() {
            if let eq = entry.firstIndex(of: "="), entry[..<eq] == name {
                return String(entry[entry.index(after: eq)...])
            }
        }
        return nil
    }

    func run() throws -> Image? {
        try from()
        var instructions = stage.instructions
        // The base image's ONBUILD triggers run first, and are not passed on (Docker's rule).
        if let triggers = config.onBuild, !triggers.isEmpty {
            let text = "FROM scratch\n" + triggers.joined(separator: "\n")
            do {
                let parsed = try Dockerfile.parse(text, path: "ONBUILD")
                instructions = (parsed.stages.first?.instructions ?? []) + instructions
                total += parsed.stages.first?.instructions.count ?? 0
            } catch let error as DockerfileError {
                throw BuildError(message: "the base image's ONBUILD: \(error.description)")
            }
            config.onBuild = nil
        }
        for instruction in instructions {
            if session.isCancelled { throw BuildError(message: "cancelled") }
            try step(instruction)
        }
        return image
    }

    // MARK: steps

    private func stepName(_ instruction: Instruction) -> String {
        "[\(label) \(position)/\(total)] \(instruction.original)"
    }

    /// Runs `body` as a step with its progress: it returns whether the result was cached.
    private func reported(_ instruction: Instruction, _ body: () throws -> Bool) throws {
        position += 1
        let number = session.nextStepNumber()
        let name = stepName(instruction)
        session.builder.progress(.started(step: number, name: name))
        let start = DaemonControl.now()
        currentStep = number
        do {
            if try body() {
                session.builder.progress(.cached(step: number))
            } else {
                session.builder.progress(.finished(step: number, seconds: Self.seconds(since: start)))
            }
        } catch let error as BuildError {
            session.builder.progress(.failed(step: number, seconds: Self.seconds(since: start)))
            let location = "\(file):\(instruction.position.line):\(instruction.position.column)"
            throw error.at(location, step: name)
        } catch {
            session.builder.progress(.failed(step: number, seconds: Self.seconds(since: start)))
            let location = "\(file):\(instruction.position.line):\(instruction.position.column)"
            throw BuildError(message: "\(error)").at(location, step: name)
        }
    }

    private var currentStep = 0

    /// AT_EMPTY_PATH, a _GNU_SOURCE name Swift's Glibc module does not export.
    static let atEmptyPath: Int32 = 0x1000

    static func seconds(since start: Int64) -> Double { Double(DaemonControl.now() - start) / 1e9 }

    private func from() throws {
        try reported(stage.from) {
            let command = try Self.typed(stage.from, file: file, escape: escape) { self.session.globalArgs[$0] }
            guard case .from(let name, _, _) = command else { throw BuildError(message: "not a FROM") }
            // A stage is named by its AS name, and only one defined before (Docker's rule).
            if let j = session.dockerfile.stages[..<index].firstIndex(where: { $0.name == name.lowercased() }) {
                image = try session.result(of: j)
            } else if name.lowercased() == "scratch" {
                image = nil
            } else {
                image = try externalImage(name)
            }
            config = image?.config ?? ImageConfig()
            return false
        }
    }

    /// An image from the store, pulled when it is missing (or always, with --pull).
    func externalImage(_ name: String) throws -> Image {
        if session.options.pull { try session.pullOnce(name) }
        do {
            return try store.image(name)
        } catch ImageStore.Error.notFound {
            try session.builder.pull(name)
            return try store.image(name)
        }
    }

    private func step(_ instruction: Instruction) throws {
        // ARG changes only what later steps see: no image, no cache entry.
        if instruction.keyword == "ARG" {
            try reported(instruction) {
                let command = try Self.typed(instruction, file: file, escape: escape, lookup: lookup)
                guard case .arg(let definitions) = command else { return false }
                for d in definitions {
                    let value = session.buildArgs[d.name] ?? d.defaultValue ?? session.globalArgs[d.name]
                    args[d.name] = .some(value)
                }
                return false
            }
            return
        }
        try reported(instruction) {
            let command = try Self.typed(instruction, file: file, escape: escape, lookup: lookup)
            switch command {
            case .run(let run): return try self.run(run, instruction)
            case .copy(let copy): return try self.copy(copy, instruction, isAdd: false)
            case .add(let copy): return try self.copy(copy, instruction, isAdd: true)
            case .workdir(let path): return try workdir(path, instruction)
            default: return try metadata(command, instruction)
            }
        }
    }

    /// The key's start: the image so far.
    /// SOURCE_DATE_EPOCH too: it is in every image's times and the layers' mtimes.
    var parentKey: CacheKey {
        var key = CacheKey(parent: image?.id ?? "scratch")
        key.add(session.options.sourceDateEpoch.map { "epoch \($0)" } ?? "now")
        return key
    }

    /// The cached result of `key`, made current; false when there is none (or --no-cache).
    func useCached(_ key: CacheKey) -> Bool {
        guard !session.options.noCache, let cached = store.cachedImage(key: key.value) else { return false }
        image = cached
        config = cached.config
        return true
    }

    func commit(_ layer: BuiltLayer?, _ createdBy: String, key: CacheKey) throws {
        image = try store.commitImage(
            parent: image, layer: layer, config: config,
            history: HistoryEntry(createdBy: createdBy, comment: nil, emptyLayer: layer == nil),
            created: session.created, cacheKey: key.value)
    }

    // MARK: metadata

    private func metadata(_ command: Command, _ instruction: Instruction) throws -> Bool {
        // Known whether the step is cached or not: a later ENTRYPOINT keeps this stage's CMD.
        if case .cmd = command { cmdSet = true }
        var key = parentKey
        key.add(instruction.keyword)
        key.add("\(command)")
        if useCached(key) { return true }
        switch command {
        case .env(let pairs):
            var env = config.env ?? []
            for p in pairs {
                env.removeAll { $0.hasPrefix(p.key + "=") }
                env.append(p.key + "=" + p.value)
            }
            config.env = env
        case .label(let pairs):
            var labels = config.labels ?? [:]
            for p in pairs { labels[p.key] = p.value }
            config.labels = labels
        case .expose(let ports):
            var all = Set(config.exposedPorts ?? [])
            for p in ports { all.formUnion(Self.exposed(p)) }
            config.exposedPorts = all.sorted()
        case .cmd(let line):
            config.cmd = argv(line)
        case .entrypoint(let line):
            config.entrypoint = argv(line)
            if !cmdSet { config.cmd = nil }
        case .volume(let paths):
            var all = Set(config.volumes ?? [])
            for p in paths where !p.isEmpty { all.insert(p) }
            config.volumes = all.sorted()
        case .user(let user):
            config.user = user
        case .stopSignal(let signal):
            config.stopSignal = signal
        case .healthcheck(let check):
            if let check {
                config.healthcheck = ImageHealthcheck(
                    test: check.test, interval: check.interval, timeout: check.timeout,
                    startPeriod: check.startPeriod, startInterval: check.startInterval, retries: check.retries)
            } else {
                config.healthcheck = ImageHealthcheck(test: ["NONE"])
            }
        case .shell(let shell):
            config.shell = shell
        case .onbuild(let trigger):
            config.onBuild = (config.onBuild ?? []) + [trigger]
        case .maintainer:
            break
        default:
            throw BuildError(message: "unexpected \(instruction.keyword)")
        }
        try commit(nil, instruction.original, key: key)
        return false
    }

    /// EXPOSE's "8000-8002/udp" as Docker keeps it: each port of the range, with its protocol
    /// (tcp when none is given).
    static func exposed(_ text: String) -> [String] {
        let parts = text.lowercased().split(separator: "/", maxSplits: 1)
        let proto = parts.count == 2 ? String(parts[1]) : "tcp"
        let range = parts.first.map { $0.split(separator: "-", maxSplits: 1).compactMap { Int($0) } } ?? []
        guard range.count == 2, range[0] <= range[1], range[1] - range[0] < 65536 else {
            return [String(parts.first ?? "") + "/" + proto]
        }
        return (range[0]...range[1]).map { "\($0)/\(proto)" }
    }

    /// CMD/ENTRYPOINT/RUN's argv: the JSON form as written, the shell form through SHELL.
    private func argv(_ line: CommandLine) -> [String] {
        switch line {
        case .exec(let words): return words
        case .shell(let text): return (config.shell ?? ["/bin/sh", "-c"]) + [text]
        }
    }

    // MARK: WORKDIR

    private func workdir(_ path: String, _ instruction: Instruction) throws -> Bool {
        let joined = path.hasPrefix("/") ? path : (config.workingDir ?? "/") + "/" + path
        let clean = Self.cleanAbsolute(joined)
        var key = parentKey
        key.add("WORKDIR")
        key.add(clean)
        if useCached(key) { return true }
        config.workingDir = clean
        // Made when missing, as BuildKit does, owned by the USER of the moment.
        // Only the directories it makes take the owner; one that is there stays as it is.
        let layer = try inOverlay { root in
            let owner = try config.user.map { try self.owner($0, root: root) }
            _ = try Self.directory(clean, in: root, owner: owner)
        }
        try commit(layer, "WORKDIR " + clean, key: key)
        return false
    }

    /// `/a/./b/../c` as `/a/c`: what a path inside the root names, never above it.
    static func cleanAbsolute(_ path: String) -> String { PathPattern.clean("/" + path) }

    /// Runs `body` on a writable overlay of the image so far, then captures what it wrote: nil
    /// when it wrote nothing.
    func inOverlay(_ body: (Int32) throws -> Void) throws -> BuiltLayer? {
        let step = try session.workspace.stepDirectory()
        defer { Workspace.remove(step) }
        do {
            let overlay = try session.workspace.openOverlay(layers: image?.layerPaths ?? [], step: step)
            try withExtendedLifetime(overlay) { try body(overlay.fd) }
        }
        let upper = step + "/upper"
        if Files.names(in: upper).isEmpty { return nil }
        return try store.captureLayer(directory: upper, sourceDateEpoch: session.options.sourceDateEpoch)
    }

    /// A user or uid[:gid] as the image's /etc/passwd and /etc/group (read in `root`) name it.
    func owner(_ spec: String, root: Int32) throws -> (uid: UInt32, gid: UInt32) {
        do {
            let user = try ProcessResolution.user(spec) { path in
                guard let fd = Descriptor(berth_in_root_open(root, path, O_RDONLY)) else { return nil }
                return Files.readAll(fd: fd.fd).map { String(decoding: $0, as: UTF8.self) }
            }
            return (user.uid, user.gid)
        } catch let error as ProcessResolution.Error {
            throw BuildError(message: error.description)
        }
    }

    // MARK: RUN

    private func run(_ run: Run, _ instruction: Instruction) throws -> Bool {
        let step = try session.workspace.stepDirectory()
        defer { Workspace.remove(step) }
        var argv: [String]
        var mounts: [MountSpec] = []
        var targets: [String] = []
        switch run.command {
        case .exec(let words):
            argv = words
        case .shell(let text):
            let shell = config.shell ?? ["/bin/sh", "-c"]
            if let only = run.heredocs.first, run.heredocs.count == 1,
                text.trimmingWhitespace().hasPrefix("<<"), !text.trimmingWhitespace().contains(" ")
            {
                // `RUN <<EOF`: the body is the script; one with #! runs through its interpreter,
                // from a file mounted for it (BuildKit's /dev/pipes).
                // The shell expands the body's variables itself (BuildKit leaves them to it).
                let body = only.content
                if body.hasPrefix("#!") {
                    try Self.checkHeredocName(only.name)
                    let script = step + "/" + only.name
                    try Self.writeFile(script, body, mode: 0o755)
                    let target = "/dev/pipes/" + only.name
                    mounts.append(MountSpec(kind: .bind, source: script, target: target, readOnly: true))
                    argv = [target]
                } else {
                    argv = shell + [body]
                }
            } else if !run.heredocs.isEmpty {
                // Heredocs fed to a command: the shell reads them itself, as written.
                argv = shell + [text + "\n" + run.heredocs.map { $0.content + $0.name + "\n" }.joined()]
            } else {
                argv = shell + [text]
            }
        }
        // The build args in scope reach the command as variables (ENV of the same name wins).
        var env: [String] = []
        for (name, value) in args.sorted(by: { $0.key < $1.key }) {
            guard let value, Self.envValue(name, in: config.env) == nil else { continue }
            env.append(name + "=" + value)
        }
        var described: [String] = []
        for m in run.mounts {
            switch m.kind {
            case .cache:
                let id = m.id ?? m.target
                let path = try session.workspace.cacheMount(
                    id: id, uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? 0o755)
                mounts.append(MountSpec(kind: .bind, source: path, target: m.target, readOnly: m.readOnly))
                described += ["cache", id, m.target]
            case .tmpfs:
                mounts.append(MountSpec(kind: .tmpfs, target: m.target, tmpfsSize: m.size))
                described += ["tmpfs", m.target, m.size.map(String.init) ?? ""]
            case .secret:
                let id = m.id ?? String(m.target.split(separator: "/").last ?? "")
                // A copy of its own in the step's directory, with the mount's owner and mode
                // (BuildKit's default: root's, 0400), whatever the file it comes from.
                let source = step + "/secret-\(targets.count)"
                if let path = session.options.secrets[id] {
                    guard let bytes = Files.readAll(path) else {
                        throw BuildError("read the secret \(id)", errno: errno)
                    }
                    try Self.writeFile(source, bytes: bytes, mode: 0o400)
                } else if let value = session.options.secretValues[id] {
                    try Self.writeFile(source, value, mode: 0o400)
                } else {
                    if m.required {
                        throw BuildError(message: "secret \(id) not found: give it with --secret id=\(id),src=FILE")
                    }
                    continue
                }
                guard chown(source, m.uid ?? 0, m.gid ?? 0) == 0, chmod(source, mode_t(m.mode ?? 0o400)) == 0 else {
                    throw BuildError("set the owner and mode of the secret \(id)", errno: errno)
                }
                mounts.append(MountSpec(kind: .bind, source: source, target: m.target, readOnly: true))
                // The secret's content never enters the key: only that one was mounted.
                described += ["secret", id, m.target, "\(m.uid ?? 0):\(m.gid ?? 0)", String(m.mode ?? 0o400, radix: 8)]
            case .bind:
                let (source, digest) = try bindSource(m, into: step, number: targets.count)
                mounts.append(MountSpec(kind: .bind, source: source, target: m.target, readOnly: true))
                described += ["bind", m.source ?? "", m.target, digest]
            case .ssh:
                throw BuildError(message: "RUN --mount=type=ssh is not supported")
            }
            targets.append(m.target)
        }
        // The host's network namespace reaches its loopback services: a Dockerfile asks for it,
        // the user grants it (BuildKit's network.host entitlement).
        if run.network == "host" && session.options.network != "host" && !session.options.allowHostNetwork {
            throw BuildError(
                message:
                    "RUN --network=host is not allowed: grant it with --allow network.host (or build with --network host)"
            )
        }
        let networkName = run.network ?? session.options.network
        let network: NetworkMode
        switch networkName {
        case "none": network = .none
        case "host": network = .host
        default: network = .default
        }
        var key = parentKey
        key.add("RUN")
        key.add(argv)
        key.add(env)
        key.add(described)
        key.add(networkName)
        // A `#!` heredoc runs from a file: argv names only its path, so its text goes in here.
        key.add(run.heredocs.map { $0.name + "\n" + $0.content })
        if useCached(key) { return true }
        guard let base = image else {
            throw BuildError(message: "RUN needs an image with a shell: this stage has no file yet (FROM scratch)")
        }
        let runStep = RunStep(
            argv: argv, env: env, user: config.user, workingDir: config.workingDir, network: network, mounts: mounts,
            mountTargets: targets)
        let number = currentStep
        let upper = try runStep.run(
            image: base, root: session.builder.root, step: step, cancellation: session.builder.cancellation
        ) { line in
            session.builder.progress(.output(step: number, line: line))
        }
        let layer = try store.captureLayer(directory: upper, sourceDateEpoch: session.options.sourceDateEpoch)
        // BuildKit's form: the build args the command saw, then its argv.
        let shownArgs = env.isEmpty ? "" : "|\(env.count) " + env.joined(separator: " ") + " "
        try commit(layer, "RUN " + shownArgs + argv.joined(separator: " "), key: key)
        return false
    }

    /// A bind mount's source from the context: what the context holds there through
    /// .dockerignore (BuildKit binds the context as it was sent), copied into the step's
    /// directory, and that content's digest for the key.
    private func bindSource(_ m: RunMount, into step: String, number: Int) throws -> (String, String) {
        if let from = m.from {
            throw BuildError(
                message: "RUN --mount=type=bind,from=\(from) is not supported: bind the context, or COPY --from")
        }
        let path = Self.cleanRelative(m.source ?? "")
        guard !path.hasPrefix("..") else {
            throw BuildError(message: "forbidden path outside the build context: \(m.source ?? "")")
        }
        if !path.isEmpty, session.context.ignore.excludes(path) {
            throw BuildError(message: "\"\(path)\": not found (excluded by .dockerignore)")
        }
        let tree = SourceTree(
            root: session.context.descriptor.fd, path: path, ignore: session.context.ignore, excludes: [])
        let digest = try ContentDigest.of(tree)
        guard let (_, _, info) = try tree.open() else { throw BuildError(message: "\"\(path)\": not found") }
        guard let dir = Descriptor(open(step, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) else {
            throw BuildError("open \(step)", errno: errno)
        }
        let name = "bind-\(number)"
        let copier = FileCopy(owner: nil, keepsOwners: true, mode: nil)
        if info.st_mode & S_IFMT == S_IFDIR {
            guard mkdirat(dir.fd, name, 0o755) == 0,
                let made = Descriptor(openat(dir.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC))
            else { throw BuildError("mkdir \(step)/\(name)", errno: errno) }
            try copier.copy(tree, into: made.fd, name: nil)
        } else {
            try copier.copy(tree, into: dir.fd, name: Array(name.utf8CString))
        }
        return (step + "/" + name, digest)
    }

    /// A heredoc's delimiter names a file (COPY's, or a script's at /dev/pipes): one name, never
    /// a path, for it is written in the step's own directory on the host first.
    static func checkHeredocName(_ name: String) throws {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\0") else {
            throw BuildError(message: "heredoc name \"\(name)\" cannot be a file name: use a plain word")
        }
    }

    /// A context path cleaned as Go's filepath.Clean, relative: "" for the context itself, and
    /// starting with ".." when it leaves it (an absolute one stays inside, as in Go).
    static func cleanRelative(_ path: String) -> String {
        let clean = PathPattern.clean(path)
        if clean == "." { return "" }
        return clean.hasPrefix("/") ? String(clean.dropFirst()) : clean
    }

    static func writeFile(_ path: String, _ text: String, mode: mode_t) throws {
        try writeFile(path, bytes: Array(text.utf8), mode: mode)
    }

    static func writeFile(_ path: String, bytes: [UInt8], mode: mode_t) throws {
        do {
            try bytes.withUnsafeBytes { try Files.replace(path, with: $0, mode: mode) }
        } catch let error as FileError {
            throw BuildError("write \(path)", errno: error.errno)
        }
        chmod(path, mode)
    }
}
