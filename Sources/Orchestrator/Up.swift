import Compose
import ContainerSpecs
import FoundationEssentials
import Images
import Runtime
import Support
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `up`'s flags, as docker compose spells them.
public struct UpOptions: Sendable {
    /// The services to bring up (their dependencies too, unless `noDeps`); none: all.
    public var services: [String] = []
    public var noDeps = false
    public var forceRecreate = false
    public var noRecreate = false
    public var noStart = false
    public var removeOrphans = false
    /// `--scale SERVICE=N`.
    public var scale: [String: Int] = [:]
    /// `--pull always|missing|never`, over each service's pull_policy.
    public var pull: String?
    /// `--wait`: return once every service runs (healthy, when it has a check), or fail.
    public var wait = false
    public var waitTimeout: Double?
    /// `-t`: the grace period when a changed container is recreated.
    public var timeout: Int?
    /// `--build`: build every selected service that has a `build:` first; `--no-build`: never.
    public var build = false
    public var noBuild = false
    /// What `--build` passes to each build.
    public var buildOverrides = BuildOverrides()

    public init() {}
}

extension Orchestrator {
    /// `up`: the project's networks and volumes, then its containers level by level (a level's
    /// services in parallel, each once its dependencies meet their conditions), created, recreated
    /// when their configuration or image changed, or kept; the supervisor started first, so health
    /// checks and restart policies apply from the first container on.
    /// Returns the containers of the selected services. A failure leaves what was made for
    /// `down` to remove (all of it is labelled and recorded).
    @discardableResult
    public func up(_ project: Project, _ options: UpOptions = UpOptions()) throws -> [Container] {
        try withProjectLock { try upLocked(project, options) }
    }

    private func upLocked(_ project: Project, _ options: UpOptions) throws -> [Container] {
        let graph = project.dependencyGraph
        for name in options.services + Array(options.scale.keys) where project.service(name) == nil {
            throw OrchestratorError.noSuchService(name)
        }
        let selected =
            options.services.isEmpty
            ? Set(project.serviceNames) : graph.subgraph(options.services, includeDependencies: !options.noDeps)
        let services = project.services.filter { selected.contains($0.name) }

        // What the supervisor, `down` and `ps` read later; written before anything is made.
        try updatedRecord(project, imagesReady: false)

        try buildImages(of: services, in: project, options)
        try pullImages(of: services.filter { $0.build == nil || options.noBuild }, policy: options.pull)
        // Again, now that the images are here: a service's health check may be its image's.
        try updatedRecord(project)
        let resources = ProjectResources(root: root, progress: progress, warn: warn)
        try resources.ensureNetworks(for: services, in: project)
        try resources.ensureVolumes(for: services, in: project)

        try handleOrphans(project, remove: options.removeOrphans, timeout: options.timeout)
        if !options.noStart { try supervisor.ensureRunning() }

        let started = Mutex<[Container]>([])
        // Services recreated in this run: a dependent with `restart: true` restarts after them.
        let recreated = Mutex<Set<String>>([])
        for level in try graph.startLevels() {
            if isInterrupted() { throw OrchestratorError("interrupted", status: 130) }
            let levelServices = services.filter { level.contains($0.name) }
            try inParallel(levelServices) { service in
                if !options.noStart { try self.waitForDependencies(of: service, in: project, selected: selected) }
                let restartAfter = service.dependsOn.contains { name, dependency in
                    dependency.restart && recreated.withLock { $0.contains(name) }
                }
                let (containers, changed) = try self.converge(service, in: project, options, restart: restartAfter)
                started.withLock { $0 += containers }
                if changed { recreated.withLock { _ = $0.insert(service.name) } }
            }
            if !options.noStart { try supervisor.reload() }
        }
        let all = started.withLock { $0 }.sorted { $0.name < $1.name }
        if options.wait { try waitUntilReady(all, timeout: options.waitTimeout) }
        return all
    }

    /// Saves the project's record with this model's services (those of disabled profiles too:
    /// their containers from an earlier `--profile` run stay supervised).
    /// `imagesReady`: the services' images are in the store (pulled, built), whose HEALTHCHECKs
    /// then count; before that, only compose's health checks are recorded.
    func updatedRecord(_ project: Project, imagesReady: Bool = true) throws {
        let images = imagesReady ? try? ImageStore(root: root) : nil
        let services = try (project.services + project.disabledServices).map { service in
            try Self.serviceRecord(service, image: Self.imageHealthcheck(of: service, in: project, images))
        }
        try store.save(
            ProjectRecord(
                name: project.name, workingDir: project.workingDir, configFiles: project.composeFiles,
                services: services))
    }

