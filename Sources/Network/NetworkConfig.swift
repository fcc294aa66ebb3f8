import CNetlink
import FoundationEssentials
import Support

/// What berth's config file (ROOT/config.json) says about networks, in the keys Docker's
/// daemon.json uses: `dns` (the servers the embedded DNS server forwards to, instead of the
/// host's /etc/resolv.conf; "IP" or "IP:PORT") and `default-address-pools` (where network
/// subnets come from, instead of Docker's pools).
public struct NetworkConfig: Decodable, Equatable, Sendable {
    public struct AddressPool: Decodable, Equatable, Sendable {
        public var base: IPv4Subnet
        public var size: UInt8
    }

    public var dns: [String]?
    public var defaultAddressPools: [AddressPool]?

    enum CodingKeys: String, CodingKey {
        case dns
        case defaultAddressPools = "default-address-pools"
    }

    public init(dns: [String]? = nil, defaultAddressPools: [AddressPool]? = nil) {
        self.dns = dns
        self.defaultAddressPools = defaultAddressPools
    }

    public struct Error: Swift.Error, CustomStringConvertible {
        public var description: String
    }

    /// ROOT/config.json's network keys; defaults when there is no such file. A file that does not
    /// parse is an error, not the defaults: a pool or server the user set must not be ignored.
    public static func load(root: String) throws -> NetworkConfig {
        let path = root + "/config.json"
        guard let bytes = Files.readAll(path) else { return NetworkConfig() }
        do { return try JSONDecoder().decode(NetworkConfig.self, from: Data(bytes)) } catch {
            throw Error(description: "\(path): \(error)")
        }
    }

    /// The pools IPAM carves subnets from.
    public var pools: [IPAM.Pool] {
        guard let defaultAddressPools, !defaultAddressPools.isEmpty else { return IPAM.dockerPools }
        return defaultAddressPools.map { IPAM.Pool(base: $0.base, size: $0.size) }
    }
}
