import Build
import Compose
import Images
import Support

/// What `berth build` and `up --build` add to every service's `build:`.
public struct BuildOverrides: Sendable {
    public var buildArgs: [String: String?]
    public var noCache: Bool
    public var pull: Bool
    public var sourceDateEpoch: Int64?

    public init(
        buildArgs: [String: String?] = [:], noCache: Bool = false, pull: Bool = false,
        sourceDateEpoch: Int64? = nil
    ) {
        self.buildArgs = buildArgs
        self.noCache = noCache
        self.pull = pull
        self.sourceDateEpoch = sourceDateEpoch
    }
}

extension Service {
    /// The image the service runs: its `image:`, or for one built without it docker compose's
    /// name, PROJECT-SERVICE.
    func imageName(project: String) -> String? {
        image ?? (build != nil ? "\(project)-\(name)" : nil)
    }
}

extension Orchestrator {
    /// `berth build [SERVICE...]`: each selected service that has a `build:` section, in the
    /// order the file gives them.
    public func build(_ project: Project, services names: [String], options: BuildOverrides) throws {
        for name in names where project.service(name) == nil { throw OrchestratorError.noSuchService(name) }
        let selected = project.services.filter { (names.isEmpty || names.contains($0.name)) && $0.build != nil }
        for service in selected { try buildImage(of: service, in: project, options) }
    }

    /// Builds the service's image and names it (PROJECT-SERVICE or `image:`, plus `tags:`).
    func buildImage(of service: Service, in project: Project, _ overrides: BuildOverrides) throws {
        guard let build = service.build, let name = service.imageName(project: project.name) else { return }
        let context = build.context.hasPrefix("/") ? build.context : project.workingDir + "/" + build.context
        if let ssh = build.other["ssh"], case .list(let entries) = ssh, !entries.isEmpty {
            throw OrchestratorError("service \(service.name): build.ssh is not supported")
        }
        for key in ["additional_contexts", "cache_from", "cache_to", "platforms"] {
            if let value = build.other[key], value != .list([]), value != .map([:]) {
                throw OrchestratorError("service \(service.name): build.\(key) is not supported")
            }
        }
        // build.secrets: the project's secrets by name, a file's path or an environment value,
        // mounted where a RUN --mount=type=secret,id=NAME asks for them.
        var secretFiles: [String: String] = [:]
        var secretValues: [String: String] = [:]
        if case .list(let references)? = build.other["secrets"] {
            for case .map(let reference) in references {
                guard let source = reference["source"]?.string else { continue }
                guard let secret = project.secrets[source] else {
                    throw OrchestratorError("service \(service.name): build secret \(source) is not defined")
                }
                if let file = secret.file {
                    secretFiles[source] = file.hasPrefix("/") ? file : project.workingDir + "/" + file
                } else if let value = secret.content ?? secret.environment.flatMap({ project.environment[$0] }) {
                    secretValues[source] = value
                } else {
                    throw OrchestratorError("service \(service.name): build secret \(source) has no file or value")
                }
            }
        }
        var tags = [name]
        if case .list(let extra)? = build.other["tags"] { tags += extra.compactMap(\.string) }
        var args: [String: String?] = [:]
        // An arg without a value takes the project's environment, as compose does.
        for (k, v) in build.args { args[k] = .some(v ?? project.environment[k]) }
        for (k, v) in overrides.buildArgs { args[k] = .some(v) }
        var noCache = overrides.noCache
        if case .bool(true)? = build.other["no_cache"] { noCache = true }
        var entitlements: [String] = []
        if case .list(let granted)? = build.other["entitlements"] { entitlements = granted.compactMap(\.string) }
        var pull = overrides.pull
        if case .bool(true)? = build.other["pull"] { pull = true }
        let options = BuildOptions(
            context: context, dockerfile: build.dockerfile, dockerfileText: build.dockerfileInline, buildArgs: args,
            target: build.target, noCache: noCache, pull: pull, tags: tags, labels: build.labels,
            secrets: secretFiles, network: build.network ?? "default", sourceDateEpoch: overrides.sourceDateEpoch,
            allowHostNetwork: entitlements.contains("network.host"), secretValues: secretValues)
        progress(ProgressEvent(.image, name, "Building", .working))
        do {
            let builder = try Builder(root: root, progress: buildProgress, pull: { try self.pull($0) })
            _ = try builder.build(options)
        } catch {
            progress(ProgressEvent(.image, name, "Error", .failed, detail: "\(error)"))
            throw OrchestratorError("service \(service.name): build: \(error)")
        }
        progress(ProgressEvent(.image, name, "Built"))
    }
}