    /// The HEALTHCHECK of the service's image (from its Dockerfile), when the store has it.
    static func imageHealthcheck(of service: Service, in project: Project, _ images: ImageStore?) -> ImageHealthcheck? {
        guard let name = service.imageName(project: project.name) else { return nil }
        return (try? images?.image(name))?.config.healthcheck
    }

    static func serviceRecord(_ service: Service, image: ImageHealthcheck? = nil) throws -> ServiceRecord {
        var restart = RestartPolicy.no
        if let text = service.restart {
            restart = try RestartPolicy(parsing: text)
        } else if let policy = service.deploy?.restartPolicy {
            restart = RestartPolicy(condition: policy.condition, maxAttempts: policy.maxAttempts)
        }
        return ServiceRecord(
            name: service.name,
            dependsOn: service.dependsOn.mapValues {
                DependencyRecord(condition: $0.condition, restart: $0.restart, required: $0.required)
            },
            healthcheck: try HealthcheckSpec(compose: service.healthcheck, image: image), restart: restart)
    }

    // MARK: images

    /// Each service's image by its pull_policy (or `--pull`): `missing` (docker compose's default
    /// `if_not_present` too) pulls what the store lacks, `always` pulls anyway, `never` fails on a
    /// missing one, `build` is for services with a `build:` section (`buildImages`).
    func pullImages(of services: [Service], policy override: String?) throws {
        let images = try ImageStore(root: root)
        var done = Set<String>()
        for service in services {
            guard let image = service.image else { continue }
            let policy = override ?? service.pullPolicy ?? "missing"
            guard !done.contains(image) else { continue }
            done.insert(image)
            let present = (try? images.image(image)) != nil
            switch policy {
            case "always":
                try pullImage(image)
            case "missing", "if_not_present":
                if !present { try pullImage(image) }
            case "never":
                guard present else {
                    throw OrchestratorError(
                        "service \(service.name): image \(image) is not in the store and pull_policy is never")
                }
            case "build":
                // `up --pull build`: a service with only an image is pulled when missing.
                guard override == nil else {
                    if !present { try pullImage(image) }
                    continue
                }
                throw OrchestratorError("service \(service.name): pull_policy build needs a build section")
            default:
                if policy.hasPrefix("daily") || policy.hasPrefix("weekly") || policy.hasPrefix("every_") {
                    if !present { try pullImage(image) }
                } else {
                    throw OrchestratorError("service \(service.name): invalid pull_policy \"\(policy)\"")
                }
            }
        }
    }

    /// The images of services with a `build:` section: built with `--build` or `pull_policy:
    /// build`, or when the store lacks them (docker compose's rule); never with `--no-build`.
    func buildImages(of services: [Service], in project: Project, _ options: UpOptions) throws {
        guard !options.noBuild else { return }
        let images = try ImageStore(root: root)
        for service in services where service.build != nil {
            guard let name = service.imageName(project: project.name) else { continue }
            let present = (try? images.image(name)) != nil
            let policy = options.pull ?? service.pullPolicy ?? "missing"
            if options.build || policy == "build" || !present {
                try buildImage(of: service, in: project, options.buildOverrides)
            }
        }
    }

    private func pullImage(_ image: String) throws {
        progress(ProgressEvent(.image, image, "Pulling", .working))
        do {
            try pull(image)
        } catch {
            progress(ProgressEvent(.image, image, "Error", .failed, detail: "\(error)"))
            throw OrchestratorError("pull \(image): \(error)")
        }
        progress(ProgressEvent(.image, image, "Pulled"))
    }

    // MARK: containers

