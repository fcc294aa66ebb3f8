import CNetlink
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// The bridge networks of one root: made (subnet, bridge, gateway, firewall), joined by network
/// namespaces (a veth pair and an address each) and taken down again. It is handed namespaces
/// and container IDs as names, never containers: the CLI and the orchestrator say which
/// container is alive.
public struct BridgeNetworks: Sendable {
    /// What `network create` and compose's `networks:` ask for.
    public struct Options: Sendable {
        public var subnet: IPv4Subnet?
        public var gateway: IPv4Address?
        public var ipRange: IPv4Subnet?
        public var `internal` = false
        public var mtu: UInt32?
        public var labels: [String: String] = [:]
        public var embeddedDNS = true

        public init() {}
    }

    /// What a container asks of one network.
    public struct EndpointOptions: Sendable {
        public var containerName: String
        public var hostname: String?
        public var aliases: [String] = []
        public var address: IPv4Address?
        public var macAddress: [UInt8]?
        public var dnsServers: [String] = []

        public init(containerName: String, hostname: String? = nil) {
            self.containerName = containerName
            self.hostname = hostname
        }
    }

    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public var description: String
        /// The network does not exist (Docker's "not found").
        public var isNotFound = false

        public init(_ description: String, notFound: Bool = false) {
            self.description = description
            isNotFound = notFound
        }

