import YAML

/// The `.env` / `env_file` syntax as `docker compose` reads it (compose-go's dotenv package):
///
///     # a comment line               blank lines are skipped
///     export KEY=value               "export " is allowed and ignored
///     KEY=value # a comment          unquoted: trimmed, cut at " #", interpolated
///     KEY=                           empty value
///     KEY: value                     the YAML-like ":" separator works too
///     KEY                            taken from `lookup` when it has it, else skipped
///     KEY='literal $NOT'             single quotes: literal, may span lines, only \' is special
///     KEY="a\tb\n${X:-y}"            double quotes: escapes (\n \r \t \a \b \f \v \\ \" \$ \0NNN),
///                                    interpolation, may span lines
///
/// Interpolation looks a name up in `lookup` first (the caller's environment, which overrides
/// .env files in compose), then among the keys defined earlier in the same text. A key defined
/// twice keeps its first position with the last value.
public enum DotEnv {
    public static func parse(_ text: String, file: String, lookup: (String) -> String?) throws -> [(
        key: String, value: String
    )] {
        try withoutActuallyEscaping(lookup) { lookup in
            var parser = Parser(text: text, file: file, lookup: lookup)
            try parser.run()
            return parser.result
        }
    }

    private struct Parser {
        let bytes: [UInt8]
        let file: String
        let lookup: (String) -> String?
        var position = 0
        var line = 1
        var column = 1
        var result: [(key: String, value: String)] = []
        var indexOfKey: [String: Int] = [:]

        init(text: String, file: String, lookup: @escaping (String) -> String?) {
            var bytes = Array(text.utf8)
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }  // UTF-8 byte order mark
            self.bytes = bytes
            self.file = file
            self.lookup = lookup
        }

        var mark: Mark { Mark(file: file, line: line, column: column) }
        var atEnd: Bool { position >= bytes.count }
        var current: UInt8 { bytes[position] }

        mutating func advance() {
            if current == newline {
                line += 1
                column = 1
            } else if current & 0xC0 != 0x80 {  // count characters, not UTF-8 continuation bytes
                column += 1
            }
            position += 1
        }

        mutating func skipSpaces() {
            while !atEnd, isSpace(current) { advance() }
        }

        mutating func skipToEndOfLine() {
            while !atEnd, current != newline { advance() }
        }

        mutating func run() throws {
            while true {
                while !atEnd, isSpace(current) || current == newline { advance() }
                if atEnd { return }
                if current == hash {
                    skipToEndOfLine()
                    continue
                }
                try statement()
            }
        }

        mutating func statement() throws {
            let start = mark
            if hasPrefix("export"), position + 6 < bytes.count, isSpace(bytes[position + 6]) {
                for _ in 0..<6 { advance() }
                skipSpaces()
            }
            let keyStart = position
            while !atEnd, isKeyByte(current) { advance() }
            let key = String(decoding: bytes[keyStart..<position], as: UTF8.self)
            let afterKey = mark
            skipSpaces()

            if atEnd || current == newline {
                guard !key.isEmpty else { throw error("missing variable name", at: start) }
                // A bare name passes a variable through from the environment, if it has one.
                if let value = lookup(key) { set(key, value) }
                return
            }
            guard current == equals || current == colon else {
                if position > keyStart, isKeyByte(current) {
                    throw error("variable name \"\(key)\" cannot contain a space", at: afterKey)
                }
                throw error(
                    "unexpected character \"\(currentCharacter)\" in variable name (allowed: letters, digits, _ . - [ ])",
                    at: mark)
            }
            guard !key.isEmpty else { throw error("missing variable name before \"\(currentCharacter)\"", at: start) }
            advance()
            skipSpaces()
            set(key, try value())
        }

        mutating func value() throws -> String {
            let start = mark
            if atEnd || current == newline { return "" }
            if current == singleQuote || current == doubleQuote {
                return try quotedValue(start: start)
            }
            let valueStart = position
            var valueEnd = position
            while !atEnd, current != newline {
                // " #" starts an inline comment; a "#" inside a word (a#b) does not.
                if current == hash, isSpace(bytes[position - 1]) { break }
                advance()
                if !isSpace(bytes[position - 1]) { valueEnd = position }
            }
            skipToEndOfLine()
            return try interpolate(Array(bytes[valueStart..<valueEnd]), at: start)
        }

