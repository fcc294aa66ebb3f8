import FoundationEssentials
import Network
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Where a container meets its networks (Runtime knows no network, Network no container): the
/// networks of a spec resolved before anything is made, joined while the container starts (in
/// `Container.start`'s beforeResume, before its program runs), and left when it is removed or
/// starts again. For the CLI and the orchestrator alike.
///
///     ROOT/netns/ID   the container's network namespace, kept (NamespaceFile) until teardown
public struct ContainerNetworking {
    public let root: String
    public let networks: BridgeNetworks

    public init(root: String) throws {
        self.root = root
        networks = try BridgeNetworks(root: root)
    }

    public struct Error: Swift.Error, CustomStringConvertible {
        public var description: String
    }

    /// Where the container's network namespace is kept.
    public func namespacePath(of container: String) -> String { root + "/netns/" + container }

    /// What a container joins, resolved before anything of it is made: its networks in order,
    /// and its published ports, bound already (so a port in use fails the run before it starts;
    /// they close unless `attach` hands them to the container's proxy).
    public final class Plan {
        public let networks: [(NetworkRecord, NetworkAttachmentSpec)]
        var ports: BoundPorts?

        init(networks: [(NetworkRecord, NetworkAttachmentSpec)], ports: consuming BoundPorts?) {
            self.networks = networks
            self.ports = ports
        }

        /// Nothing to do in `Container.start` (a mode without bridge networks).
        public var isEmpty: Bool { networks.isEmpty }
    }

    /// The plan for a spec: its networks (the default network made when it is the one and does
    /// not exist yet; a static address outside its network's subnet refused here) and its
    /// published ports, bound.
    public func plan(_ spec: ContainerSpec) throws -> Plan {
        guard spec.network == .default else { return Plan(networks: [], ports: nil) }
        let attachments = spec.networks ?? []
        let networks = try plan(
            with: attachments.isEmpty ? [NetworkAttachmentSpec(name: BridgeNetworks.defaultNetwork)] : attachments)
        let mappings = try (spec.publish ?? []).flatMap { try PortMapping.parse($0) }
        return Plan(networks: networks, ports: mappings.isEmpty ? nil : try PublishedPorts.bind(mappings))
    }

    /// Published ports: their real numbers recorded (ROOT/ports/ID.json, for `port`, `ps` and
    /// teardown after the container is gone), nftables DNAT for traffic from elsewhere, and
    /// berth-proxy serving the bound sockets until the container's process ends.
    private func publish(_ ports: consuming BoundPorts, of container: String, pid: Int32, at address: IPv4Address)
        throws
    {
        let mappings = ports.mappings
        try Files.makeDirectories(root + "/ports", mode: 0o700)
        let data = try JSONEncoder().encode(mappings)
        try data.withUnsafeBytes { try Files.replace(portsPath(of: container), with: $0) }
        try Firewall.addPorts(owner: container, mappings: mappings, containerAddress: address)
        _ = try ports.startProxy(
            to: address, containerPid: pid, proxy: Companion.path("berth-proxy", override: "BERTH_PROXY"))
    }

    func portsPath(of container: String) -> String { root + "/ports/" + container + ".json" }

    /// The container's published ports as bound (real host ports); empty when it has none.
    public func publishedPorts(of container: String) -> [PortMapping] {
        guard let bytes = Files.readAll(portsPath(of: container)) else { return [] }
        return (try? JSONDecoder().decode([PortMapping].self, from: Data(bytes))) ?? []
    }

    private func plan(with attachments: [NetworkAttachmentSpec]) throws -> [(NetworkRecord, NetworkAttachmentSpec)] {
        try attachments.map { attachment in
            let network = try networks.network(attachment.name)
            if let text = attachment.ipv4Address {
                guard let address = IPv4Address(text), network.subnet.contains(address) else {
                    throw Error(
                        description:
                            "invalid address \(text): it is not in network \(network.name)'s subnet \(network.subnet)"
                    )
                }
            }
            return (network, attachment)
        }
    }

