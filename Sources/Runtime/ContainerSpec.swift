/// What a container should be, as a plain description: the CLI or the orchestrator resolves
/// the image and hands Runtime its layer paths and config values (Runtime does not know Images).

/// The run-time defaults the image carries (its config's Entrypoint, Cmd, Env, ...).
public struct ImageDefaults: Codable, Equatable, Sendable {
    public var entrypoint: [String]?
    public var cmd: [String]?
    public var env: [String]?
    public var workingDir: String?
    public var user: String?
    public var stopSignal: String?
    /// "80/tcp", "53/udp": the ports the image says its program listens on (`EXPOSE`).
    public var exposedPorts: [String]?

    /// Plain values, so that Runtime needs nothing of Images: the one conversion from an image's
    /// config is `ImageDefaults(config:)` in the ContainerSpecs module, which sees both.
    public init(
        entrypoint: [String]? = nil, cmd: [String]? = nil, env: [String]? = nil,
        workingDir: String? = nil, user: String? = nil, stopSignal: String? = nil,
        exposedPorts: [String]? = nil
    ) {
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.env = env
        self.workingDir = workingDir
        self.user = user
        self.stopSignal = stopSignal
        self.exposedPorts = exposedPorts
    }
}

/// A bind mount, a named volume (a directory under ROOT/volumes for now) or a tmpfs.
public struct MountSpec: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case bind, volume, tmpfs }
    public var kind: Kind
    /// Host path (bind), volume name (volume), unused for tmpfs.
    public var source: String
    /// Absolute path inside the container.
    public var target: String
    public var readOnly: Bool
    /// Bind only: create a missing host directory (the `-v` short syntax does; `--mount` does not).
    public var createHostPath: Bool
    /// tmpfs only: size in bytes and mode bits.
    public var tmpfsSize: Int64?
    public var tmpfsMode: UInt32?
    /// tmpfs only: the owner of its root (Docker's `uid=`/`gid=` options).
    public var tmpfsUID: UInt32?
    public var tmpfsGID: UInt32?
    /// tmpfs only: allow execution (Docker's `exec`; its tmpfs mounts are noexec otherwise).
    public var tmpfsExec: Bool?
    /// Bind and volume only: mount propagation; nil is Docker's default, rprivate.
    public var propagation: Propagation?
    /// Volume only: true leaves a new or empty volume empty (Docker's `nocopy`); otherwise the
    /// image's content at the target is copied into it when the container is created.
    public var noCopy: Bool?

    /// Docker's bind propagation modes. The r- forms apply to every mount below the bind too.
    public enum Propagation: String, Codable, Sendable, CaseIterable {
        case rprivate, `private`, rslave, slave, rshared, shared
    }

    public init(
        kind: Kind, source: String = "", target: String, readOnly: Bool = false,
        createHostPath: Bool = false, tmpfsSize: Int64? = nil, tmpfsMode: UInt32? = nil,
        tmpfsUID: UInt32? = nil, tmpfsGID: UInt32? = nil, tmpfsExec: Bool? = nil,
        propagation: Propagation? = nil, noCopy: Bool? = nil
    ) {
        self.kind = kind
        self.source = source
        self.target = target
        self.readOnly = readOnly
        self.createHostPath = createHostPath
        self.tmpfsSize = tmpfsSize
        self.tmpfsMode = tmpfsMode
        self.tmpfsUID = tmpfsUID
        self.tmpfsGID = tmpfsGID
        self.tmpfsExec = tmpfsExec
        self.propagation = propagation
        self.noCopy = noCopy
    }
}

/// A container's network, by the names Docker gives the modes (`--network`, compose's
/// `network_mode`). On disk in Swift's synthesized form (`{"none":{}}`, `{"namespace":{"path":
/// ...}}`): records written before `default` existed said `none` for what both modes are now,
/// a namespace with only loopback, and read back as `none`.
public enum NetworkMode: Codable, Equatable, Sendable {
    /// Docker's `none`: a network namespace of the container's own with only loopback, up.
    case none
    /// Docker's `host`: the host's network namespace.
    case host
    /// A namespace of its own joined to bridge networks: those of the spec's `networks`, or
    /// berth's default `bridge` network when it names none (Docker's `default`). The CLI and the
    /// orchestrator attach them (ContainerNetworking) while the container starts.
    case `default`
    /// Docker's `container:ID`: the network namespace of another container, which must be
    /// running when this one starts; its host name too, and copies of its /etc/hosts and
    /// /etc/resolv.conf.
    case container(id: String)
    /// Join an existing namespace (a bind-mounted /run/netns file made by the Network module;
    /// podman's `ns:PATH`).
    case namespace(path: String)

    /// True when the container gets a new network namespace of its own (made by the clone, or
    /// beforehand by create() or its caller).
    public var hasOwnNamespace: Bool {
        switch self {
        case .none, .default: return true
        case .host, .container, .namespace: return false
        }
    }

    /// The mode as Docker writes it (`docker inspect`'s HostConfig.NetworkMode).
    public var name: String {
        switch self {
        case .none: return "none"
        case .host: return "host"
        case .default: return "default"
        case .container(let id): return "container:" + id
        case .namespace(let path): return "ns:" + path
        }
    }
}

