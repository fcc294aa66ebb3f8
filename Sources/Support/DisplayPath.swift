/// Paths from archives and layer trees as they appear in error messages: a hostile or merely deep
/// layer can hold a path of many kilobytes, and an error must stay one readable line.
public enum DisplayPath {
    public static let limit = 160

    /// One name or path in raw bytes (an archive's names need not be UTF-8).
    public static func of(_ bytes: [UInt8]) -> String {
        shortened(String(decoding: bytes, as: UTF8.self), bytes: bytes.count)
    }

    /// Components joined with "/".
    public static func joined(_ parts: [[UInt8]]) -> String {
        of(Array(parts.joined(separator: [UInt8(ascii: "/")])))
    }

    /// `base`, a store path shown in full, then `parts` below it.
    public static func under(_ base: String, _ parts: [[UInt8]]) -> String {
        parts.isEmpty ? base : base + "/" + joined(parts)
    }

    /// The start and the end of a long path, which name it well enough, and its length; control
    /// characters shown as `?`.
    private static func shortened(_ text: String, bytes: Int) -> String {
        guard text.count > limit else { return text.printable }
        return "\(text.prefix(limit / 2 - 20))…\(text.suffix(limit / 2 + 20)) (\(bytes) bytes)".printable
    }
}

extension String {
    /// The text with control characters (escape sequences, bells, newlines) shown as `?`: names
    /// and messages from images, archives and registries are printed on the user's terminal, and
    /// must not drive it.
    public var printable: String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : $0 }))
    }
}