    /// Joins the started container (waiting for its go; `namespace`: a path to its network
    /// namespace) to the planned networks: its
    /// namespace kept under ROOT, eth0, eth1, ... in the plan's order (the first gives the default
    /// route), /etc/hosts and /etc/resolv.conf written for them, and the embedded DNS server told.
    /// What an earlier run left is taken down first. On failure nothing of it is left.
    @discardableResult
    public func attach(
        _ container: Container, pid: Int32, namespace: String, to plan: Plan
    ) throws -> [EndpointRecord] {
        guard !plan.isEmpty else { return [] }
        try tearDown(container: container.id)
        let spec = container.record.spec
        let hostname = container.record.process.hostname
        do {
            let path = namespacePath(of: container.id)
            try NamespaceFile.keep(namespace, at: path)
            var endpoints: [EndpointRecord] = []
            for (index, (planned, attachment)) in plan.networks.enumerated() {
                // Again by name: a prune may have removed the default network since the plan
                // (it is made again), or a user another one (then it is not found).
                let network = try networks.network(planned.name)
                var options = BridgeNetworks.EndpointOptions(containerName: container.name, hostname: hostname)
                options.aliases = attachment.aliases
                options.address = attachment.ipv4Address.flatMap(IPv4Address.init)
                options.macAddress = attachment.macAddress.flatMap(Attachment.parseMAC)
                options.dnsServers = spec.dns ?? []
                let root = self.root
                endpoints.append(
                    try networks.connect(
                        namespacePath: path, container: container.id, to: network, interface: "eth\(index)",
                        defaultRoute: index == 0, options, isAlive: { Container.isActive(id: $0, root: root) }))
            }
            try writeEtcFiles(container, endpoints: endpoints, networks: plan.networks.map(\.0))
            // Answered from the first question on: the server binds new gateways now.
            if plan.networks.contains(where: { $0.0.embeddedDNS }) { try reloadNameServer() }
            if let ports = plan.ports.take() {
                try publish(ports, of: container.id, pid: pid, at: endpoints[0].address)
            }
            return endpoints
        } catch {
            try? tearDown(container: container.id)
            throw error
        }
    }

    /// `network connect`: one more network for a running container, on the next free ethN.
    public func connect(_ container: Container, to attachment: NetworkAttachmentSpec) throws {
        let path = namespacePath(of: container.id)
        guard NamespaceFile.isKept(path) else {
            throw Error(
                description:
                    "container \(container.name) has no bridge network namespace (its network mode is \(container.record.spec.network.name))"
            )
        }
        let (network, _) = try plan(with: [attachment])[0]
        let current = networks.endpoints(of: container.id)
        if current.contains(where: { $0.network == network.name }) {
            throw Error(description: "endpoint with name \(container.name) already exists in network \(network.name)")
        }
        let used = Set(current.map(\.endpoint.interface))
        let interface = (0...).lazy.map { "eth\($0)" }.first { !used.contains($0) }!
        var options = BridgeNetworks.EndpointOptions(
            containerName: container.name, hostname: container.record.process.hostname)
        options.aliases = attachment.aliases
        options.address = attachment.ipv4Address.flatMap(IPv4Address.init)
        options.dnsServers = container.record.spec.dns ?? []
        let root = self.root
        let endpoint = try networks.connect(
            namespacePath: path, container: container.id, to: network, interface: interface,
            defaultRoute: current.isEmpty, options, isAlive: { Container.isActive(id: $0, root: root) })
        let hosts =
            (Files.readText(container.file("hosts")) ?? "")
            + "\(endpoint.address)\t\(container.record.process.hostname)\n"
        try Self.overwrite(container.file("hosts"), hosts)
    }

