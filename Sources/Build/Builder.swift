import Dispatch
import Dockerfile
import FoundationEssentials
import Images
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Builds images from Dockerfiles into the store under a state root: parses the file, works out
/// the stages the target needs, builds those (stages that do not depend on each other at once),
/// each step from the cache when its key is known, and names the result.
public final class Builder {
    public let root: String
    let store: ImageStore
    let progress: BuildProgress
    /// Brings an image the store lacks (or, with `--pull`, every FROM image) into the store: the
    /// CLI's registry pull, with its own progress.
    let pull: (String) throws -> Void
    let cancellation = Cancellation()

    public init(root: String, progress: @escaping BuildProgress = { _ in }, pull: @escaping (String) throws -> Void)
        throws
    {
        self.root = root
        store = try ImageStore(root: root)
        self.progress = progress
        self.pull = pull
    }

    /// Stops the build (Ctrl-C): the RUN steps' containers are killed, no new step starts, and
    /// `build` throws once what was started is cleaned up. Safe from any thread.
    public func cancel() { cancellation.cancel() }

    /// Whether `cancel` was called.
    public var isCancelled: Bool { cancellation.isCancelled }

    /// Builds, tags the result with `options.tags` and returns it.
    public func build(_ options: BuildOptions) throws -> Image {
        let (text, displayPath, ignoreText) = try Self.readInputs(options)
        let dockerfile: Dockerfile
        do { dockerfile = try Dockerfile.parse(text, path: displayPath) } catch let error as DockerfileError {
            throw BuildError(message: error.description)
        }
        let context = try BuildContext(directory: options.context, ignore: DockerIgnore(ignoreText ?? ""))
        let workspace = try Workspace(root: root)
        let session = try BuildSession(
            builder: self, options: options, dockerfile: dockerfile, context: context, workspace: workspace)
        var image = try session.run()
        if !options.labels.isEmpty {
            // A step of its own, cached as the others are: the same labels give the same image.
            let shown = options.labels.keys.sorted().map { "\($0)=\(options.labels[$0]!)" }
            var key = CacheKey(parent: image.id)
            key.add(options.sourceDateEpoch.map { "epoch \($0)" } ?? "now")
            key.add("--label")
            key.add(shown)
            if !options.noCache, let cached = store.cachedImage(key: key.value) {
                image = cached
            } else {
                var config = image.config
                var labels = config.labels ?? [:]
                for (k, v) in options.labels { labels[k] = v }
                config.labels = labels
                image = try store.commitImage(
                    parent: image, layer: nil, config: config,
                    history: HistoryEntry(createdBy: "LABEL " + shown.joined(separator: " "), emptyLayer: true),
                    created: session.created, cacheKey: key.value)
            }
        }
        // Untagged, it is listed as <none> (Docker's dangling image) rather than only cached.
        try store.tagImage(image, as: options.tags)
        return try store.image(image.id)
    }

    /// The Dockerfile's text, the name errors give it, and the .dockerignore that applies:
    /// `NAME.dockerignore` beside a Dockerfile of another name wins over the context's, as in
    /// BuildKit.
    static func readInputs(_ options: BuildOptions) throws -> (String, String, String?) {
        var info = stat()
        guard stat(options.context, &info) == 0 else {
            throw BuildError("unable to prepare context: path \"\(options.context)\" not found", errno: errno)
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw BuildError(message: "unable to prepare context: \"\(options.context)\" is not a directory")
        }
        let contextIgnore = Files.readText(options.context + "/.dockerignore")
        if let inline = options.dockerfileText { return (inline, "Dockerfile", contextIgnore) }
        let given = options.dockerfile ?? "Dockerfile"
        let path = given.hasPrefix("/") ? given : options.context + "/" + given
        guard let text = Files.readText(path) else {
            throw BuildError("failed to read dockerfile \(path)", errno: errno == 0 ? ENOENT : errno)
        }
        let ownIgnore = Files.readText(path + ".dockerignore")
        return (text, given, ownIgnore ?? contextIgnore)
    }
}

/// The context, opened once: its directory and the .dockerignore rules.
final class BuildContext {
    let directory: String
    let descriptor: Descriptor
    let ignore: DockerIgnore

    init(directory: String, ignore: DockerIgnore) throws {
        self.directory = directory
        guard let fd = Descriptor(open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) else {
            throw BuildError("open the context \(directory)", errno: errno)
        }
        descriptor = fd
        self.ignore = ignore
    }
}

