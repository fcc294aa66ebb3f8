import YAML

/// A value kept as written (after interpolation and normalization): extensions (`x-*`) and the
/// compose keys berth accepts and prints but does not act on.
public indirect enum RawValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([RawValue])
    case map([String: RawValue])

    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The text a scalar stands for ("" for null), nil for collections.
    public var scalarText: String? {
        switch self {
        case .null: return ""
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return formatGoFloat(d, bits: 64)
        case .string(let s): return s
        case .list, .map: return nil
        }
    }
}

/// The loaded, merged, normalized and validated compose project.
public struct Project: Sendable {
    public var name: String
    /// The project directory: relative paths were resolved against it.
    public var workingDir: String
    /// Enabled services, ordered by name.
    public var services: [Service]
    /// Services left out because none of their profiles is active, ordered by name.
    public var disabledServices: [Service]
    public var networks: [String: Network]
    public var volumes: [String: Volume]
    public var configs: [String: FileObject]
    public var secrets: [String: FileObject]
    /// Top-level `x-*` keys.
    public var extensions: [String: RawValue]
    /// Top-level `models`, kept as written.
    public var models: [String: RawValue] = [:]
    /// The compose files that were read, in order ("-" for standard input).
    public var composeFiles: [String]
    /// The environment used for interpolation: shell environment over the .env file(s).
    public var environment: [String: String]
    /// The active profiles.
    public var profiles: [String]
    /// Whether variables were substituted (`config` then prints a literal `$` as `$$`).
    public var interpolated: Bool
    /// Loaded with `ProjectOptions.fastExit`: rendering keeps its trees for the process lifetime.
    var fastExit = false

    public init(
        name: String, workingDir: String, services: [Service] = [], disabledServices: [Service] = [],
        networks: [String: Network] = [:], volumes: [String: Volume] = [:],
        configs: [String: FileObject] = [:], secrets: [String: FileObject] = [:],
        extensions: [String: RawValue] = [:], composeFiles: [String] = [],
        environment: [String: String] = [:], profiles: [String] = [], interpolated: Bool = true
    ) {
        self.name = name
        self.workingDir = workingDir
        self.services = services
        self.disabledServices = disabledServices
        self.networks = networks
        self.volumes = volumes
        self.configs = configs
        self.secrets = secrets
        self.extensions = extensions
        self.composeFiles = composeFiles
        self.environment = environment
        self.profiles = profiles
        self.interpolated = interpolated
    }

    public func service(_ name: String) -> Service? {
        // services are sorted by name: binary search
        var lo = 0
        var hi = services.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if services[mid].name < name { lo = mid + 1 } else { hi = mid }
        }
        return lo < services.count && services[lo].name == name ? services[lo] : nil
    }

    public var serviceNames: [String] { services.map(\.name) }

    /// Start order of the enabled services: depends_on, links, network_mode/ipc/pid `service:X`,
    /// volumes_from.
    public var dependencyGraph: DependencyGraph {
        var edges: [DependencyGraph.Edge] = []
        let enabled = Set(services.map(\.name))
        for s in services {
            for e in s.dependencyEdges where enabled.contains(e.to) {
                edges.append(e)
            }
        }
        return DependencyGraph(services: services.map(\.name), edges: edges)
    }
}

public struct Service: Equatable, Sendable {
    public var name: String
    public var profiles: [String] = []
    public var build: Build?
    public var capAdd: [String] = []
    public var capDrop: [String] = []
    public var cpus: Double?
    public var cpuShares: Int64?
    /// nil: not set (the image's CMD); []: explicitly empty.
    public var command: [String]?
    public var configs: [FileReference] = []
    public var containerName: String?
    public var dependsOn: [String: Dependency] = [:]
    public var deploy: Deploy?
    public var devices: [DeviceMapping] = []
    public var dns: [String] = []
    public var dnsOpt: [String] = []
    public var dnsSearch: [String] = []
    public var domainname: String?
    public var entrypoint: [String]?
    /// Resolved environment: env_file contents under `environment`; nil value = declared
    /// without a value and not found in the project environment.
    public var environment: [String: String?] = [:]
    public var envFiles: [EnvFile] = []
    public var expose: [String] = []
    public var extraHosts: [String: [String]] = [:]
    public var hostname: String?
    public var healthcheck: Healthcheck?
    public var image: String?
    public var `init`: Bool?
    public var ipc: String?
    public var labels: [String: String] = [:]
    public var links: [String] = []
    public var logging: Logging?
    public var memLimit: Int64?
    public var memReservation: Int64?
    public var memswapLimit: Int64?
    public var networkMode: String?
    /// Networks the service joins; a nil value means the default settings.
    public var networks: [String: ServiceNetwork?] = [:]
    public var pid: String?
    public var pidsLimit: Int64?
    public var platform: String?
    public var ports: [ServicePort] = []
    public var privileged = false
    public var pullPolicy: String?
    public var readOnly = false
    public var restart: String?
    public var scale: Int?
    public var secrets: [FileReference] = []
    public var securityOpt: [String] = []
    public var shmSize: Int64?
    public var stdinOpen = false
    public var stopGracePeriod: ComposeDuration?
    public var stopSignal: String?
    public var sysctls: [String: String] = [:]
    public var tmpfs: [String] = []
    public var tty = false
    public var ulimits: [String: Ulimit] = [:]
    public var user: String?
    public var volumes: [ServiceVolume] = []
    public var volumesFrom: [String] = []
    public var workingDir: String?
    /// `x-*` keys of the service.
    public var extensions: [String: RawValue] = [:]
    /// Dependencies added by normalization (links, `service:` namespaces, volumes_from), with why.
    var implicitDependencies: [String: String] = [:]
    /// Compose keys berth accepts and prints but does not model (e.g. `cgroup_parent`, `gpus`).
    public var other: [String: RawValue] = [:]
    /// Where keys were written (key path relative to the service → mark), for later errors.
    var marks: [String: Mark] = [:]

