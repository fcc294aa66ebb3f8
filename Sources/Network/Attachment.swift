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

    public init(
        hostInterface: String, interface: String, address: IPv4Address, prefixLength: UInt8,
        gateway: IPv4Address?, mtu: UInt32? = nil
    ) {
        self.hostInterface = hostInterface
        self.interface = interface
        self.address = address
        self.prefixLength = prefixLength
        self.gateway = gateway
        self.mtu = mtu
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
    /// namespace): a veth pair whose inner end is made directly inside, on the bridge and up out
    /// here; inside, loopback and the interface up with its address and, with a gateway, the
    /// default route. What was made is removed again if a step fails.
    public func attach(namespace: Int32, to bridge: String, _ attachment: Attachment) throws {
        try createVethPair(
            attachment.hostInterface, peer: attachment.interface, peerNamespace: namespace, mtu: attachment.mtu)
        do {
            try setMaster(attachment.hostInterface, bridge: bridge)
            try setUp(attachment.hostInterface)
            let inside = try Netlink(namespace: namespace)
            try inside.setUp("lo")
            try inside.addAddress(attachment.address, prefixLength: attachment.prefixLength, to: attachment.interface)
            try inside.setUp(attachment.interface)
            if let gateway = attachment.gateway { try inside.addDefaultRoute(via: gateway) }
        } catch {
            // The pair goes with either end.
            try? deleteLink(attachment.hostInterface)
            throw error
        }
    }
}
