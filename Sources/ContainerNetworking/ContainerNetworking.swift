import CNetlink
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

    public init(root: String) {
        self.root = root
        networks = BridgeNetworks(root: root)
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
        // Rules of containers that died without teardown would come first and send the port to
        // an address that may be another container's now.
        for file in Files.names(in: root + "/ports") where file.hasSuffix(".json") {
            let other = String(file.dropLast(".json".count))
            if other != container, !Container.isActive(id: other, root: root) { try tearDown(container: other) }
        }
        try Firewall.addPorts(owner: container, mappings: mappings, containerAddress: address)
        let proxy = try ports.startProxy(
            to: address, containerPid: pid, proxy: Companion.path("berth-proxy", override: "BERTH_PROXY"))
        try Array(String(proxy).utf8).withUnsafeBytes { try Files.replace(proxyPath(of: container), with: $0) }
    }

    func portsPath(of container: String) -> String { root + "/ports/" + container + ".json" }
    func proxyPath(of container: String) -> String { root + "/ports/" + container + ".pid" }

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
        // What the last run left (when its exit's release did not run: a crash, a failed start).
        if Files.exists(namespacePath(of: container.id)) || Files.exists(portsPath(of: container.id)) {
            try tearDown(container: container.id)
        }
        let spec = container.record.spec
        let hostname = container.record.process.hostname
        do {
            let path = namespacePath(of: container.id)
            try NamespaceFile.keep(namespace, at: path)
            var endpoints: [EndpointRecord] = []
            for (index, (planned, attachment)) in plan.networks.enumerated() {
                var options = BridgeNetworks.EndpointOptions(containerName: container.name, hostname: hostname)
                options.aliases = attachment.aliases
                options.address = attachment.ipv4Address.flatMap(IPv4Address.init)
                options.macAddress = attachment.macAddress.flatMap(Attachment.parseMAC)
                options.dnsServers = spec.dns ?? []
                endpoints.append(
                    try join(
                        planned, namespacePath: path, container: container.id, interface: "eth\(index)",
                        defaultRoute: index == 0, options))
            }
            try writeEtcFiles(container, endpoints: endpoints, gateway: plan.networks[0].0.gateway)
            if let dns = plan.networks.first(where: { $0.0.embeddedDNS }) {
                let base = Files.readText(container.file("resolv.conf")) ?? ""
                try Self.overwrite(container.file("resolv.conf"), Self.embeddedResolvConf(base, dns.0, spec))
                // Answered from the first question on: the server binds new gateways now.
                try reloadNameServer(for: plan.networks.filter { $0.0.embeddedDNS }.map(\.0.name))
            }
            if let ports = plan.ports.take() {
                try publish(ports, of: container.id, pid: pid, at: endpoints[0].address)
            }
            return endpoints
        } catch {
            try? tearDown(container: container.id)
            throw error
        }
    }

    /// Joins the planned network, looked up again when it is gone (a prune may have removed the
    /// default network since the plan: it is made again; a user another one: it is not found). Holders of addresses
    /// that are found dead on the way are taken down whole (namespace, ports and all).
    private func join(
        _ planned: NetworkRecord, namespacePath: String, container: String, interface: String, defaultRoute: Bool,
        _ options: BridgeNetworks.EndpointOptions
    ) throws -> EndpointRecord {
        let root = self.root
        let isAlive = { (id: String) in Container.isActive(id: id, root: root) }
        let reclaim = { (id: String) in try tearDown(container: id) }
        for attempt in 0..<2 {
            // The plan's record first; looked up again (the default network made again) only
            // when it was removed meanwhile.
            let network = attempt == 0 ? planned : try networks.network(planned.name)
            do {
                return try networks.connect(
                    namespacePath: namespacePath, container: container, to: network, interface: interface,
                    defaultRoute: defaultRoute, options, isAlive: isAlive, reclaim: reclaim)
            } catch let e as BridgeNetworks.Error
                where e.isNotFound && attempt == 0 && planned.name == BridgeNetworks.defaultNetwork
            {
                continue
            }
        }
        throw Error(description: "network \(planned.name) not found")
    }

    /// resolv.conf for a container whose first DNS network is `network`: its gateway as the
    /// only nameserver (the embedded server forwards the rest), and Docker's `ndots:0` unless
    /// the container sets ndots itself.
    static func embeddedResolvConf(_ base: String, _ network: NetworkRecord, _ spec: ContainerSpec) -> String {
        let text = Container.resolvConf(base, nameservers: [network.gateway.description], spec: spec)
        var lines = text.split(separator: "\n").map(String.init)
        if !lines.contains(where: { $0.hasPrefix("options ") && $0.contains("ndots:") }) {
            if let index = lines.firstIndex(where: { $0.hasPrefix("options ") }) {
                lines[index] += " ndots:0"
            } else {
                lines.append("options ndots:0")
            }
        }
        return lines.joined(separator: "\n") + "\n"
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
        let endpoint = try join(
            network, namespacePath: path, container: container.id, interface: interface,
            defaultRoute: current.isEmpty, options)
        try writeEtcFiles(container, endpoints: current.map(\.endpoint) + [endpoint], gateway: nil)
        if network.embeddedDNS { try reloadNameServer(for: [network.name]) }
    }

    /// `network disconnect`.
    public func disconnect(_ container: Container, from network: String) throws {
        try BridgeNetworks.validateName(network)
        guard networks.store.network(network) != nil else { throw Error(description: "network \(network) not found") }
        guard networks.endpoints(of: container.id).contains(where: { $0.network == network }) else {
            throw Error(description: "container \(container.name) is not connected to network \(network)")
        }
        try networks.disconnect(container: container.id, from: network)
        try writeEtcFiles(container, endpoints: networks.endpoints(of: container.id).map(\.endpoint), gateway: nil)
        if networks.store.network(network)?.embeddedDNS == true { try? reloadNameServer() }
    }

    /// `rm`: the container, then what it had on its networks.
    /// With `force` the container goes whatever its state, so its networks are taken down on the
    /// second core meanwhile (the two touch nothing in common); without, only once it is gone.
    public func remove(_ container: Container, force: Bool) throws {
        guard force else {
            try container.remove(force: false)
            try tearDown(container: container.id)
            return
        }
        let id = container.id
        let networks = BackgroundWork { try self.tearDown(container: id) }
        let removed = Result { try container.remove(force: true) }
        try networks.wait()
        try removed.get()
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
        for id in Files.names(in: root + "/netns") + Files.names(in: root + "/ports").map({ String($0.prefix(64)) })
        where (try? Container.lookup(id, root: root)) == nil {
            gone.insert(id)
        }
        for id in gone { try tearDown(container: id) }
    }

    /// Takes the container off every network and lets its namespace go; what is already gone
    /// is skipped, so it runs again after any crash. Every step is tried whatever an earlier one
    /// did; the first failure is thrown at the end. The port rules go first: a crash later
    /// leaves nothing that sends traffic to an address another container may get.
    public func tearDown(container: String) throws {
        var failure: Swift.Error?
        func step(_ body: () throws -> Void) {
            do { try body() } catch { failure = failure ?? error }
        }
        if Files.exists(portsPath(of: container)) {
            step {
                stopProxy(of: container)
                try Firewall.removePorts(owner: container)
                unlink(portsPath(of: container))
                unlink(proxyPath(of: container))
            }
        }
        let endpoints = networks.endpoints(of: container)
        let named = endpoints.contains { networks.store.network($0.network)?.embeddedDNS == true }
        step {
            try networks.tearDown(
                container: container, namespacePath: namespacePath(of: container), endpoints: endpoints)
        }
        // Forgets the names; the server ends once no container of the root is left to serve.
        if named { try? reloadNameServer() }
        if let failure { throw failure }
    }

    /// Ends the container's berth-proxy (it ends by itself with the container's process, but
    /// maybe not yet: a start again must find the ports free) and waits until it is gone.
    private func stopProxy(of container: String) {
        guard let text = Files.readText(proxyPath(of: container)), let pid = Int32(text.trimmingWhitespace()),
            pid > 0,
            (Files.readText("/proc/\(pid)/cmdline") ?? "").hasPrefix(
                Companion.path("berth-proxy", override: "BERTH_PROXY"))
                || (Files.readText("/proc/\(pid)/comm") ?? "").hasPrefix("berth-proxy")
        else { return }
        kill(pid, SIGKILL)
        // Its sockets close as it exits, before it is a zombie (which its reaper, init, may
        // leave for a while): bounded, a few milliseconds in practice.
        for _ in 0..<2000 {
            guard let stat = Files.readText("/proc/\(pid)/stat"),
                let state = stat.split(separator: ")").last?.split(separator: " ").first, state != "Z", state != "X"
            else { return }
            usleep(1000)
        }
    }

    /// berth-netd, the embedded DNS server's process for this root, told to read the networks
    /// again (and started when it is not running).
    public func reloadNameServer(for networks: [String] = []) throws {
        try NameServerControl.reload(
            root: root, netd: Companion.path("berth-netd", override: "BERTH_NETD"), networks: networks)
    }

    /// /etc/hosts: what the runtime starts a container with (`Container.hostsFile`), with
    /// `host-gateway` in extra hosts as the first network's gateway (Docker's host-gateway is
    /// docker0's address) and the container's address on each network under its host name.
    /// Made whole each time (a start again, `network connect` and `disconnect`), so nothing
    /// piles up. Rewritten in place: the container's bind mount of it may be made already, and
    /// its program reads it only after the go.
    private func writeEtcFiles(_ container: Container, endpoints: [EndpointRecord], gateway: IPv4Address?) throws {
        let hostname = container.record.process.hostname
        let gatewayText =
            gateway?.description
            ?? endpoints.sorted(by: { $0.interface < $1.interface }).first.flatMap { endpoint in
                networks.endpoints(of: container.id).first { $0.endpoint.interface == endpoint.interface }
                    .flatMap { networks.store.network($0.network)?.gateway.description }
            } ?? "host-gateway"
        var hosts = Container.hostsFile(container.record.spec).split(separator: "\n").map { line in
            line.hasPrefix("host-gateway\t") ? gatewayText + line.dropFirst("host-gateway".count) : line
        }.joined(separator: "\n")
        if !hosts.isEmpty { hosts += "\n" }
        for endpoint in endpoints.sorted(by: { $0.interface < $1.interface }) {
            hosts += "\(endpoint.address)\t\(hostname)\n"
        }
        try Self.overwrite(container.file("hosts"), hosts)
    }

    private static func overwrite(_ path: String, _ text: String) throws {
        guard let fd = FileDescriptor(taking: open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)) else {
            throw FileError(operation: "open", path: path, errno: errno)
        }
        try Array(text.utf8).withUnsafeBytes { try Files.writeAll(fd.rawValue, $0, path: path) }
    }
}