    public init(name: String) { self.name = name }

    /// The number of containers: `scale`, else `deploy.replicas`, else 1.
    public var replicas: Int { scale ?? deploy?.replicas ?? 1 }

    /// Every service this one needs started first, with the reason.
    public var dependencyEdges: [DependencyGraph.Edge] {
        var edges: [DependencyGraph.Edge] = []
        for dep in dependsOn.keys.sorted() {
            edges.append(
                .init(
                    from: name, to: dep,
                    kind: implicitDependencies[dep].flatMap(DependencyGraph.Edge.Kind.init(rawValue:)) ?? .dependsOn,
                    mark: marks["depends_on.\(dep)"]))
        }
        return edges
    }
}

public struct Build: Equatable, Sendable {
    public var context: String
    public var dockerfile: String?
    public var dockerfileInline: String?
    public var args: [String: String?] = [:]
    public var labels: [String: String] = [:]
    public var target: String?
    public var network: String?
    public var shmSize: Int64?
    public var other: [String: RawValue] = [:]
    public var extensions: [String: RawValue] = [:]
    public init(context: String) { self.context = context }
}

public struct Dependency: Equatable, Sendable {
    public var condition: String
    public var restart: Bool
    public var required: Bool
    public var extensions: [String: RawValue] = [:]
    public init(condition: String = "service_started", restart: Bool = false, required: Bool = true) {
        self.condition = condition
        self.restart = restart
        self.required = required
    }
}

public struct Healthcheck: Equatable, Sendable {
    public var test: [String]?
    public var timeout: ComposeDuration?
    public var interval: ComposeDuration?
    public var retries: UInt64?
    public var startPeriod: ComposeDuration?
    public var startInterval: ComposeDuration?
    public var disable = false
    public var extensions: [String: RawValue] = [:]
    public init() {}
}

public struct Deploy: Equatable, Sendable {
    public var mode: String?
    public var replicas: Int?
    public var labels: [String: String] = [:]
    public var resources = Resources()
    public var restartPolicy: DeployRestartPolicy?
    public var endpointMode: String?
    /// update_config, rollback_config, placement as written.
    public var other: [String: RawValue] = [:]
    public var extensions: [String: RawValue] = [:]
    public init() {}
}

public struct DeployRestartPolicy: Equatable, Sendable {
    public var condition: String?
    public var delay: ComposeDuration?
    public var maxAttempts: UInt64?
    public var window: ComposeDuration?
    public var extensions: [String: RawValue] = [:]
    public init() {}
}

public struct Resources: Equatable, Sendable {
    public var limits: Resource?
    public var reservations: Resource?
    public var extensions: [String: RawValue] = [:]
    public init() {}
}

public struct Resource: Equatable, Sendable {
    public var cpus: Double?
    public var memory: Int64?
    public var pids: Int64?
    /// devices, generic_resources as written.
    public var other: [String: RawValue] = [:]
    public var extensions: [String: RawValue] = [:]
    public init() {}
}

public struct ServicePort: Equatable, Sendable {
    public var name: String?
    public var mode: String?
    public var hostIP: String?
    public var target: Int
    /// A port or a range ("8000-8010"); nil lets the host pick.
    public var published: String?
    public var `protocol`: String?
    public var appProtocol: String?
    public var extensions: [String: RawValue] = [:]

    public init(
        name: String? = nil, mode: String? = "ingress", hostIP: String? = nil, target: Int,
        published: String? = nil, protocol: String? = "tcp", appProtocol: String? = nil
    ) {
        self.name = name
        self.mode = mode
        self.hostIP = hostIP
        self.target = target
        self.published = published
        self.protocol = `protocol`
        self.appProtocol = appProtocol
    }
}

