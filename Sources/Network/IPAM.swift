import CNetlink
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Address management for berth's networks: subnets for networks and addresses for containers,
/// kept in DIR/ipam.json and changed only under an flock of DIR/ipam.lock, so that any number of
/// berth processes allocate without handing out one address twice. Subnets come from the pools
/// in order (Docker's default: 172.17.0.0/16 to 172.31.0.0/16, then 192.168.0.0/20 blocks), or
/// are given; the gateway is the subnet's first address unless given; containers get the next
/// free one, or the one they ask for.
public struct IPAM: Sendable {
    /// A range that subnets of one size are carved from.
    public struct Pool: Sendable, Equatable {
        public var base: IPv4Subnet
        public var size: UInt8

        public init(base: IPv4Subnet, size: UInt8) {
            self.base = base
            self.size = size
        }
    }

    /// What a network holds.
    public struct Network: Codable, Equatable, Sendable {
        public var subnet: IPv4Subnet
        public var gateway: IPv4Address
        /// compose's ip_range: container addresses come from here (nil: the whole subnet).
        public var ipRange: IPv4Subnet?
        /// Address -> the holder's name (a container ID).
        public var addresses: [String: String] = [:]
        /// The last address handed out: the next search starts after it, as Docker's IPAM goes
        /// round its range, so a freed address is not reused at once.
        public var last: IPv4Address?
    }

    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    public static let dockerPools = [
        Pool(base: IPv4Subnet("172.17.0.0/16")!, size: 16), Pool(base: IPv4Subnet("172.18.0.0/15")!, size: 16),
        Pool(base: IPv4Subnet("172.20.0.0/14")!, size: 16), Pool(base: IPv4Subnet("172.24.0.0/14")!, size: 16),
        Pool(base: IPv4Subnet("172.28.0.0/14")!, size: 16), Pool(base: IPv4Subnet("192.168.0.0/16")!, size: 20),
    ]

    public let directory: String
    public let pools: [Pool]

    public init(directory: String, pools: [Pool] = IPAM.dockerPools) {
        self.directory = directory
        self.pools = pools
    }

    /// The network's subnet and gateway, reserved on first call (the same on later ones).
    /// `subnet`/`gateway`: compose's ipam.config; a subnet that overlaps another network's is an
    /// error, as is a gateway outside the subnet. `avoiding`: subnets the host already routes
    /// (`Netlink.routes()`), which a subnet from the pools must not overlap, as Docker checks.
    public func reserveNetwork(
        _ name: String, subnet wanted: IPv4Subnet? = nil, gateway wantedGateway: IPv4Address? = nil,
        ipRange: IPv4Subnet? = nil, avoiding hostSubnets: [IPv4Subnet] = []
    )
        throws -> Network
    {
        try withState { state in
            if let existing = state[name] { return existing }
            let taken = state.values.map(\.subnet)
            let subnet: IPv4Subnet
            if let wanted {
                if let other = taken.first(where: { $0.overlaps(wanted) }) {
                    throw Error(description: "subnet \(wanted) of network \(name) overlaps \(other)")
                }
                subnet = wanted
            } else {
                guard let free = freeSubnet(avoiding: taken + hostSubnets) else {
                    throw Error(
                        description: "all predefined address pools have been fully subnetted (network \(name))")
                }
                subnet = free
            }
            let gateway = wantedGateway ?? IPv4Subnet.address(subnet.hosts.lowerBound)
            guard subnet.contains(gateway), subnet.hosts.contains(IPv4Subnet.value(gateway)) else {
                throw Error(description: "gateway \(gateway) is not a host address of \(subnet)")
            }
            if let ipRange, !(subnet.contains(ipRange.network) && ipRange.prefixLength >= subnet.prefixLength) {
                throw Error(description: "ip range \(ipRange) is not inside subnet \(subnet)")
            }
            let network = Network(subnet: subnet, gateway: gateway, ipRange: ipRange)
            state[name] = network
            return network
        }
    }

    /// Forgets the network and its addresses.
    public func releaseNetwork(_ name: String) throws {
        try withState { state in state[name] = nil }
    }