    /// Makes the service's containers what the model says: replicas 1...N created or recreated
    /// (a changed config hash or image; `--force-recreate`; never with `--no-recreate`) or kept,
    /// those beyond N removed; then started unless `--no-start`. `restart`: a kept running
    /// container is restarted (a `restart: true` dependency was recreated). Returns the containers,
    /// and whether any was made or recreated.
    func converge(_ service: Service, in project: Project, _ options: UpOptions, restart: Bool = false) throws -> (
        [Container], Bool
    ) {
        let desired = options.scale[service.name] ?? service.replicas
        if service.containerName != nil && desired > 1 {
            throw OrchestratorError(
                "service \(service.name): container_name \(service.containerName!) cannot be used with \(desired) replicas"
            )
        }
        let existing = containers(of: [service.name])
        var byNumber: [Int: Container] = [:]
        var extra: [Container] = []
        for container in existing {
            if container.number >= 1, container.number <= desired, byNumber[container.number] == nil {
                byNumber[container.number] = container
            } else {
                extra.append(container)
            }
        }
        // Scaled down: the highest numbers go first, as docker compose's.
        try inParallel(extra) { try self.remove($0, timeout: options.timeout) }
        let image = try? ImageStore(root: root).image(service.imageName(project: project.name) ?? "")
        let imageID = image?.id
        let result = Mutex<[Container?]>(Array(repeating: nil, count: desired))
        let changedAny = Mutex(false)
        try inParallel(Array(0..<desired).map { $0 + 1 }) { number in
            let name = ServiceSpecBuilder.containerName(service, project: project.name, number: number)
            let spec = try self.specBuilder(project).spec(for: service, number: number, name: name, image: image)
            var container: Container
            if let current = byNumber[number] {
                let changed =
                    current.record.spec.labels[ComposeLabel.configHash] != spec.labels[ComposeLabel.configHash]
                    || (imageID != nil && current.record.spec.imageID != imageID)
                if options.forceRecreate || (changed && !options.noRecreate) {
                    self.progress(ProgressEvent(.container, current.name, "Recreate", .working))
                    try self.remove(current, timeout: options.timeout)
                    container = try self.create(spec, replacing: current)
                    changedAny.withLock { $0 = true }
                    self.progress(ProgressEvent(.container, container.name, "Recreated"))
                } else {
                    container = current
                    if !options.noStart && current.isRunning && restart {
                        self.progress(ProgressEvent(.container, current.name, "Restarting", .working))
                        try self.stop(current, timeout: options.timeout)
                    } else if !options.noStart && current.isRunning {
                        self.progress(ProgressEvent(.container, current.name, "Running"))
                    }
                }
            } else {
                container = try self.create(spec)
                changedAny.withLock { $0 = true }
            }
            if !options.noStart && !container.isRunning { try self.start(container) }
            result.withLock { $0[number - 1] = container }
        }
        return (result.withLock { $0.compactMap { $0 } }, changedAny.withLock { $0 })
    }

    func specBuilder(_ project: Project) -> ServiceSpecBuilder {
        ServiceSpecBuilder(
            project: project, root: root,
            containerID: { [self] mode in
                if mode.hasPrefix("service:") {
                    let service = String(mode.dropFirst("service:".count))
                    guard let target = containers(of: [service]).first(where: { $0.isRunning }) else {
                        throw OrchestratorError("network_mode \(mode): service \(service) has no running container")
                    }
                    return target.id
                }
                return try Container.lookup(String(mode.dropFirst("container:".count)), root: root).id
            }, warn: warn)
    }

    /// A container made from a spec the service gave (the image's part filled in by the store).
    /// Its anonymous volumes are those of the container it replaces, at the same targets, as
    /// docker compose keeps them across a recreate; or new ones, with Docker's anonymous label.
    func create(_ spec: ContainerSpec, replacing previous: Container? = nil) throws -> Container {
        var spec = spec
        let volumes = VolumeStore(root: root)
        for index in spec.mounts.indices where spec.mounts[index].kind == .volume && spec.mounts[index].source.isEmpty {
            let target = spec.mounts[index].target
            if let kept = previous?.record.spec.mounts.first(where: { $0.kind == .volume && $0.target == target }),
                (try? volumes.volume(kept.source))?.labels[VolumeStore.anonymousLabel] != nil
            {
                spec.mounts[index].source = kept.source
            } else {
                spec.mounts[index].source = try volumes.create(labels: [VolumeStore.anonymousLabel: ""]).name
            }
        }
        progress(ProgressEvent(.container, spec.name ?? "", "Creating", .working))
        let root = self.root
        let image = spec.image
        do {
            let container = try Container.create(spec: spec, root: root) { spec in
                try spec.complete(image: image, root: root)
            }
            progress(ProgressEvent(.container, container.name, "Created"))
            return container
        } catch {
            progress(ProgressEvent(.container, spec.name ?? "", "Error", .failed, detail: "\(error)"))
            throw error
        }
    }

