import CNetlink

/// An IPv4 address, as four bytes in network order.
public struct IPv4Address: Hashable, Sendable {
    public var bytes: (UInt8, UInt8, UInt8, UInt8)

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        bytes = (a, b, c, d)
    }

    /// Dotted quad only ("10.0.0.1"): no shorthand forms, no leading zeros, as Docker's
    /// net.ParseIP reads an IPv4 address.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var values: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), part.allSatisfy(\.isNumber),
                part == "0" || !part.hasPrefix("0"), let value = UInt8(part)
            else { return nil }
            values.append(value)
        }
        bytes = (values[0], values[1], values[2], values[3])
    }

    var array: [UInt8] { [bytes.0, bytes.1, bytes.2, bytes.3] }

    init?(array: [UInt8]) {
        guard array.count == 4 else { return nil }
        bytes = (array[0], array[1], array[2], array[3])
    }

    public var description: String { "\(bytes.0).\(bytes.1).\(bytes.2).\(bytes.3)" }

    public static func == (a: IPv4Address, b: IPv4Address) -> Bool { a.array == b.array }

    public func hash(into hasher: inout Hasher) { hasher.combine(array) }
}

extension IPv4Address: TextCodable {}
