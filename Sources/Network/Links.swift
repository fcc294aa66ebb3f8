import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// A network interface as the kernel lists it.
public struct Link: Equatable, Sendable {
    public var index: Int32
    public var name: String
    public var isUp: Bool
    /// The bridge it is attached to (IFLA_MASTER), if any.
    public var master: Int32?
    public var mtu: UInt32?
    /// "bridge", "veth", ... (IFLA_INFO_KIND), when the kernel says.
    public var kind: String?
}

extension Netlink {
    /// The kernel's limit on interface names (IFNAMSIZ less the NUL).
    public static let maximumNameLength = 15

    /// A bridge named `name`, down; `mtu` when given.
    public func createBridge(_ name: String, mtu: UInt32? = nil) throws {
        try Netlink.checkName(name)
        var message = NetlinkMessage(
            type: Int32(RTM_NEWLINK), flags: NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, family: ifinfomsg())
        message.attribute(Int32(IFLA_IFNAME), string: name)
        if let mtu { message.attribute(Int32(IFLA_MTU), uint32: mtu) }
        message.begin(Int32(IFLA_LINKINFO))
        message.attribute(Int32(IFLA_INFO_KIND), string: "bridge")
        message.end()
        try request(message, "create bridge \(name)")
    }

    /// A veth pair: `name` here, its peer `peer` made directly in the namespace open on
    /// `peerNamespace` (so it never exists in this one). One message does all of it: `master`
    /// puts this end on a bridge (by index), `up` brings this end up (not the peer: the kernel
    /// configures the peer before this end exists, and a veth without its peer cannot open,
    /// ENOTCONN), `peerMAC` is the inner end's hardware address (else the kernel picks one).
    public func createVethPair(
        _ name: String, peer: String, peerNamespace: Int32? = nil, mtu: UInt32? = nil, master: Int32? = nil,
        peerMAC: [UInt8]? = nil, up: Bool = false
    ) throws {
        try Netlink.checkName(name)
        try Netlink.checkName(peer)
        var info = ifinfomsg()
        if up {
            info.ifi_flags = UInt32(IFF_UP.rawValue)
            info.ifi_change = UInt32(IFF_UP.rawValue)
        }
        var message = NetlinkMessage(
            type: Int32(RTM_NEWLINK), flags: NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, family: info)
        message.attribute(Int32(IFLA_IFNAME), string: name)
        if let mtu { message.attribute(Int32(IFLA_MTU), uint32: mtu) }
        if let master { message.attribute(Int32(IFLA_MASTER), uint32: UInt32(bitPattern: master)) }
        message.begin(Int32(IFLA_LINKINFO))
        message.attribute(Int32(IFLA_INFO_KIND), string: "veth")
        message.begin(Int32(IFLA_INFO_DATA))
        message.begin(Int32(VETH_INFO_PEER))
        // The peer's own ifinfomsg comes before its attributes.
        var peerInfo = ifinfomsg()
        message.appendPadded(withUnsafeBytes(of: &peerInfo) { Array($0) })
        message.attribute(Int32(IFLA_IFNAME), string: peer)
        if let mtu { message.attribute(Int32(IFLA_MTU), uint32: mtu) }
        if let peerMAC { message.attribute(Int32(IFLA_ADDRESS), peerMAC) }
        if let peerNamespace { message.attribute(Int32(IFLA_NET_NS_FD), uint32: UInt32(bitPattern: peerNamespace)) }
        message.end()
        message.end()
        message.end()
        try request(message, "create veth pair \(name) and \(peer)")
    }

    /// Hairpin mode on a bridge port: the bridge may send a frame back out of the port it came
    /// in by, so a container reaches itself through a published port (Docker sets it with the
    /// userland proxy off; it costs nothing with it on).
    public func setHairpin(_ name: String, _ on: Bool = true) throws {
        var info = ifinfomsg()
        info.ifi_family = UInt8(AF_BRIDGE)
        info.ifi_index = try index(of: name)
        var message = NetlinkMessage(type: Int32(RTM_SETLINK), flags: NLM_F_ACK, family: info)
        message.begin(Int32(IFLA_PROTINFO) | Int32(NLA_F_NESTED))
        message.attribute(Int32(IFLA_BRPORT_MODE), [on ? 1 : 0])
        message.end()
        try request(message, "set hairpin mode on \(name)")
    }

