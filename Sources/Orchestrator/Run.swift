import Compose
import Images
import Runtime

/// `run`'s overrides of a service, as docker compose's flags give them.
public struct RunOptions: Sendable {
    public var command: [String]?
    public var entrypoint: [String]?
    /// KEY=VALUE, over the service's environment.
    public var env: [String] = []
    public var publish: [String] = []
    /// `--service-ports`: the service's own published ports (off by default, as docker compose).
    public var servicePorts = false
    public var mounts: [MountSpec] = []
    public var name: String?
    public var user: String?
    public var workingDir: String?
    public var tty = false
    public var interactive = false
    public var autoRemove = false
    public var noDeps = false
    public init() {}
}

extension Orchestrator {
    /// `run SERVICE`: the service's dependencies brought up (unless `noDeps`), then a one-off
    /// container of it made (PROJECT-SERVICE-run-ID, labelled oneoff), not started: the caller
    /// starts it attached or detached.
    public func prepareRun(_ project: Project, service name: String, _ options: RunOptions) throws -> Container {
        try withProjectLock { try prepareRunLocked(project, service: name, options) }
    }

    private func prepareRunLocked(_ project: Project, service name: String, _ options: RunOptions) throws -> Container {
        guard let service = project.service(name) else { throw OrchestratorError.noSuchService(name) }
        let dependencies = project.dependencyGraph.subgraph([name]).subtracting([name])
        if !options.noDeps && !dependencies.isEmpty {
            var up = UpOptions()
            up.services = Array(dependencies).sorted()
            try self.up(project, up)
            try waitForDependencies(of: service, in: project, selected: dependencies)
        }
        // The service's own image, networks and volumes (its dependencies' came with their `up`).
        try updatedRecord(project)
        try buildImages(of: [service], in: project, UpOptions())
        try pullImages(of: [service].filter { $0.build == nil }, policy: nil)
        let resources = ProjectResources(root: root, progress: progress, warn: warn)
        try resources.ensureNetworks(for: [service], in: project)
        try resources.ensureVolumes(for: [service], in: project)
        let suffix = String(ServiceSpecBuilder.randomHex(6).prefix(12))
        let containerName = options.name ?? "\(project.name)-\(name)-run-\(suffix)"
        let image = try? ImageStore(root: root).image(service.imageName(project: project.name) ?? "")
        var spec = try specBuilder(project).spec(
            for: service, number: 1, name: containerName, oneoff: true, image: image)
        if let command = options.command { spec.command = command }
        if let entrypoint = options.entrypoint { spec.entrypoint = entrypoint }
        spec.env += options.env
        spec.publish = (options.servicePorts ? spec.publish ?? [] : []) + options.publish
        spec.mounts += options.mounts
        if let user = options.user { spec.user = user }
        if let workingDir = options.workingDir { spec.workingDir = workingDir }
        spec.tty = options.tty
        spec.interactive = options.interactive
        spec.autoRemove = options.autoRemove
        return try create(spec)
    }

    /// `pull [SERVICE...]`: every service's image from its registry (`ignoreFailures`: go on).
    public func pull(_ project: Project, services: [String]) throws {
        let selected = project.services.filter { services.isEmpty || services.contains($0.name) }
        try pullImages(of: selected.filter { $0.image != nil }, policy: "always")
    }
}
