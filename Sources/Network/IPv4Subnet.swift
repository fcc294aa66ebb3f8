import CNetlink

/// An IPv4 subnet: a network address (host bits zero) and a prefix length, as "10.1.0.0/16".
public struct IPv4Subnet: Hashable, Sendable, TextCodable {
    public let network: IPv4Address
    public let prefixLength: UInt8

    /// Refuses host bits: "10.1.0.5/16" is not a subnet (Docker's "invalid subnet").
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(String(parts[0])),
            parts[1].allSatisfy(\.isASCII), let length = UInt8(parts[1]), length <= 32
        else { return nil }
        self.init(network: address, prefixLength: length)
        guard IPv4Subnet.value(network) & ~mask == 0 else { return nil }
    }

    init(network: IPv4Address, prefixLength: UInt8) {
        self.network = network
        self.prefixLength = prefixLength
    }

    public var description: String { "\(network)/\(prefixLength)" }

    var mask: UInt32 { prefixLength == 0 ? 0 : ~UInt32(0) << (32 - UInt32(prefixLength)) }
    var first: UInt32 { IPv4Subnet.value(network) }
    var last: UInt32 { first | ~mask }

    public func contains(_ address: IPv4Address) -> Bool { IPv4Subnet.value(address) & mask == first }

    public func overlaps(_ other: IPv4Subnet) -> Bool { first <= other.last && other.first <= last }

    /// The addresses a container or gateway may take: all but the network and broadcast
    /// addresses (for /31 and /32, all).
    var hosts: ClosedRange<UInt32> { prefixLength >= 31 ? first...last : (first + 1)...(last - 1) }

    static func value(_ a: IPv4Address) -> UInt32 {
        UInt32(a.bytes.0) << 24 | UInt32(a.bytes.1) << 16 | UInt32(a.bytes.2) << 8 | UInt32(a.bytes.3)
    }

    static func address(_ v: UInt32) -> IPv4Address {
        IPv4Address(UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff))
    }
}