    /// Brings the interface up or down.
    public func setUp(_ name: String, _ up: Bool = true) throws {
        try setUp(index: try index(of: name), name: name, up)
    }

    /// The same for an interface known by index (`name` only for the error).
    func setUp(index: Int32, name: String, _ up: Bool = true) throws {
        var info = ifinfomsg()
        info.ifi_index = index
        info.ifi_flags = up ? UInt32(IFF_UP.rawValue) : 0
        info.ifi_change = UInt32(IFF_UP.rawValue)
        let message = NetlinkMessage(type: Int32(RTM_NEWLINK), flags: NLM_F_ACK, family: info)
        try request(message, "set \(name) \(up ? "up" : "down")")
    }

    /// Attaches the interface to `bridge` (nil: detaches it).
    public func setMaster(_ name: String, bridge: String?) throws {
        var info = ifinfomsg()
        info.ifi_index = try index(of: name)
        var message = NetlinkMessage(type: Int32(RTM_NEWLINK), flags: NLM_F_ACK, family: info)
        message.attribute(Int32(IFLA_MASTER), uint32: UInt32(bitPattern: try bridge.map { try index(of: $0) } ?? 0))
        try request(message, "attach \(name) to \(bridge ?? "no bridge")")
    }

    /// Removes the interface (a veth pair goes with either end).
    public func deleteLink(_ name: String) throws {
        var info = ifinfomsg()
        info.ifi_index = try index(of: name)
        try request(NetlinkMessage(type: Int32(RTM_DELLINK), flags: NLM_F_ACK, family: info), "delete link \(name)")
    }

    /// Every interface of the namespace.
    public func links() throws -> [Link] {
        let message = NetlinkMessage(type: Int32(RTM_GETLINK), flags: NLM_F_DUMP, family: ifinfomsg())
        return try dump(message, "list links").compactMap { reply in
            guard reply.type == UInt16(RTM_NEWLINK), let info = reply.header(ifinfomsg.self),
                let name = reply.attributes[UInt16(IFLA_IFNAME)].map(Netlink.string)
            else { return nil }
            let kind = reply.attributes[UInt16(IFLA_LINKINFO)]
                .flatMap { NetlinkReply.attributes($0)[UInt16(IFLA_INFO_KIND)] }.map(Netlink.string)
            return Link(
                index: info.ifi_index, name: name, isUp: info.ifi_flags & UInt32(IFF_UP.rawValue) != 0,
                master: reply.attributes[UInt16(IFLA_MASTER)].flatMap(Netlink.uint32).map { Int32(bitPattern: $0) },
                mtu: reply.attributes[UInt16(IFLA_MTU)].flatMap(Netlink.uint32), kind: kind)
        }
    }

    /// The interface's index; an error naming it when there is none. One request for that
    /// name, not a dump of every interface (a host may have thousands).
    public func index(of name: String) throws -> Int32 {
        try Netlink.checkName(name)
        var message = NetlinkMessage(type: Int32(RTM_GETLINK), flags: 0, family: ifinfomsg())
        message.attribute(Int32(IFLA_IFNAME), string: name)
        // Only the index is wanted: no statistics, no VF lists.
        message.attribute(Int32(IFLA_EXT_MASK), uint32: 0)
        let reply = try get(message, "find link \(name)")
        guard reply.type == UInt16(RTM_NEWLINK), let info = reply.header(ifinfomsg.self) else {
            throw Error(operation: "find link \(name)", errno: ENODEV)
        }
        return info.ifi_index
    }

    /// Refused before anything is sent: the kernel would cut or reject it less clearly.
    static func checkName(_ name: String) throws {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= maximumNameLength, name != ".", name != "..",
            !bytes.contains(where: { $0 == UInt8(ascii: "/") || $0 <= 32 || $0 == UInt8(ascii: ":") })
        else {
            throw Error(operation: "interface name \"\(name)\" (1 to 15 characters, no /, : or spaces)", errno: EINVAL)
        }
    }

    static func string(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    static func uint32(_ bytes: [UInt8]) -> UInt32? {
        bytes.count >= 4 ? bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } : nil
    }
}