/// One network a container joins (`--network NAME`, compose's `networks:`), with what it asks
/// of it there.
public struct NetworkAttachmentSpec: Codable, Equatable, Sendable {
    public var name: String
    /// `--network-alias`, compose's aliases (and the service name, which the orchestrator adds).
    public var aliases: [String]
    /// `--ip`, compose's ipv4_address.
    public var ipv4Address: String?
    /// `--mac-address`, compose's mac_address.
    public var macAddress: String?

    public init(name: String, aliases: [String] = [], ipv4Address: String? = nil, macAddress: String? = nil) {
        self.name = name
        self.aliases = aliases
        self.ipv4Address = ipv4Address
        self.macAddress = macAddress
    }
}

public enum SeccompMode: Codable, Equatable, Sendable {
    /// Docker's default profile (Sources/Runtime/SeccompDefaultProfile.swift).
    case `default`
    case unconfined
    /// A profile in Docker's JSON format.
    case profile(path: String)
}

public struct Ulimit: Codable, Equatable, Sendable {
    public var name: String
    public var soft: UInt64
    public var hard: UInt64
    public init(name: String, soft: UInt64, hard: UInt64) {
        self.name = name
        self.soft = soft
        self.hard = hard
    }
}

public struct ContainerSpec: Codable, Equatable, Sendable {
    public var name: String?
    /// The image reference as the user wrote it, and its ID (for ps/inspect).
    public var image: String
    public var imageID: String
    /// Unpacked layer directories, lowest first.
    public var layerPaths: [String]
    public var imageDefaults: ImageDefaults

    /// nil: the image's; [] given: reset (Docker's `--entrypoint ""`).
    public var entrypoint: [String]?
    /// nil or []: the image's Cmd (unless an entrypoint was given, which resets it).
    public var command: [String]?
    /// KEY=VALUE, applied over the image's Env.
    public var env: [String]
    public var workingDir: String?
    public var user: String?
    public var groupAdd: [String]
    public var hostname: String?
    public var domainname: String?
    public var mounts: [MountSpec]
    public var readOnly: Bool
    public var network: NetworkMode
    public var capAdd: [String]
    public var capDrop: [String]
    public var privileged: Bool
    public var seccomp: SeccompMode
    public var noNewPrivileges: Bool
    public var ulimits: [Ulimit]
    public var sysctls: [String: String]
    public var oomScoreAdj: Int?
    public var tty: Bool
    public var interactive: Bool
    public var initProcess: Bool
    /// cgroup limits (memory, cpus, shares, pids).
    public var resources: CgroupLimits
    /// /dev/shm size in bytes (Docker's default 64 MiB).
    public var shmSize: Int64?
    public var stopSignal: String?
    /// Seconds between the stop signal and SIGKILL (Docker's default 10).
    public var stopTimeout: Int?
    public var autoRemove: Bool
    public var labels: [String: String]
    /// "name:ip" lines added to /etc/hosts ("host-gateway" as the ip: the first network's gateway).
    public var extraHosts: [String]
    /// The bridge networks of a `.default` network mode, first one first (its gateway is the
    /// default route); nil or empty: the default `bridge` network.
    public var networks: [NetworkAttachmentSpec]?
    /// Published ports as `-p` writes them ("127.0.0.1:8080:80/tcp").
    public var publish: [String]?
    /// `--dns`, `--dns-search`, `--dns-option` (compose's dns, dns_search, dns_opt).
    public var dns: [String]?
    public var dnsSearch: [String]?
    public var dnsOptions: [String]?
    /// Ports exposed beyond the image's (`--expose`), as "80/tcp"; nil in records written
    /// before there were any. `allExposedPorts` adds the image's.
    public var exposedPorts: [String]?
    /// Log rotation of ROOT/containers/ID/container.log (json-file's max-size / max-file).
    public var logMaxSize: Int64?
    public var logMaxFiles: Int?
    /// Docker's logging driver: nil is json-file; "none" keeps no log (the output is dropped,
    /// and `logs` has nothing to read, as Docker says).
    public var logDriver: String?

    public init(
        image: String, imageID: String = "", layerPaths: [String], imageDefaults: ImageDefaults = ImageDefaults()
    ) {
        self.image = image
        self.imageID = imageID
        self.layerPaths = layerPaths
        self.imageDefaults = imageDefaults
        env = []
        groupAdd = []
        mounts = []
        readOnly = false
        network = .default
        capAdd = []
        capDrop = []
        privileged = false
        seccomp = .default
        noNewPrivileges = false
        ulimits = []
        sysctls = [:]
        tty = false
        interactive = false
        initProcess = false
        resources = CgroupLimits()
        autoRemove = false
        labels = [:]
        extraHosts = []
    }
}

extension ContainerSpec {
    /// The image's exposed ports and the container's own, once each, in Docker's order (by
    /// number, then protocol), as "80/tcp": what Docker keeps as the container's
    /// Config.ExposedPorts.
    public var allExposedPorts: [String] {
        let all = Set((imageDefaults.exposedPorts ?? []) + (exposedPorts ?? []))
        return all.sorted { a, b in
            let (portA, protoA) = Self.splitPort(a)
            let (portB, protoB) = Self.splitPort(b)
            return portA != portB ? portA < portB : protoA < protoB
        }
    }

    /// "80/tcp" as (80, "tcp"); a port without a protocol is tcp, as in Docker.
    static func splitPort(_ text: String) -> (port: Int, proto: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        return (Int(parts.first ?? "") ?? 0, parts.count == 2 ? String(parts[1]) : "tcp")
    }
}