    /// `network disconnect`.
    public func disconnect(_ container: Container, from network: String) throws {
        guard networks.store.network(network) != nil else { throw Error(description: "network \(network) not found") }
        guard networks.endpoints(of: container.id).contains(where: { $0.network == network }) else {
            throw Error(description: "container \(container.name) is not connected to network \(network)")
        }
        try networks.disconnect(container: container.id, from: network)
        if networks.store.network(network)?.embeddedDNS == true { try? reloadNameServer() }
    }

    /// `rm`: the container, then what it had on its networks.
    public func remove(_ container: Container, force: Bool) throws {
        try container.remove(force: force)
        try tearDown(container: container.id)
    }

    /// What removed containers left on networks (a berth killed between the removal and the
    /// teardown, `rm` of a leftover): endpoints and kept namespaces of containers that no longer
    /// exist. For `system prune`.
    public func pruneLeftovers() throws {
        var gone = Set<String>()
        for network in networks.store.networks() {
            for endpoint in networks.store.endpoints(of: network.name)
            where (try? Container.lookup(endpoint.containerID, root: root)) == nil {
                gone.insert(endpoint.containerID)
            }
        }
        for id in Files.names(in: root + "/netns") where (try? Container.lookup(id, root: root)) == nil {
            gone.insert(id)
        }
        for id in gone { try tearDown(container: id) }
    }

    /// Takes the container off every network and lets its namespace go; what is already gone
    /// is skipped, so it runs again after any crash.
    public func tearDown(container: String) throws {
        let named = networks.endpoints(of: container).contains {
            networks.store.network($0.network)?.embeddedDNS == true
        }
        try networks.tearDown(container: container, namespacePath: namespacePath(of: container))
        // The proxy ended with the container's process; the DNAT rules go with the record.
        if access(portsPath(of: container), F_OK) == 0 {
            try Firewall.removePorts(owner: container)
            unlink(portsPath(of: container))
        }
        // Forgets the names; the server ends once no container of the root is left to serve.
        if named { try? reloadNameServer() }
    }

    /// berth-netd, the embedded DNS server's process for this root, told to read the networks
    /// again (and started when it is not running).
    public func reloadNameServer() throws {
        try NameServerControl.reload(root: root, netd: Companion.path("berth-netd", override: "BERTH_NETD"))
    }

    /// /etc/hosts gets the container's own addresses under its host name (and `host-gateway` in
    /// extra hosts becomes the first network's gateway, as Docker's host-gateway is docker0's
    /// address); with the embedded DNS server, /etc/resolv.conf names it (on the gateway of the
    /// first network that has one). Rewritten in place: the container's bind mounts of them
    /// may be made already, and its program reads them only after the go.
    private func writeEtcFiles(_ container: Container, endpoints: [EndpointRecord], networks: [NetworkRecord]) throws {
        let hostname = container.record.process.hostname
        var hosts = (Files.readText(container.file("hosts")) ?? "").split(separator: "\n").map { line in
            line.hasPrefix("host-gateway\t")
                ? networks[0].gateway.description + line.dropFirst("host-gateway".count) : line
        }.joined(separator: "\n")
        if !hosts.isEmpty { hosts += "\n" }
        for endpoint in endpoints { hosts += "\(endpoint.address)\t\(hostname)\n" }
        try Self.overwrite(container.file("hosts"), hosts)
        if let dns = networks.first(where: \.embeddedDNS) {
            let base = Files.readText(container.file("resolv.conf")) ?? ""
            let resolv = Container.resolvConf(base, nameservers: [dns.gateway.description], spec: container.record.spec)
            try Self.overwrite(container.file("resolv.conf"), resolv)
        }
    }

    private static func overwrite(_ path: String, _ text: String) throws {
        guard let fd = FileDescriptor(taking: open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)) else {
            throw FileError(operation: "open", path: path, errno: errno)
        }
        try Array(text.utf8).withUnsafeBytes { try Files.writeAll(fd.rawValue, $0, path: path) }
    }
}
