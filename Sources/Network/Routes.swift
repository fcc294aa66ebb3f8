import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// An IPv4 route of the main table.
public struct Route: Equatable, Sendable {
    /// nil for the default route.
    public var destination: IPv4Address?
    public var prefixLength: UInt8
    public var gateway: IPv4Address?
    public var interface: Int32?
}

extension Netlink {
    /// The default route through `gateway` (which a connected subnet must reach).
    public func addDefaultRoute(via gateway: IPv4Address) throws {
        var info = rtmsg()
        info.rtm_family = UInt8(AF_INET)
        info.rtm_table = UInt8(RT_TABLE_MAIN.rawValue)
        info.rtm_protocol = UInt8(RTPROT_BOOT)
        info.rtm_scope = UInt8(RT_SCOPE_UNIVERSE.rawValue)
        info.rtm_type = UInt8(RTN_UNICAST)
        var message = NetlinkMessage(
            type: Int32(RTM_NEWROUTE), flags: NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, family: info)
        message.attribute(Int32(RTA_GATEWAY.rawValue), gateway.array)
        try request(message, "add default route via \(gateway)")
    }

    /// The IPv4 routes of the main table.
    public func routes() throws -> [Route] {
        var info = rtmsg()
        info.rtm_family = UInt8(AF_INET)
        let message = NetlinkMessage(type: Int32(RTM_GETROUTE), flags: NLM_F_DUMP, family: info)
        return try dump(message, "list routes").compactMap { reply in
            guard reply.type == UInt16(RTM_NEWROUTE), let info = reply.header(rtmsg.self),
                info.rtm_table == UInt8(RT_TABLE_MAIN.rawValue)
            else { return nil }
            return Route(
                destination: reply.attributes[UInt16(RTA_DST.rawValue)].flatMap(IPv4Address.init(array:)),
                prefixLength: info.rtm_dst_len,
                gateway: reply.attributes[UInt16(RTA_GATEWAY.rawValue)].flatMap(IPv4Address.init(array:)),
                interface: reply.attributes[UInt16(RTA_OIF.rawValue)].flatMap(Netlink.uint32)
                    .map { Int32(bitPattern: $0) })
        }
    }

    /// The subnets this namespace routes directly or by gateway (not the default route): what a
    /// new network's subnet must not overlap.
    public func routedSubnets() throws -> [IPv4Subnet] {
        try routes().compactMap { route in
            guard let destination = route.destination, route.prefixLength > 0 else { return nil }
            return IPv4Subnet(network: destination, prefixLength: route.prefixLength)
        }
    }
}
