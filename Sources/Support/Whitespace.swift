/// Trimming as Foundation's `trimmingCharacters(in:)` did it: scalar by scalar, from both ends.
/// (That method and `CharacterSet` are in full Foundation, which berth does not link; see
/// Package.swift.)
extension StringProtocol {
    /// `trimmingCharacters(in: .whitespaces)`: tab and the space separators (category Zs), not
    /// line breaks.
    public func trimmingWhitespace() -> String {
        trimming { $0 == "\t" || $0.properties.generalCategory == .spaceSeparator || $0 == zeroWidthSpace }
    }

    /// `trimmingCharacters(in: .whitespacesAndNewlines)`: categories Z*, U+0009-U+000D and
    /// U+0085, which is Unicode's White_Space property.
    public func trimmingWhitespaceAndNewlines() -> String {
        trimming { $0.properties.isWhitespace || $0 == zeroWidthSpace }
    }

    /// The string without the leading and trailing scalars for which `isTrimmed` holds.
    public func trimming(while isTrimmed: (Unicode.Scalar) -> Bool) -> String {
        let scalars = Substring(self).unicodeScalars
        guard let first = scalars.firstIndex(where: { !isTrimmed($0) }),
            let last = scalars.lastIndex(where: { !isTrimmed($0) })
        else { return "" }
        return String(scalars[first...last])
    }
}

/// Foundation's whitespace sets still hold U+200B, a space separator before Unicode 4.0.1.
private let zeroWidthSpace: Unicode.Scalar = "\u{200B}"
