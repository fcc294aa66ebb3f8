/// How the Dockerfile parser cuts argument text into words before any substitution. Each
/// instruction uses one of these, as BuildKit's line parsers do.
enum Words {
    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace
    }

    /// Words separated by unquoted whitespace; quotes and escapes are kept for the substitution
    /// that follows to remove (ENV, LABEL, ARG, and the sources of COPY/ADD).
    static func quoted(_ text: String, escape: Character) -> [String] {
        let escape = escape.unicodeScalars.first ?? "\\"
        let scalars = Array(text.unicodeScalars)
        var words: [String] = []
        var word = ""
        var started = false  // a word has begun: quotes make even an empty one count
        var quote: Unicode.Scalar?
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            if let open = quote {
                if scalar == open {
                    quote = nil
                } else if scalar == escape && open != "'" {
                    // An escape inside double quotes keeps the next character with it, so that
                    // an escaped quote does not end the quoted part.
                    word.unicodeScalars.append(scalar)
                    guard index < scalars.count else { break }
                    word.unicodeScalars.append(scalars[index])
                    index += 1
                    continue
                }
                word.unicodeScalars.append(scalar)
                continue
            }
            if isSpace(scalar) {
                if started { words.append(word) }
                word = ""
                started = false
                continue
            }
            started = true
            if scalar == "'" || scalar == "\"" {
                quote = scalar
            } else if scalar == escape {
                word.unicodeScalars.append(scalar)
                guard index < scalars.count else { continue }
                word.unicodeScalars.append(scalars[index])
                index += 1
                continue
            }
            word.unicodeScalars.append(scalar)
        }
        if started { words.append(word) }
        return words
    }

    /// Words separated by whitespace, nothing else considered (FROM, EXPOSE, HEALTHCHECK's type).
    static func plain(_ text: String) -> [String] {
        text.split(whereSeparator: { $0.unicodeScalars.allSatisfy(isSpace) }).map(String.init)
    }

    /// The first whitespace-separated word and the rest after the whitespace following it.
    static func first(_ text: String) -> (word: String, rest: String) {
        let trimmed = text.drop(while: { $0.isWhitespace })
        guard let end = trimmed.firstIndex(where: { $0.isWhitespace }) else { return (String(trimmed), "") }
        return (String(trimmed[..<end]), String(trimmed[end...].drop(while: { $0.isWhitespace })))
    }

    /// BuildKit's flag extraction: leading words starting with "--" (quotes removed, a backslash
    /// escaping the next character) up to the first other word or a lone "--".
    static func flags(_ text: String) -> (flags: [String], rest: String) {
        let scalars = Array(text.unicodeScalars)
        var flags: [String] = []
        var index = 0
        func rest(from start: Int) -> String {
            var result = ""
            result.unicodeScalars.append(contentsOf: scalars[start...])
            return result
        }
        while true {
            while index < scalars.count && isSpace(scalars[index]) { index += 1 }
            guard index + 1 < scalars.count, scalars[index] == "-", scalars[index + 1] == "-" else {
                return (flags, rest(from: index))
            }
            var word = ""
            var quote: Unicode.Scalar?
            var quoted = false
            while index < scalars.count {
                let scalar = scalars[index]
                if quote == nil && isSpace(scalar) { break }
                index += 1
                if let open = quote, scalar == open {
                    quote = nil
                    continue
                }
                if quote == nil && (scalar == "'" || scalar == "\"") {
                    quote = scalar
                    quoted = true
                    continue
                }
                if scalar == "\\" {
                    guard index < scalars.count else { continue }
                    word.unicodeScalars.append(scalars[index])
                    index += 1
                    continue
                }
                word.unicodeScalars.append(scalar)
            }
            if word == "--" && !quoted { return (flags, rest(from: index).trimmingBlanks) }
            flags.append(word)
        }
    }
}

/// The JSON form of an instruction: a JSON array of strings. Anything that is not valid JSON is
/// the shell form; valid JSON that is not an array of strings is an error, as in Docker.
enum JSONForm {
    enum Result: Equatable {
        case strings([String])
        case notStrings
        case notJSON
    }