/// One build's shared state: the stages, their results as they come, and the first failure.
final class BuildSession {
    let builder: Builder
    let options: BuildOptions
    let dockerfile: Dockerfile
    let context: BuildContext
    let workspace: Workspace
    /// The image's and the history's time: SOURCE_DATE_EPOCH's, or now.
    let created: String
    /// Build args given, with `--build-arg K` taken from the environment.
    let buildArgs: [String: String]
    /// ARGs before the first FROM, resolved: what FROM lines see.
    private(set) var globalArgs: [String: String] = [:]

    private let lock = StateLock()
    private var results: [Int: StageResult] = [:]
    private var failure: Error?
    private var stepCounter = 0
    /// The stages' threads (threads of their own: a stage blocks while a RUN runs, or while it
    /// waits for another stage, which a pool of workers need not make room for).
    private var threads: [BackgroundWork<Void>] = []

    enum StageResult {
        case running(DispatchGroup)
        case done(Image?)
        case failed
    }

    init(builder: Builder, options: BuildOptions, dockerfile: Dockerfile, context: BuildContext, workspace: Workspace)
        throws
    {
        self.builder = builder
        self.options = options
        self.dockerfile = dockerfile
        self.context = context
        self.workspace = workspace
        if let epoch = options.sourceDateEpoch {
            created = Timestamp.format(seconds: Int(epoch), nanoseconds: 0)
        } else {
            created = Timestamp.now()
        }
        var args: [String: String] = [:]
        for (k, v) in options.buildArgs {
            if let v {
                args[k] = v
            } else if let fromEnvironment = getenv(k) {
                args[k] = String(cString: fromEnvironment)
            }
        }
        buildArgs = args
        globalArgs = Self.platformArgs
        for instruction in dockerfile.globalArgs {
            let command = try StageBuild.typed(instruction, file: dockerfile.path, escape: dockerfile.escape) {
                self.globalArgs[$0]
            }
            guard case .arg(let definitions) = command else { continue }
            for d in definitions {
                if let given = buildArgs[d.name] {
                    globalArgs[d.name] = given
                } else if let value = d.defaultValue {
                    globalArgs[d.name] = value
                }
            }
        }
    }

    /// BuildKit's automatic platform args, in the global scope.
    static var platformArgs: [String: String] {
        let arch = ImageStore.hostArchitecture
        let platform = "linux/" + arch
        return [
            "BUILDPLATFORM": platform, "BUILDOS": "linux", "BUILDARCH": arch, "BUILDVARIANT": "",
            "TARGETPLATFORM": platform, "TARGETOS": "linux", "TARGETARCH": arch, "TARGETVARIANT": "",
        ]
    }

    /// Builds the target stage (and, at once, every stage it needs) and returns its image.
    func run() throws -> Image {
        let target: Int
        if let name = options.target {
            guard let index = stageIndex(name) else {
                throw BuildError(message: "target stage \"\(name)\" could not be found")
            }
            target = index
        } else {
            guard !dockerfile.stages.isEmpty else { throw BuildError(message: "no build stage in current context") }
            target = dockerfile.stages.count - 1
        }
        // The stages the target needs, known from their FROM and --from names, start together.
        for index in needed(by: target).sorted() where index != target { schedule(index) }
        let image: Image?
        do {
            image = try result(of: target)
        } catch {
            waitForStages()
            throw firstFailure ?? error
        }
        waitForStages()
        if let failure = firstFailure { throw failure }
        guard let image else {
            // FROM scratch and nothing else: an image with no layer, as Docker makes.
            return try builder.store.commitImage(
                parent: nil, layer: nil, config: ImageConfig(),
                history: HistoryEntry(createdBy: "FROM scratch", comment: nil, emptyLayer: true), created: created)
        }
        return image
    }

    /// A stage by name (case-insensitive) or index.
    func stageIndex(_ name: String) -> Int? {
        let lower = name.lowercased()
        if let i = dockerfile.stages.firstIndex(where: { $0.name == lower }) { return i }
        if let n = Int(name), dockerfile.stages.indices.contains(n) { return n }
        return nil
    }

