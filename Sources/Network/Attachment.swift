import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// How a namespace is plugged into a bridge network.
public struct Attachment: Equatable, Sendable {
    /// The veth end on the bridge, in the bridge's namespace.
    public var hostInterface: String
    /// Its peer inside the attached namespace ("eth0", "eth1", ...).
    public var interface: String
    public var address: IPv4Address
    public var prefixLength: UInt8
    /// The default route's next hop, for a namespace's first network; nil for the others.
    public var gateway: IPv4Address?
    public var mtu: UInt32?
    /// The inner end's hardware address (nil: Docker's rule, 02:42 and the four address bytes).
    public var macAddress: [UInt8]?

    public init(
        hostInterface: String, interface: String, address: IPv4Address, prefixLength: UInt8,
        gateway: IPv4Address?, mtu: UInt32? = nil, macAddress: [UInt8]? = nil
    ) {
        self.hostInterface = hostInterface
        self.interface = interface
        self.address = address
        self.prefixLength = prefixLength
        self.gateway = gateway
        self.mtu = mtu
        self.macAddress = macAddress
    }

    /// Docker's MAC for an address: 02:42 (locally administered) then the IPv4 address, so that
    /// an address taken over by another container does not keep a stale ARP entry working.
    public static func macAddress(for address: IPv4Address) -> [UInt8] {
        [0x02, 0x42] + address.array
    }

    /// "02:42:ac:11:00:02" as bytes; nil unless six hex pairs (Docker's "invalid MAC address").
    public static func parseMAC(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        let bytes = parts.compactMap { $0.count == 2 ? UInt8($0, radix: 16) : nil }
        return bytes.count == 6 ? bytes : nil
    }

    public static func formatMAC(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}

extension Netlink {
    /// The bridge `name` with `gateway/prefixLength` on it, up: made when missing, left as it is
    /// when it exists with that address (a second network start, or one after a crash).
    public func ensureBridge(_ name: String, gateway: IPv4Address, prefixLength: UInt8, mtu: UInt32? = nil) throws {
        // Another berth process may make it (or its address) at the same moment: EEXIST is fine.
        if let existing = try links().first(where: { $0.name == name }) {
            guard existing.kind == "bridge" else {
                throw Error(operation: "use \(name) as a bridge (it is a \(existing.kind ?? "device"))", errno: EEXIST)
            }
        } else {
            do { try createBridge(name, mtu: mtu) } catch let e as Error where e.errno == EEXIST {}
        }
        let index = try index(of: name)
        let wanted = InterfaceAddress(interface: index, address: gateway, prefixLength: prefixLength)
        if try !addresses().contains(wanted) {
            do { try addAddress(gateway, prefixLength: prefixLength, to: name) } catch let e as Error
                where e.errno == EEXIST
            {}
        }
        try setUp(name)
    }

    /// Plugs the namespace open on `namespace` into `bridge` (a bridge of this connection's
    /// namespace): a veth pair made in one message, its inner end directly inside, the outer one
    /// up on the bridge (in hairpin mode); inside, loopback up and the interface's
    /// address and, with a gateway, the default route. What was made is removed again if a step
    /// fails.
    public func attach(namespace: Int32, to bridge: String, _ attachment: Attachment) throws {
        let master = try index(of: bridge)
        try createVethPair(
            attachment.hostInterface, peer: attachment.interface, peerNamespace: namespace, mtu: attachment.mtu,
            master: master, peerMAC: attachment.macAddress ?? Attachment.macAddress(for: attachment.address),
            up: true)
        do {
            try setHairpin(attachment.hostInterface)
            let inside = try Netlink(namespace: namespace)
            // Loopback is the first device of every namespace (LOOPBACK_IFINDEX).
            try inside.setUp(index: 1, name: "lo")
            let interface = try inside.index(of: attachment.interface)
            try inside.addAddress(
                attachment.address, prefixLength: attachment.prefixLength, index: interface, name: attachment.interface)
            try inside.setUp(index: interface, name: attachment.interface)
            if let gateway = attachment.gateway { try inside.addDefaultRoute(via: gateway) }
        } catch {
            // The pair goes with either end.
            try? deleteLink(attachment.hostInterface)
            throw error
        }
    }
}
