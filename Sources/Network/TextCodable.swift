import CNetlink

/// A value kept in JSON as its text (an address, a subnet) and read back through its own parser,
/// so a damaged file is refused with the text that did not parse.
protocol TextCodable: Codable, LosslessStringConvertible {}

extension TextCodable {
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a valid \(Self.self): \(text)"))
        }
        self = value
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
