import CNetlink
import Network

/// What the server answers from: the root's networks and their endpoints as read from
/// ROOT/networks at one moment (NetworkStore), indexed for lookups. A value: a reload or a
/// re-read on a miss builds a new one and swaps it in.
struct Records: Sendable {
    struct Network: Sendable {
        var record: NetworkRecord
        var endpoints: [EndpointRecord]
    }

    /// Networks whose containers use the embedded server, by name. Others (the default
    /// `bridge`) take no part: their names do not resolve, as in Docker.
    var networks: [String: Network] = [:]

    init() {}

    init(store: NetworkStore) {
        for record in store.networks() where record.embeddedDNS {
            networks[record.name] = Network(record: record, endpoints: store.endpoints(of: record.name))
        }
    }

    /// Whether any network the server serves has an endpoint: when none has, berth-netd goes.
    var hasEndpoints: Bool { networks.values.contains { !$0.endpoints.isEmpty } }

    /// Who asks: the endpoint with this source address on the network whose listener got the
    /// question (a container's address is unique on its network, not across networks).
    func asker(address: IPv4Address, network: String) -> EndpointRecord? {
        networks[network]?.endpoints.first { $0.address == address }
    }

    /// The networks whose names the asker sees: every one its container is attached to; for an
    /// unknown asker, the network it asked on only.
    func visibleNetworks(asker: EndpointRecord?, network: String) -> [Network] {
        guard let asker else { return networks[network].map { [$0] } ?? [] }
        return networks.values.filter { network in
            network.endpoints.contains { $0.containerID == asker.containerID }
        }.sorted { $0.record.name < $1.record.name }
    }

    /// The addresses `name` resolves to for this asker, nil when it is no name of ours. A name
    /// matches an endpoint's names (case-insensitively); "NAME.NETWORK" matches NAME on that
    /// network only, as Docker resolves both; a trailing host search domain (`searchDomains`)
    /// is taken off, so "web.corp.example" finds "web" when the container's resolv.conf searched it.
    func lookup(
        _ name: DNSMessage.Name, asker: EndpointRecord?, network: String, searchDomains: [String] = []
    ) -> [IPv4Address]? {
        let visible = visibleNetworks(asker: asker, network: network)
        var candidates = [name.key]
        for domain in searchDomains {
            let suffix = "." + domain.lowercased()
            if name.key.hasSuffix(suffix), name.key.count > suffix.count {
                candidates.append(String(name.key.dropLast(suffix.count)))
            }
        }
        for candidate in candidates {
            if let found = Self.match(candidate, in: visible) { return found }
            // "NAME.NETWORK": the network's name may itself hold dots, so try each split.
            var rest = Substring(candidate)
            while let dot = rest.firstIndex(of: ".") {
                let prefix = candidate[..<dot]
                let networkName = candidate[candidate.index(after: dot)...]
                if let network = visible.first(where: { $0.record.name.lowercased() == networkName }),
                    let found = Self.match(String(prefix), in: [network])
                {
                    return found
                }
                rest = candidate[candidate.index(after: dot)...]
            }
        }
        return nil
    }

    /// Addresses of the endpoints answering to `key` (lowercased), each once, in network order.
    private static func match(_ key: String, in networks: [Network]) -> [IPv4Address]? {
        var found: [IPv4Address] = []
        for network in networks {
            for endpoint in network.endpoints where endpoint.names.contains(where: { $0.lowercased() == key }) {
                if !found.contains(endpoint.address) { found.append(endpoint.address) }
            }
        }
        return found.isEmpty ? nil : found
    }

    /// Whether forwarding is allowed for this asker: not when every network it is on is
    /// `internal` (no way out, as Docker does not proxy their containers' questions).
    func mayForward(asker: EndpointRecord?, network: String) -> Bool {
        let visible = visibleNetworks(asker: asker, network: network)
        return visible.isEmpty || visible.contains { !$0.record.internal }
    }
}