    static func parse(_ text: String) -> Result {
        var parser = Parser(Array(text.utf8))
        parser.skipSpace()
        guard parser.peek == UInt8(ascii: "[") else { return .notJSON }
        guard let value = parser.value() else { return .notJSON }
        parser.skipSpace()
        guard parser.atEnd else { return .notJSON }
        guard case .array(let items) = value else { return .notJSON }
        var strings: [String] = []
        for item in items {
            guard case .string(let string) = item else { return .notStrings }
            strings.append(string)
        }
        return .strings(strings)
    }

    private indirect enum Value {
        case string(String)
        case array([Value])
        case other
    }

    /// A strict RFC 8259 reader, keeping only what this needs (strings and arrays).
    private struct Parser {
        let bytes: [UInt8]
        var index = 0
        /// Arrays and objects open around the value being read: deeper is not read (each level is
        /// a recursion, and a stage's thread has a small stack).
        var depth = 0
        static let maxDepth = 64

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { index >= bytes.count }
        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let byte = peek, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        }

        mutating func literal(_ word: String) -> Bool {
            let expected = Array(word.utf8)
            guard bytes.count - index >= expected.count, Array(bytes[index..<index + expected.count]) == expected
            else { return false }
            index += expected.count
            return true
        }

        mutating func value() -> Value? {
            skipSpace()
            guard let byte = peek else { return nil }
            switch byte {
            case UInt8(ascii: "["): return array()
            case UInt8(ascii: "{"): return object()
            case UInt8(ascii: "\""): return string().map { .string($0) }
            case UInt8(ascii: "t"): return literal("true") ? .other : nil
            case UInt8(ascii: "f"): return literal("false") ? .other : nil
            case UInt8(ascii: "n"): return literal("null") ? .other : nil
            default: return number() ? .other : nil
            }
        }

        mutating func array() -> Value? {
            index += 1
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { return nil }
            var items: [Value] = []
            skipSpace()
            if peek == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            while true {
                guard let item = value() else { return nil }
                items.append(item)
                skipSpace()
                guard let byte = peek else { return nil }
                index += 1
                if byte == UInt8(ascii: "]") { return .array(items) }
                guard byte == UInt8(ascii: ",") else { return nil }
            }
        }

        mutating func object() -> Value? {
            index += 1
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { return nil }
            skipSpace()
            if peek == UInt8(ascii: "}") {
                index += 1
                return .other
            }
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\""), string() != nil else { return nil }
                skipSpace()
                guard peek == UInt8(ascii: ":") else { return nil }
                index += 1
                guard value() != nil else { return nil }
                skipSpace()
                guard let byte = peek else { return nil }
                index += 1
                if byte == UInt8(ascii: "}") { return .other }
                guard byte == UInt8(ascii: ",") else { return nil }
            }
        }

        mutating func number() -> Bool {
            let start = index
            if peek == UInt8(ascii: "-") { index += 1 }
            func digits() -> Int {
                var count = 0
                while let byte = peek, byte >= 0x30 && byte <= 0x39 {
                    index += 1
                    count += 1
                }
                return count
            }
            if peek == UInt8(ascii: "0") {
                index += 1
            } else if digits() == 0 {
                return false
            }
            if peek == UInt8(ascii: ".") {
                index += 1
                guard digits() > 0 else { return false }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                index += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { return false }
            }
            return index > start
        }

        mutating func hex4() -> UInt32? {
            guard bytes.count - index >= 4 else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let digit = Character(Unicode.Scalar(bytes[index])).hexDigitValue else { return nil }
                value = value * 16 + UInt32(digit)
                index += 1
            }
            return value
        }

        mutating func string() -> String? {
            index += 1
            var out: [UInt8] = []
            while let byte = peek {
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let escaped = peek else { return nil }
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        guard var code = hex4() else { return nil }
                        // A surrogate pair is one character; a lone surrogate becomes U+FFFD as in Go.
                        if code >= 0xD800 && code < 0xDC00, bytes.count - index >= 6,
                            bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                        {
                            let save = index
                            index += 2
                            if let low = hex4(), low >= 0xDC00 && low < 0xE000 {
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                index = save
                            }
                        }
                        let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                        out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default: return nil
                    }
                default:
                    guard byte >= 0x20 else { return nil }
                    out.append(byte)
                }
            }
            return nil
        }
    }
}
