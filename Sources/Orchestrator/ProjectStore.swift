import FoundationEssentials
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// What `up` wrote down about a project, so that everything after it (the supervisor, `ps`,
/// `logs`, `down`, a new supervisor after a crash) works from disk, even once the compose file
/// is gone or no longer valid:
///
///     ROOT/projects/NAME/project.json     ProjectRecord: services, their dependencies, health
///                                         checks, restart policies
///     ROOT/projects/NAME/supervisor.*     the supervisor's lock (held while it runs), socket, pid, log
///     ROOT/projects/NAME/health/ID.json   a container's health, written by the supervisor
///     ROOT/projects/NAME/restarts/ID      how often the supervisor restarted it (on-failure:N)
///     ROOT/projects/NAME/stopped/ID       stopped by a person (stop, down, kill): not restarted
///
/// The containers themselves are found by their labels (ComposeLabel), as docker compose finds
/// them: a container's record is the one truth about it.
public struct ProjectRecord: Codable, Equatable, Sendable {
    public var name: String
    public var workingDir: String
    public var configFiles: [String]
    /// Every service of the model at the last `up` (or `create`, `run`), in the file's order.
    /// (Its networks and volumes are not listed: they carry its label, which `down` goes by.)
    public var services: [ServiceRecord]

    public init(name: String, workingDir: String, configFiles: [String], services: [ServiceRecord] = []) {
        self.name = name
        self.workingDir = workingDir
        self.configFiles = configFiles
        self.services = services
    }

    public func service(_ name: String) -> ServiceRecord? { services.first { $0.name == name } }

    /// Services in start order, a level at a time (a service's dependencies in earlier levels).
    public var startLevels: [[String]] {
        var placed: [String: Int] = [:]
        let byName = Dictionary(services.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        func level(_ name: String, _ visiting: Set<String>) -> Int {
            if let known = placed[name] { return known }
            guard let service = byName[name], !visiting.contains(name) else { return 0 }
            let deps = service.dependsOn.keys.filter { byName[$0] != nil }
            let value = deps.map { level($0, visiting.union([name])) + 1 }.max() ?? 0
            placed[name] = value
            return value
        }
        for service in services { _ = level(service.name, []) }
        let count = (placed.values.max() ?? -1) + 1
        return (0..<count).map { n in services.map(\.name).filter { placed[$0] == n } }
    }
}

/// What the supervisor and `down` need of a service, once the compose file is not read again.
public struct ServiceRecord: Codable, Equatable, Sendable {
    public var name: String
    public var dependsOn: [String: DependencyRecord]
    public var healthcheck: HealthcheckSpec?
    public var restart: RestartPolicy
    public init(
        name: String, dependsOn: [String: DependencyRecord] = [:], healthcheck: HealthcheckSpec? = nil,
        restart: RestartPolicy = .no
    ) {
        self.name = name
        self.dependsOn = dependsOn
        self.healthcheck = healthcheck
        self.restart = restart
    }
}

public struct DependencyRecord: Codable, Equatable, Sendable {
    /// service_started, service_healthy or service_completed_successfully.
    public var condition: String
    /// Restart this service when the dependency is restarted by a compose command.
    public var restart: Bool
    public var required: Bool
    public init(condition: String, restart: Bool, required: Bool) {
        self.condition = condition
        self.restart = restart
        self.required = required
    }
}

/// A project's files under the root; see ProjectRecord.
public struct ProjectStore: Sendable {
    public let root: String
    public let name: String

    public init(root: String, name: String) {
        self.root = root
        self.name = name
    }

    public var directory: String { root + "/projects/" + name }
    public var recordPath: String { directory + "/project.json" }
    public var lockPath: String { directory + "/supervisor.lock" }
    public var socketPath: String { directory + "/supervisor.sock" }
    public var logPath: String { directory + "/supervisor.log" }
    public func healthPath(_ container: String) -> String { directory + "/health/" + container + ".json" }
    public func restartsPath(_ container: String) -> String { directory + "/restarts/" + container }
    public func stoppedPath(_ container: String) -> String { directory + "/stopped/" + container }

    public func load() -> ProjectRecord? {
        guard let bytes = Files.readAll(recordPath) else { return nil }
        return try? JSONDecoder().decode(ProjectRecord.self, from: Data(bytes))
    }

    public func save(_ record: ProjectRecord) throws {
        try Files.makeDirectories(directory, mode: 0o700)
        try write(record, to: recordPath)
    }

    func write<T: Encodable>(_ value: T, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        try Files.makeDirectories(Files.parentDirectory(path), mode: 0o700)
        try data.withUnsafeBytes { try Files.replace(path, with: $0, mode: 0o600) }
    }

    /// The project's containers (one-off ones too when asked), by their labels, in name order.
    public func containers(oneoff: Bool = false) -> [Container] {
        Self.containers(root: root).filter {
            let labels = $0.record.spec.labels
            return labels[ComposeLabel.project] == name && (oneoff || labels[ComposeLabel.oneoff] != "True")
        }
    }

    /// Every container under the root that a compose project made.
    static func containers(root: String) -> [Container] {
        Container.list(root: root).filter { $0.record.spec.labels[ComposeLabel.project] != nil }.sorted {
            $0.name < $1.name
        }
    }

    /// The names of the projects on this root: those with a record, and those with containers.
    public static func projectNames(root: String) -> [String] {
        let recorded = Files.names(in: root + "/projects")
        let running = containers(root: root).compactMap { $0.record.spec.labels[ComposeLabel.project] }
        return Array(Set(recorded + running)).sorted()
    }

    // MARK: what the supervisor and the CLI tell each other through files

    /// Marks a container as stopped by a person (`stop`, `kill`, `down`): the supervisor does not
    /// restart it, whatever its policy (Docker's rule for a manual stop).
    public func markStopped(_ container: String) {
        try? Files.makeDirectories(directory + "/stopped", mode: 0o700)
        let fd = open(stoppedPath(container), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd >= 0 { close(fd) }
    }

    public func clearStopped(_ container: String) {
        unlink(stoppedPath(container))
        unlink(restartsPath(container))
    }

    public func isStopped(_ container: String) -> Bool { Files.exists(stoppedPath(container)) }

    public func health(of container: String) -> HealthRecord? {
        guard let bytes = Files.readAll(healthPath(container)) else { return nil }
        return try? JSONDecoder().decode(HealthRecord.self, from: Data(bytes))
    }

    func saveHealth(_ health: HealthRecord, of container: String) throws {
        try write(health, to: healthPath(container))
    }

    public func restartCount(of container: String) -> Int {
        Files.readText(restartsPath(container)).flatMap { Int($0.trimmingWhitespace()) } ?? 0
    }

    func saveRestartCount(_ count: Int, of container: String) throws {
        try Files.makeDirectories(directory + "/restarts", mode: 0o700)
        let bytes = Array(String(count).utf8)
        try bytes.withUnsafeBytes { try Files.replace(restartsPath(container), with: $0, mode: 0o600) }
    }

    /// What is left of a removed container: its health, restart count and stop mark.
    public func forget(_ container: String) {
        unlink(healthPath(container))
        unlink(restartsPath(container))
        unlink(stoppedPath(container))
    }

    /// The whole project directory (`down`), once no supervisor holds its lock.
    public func removeAll() throws {
        if Files.exists(directory) { try TreeRemoval.remove(path: directory) }
    }
}
