import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// An IPv4 address on an interface, with its prefix length.
public struct InterfaceAddress: Equatable, Sendable {
    public var interface: Int32
    public var address: IPv4Address
    public var prefixLength: UInt8
}

extension Netlink {
    /// Adds `address/prefixLength` to the interface (its subnet's route comes with it, once up).
    public func addAddress(_ address: IPv4Address, prefixLength: UInt8, to name: String) throws {
        try addAddress(address, prefixLength: prefixLength, index: try index(of: name), name: name)
    }

    /// The same for an interface known by index (`name` only for the error).
    func addAddress(_ address: IPv4Address, prefixLength: UInt8, index: Int32, name: String) throws {
        guard prefixLength <= 32 else {
            throw Error(operation: "address \(address)/\(prefixLength): a prefix is 0 to 32 bits", errno: EINVAL)
        }
        var info = ifaddrmsg()
        info.ifa_family = UInt8(AF_INET)
        info.ifa_prefixlen = prefixLength
        info.ifa_index = UInt32(bitPattern: index)
        var message = NetlinkMessage(
            type: Int32(RTM_NEWADDR), flags: NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, family: info)
        message.attribute(Int32(IFA_LOCAL), address.array)
        message.attribute(Int32(IFA_ADDRESS), address.array)
        if prefixLength < 31 {
            // As `ip addr add ... brd +` and Docker's netlink library set it.
            let subnet = IPv4Subnet(network: address, prefixLength: prefixLength)
            message.attribute(Int32(IFA_BROADCAST), IPv4Subnet.address(IPv4Subnet.value(address) | ~subnet.mask).array)
        }
        try request(message, "add address \(address)/\(prefixLength) to \(name)")
    }

    /// Every IPv4 address of the namespace.
    public func addresses() throws -> [InterfaceAddress] {
        var info = ifaddrmsg()
        info.ifa_family = UInt8(AF_INET)
        let message = NetlinkMessage(type: Int32(RTM_GETADDR), flags: NLM_F_DUMP, family: info)
        return try dump(message, "list addresses").compactMap { reply in
            guard reply.type == UInt16(RTM_NEWADDR), let info = reply.header(ifaddrmsg.self),
                let address = (reply.attributes[UInt16(IFA_LOCAL)] ?? reply.attributes[UInt16(IFA_ADDRESS)])
                    .flatMap(IPv4Address.init(array:))
            else { return nil }
            return InterfaceAddress(
                interface: Int32(bitPattern: info.ifa_index), address: address, prefixLength: info.ifa_prefixlen)
        }
    }
}
