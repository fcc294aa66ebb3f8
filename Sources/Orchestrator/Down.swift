import Images
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `down`'s flags.
public struct DownOptions: Sendable {
    /// `-v`: the named volumes too (never external ones).
    public var volumes = false
    /// `--rmi local|all`.
    public var removeImages: String?
    public var removeOrphans = false
    /// `-t`: seconds before SIGKILL, over each container's stop_grace_period.
    public var timeout: Int?
    public init() {}
}

extension Orchestrator {
    /// `down`, from what is on disk (the compose file may be gone or broken by now): the
    /// supervisor stopped first (nothing restarts behind it), then the containers in reverse
    /// dependency order, a level in parallel, then the networks, the volumes with `-v`, the images
    /// with `--rmi`, and the project's directory. Every step is tried; the first error is thrown
    /// at the end, so one failure does not leave the rest behind.
    public func down(_ options: DownOptions = DownOptions(), currentServices: Set<String>? = nil) throws {
        try withProjectLock { try downLocked(options, currentServices: currentServices) }
    }

    private func downLocked(_ options: DownOptions, currentServices: Set<String>?) throws {
        var errors: [Swift.Error] = []
        do { try supervisor.stop() } catch { errors.append(error) }
        let record = store.load()
        let all = store.containers(oneoff: true)
        // Containers of services the current model no longer has are orphans: docker compose
        // leaves them unless asked; with no model to compare (a broken file), all go.
        let keep = all.filter { container in
            guard !options.removeOrphans, !container.isOneoff, let currentServices else { return false }
            return !currentServices.contains(container.service)
        }
        if !keep.isEmpty {
            warn(
                "Found orphan containers (\(keep.map(\.name).joined(separator: ", "))) for this project; they stay (use --remove-orphans)"
            )
        }
        let targets = all.filter { container in !keep.contains { $0 === container } }
        let anonymous = targets.flatMap(anonymousVolumes)
        for level in stopLevels(targets, record: record) {
            do { try inParallel(level) { try self.remove($0, timeout: options.timeout) } } catch {
                errors.append(error)
            }
        }
        let resources = ProjectResources(root: root, progress: progress, warn: warn)
        if keep.isEmpty {
            errors += resources.removeNetworks(project: projectName)
        }
        if options.volumes {
            errors += resources.removeVolumes(project: projectName)
            for name in Set(anonymous) {
                do { try VolumeStore(root: root).remove(name) } catch { errors.append(error) }
            }
        }
        if let rmi = options.removeImages {
            errors += removeImages(
                targets.map { (image: $0.record.spec.image, service: $0.service) }, mode: rmi)
        }
        if keep.isEmpty, errors.isEmpty {
            // The lock file too, while this call holds it: a command waiting for it finds it
            // removed once it gets it, and takes a new one (withProjectLock).
            do { try store.removeAll() } catch { errors.append(error) }
        }
        if let first = errors.first { throw first }
    }

    /// The containers grouped for stopping: dependents before what they depend on (the recorded
    /// start levels reversed), one-offs and containers of unknown services first.
    func stopLevels(_ containers: [Container], record: ProjectRecord?) -> [[Container]] {
        let levels = record?.startLevels ?? []
        var rank: [String: Int] = [:]
        for (index, level) in levels.enumerated() { for service in level { rank[service] = index } }
        let top = levels.count
        var grouped: [Int: [Container]] = [:]
        for container in containers {
            let level = container.isOneoff ? top : rank[container.service] ?? top
            grouped[level, default: []].append(container)
        }
        return grouped.keys.sorted(by: >).map { grouped[$0]! }
    }

    /// `--rmi all`: every service's image; `local`: those without a custom tag (built ones, named
    /// PROJECT-SERVICE).
    func removeImages(_ used: [(image: String, service: String)], mode: String) -> [Swift.Error] {
        let images = used.filter { mode == "all" || (mode == "local" && $0.image == "\(projectName)-\($0.service)") }
            .map(\.image)
        guard !images.isEmpty else { return [] }
        var errors: [Swift.Error] = []
        guard let store = try? ImageStore(root: root) else { return [] }
        for image in Array(Set(images)).sorted() where (try? store.image(image)) != nil {
            progress(ProgressEvent(.image, image, "Removing", .working))
            do {
                _ = try store.remove(image)
                progress(ProgressEvent(.image, image, "Removed"))
            } catch {
                errors.append(error)
            }
        }
        return errors
    }

    /// The anonymous volumes a container mounts (Docker's label says which).
    func anonymousVolumes(of container: Container) -> [String] {
        let store = VolumeStore(root: root)
        return container.record.spec.mounts.filter { mount in
            mount.kind == .volume && (try? store.volume(mount.source))?.labels[VolumeStore.anonymousLabel] != nil
        }.map(\.source)
    }

    // MARK: the everyday commands

    /// `stop [SERVICE...]`: reverse dependency order, a level in parallel.
    public func stop(services: [String], timeout: Int?) throws {
        try withProjectLock {
            // Every one is marked, a container waiting out a restart backoff too (stop() returns
            // at once for one that is not running), so the supervisor leaves them all stopped.
            let targets = containers(of: services)
            for level in stopLevels(targets, record: store.load()) {
                try inParallel(level) { try self.stop($0, timeout: timeout) }
            }
        }
    }

    /// `start [SERVICE...]`: the existing containers, in dependency order.
    public func start(services: [String]) throws {
        try withProjectLock {
            let all = containers(of: services)
            guard !all.isEmpty else { throw OrchestratorError("no containers to start") }
            try supervisor.ensureRunning()
            for level in stopLevels(all, record: store.load()).reversed() {
                try inParallel(level.filter { !$0.isRunning }) { try self.start($0) }
            }
            try supervisor.reload()
        }
    }

    /// `restart [SERVICE...]`, with the services that depend on them with `restart: true`
    /// (transitively), as docker compose restarts those after their dependency.
    public func restart(services: [String], timeout: Int?) throws {
        try withProjectLock {
            var targets = services
            if !services.isEmpty, let record = store.load() {
                var changed = true
                while changed {
                    changed = false
                    for service in record.services where !targets.contains(service.name) {
                        if service.dependsOn.contains(where: { targets.contains($0.key) && $0.value.restart }) {
                            targets.append(service.name)
                            changed = true
                        }
                    }
                }
            }
            try stop(services: targets, timeout: timeout)
            try start(services: targets)
        }
    }

    /// `kill [-s SIGNAL] [SERVICE...]`: the signal to each running container (marked stopped, so
    /// the supervisor does not restart what a person killed).
    public func kill(services: [String], signal: Int32) throws {
        let all = containers(of: services)
        for container in all { store.markStopped(container.id) }
        try inParallel(all.filter { $0.isRunning }) { container in
            try container.kill(signal: signal)
            self.progress(ProgressEvent(.container, container.name, "Killed"))
        }
    }

    /// `rm [-f] [-s] [-v]`: stopped containers (running ones too with `stop`), their anonymous
    /// volumes with `volumes`.
    public func removeStopped(services: [String], stopFirst: Bool, timeout: Int?, volumes: Bool) throws {
        try withProjectLock {
            if stopFirst { try stop(services: services, timeout: timeout) }
            let targets = containers(of: services, oneoff: true).filter { !$0.isRunning }
            try inParallel(targets) { container in
                let anonymous = self.anonymousVolumes(of: container)
                try self.remove(container, timeout: timeout)
                if volumes { for name in anonymous { try? VolumeStore(root: self.root).remove(name) } }
            }
        }
    }
}