public struct ServiceVolume: Equatable, Sendable {
    /// bind, volume, tmpfs, image, npipe or cluster.
    public var type: String
    /// Host path (bind, absolute), volume key in the project (volume), nil for anonymous volumes.
    public var source: String?
    public var target: String
    public var readOnly = false
    public var consistency: String?
    public var bind: BindOptions?
    public var volume: VolumeOptions?
    public var tmpfs: TmpfsOptions?
    public var image: ImageVolumeOptions?
    public var extensions: [String: RawValue] = [:]
    public init(type: String, source: String? = nil, target: String) {
        self.type = type
        self.source = source
        self.target = target
    }
}

public struct BindOptions: Equatable, Sendable {
    public var propagation: String?
    public var createHostPath = false
    public var selinux: String?
    public var recursive: String?
    public var extensions: [String: RawValue] = [:]
    public init() {}
}

public struct VolumeOptions: Equatable, Sendable {
    public var nocopy = false
    public var subpath: String?
    public var labels: [String: String] = [:]
    public var extensions: [String: RawValue] = [:]
    public init(nocopy: Bool = false) { self.nocopy = nocopy }
}

public struct TmpfsOptions: Equatable, Sendable {
    public var size: Int64?
    public var mode: UInt32?
    public var extensions: [String: RawValue] = [:]
    public init() {}
}

public struct ImageVolumeOptions: Equatable, Sendable {
    public var subpath: String?
    public var extensions: [String: RawValue] = [:]
    public init() {}
}

public struct ServiceNetwork: Equatable, Sendable {
    public var aliases: [String] = []
    public var ipv4Address: String?
    public var ipv6Address: String?
    public var priority: Int?
    public var gwPriority: Int?
    public var interfaceName: String?
    public var macAddress: String?
    public var linkLocalIPs: [String] = []
    public var driverOpts: [String: String] = [:]
    public var extensions: [String: RawValue] = [:]
    public init() {}
}

public struct FileReference: Equatable, Sendable {
    public var source: String
    public var target: String?
    public var uid: String?
    public var gid: String?
    public var mode: UInt32?
    public var extensions: [String: RawValue] = [:]
    public init(source: String) { self.source = source }
}

public struct DeviceMapping: Equatable, Sendable {
    public var source: String
    public var target: String
    public var permissions: String
    public var extensions: [String: RawValue] = [:]
    public init(source: String, target: String, permissions: String = "rwm") {
        self.source = source
        self.target = target
        self.permissions = permissions
    }
}

public struct Ulimit: Equatable, Sendable {
    /// Set when written as one number (soft = hard).
    public var single: Int?
    public var soft: Int?
    public var hard: Int?
    public var extensions: [String: RawValue] = [:]
    public init(single: Int) { self.single = single }
    public init(soft: Int, hard: Int) {
        self.soft = soft
        self.hard = hard
    }
    public var effectiveSoft: Int { single ?? soft ?? 0 }
    public var effectiveHard: Int { single ?? hard ?? 0 }
}

public struct Logging: Equatable, Sendable {
    public var driver: String?
    public var options: [String: String] = [:]
    public var extensions: [String: RawValue] = [:]
    public init() {}
}

public struct EnvFile: Equatable, Sendable {
    public var path: String
    public var required = true
    public var format: String?
    public init(path: String, required: Bool = true) {
        self.path = path
        self.required = required
    }
}

public struct Network: Equatable, Sendable {
    /// The engine-side name: `<project>_<key>` unless set or external.
    public var name: String?
    public var driver: String?
    public var driverOpts: [String: String] = [:]
    public var ipam = IPAM()
    public var external = false
    public var `internal` = false
    public var attachable = false
    public var labels: [String: String] = [:]
    public var enableIPv4: Bool?
    public var enableIPv6: Bool?
    public var extensions: [String: RawValue] = [:]
    public init() {}
}

public struct IPAM: Equatable, Sendable {
    public var driver: String?
    public var config: [IPAMPool] = []
    public var options: [String: String] = [:]
    public var extensions: [String: RawValue] = [:]
    public init() {}
}

public struct IPAMPool: Equatable, Sendable {
    public var subnet: String?
    public var gateway: String?
    public var ipRange: String?
    public var auxAddresses: [String: String] = [:]
    public var extensions: [String: RawValue] = [:]
    public init() {}
}

public struct Volume: Equatable, Sendable {
    public var name: String?
    public var driver: String?
    public var driverOpts: [String: String] = [:]
    public var external = false
    public var labels: [String: String] = [:]
    public var extensions: [String: RawValue] = [:]
    public init() {}
}

/// A top-level config or secret.
public struct FileObject: Equatable, Sendable {
    public var name: String?
    public var file: String?
    public var environment: String?
    /// Inline `content` (configs), or the value of `environment` once resolved.
    public var content: String?
    public var external = false
    public var labels: [String: String] = [:]
    public var driver: String?
    public var driverOpts: [String: String] = [:]
    public var templateDriver: String?
    public var extensions: [String: RawValue] = [:]
    public init() {}
}