    /// Containers of services no longer in the model: removed with `--remove-orphans`, else a
    /// warning, as docker compose's.
    func handleOrphans(_ project: Project, remove: Bool, timeout: Int?) throws {
        let known = Set(project.serviceNames + project.disabledServices.map(\.name))
        let orphans = store.containers().filter { !known.contains($0.service) }
        guard !orphans.isEmpty else { return }
        if remove {
            try inParallel(orphans) { try self.remove($0, timeout: timeout) }
        } else {
            warn(
                "Found orphan containers (\(orphans.map(\.name).joined(separator: ", "))) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up."
            )
        }
    }

    // MARK: dependencies

    /// Waits until each dependency of `service` meets its condition: started (it was, in an
    /// earlier level), healthy (its health check says so; unhealthy or exited fails), or exited
    /// with status 0. A dependency with `required: false` that fails is only a warning.
    func waitForDependencies(of service: Service, in project: Project, selected: Set<String>) throws {
        for (name, dependency) in service.dependsOn.sorted(by: { $0.key < $1.key }) where selected.contains(name) {
            do {
                try waitFor(name, condition: dependency.condition, deadline: nil)
            } catch let error as OrchestratorError where !dependency.required && error.status != 130 {
                warn("optional dependency \(name) of \(service.name): \(error.description)")
            }
        }
    }

    /// Polls (50 ms) the containers of `service` until `condition` holds; throws when it cannot.
    func waitFor(_ service: String, condition: String, deadline: Int64?) throws {
        let healthcheck = store.load()?.service(service)?.healthcheck
        while true {
            let containers = self.containers(of: [service])
            guard !containers.isEmpty else { return }
            var ready = true
            for container in containers {
                let state = container.state()
                switch condition {
                case "service_completed_successfully":
                    if state.status == .exited || state.status == .dead {
                        guard state.exitCode == 0 else {
                            throw OrchestratorError(
                                "service \"\(service)\" didn't complete successfully: exit \(state.exitCode ?? 255)")
                        }
                    } else {
                        ready = false
                    }
                case "service_healthy":
                    guard healthcheck != nil else {
                        throw OrchestratorError(
                            "dependency failed to start: container \(container.name) has no healthcheck configured")
                    }
                    guard state.status == .running else {
                        throw OrchestratorError(
                            "dependency failed to start: container \(container.name) exited (\(state.exitCode ?? 255))")
                    }
                    switch store.health(of: container.id).flatMap({ $0.startedAt == state.startedAt ? $0 : nil })?
                        .status
                    {
                    case .healthy?:
                        progress(ProgressEvent(.container, container.name, "Healthy"))
                    case .unhealthy?:
                        throw OrchestratorError("dependency failed to start: container \(container.name) is unhealthy")
                    default:
                        ready = false
                    }
                case "service_started":
                    // docker compose's: the start order alone satisfies it.
                    return
                default:  // "running": --wait's condition for a service without a health check
                    if state.status != .running && !(state.status == .exited && state.exitCode == 0) {
                        if state.status == .exited || state.status == .dead {
                            throw OrchestratorError(
                                "container \(container.name) exited (\(state.exitCode ?? 255))")
                        }
                        ready = false
                    }
                }
            }
            if ready { return }
            if isInterrupted() {
                throw OrchestratorError("interrupted while waiting for service \(service)", status: 130)
            }
            if let deadline, DaemonControl.now() > deadline {
                throw OrchestratorError(
                    "timeout waiting for service \(service) to be \(condition == "service_healthy" ? "healthy" : "running")"
                )
            }
            var pause = timespec(tv_sec: 0, tv_nsec: 50_000_000)
            nanosleep(&pause, nil)
        }
    }

    /// `--wait`: every container running, and healthy when its service has a health check.
    func waitUntilReady(_ containers: [Container], timeout: Double?) throws {
        let deadline = timeout.map { DaemonControl.now() + Int64($0 * 1e9) }
        let services = Array(Set(containers.map(\.service))).sorted()
        let record = store.load()
        for service in services {
            let condition = record?.service(service)?.healthcheck != nil ? "service_healthy" : "running"
            for container in containers where container.service == service {
                progress(ProgressEvent(.container, container.name, "Waiting", .working))
            }
            try waitFor(service, condition: condition, deadline: deadline)
        }
    }
}
