import CNetlink
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A network as berth keeps it: ROOT/networks/NAME/network.json. The bridge, its gateway and the
/// subnet (reserved in IPAM under the same name) are what the kernel has; the rest is what
/// `network inspect` shows and what the embedded DNS server and the firewall need.
public struct NetworkRecord: Codable, Equatable, Sendable {
    public var name: String
    /// 64 hex digits, as Docker's network IDs.
    public var id: String
    public var driver: String
    public var bridge: String
    public var subnet: IPv4Subnet
    public var gateway: IPv4Address
    /// compose's ipam.config ip_range: where container addresses come from (nil: the subnet).
    public var ipRange: IPv4Subnet?
    /// No route out of the network, and no traffic forwarded to or from other interfaces.
    public var `internal`: Bool
    public var mtu: UInt32?
    /// Containers resolve names through the embedded DNS server on the gateway: every network
    /// but the default `bridge` one, as in Docker.
    public var embeddedDNS: Bool
    public var labels: [String: String]
    /// RFC 3339.
    public var created: String

    public init(
        name: String, id: String, bridge: String, subnet: IPv4Subnet, gateway: IPv4Address,
        ipRange: IPv4Subnet? = nil, internal: Bool = false, mtu: UInt32? = nil, embeddedDNS: Bool = true,
        labels: [String: String] = [:], created: String
    ) {
        self.name = name
        self.id = id
        driver = "bridge"
        self.bridge = bridge
        self.subnet = subnet
        self.gateway = gateway
        self.ipRange = ipRange
        self.internal = `internal`
        self.mtu = mtu
        self.embeddedDNS = embeddedDNS
        self.labels = labels
        self.created = created
    }
}

/// One container on one network: ROOT/networks/NAME/endpoints/CONTAINER_ID.json, written once the
/// container's interface is up and removed with it. The embedded DNS server answers from these.
public struct EndpointRecord: Codable, Equatable, Sendable {
    public var containerID: String
    /// The container's name (without Docker's leading slash).
    public var containerName: String
    public var hostname: String?
    /// `--network-alias`, compose's aliases and the service name: names that resolve to this
    /// endpoint on this network only.
    public var aliases: [String]
    public var address: IPv4Address
    public var macAddress: String
    /// The veth end on the bridge, and its peer's name inside ("eth0", "eth1", ...).
    public var hostInterface: String
    public var interface: String
    /// Where the container's network namespace is kept (a bind-mounted nsfs file under ROOT).
    public var namespacePath: String
    /// Servers the embedded DNS server forwards this container's other questions to (`--dns`,
    /// compose's `dns`); empty: berth's configured ones, or the host's.
    public var dnsServers: [String]

    public init(
        containerID: String, containerName: String, hostname: String?, aliases: [String], address: IPv4Address,
        macAddress: String, hostInterface: String, interface: String, namespacePath: String,
        dnsServers: [String] = []
    ) {
        self.containerID = containerID
        self.containerName = containerName
        self.hostname = hostname
        self.aliases = aliases
        self.address = address
        self.macAddress = macAddress
        self.hostInterface = hostInterface
        self.interface = interface
        self.namespacePath = namespacePath
        self.dnsServers = dnsServers
    }

    /// The names this endpoint answers to on its network, as Docker's embedded DNS knows them:
    /// the container's name, its 12-digit short ID, its host name and its aliases.
    public var names: [String] {
        var all = [containerName, String(containerID.prefix(12))]
        if let hostname, !hostname.isEmpty { all.append(hostname) }
        all += aliases
        var seen = Set<String>()
        return all.filter { seen.insert($0.lowercased()).inserted }
    }
}

/// The networks under one root:
///
///     ROOT/networks/NAME/network.json              NetworkRecord
///     ROOT/networks/NAME/endpoints/CONTAINER.json  EndpointRecord, one per attached container
///
/// Records are written atomically (a temporary file renamed over), so a reader (another berth,
/// the DNS server) sees the old or the new one, never a part.
public struct NetworkStore: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    public var directory: String { root + "/networks" }

    public func directory(of network: String) -> String { directory + "/" + network }

    public func endpointsDirectory(of network: String) -> String { directory(of: network) + "/endpoints" }

    public func network(_ name: String) -> NetworkRecord? {
        Self.read(NetworkRecord.self, directory(of: name) + "/network.json")
    }

    /// Every network, by name.
    public func networks() -> [NetworkRecord] {
        Files.names(in: directory).sorted().compactMap { network($0) }
    }

    public func endpoints(of network: String) -> [EndpointRecord] {
        let dir = endpointsDirectory(of: network)
        return Files.names(in: dir).filter { $0.hasSuffix(".json") }.sorted().compactMap {
            Self.read(EndpointRecord.self, dir + "/" + $0)
        }
    }

    /// The container's endpoint on the network, if it has one.
    public func endpoint(_ container: String, on network: String) -> EndpointRecord? {
        Self.read(EndpointRecord.self, endpointsDirectory(of: network) + "/" + container + ".json")
    }

    public func write(_ record: NetworkRecord) throws {
        try Files.makeDirectories(endpointsDirectory(of: record.name), mode: 0o700)
        try Self.write(record, directory(of: record.name) + "/network.json")
    }

    public func write(_ endpoint: EndpointRecord, on network: String) throws {
        try Files.makeDirectories(endpointsDirectory(of: network), mode: 0o700)
        try Self.write(endpoint, endpointsDirectory(of: network) + "/" + endpoint.containerID + ".json")
    }

    public func removeEndpoint(container: String, from network: String) {
        unlink(endpointsDirectory(of: network) + "/" + container + ".json")
    }

    /// The network's directory, once it has no endpoints.
    public func remove(_ network: String) throws {
        let dir = directory(of: network)
        unlink(dir + "/network.json")
        rmdir(endpointsDirectory(of: network))
        guard rmdir(dir) == 0 || errno == ENOENT else {
            throw Netlink.Error(operation: "remove \(dir)", errno: errno)
        }
    }

    private static func read<T: Decodable>(_ type: T.Type, _ path: String) -> T? {
        guard let bytes = Files.readAll(path) else { return nil }
        return try? JSONDecoder().decode(T.self, from: Data(bytes))
    }

    private static func write<T: Encodable>(_ value: T, _ path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        try data.withUnsafeBytes { try Files.replace(path, with: $0, mode: 0o600) }
    }
}