    /// An address on the network for `holder`: `wanted` (compose's ipv4_address) or the next free.
    /// The same holder asking again gets the same address.
    public func allocate(on name: String, for holder: String, wanted: IPv4Address? = nil) throws -> IPv4Address {
        try withState { state in
            guard var network = state[name] else { throw Error(description: "no such network: \(name)") }
            if let held = network.addresses.first(where: { $0.value == holder }) {
                if wanted == nil || held.key == wanted!.description, let address = IPv4Address(held.key) {
                    return address
                }
                network.addresses[held.key] = nil  // it asks for another one now
            }
            let used = Set(network.addresses.keys).union([network.gateway.description])
            let address: IPv4Address
            if let wanted {
                guard network.subnet.contains(wanted), network.subnet.hosts.contains(IPv4Subnet.value(wanted)) else {
                    throw Error(description: "address \(wanted) is not in network \(name)'s subnet \(network.subnet)")
                }
                guard !used.contains(wanted.description) else {
                    throw Error(description: "address \(wanted) is already in use on network \(name)")
                }
                address = wanted
            } else {
                var (lower, upper) = (network.subnet.hosts.lowerBound, network.subnet.hosts.upperBound)
                if let ipRange = network.ipRange {
                    (lower, upper) = (max(ipRange.first, lower), min(ipRange.last, upper))
                }
                // (The range may hold no host address: one address, the subnet's broadcast.)
                guard lower <= upper else {
                    throw Error(description: "no address left on network \(name) (\(network.subnet))")
                }
                // From the one after the last handed out, round to it.
                var candidate = network.last.map { IPv4Subnet.value($0) } ?? upper
                var free: IPv4Address?
                for _ in 0...(upper - lower) {
                    candidate = candidate >= upper || candidate < lower ? lower : candidate + 1
                    let address = IPv4Subnet.address(candidate)
                    if !used.contains(address.description) {
                        free = address
                        break
                    }
                }
                guard let free else {
                    throw Error(description: "no address left on network \(name) (\(network.subnet))")
                }
                address = free
            }
            network.addresses[address.description] = holder
            if wanted == nil { network.last = address }
            state[name] = network
            return address
        }
    }

    /// Frees every address `holder` has on network `name`, or on every network.
    public func release(holder: String, on name: String? = nil) throws {
        try withState { state in
            for key in state.keys where name == nil || key == name {
                state[key]!.addresses = state[key]!.addresses.filter { $0.value != holder }
            }
        }
    }

    /// Frees the addresses of holders that `isAlive` says are gone (their container died with
    /// berth, before anyone released them); returns them.
    @discardableResult
    public func reclaim(isAlive: (String) -> Bool) throws -> Set<String> {
        try withState { state in
            var gone = Set<String>()
            for name in state.keys {
                let dead = state[name]!.addresses.values.filter { !isAlive($0) }
                gone.formUnion(dead)
                state[name]!.addresses = state[name]!.addresses.filter { !dead.contains($0.value) }
            }
            return gone
        }
    }

    /// The networks as they are on disk.
    public func networks() throws -> [String: Network] {
        try withState { $0 }
    }

    private func freeSubnet(avoiding taken: [IPv4Subnet]) -> IPv4Subnet? {
        for pool in pools where pool.size >= pool.base.prefixLength && pool.size <= 32 {
            let step = UInt64(1) << UInt64(32 - pool.size)
            var at = UInt64(pool.base.first)
            while at + step - 1 <= UInt64(pool.base.last) {
                let candidate = IPv4Subnet(network: IPv4Subnet.address(UInt32(at)), prefixLength: pool.size)
                if !taken.contains(where: { $0.overlaps(candidate) }) { return candidate }
                at += step
            }
        }
        return nil
    }

    /// Runs `body` on the state under the lock and writes it back (atomically) when it changed.
    private func withState<T>(_ body: (inout [String: Network]) throws -> T) throws -> T {
        do { try Files.makeDirectories(directory, mode: 0o700) } catch {
            throw Error(description: "\(error)")
        }
        guard let lock = HeldLock(path: directory + "/ipam.lock", exclusive: true) else {
            throw Error(description: "cannot lock \(directory)/ipam.lock: \(String(cString: strerror(errno)))")
        }
        defer { lock.keep() }
        let path = directory + "/ipam.json"
        var state: [String: Network] = [:]
        let bytes = Files.readAll(path)
        // Only a missing file is an empty state: any other failure would, once written back,
        // forget every reservation.
        if bytes == nil && errno != ENOENT {
            throw Error(description: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        if let bytes {
            do { state = try JSONDecoder().decode([String: Network].self, from: Data(bytes)) } catch {
                throw Error(description: "\(path) is damaged: \(error)")
            }
        }
        let before = state
        let result = try body(&state)
        if state != before {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = try encoder.encode(state)
            do { try data.withUnsafeBytes { try Files.replace(path, with: $0, mode: 0o600) } } catch {
                throw Error(description: "\(error)")
            }
        }
        return result
    }
}