    /// The stages `index` builds on, found statically: FROM names of stages, COPY --from and
    /// RUN --mount from= as written (with the global args). A --from that only an ARG of the
    /// stage names is found when the step runs.
    func needed(by index: Int) -> Set<Int> {
        var seen: Set<Int> = []
        var pending = [index]
        while let i = pending.popLast() {
            guard seen.insert(i).inserted else { continue }
            let stage = dockerfile.stages[i]
            var references: [String] = []
            if case .from(let base, _, _)? = try? StageBuild.typed(
                stage.from, file: dockerfile.path, escape: dockerfile.escape, lookup: { self.globalArgs[$0] })
            {
                references.append(base)
            }
            for instruction in stage.instructions {
                for flag in instruction.flags {
                    if flag.hasPrefix("--from=") { references.append(String(flag.dropFirst(7))) }
                    if flag.hasPrefix("--mount=") {
                        for field in flag.dropFirst(8).split(separator: ",") where field.hasPrefix("from=") {
                            references.append(String(field.dropFirst(5)))
                        }
                    }
                }
            }
            for reference in references {
                if let j = stageIndex(reference), j < i { pending.append(j) }
            }
        }
        return seen
    }

    var firstFailure: Error? { lock.withLock { failure } }

    private var pulled: Set<String> = []
    private let pulling = StateLock()

    /// `--pull`'s pull of an image, once per build however many stages name it.
    func pullOnce(_ name: String) throws {
        try pulling.withLock {
            guard !pulled.contains(name) else { return }
            try builder.pull(name)
            pulled.insert(name)
        }
    }

    /// Starts a stage on a thread of its own unless it is started already.
    private func schedule(_ index: Int) {
        let started: Bool = lock.withLock {
            if results[index] != nil { return false }
            let done = DispatchGroup()
            done.enter()
            results[index] = .running(done)
            return true
        }
        guard started else { return }
        let thread = BackgroundWork<Void> {
            var image: Image?
            var ok = false
            do {
                image = try StageBuild(session: self, index: index).run()
                ok = true
            } catch {
                let first = self.lock.withLock {
                    if self.failure != nil { return false }
                    self.failure = error
                    return true
                }
                // The other stages' RUN commands are stopped, not waited for (BuildKit's too).
                if first { self.builder.cancellation.killRunning() }
            }
            let waiting: DispatchGroup? = self.lock.withLock {
                guard case .running(let done) = self.results[index] else { return nil }
                self.results[index] = ok ? .done(image) : .failed
                return done
            }
            waiting?.leave()
        }
        lock.withLock { threads.append(thread) }
    }

    /// Until every stage started has ended (a stage may start another while it runs).
    private func waitForStages() {
        while let thread = lock.withLock({ threads.popLast() }) { _ = try? thread.wait() }
    }

    /// A stage's image, once built (nil: FROM scratch with no step). Starts it if need be.
    func result(of index: Int) throws -> Image? {
        schedule(index)
        while true {
            let state = lock.withLock { results[index] }
            switch state {
            case .running(let done)?: done.wait()
            case .done(let image)?: return image
            case .failed?, nil: throw firstFailure ?? BuildError(message: "stage \(index) failed")
            }
        }
    }

    /// True once a stage failed or the build was cancelled: the others stop at their next step.
    var isCancelled: Bool { builder.cancellation.isCancelled || lock.withLock { failure != nil } }

    func nextStepNumber() -> Int {
        lock.withLock {
            stepCounter += 1
            return stepCounter
        }
    }
}

/// A build's cancellation: the flag, and the containers of the RUN steps running now.
final class Cancellation: @unchecked Sendable {
    private let lock = StateLock()
    private var cancelled = false
    private var running: [String: Container] = [:]

    var isCancelled: Bool { lock.withLock { cancelled } }

    func cancel() {
        lock.withLock { cancelled = true }
        killRunning()
    }

    /// Kills the RUN containers running now (a stage failed: the build will fail anyway).
    func killRunning() {
        for c in lock.withLock({ Array(running.values) }) { try? c.kill(signal: SIGKILL) }
    }

    /// Follows a RUN step's container while it runs; false (and the container is killed) when
    /// the build is cancelled already.
    func started(_ container: Container) -> Bool {
        let go = lock.withLock {
            if !cancelled { running[container.id] = container }
            return !cancelled
        }
        if !go { try? container.kill(signal: SIGKILL) }
        return go
    }

    func ended(_ container: Container) { lock.withLock { _ = running.removeValue(forKey: container.id) } }
}

/// A mutex for the session's few shared values (FoundationEssentials has no NSLock).
final class StateLock: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}