        mutating func quotedValue(start: Mark) throws -> String {
            let quote = current
            advance()
            var raw: [UInt8] = []
            var closed = false
            while !atEnd {
                let byte = current
                advance()
                if byte == quote {
                    closed = true
                    break
                }
                if byte == backslash, !atEnd {
                    let next = current
                    if quote == singleQuote {
                        // Only \' is an escape between single quotes; everything else is literal.
                        if next == singleQuote {
                            raw.append(next)
                            advance()
                        } else {
                            raw.append(byte)
                        }
                        continue
                    }
                    advance()
                    appendEscape(next, to: &raw)
                    continue
                }
                raw.append(byte)
            }
            guard closed else {
                throw error(
                    "unterminated quoted value: the \(quote == singleQuote ? "'" : "\"") opened here is never closed",
                    at: start)
            }
            skipSpaces()
            if !atEnd, current == hash { skipToEndOfLine() }
            guard atEnd || current == newline else {
                throw error(
                    "unexpected \"\(currentCharacter)\" after the closing quote (a comment needs \" #\")", at: mark)
            }
            if quote == singleQuote { return String(decoding: raw, as: UTF8.self) }
            return try interpolate(raw, at: start)
        }

        /// The character after a backslash inside double quotes; `\$` becomes `$$` so that the
        /// interpolation that follows yields a literal "$".
        mutating func appendEscape(_ c: UInt8, to raw: inout [UInt8]) {
            switch c {
            case UInt8(ascii: "n"): raw.append(newline)
            case UInt8(ascii: "r"): raw.append(0x0D)
            case UInt8(ascii: "t"): raw.append(0x09)
            case UInt8(ascii: "a"): raw.append(0x07)
            case UInt8(ascii: "b"): raw.append(0x08)
            case UInt8(ascii: "f"): raw.append(0x0C)
            case UInt8(ascii: "v"): raw.append(0x0B)
            case backslash, doubleQuote: raw.append(c)
            case UInt8(ascii: "$"): raw.append(contentsOf: [c, c])
            case UInt8(ascii: "0"):
                // \0NNN: three octal digits after the 0 give one byte.
                var digits: [UInt8] = []
                var p = position
                while digits.count < 3, p < bytes.count, bytes[p] >= 0x30, bytes[p] <= 0x37 {
                    digits.append(bytes[p] - 0x30)
                    p += 1
                }
                let value = digits.reduce(0) { $0 * 8 + Int($1) }
                if digits.count == 3, value <= 0xFF {
                    for _ in 0..<3 { advance() }
                    raw.append(UInt8(value))
                } else {
                    raw.append(contentsOf: [backslash, c])
                }
            default:
                raw.append(contentsOf: [backslash, c])
            }
        }

        func interpolate(_ raw: [UInt8], at mark: Mark) throws -> String {
            let text = String(decoding: raw, as: UTF8.self)
            let earlier = result
            let index = indexOfKey
            let interpolator = Interpolator { name in
                if let value = lookup(name) { return value }
                return index[name].map { earlier[$0].value }
            }
            return try interpolator.interpolate(text, at: mark)
        }

        mutating func set(_ key: String, _ value: String) {
            if let i = indexOfKey[key] {
                result[i].value = value
            } else {
                indexOfKey[key] = result.count
                result.append((key, value))
            }
        }

        func hasPrefix(_ word: String) -> Bool {
            let w = Array(word.utf8)
            return bytes.count - position >= w.count && Array(bytes[position..<position + w.count]) == w
        }

        var currentCharacter: String {
            var end = position + 1
            while end < bytes.count, bytes[end] & 0xC0 == 0x80 { end += 1 }
            return String(decoding: bytes[position..<end], as: UTF8.self)
        }

        func error(_ message: String, at mark: Mark) -> ComposeError {
            ComposeError(message, at: mark)
        }
    }
}

private let newline = UInt8(ascii: "\n")
private let hash = UInt8(ascii: "#")
private let equals = UInt8(ascii: "=")
private let colon = UInt8(ascii: ":")
private let singleQuote = UInt8(ascii: "'")
private let doubleQuote = UInt8(ascii: "\"")
private let backslash = UInt8(ascii: "\\")

/// Blanks within a line (a "\r" of a CRLF file counts as one, so it is trimmed like a space).
private func isSpace(_ b: UInt8) -> Bool {
    b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0B || b == 0x0C
}

/// compose-go accepts letters, digits and `_ . - [ ]` in names; non-ASCII bytes are letters here.
private func isKeyByte(_ b: UInt8) -> Bool {
    (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39)
        || b == 0x5F || b == 0x2E || b == 0x2D || b == 0x5B || b == 0x5D || b >= 0x80
}