        static func notFound(_ name: String) -> Error { Error("network \(name) not found", notFound: true) }
    }

    /// The network every container without `--network` joins (Docker's `bridge`, docker0): made on
    /// first use, without the embedded DNS server, as Docker's default network has none.
    public static let defaultNetwork = "bridge"

    /// Held while a network is made or removed: subnets are checked against the host's routes,
    /// which other roots' bridges add, so the check and the bridge must be one step for all.
    static let hostLockPath = "/run/berth-network.lock"

    public let root: String
    public let store: NetworkStore
    /// Addresses; the pools (config.json) are read only where a subnet is chosen, so that a
    /// broken config.json stops `network create`, not `rm`.
    let ipam: IPAM

    public init(root: String) {
        self.root = root
        store = NetworkStore(root: root)
        ipam = IPAM(directory: root + "/ipam")
    }

    /// The bridge of network `name` under this root: the root is part of the hash, so two roots
    /// (two test runs) never share a bridge.
    public func bridgeName(of name: String) -> String { BridgeName.of(project: root, network: name) }

    /// Docker's rule for network names.
    public static func validateName(_ name: String) throws {
        let bytes = Array(name.utf8)
        let allowed = { (b: UInt8) in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
                || b == UInt8(ascii: "_") || b == UInt8(ascii: ".") || b == UInt8(ascii: "-")
        }
        guard let first = bytes.first, allowed(first), first != UInt8(ascii: "_"), first != UInt8(ascii: "."),
            first != UInt8(ascii: "-"), bytes.allSatisfy(allowed)
        else {
            throw Error("invalid network name \"\(name)\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        }
    }

    /// Makes network `name`: a subnet (given, or the first free one of the pools that neither
    /// another network nor a host route uses), the bridge with the gateway on it, up, and the
    /// firewall's rules. Nothing is left of it when a step fails.
    @discardableResult
    public func create(_ name: String, _ options: Options = Options()) throws -> NetworkRecord {
        try Self.validateName(name)
        let lock = try Self.hostLock()
        defer { lock.keep() }
        if store.network(name) != nil { throw Error("network with name \(name) already exists") }
        let bridge = bridgeName(of: name)
        let netlink = try Netlink()
        if (try? netlink.index(of: bridge)) != nil {
            throw Error("cannot create network \(name): an interface named \(bridge) already exists")
        }
        let routed = try netlink.routedSubnets()
        if let wanted = options.subnet, let route = routed.first(where: { $0.overlaps(wanted) }) {
            throw Error("subnet \(wanted) of network \(name) overlaps \(route), which the host routes")
        }
        let reserved: IPAM.Network
        do {
            let ipam = IPAM(directory: ipam.directory, pools: try NetworkConfig.load(root: root).pools)
            reserved = try ipam.reserveNetwork(
                name, subnet: options.subnet, gateway: options.gateway, ipRange: options.ipRange, avoiding: routed)
        } catch { throw Error("\(error)") }
        let record = NetworkRecord(
            name: name, id: Self.randomID(), bridge: bridge, subnet: reserved.subnet, gateway: reserved.gateway,
            ipRange: reserved.ipRange, internal: options.internal, mtu: options.mtu,
            embeddedDNS: options.embeddedDNS, labels: options.labels, created: Timestamp.now())
        do {
            try bringUp(record, netlink)
            try store.write(record)
        } catch {
            try? Firewall.removeNetwork(bridge: bridge)
            try? netlink.deleteLink(bridge)
            try? ipam.releaseNetwork(name)
            try? store.remove(name)
            throw error
        }
        return record
    }

    /// The network, made first when it is the default one.
    public func network(_ name: String) throws -> NetworkRecord {
        try Self.validateName(name)
        if let record = store.network(name) { return record }
        guard name == Self.defaultNetwork else { throw Error.notFound(name) }
        var options = Options()
        options.embeddedDNS = false
        do { return try create(name, options) } catch let e as Error where e.description.hasSuffix("already exists") {
            // Made by another berth meanwhile.
            guard let record = store.network(name) else { throw e }
            return record
        }
    }

    /// Removes network `name`: its bridge, rules, subnet and records. Refused while a container
    /// is attached (Docker's "has active endpoints").
    public func remove(_ name: String) throws {
        try Self.validateName(name)
        let lock = try Self.hostLock()
        defer { lock.keep() }
        // Read under the lock: a removal and a new network of the same name may race.
        guard let record = store.network(name) else { throw Error.notFound(name) }
        let attached = store.endpoints(of: name)
        guard attached.isEmpty else {
            throw Error(
                "error while removing network: network \(name) id \(record.id) has active endpoints ("
                    + attached.map(\.containerName).joined(separator: ", ") + ")")
        }
        let netlink = try Netlink()
        try Firewall.removeNetwork(bridge: record.bridge)
        do { try netlink.deleteLink(record.bridge) } catch let e as Netlink.Error where e.errno == ENODEV {}
        try ipam.releaseNetwork(name)
        try store.remove(name)
    }

    /// Joins the namespace kept at `namespacePath` to `network` as interface `interface`
    /// ("eth0" for the first network, which gives the default route unless it is internal).
    /// The address is the one asked for or the next free; when none is free, addresses whose
    /// holders `isAlive` says are gone are taken back first.
    public func connect(
        namespacePath: String, container: String, to network: NetworkRecord, interface: String,
        defaultRoute: Bool, _ options: EndpointOptions, isAlive: (String) -> Bool,
        reclaim: ((String) throws -> Void)? = nil
    ) throws -> EndpointRecord {
        // Shared: joins go on side by side, but no network is made or removed meanwhile (a
        // prune would otherwise take the bridge away between its check and the veth).
        let lock = try Self.hostLock(exclusive: false)
        defer { lock.keep() }
        guard let current = store.network(network.name), current.id == network.id else {
            throw Error.notFound(network.name)
        }
        try ensureBridge(network)
        let address: IPv4Address
        do {
            address = try ipam.allocate(on: network.name, for: container, wanted: options.address)
        } catch {
            // A container that died without teardown may hold it: take those back and try again.
            guard try sweep(network, isAlive: isAlive, reclaim: reclaim) > 0 else { throw Error("\(error)") }
            do { address = try ipam.allocate(on: network.name, for: container, wanted: options.address) } catch {
                throw Error("\(error)")
            }
        }
        let hostInterface = Self.hostInterface(container: container, network: network.name)
        let mac = options.macAddress ?? Attachment.macAddress(for: address)
        do {
            guard let ns = FileDescriptor(taking: open(namespacePath, O_RDONLY | O_CLOEXEC)) else {
                throw Netlink.Error(operation: "open network namespace \(namespacePath)", errno: errno)
            }
            let netlink = try Netlink()
            let attachment = Attachment(
                hostInterface: hostInterface, interface: interface, address: address,
                prefixLength: network.subnet.prefixLength,
                gateway: defaultRoute && !network.internal ? network.gateway : nil, mtu: network.mtu,
                macAddress: mac)
            do { try netlink.attach(namespace: ns.rawValue, to: network.bridge, attachment) } catch let e
                as Netlink.Error
                where e.errno == EEXIST
            {
                // A veth of an earlier run that no teardown removed (same name: same container).
                try netlink.deleteLink(hostInterface)
                try netlink.attach(namespace: ns.rawValue, to: network.bridge, attachment)
            }
            let endpoint = EndpointRecord(
                containerID: container, containerName: options.containerName, hostname: options.hostname,
                aliases: options.aliases, address: address, macAddress: Attachment.formatMAC(mac),
                hostInterface: hostInterface, interface: interface, namespacePath: namespacePath,
                dnsServers: options.dnsServers)
            do { try store.write(endpoint, on: network.name) } catch {
                try? netlink.deleteLink(hostInterface)
                throw error
            }
            return endpoint
        } catch {
            try? ipam.release(holder: container, on: network.name)
            if let e = error as? Error { throw e }
            throw Error("cannot connect container \(options.containerName) to network \(network.name): \(error)")
        }
    }

    /// Takes the container off the network: its veth (the namespace's end goes with it), its
    /// address and its record. Whatever is already gone is skipped (teardown after a crash).
    public func disconnect(container: String, from network: String) throws {
        let hostInterface = Self.hostInterface(container: container, network: network)
        let netlink = try Netlink()
        do { try netlink.deleteLink(hostInterface) } catch let e as Netlink.Error where e.errno == ENODEV {}
        try ipam.release(holder: container, on: network)
        store.removeEndpoint(container: container, from: network)
    }

    /// The networks the container has an endpoint on: one file looked for per network, not
    /// every endpoint read.
    public func endpoints(of container: String) -> [(network: String, endpoint: EndpointRecord)] {
        Files.names(in: store.directory).sorted().compactMap { network in
            store.endpoint(container, on: network).map { (network, $0) }
        }
    }

    /// Takes the container off every network and lets its namespace go: every step tried, the
    /// first failure thrown at the end.
    ///
    /// The veths are not deleted one by one when the namespace is kept: a link deletion waits for
    /// an RCU grace period in the kernel (about 20 ms, most of a `run --rm`), while the namespace,
    /// once nothing holds it (the container's processes are gone), is destroyed by the kernel in
    /// the background with every interface in it, the veth pairs included. Addresses are not
    /// handed out again at once (IPAM goes round the range), so a veth on its way out never
    /// meets its address's next holder.
    /// `endpoints`: the container's, when the caller has read them already.
    public func tearDown(
        container: String, namespacePath: String, endpoints known: [(network: String, endpoint: EndpointRecord)]? = nil
    ) throws {
        var failure: Swift.Error?
        let kept = NamespaceFile.isKept(namespacePath)
        for (network, _) in known ?? endpoints(of: container) {
            do {
                if kept {
                    try ipam.release(holder: container, on: network)
                    store.removeEndpoint(container: container, from: network)
                } else {
                    try disconnect(container: container, from: network)
                }
            } catch { failure = failure ?? error }
        }
        do { try NamespaceFile.release(namespacePath) } catch { failure = failure ?? error }
        if let failure { throw failure }
    }

    /// The bridge of a network that exists on disk, brought back if the host lost it (a reboot).
    /// Its subnet is reserved already, and ensureBridge tolerates a concurrent maker: no lock.
    func ensureBridge(_ network: NetworkRecord) throws {
        let netlink = try Netlink()
        if (try? netlink.index(of: network.bridge)) != nil { return }
        try bringUp(network, netlink)
    }

    /// The bridge, its gateway, and the firewall's rules for it (masquerade out, isolation from
    /// the other networks, nothing in or out for an internal one): all idempotent.
    private func bringUp(_ network: NetworkRecord, _ netlink: Netlink) throws {
        try netlink.ensureBridge(
            network.bridge, gateway: network.gateway, prefixLength: network.subnet.prefixLength, mtu: network.mtu)
        do { try Firewall.addNetwork(bridge: network.bridge, subnet: network.subnet, internal: network.internal) } catch
        {
            throw Error("network \(network.name): \(error)")
        }
    }

    /// Endpoints of the network whose containers are gone, taken down (`reclaim`: the caller's
    /// whole teardown of such a container; else their endpoint here); how many.
    private func sweep(_ network: NetworkRecord, isAlive: (String) -> Bool, reclaim: ((String) throws -> Void)?)
        throws -> Int
    {
        var count = 0
        for endpoint in store.endpoints(of: network.name) where !isAlive(endpoint.containerID) {
            if let reclaim {
                try reclaim(endpoint.containerID)
            } else {
                try disconnect(container: endpoint.containerID, from: network.name)
            }
            count += 1
        }
        let held = try ipam.networks()[network.name]?.addresses.values.filter { !isAlive($0) } ?? []
        for holder in Set(held) {
            try ipam.release(holder: holder, on: network.name)
            count += 1
        }
        return count
    }

    /// "veth" and 11 hex digits of the container and network: stable, so that teardown finds it
    /// from the names alone, and unique per endpoint in practice (44 bits).
    static func hostInterface(container: String, network: String) -> String {
        "veth" + String(BridgeName.of(project: container, network: network).dropFirst(4))
    }

    static func hostLock(exclusive: Bool = true) throws -> HeldLock {
        // A minimal host (an initramfs) may have no /run yet.
        try? Files.makeDirectories(Files.parentDirectory(hostLockPath))
        guard let lock = HeldLock(path: hostLockPath, exclusive: exclusive) else {
            throw Error("cannot lock \(hostLockPath): \(String(cString: strerror(errno)))")
        }
        return lock
    }

    static func randomID() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }.hexString
    }
}
