/// Go's filepath.Match on "/"-separated paths, which COPY and ADD sources use:
///
///     *        any run of characters but "/"
///     ?        one character but "/"
///     [a-z0-9] [^abc]   a class (a range or single characters; ^ negates)
///     \c       c itself
///
/// The whole name must match. A malformed pattern (an unclosed class, a trailing backslash) is
/// an error even when the name would not match, as in Go since 1.16.
public enum PathPattern {
    public static func matches(_ pattern: String, _ name: String) throws -> Bool {
        let tokens = try compile(pattern)
        return match(tokens[...], Array(name.unicodeScalars)[...])
    }

    /// Whether the pattern has anything but literal characters (Docker's containsWildcards): a
    /// source without any is a plain path, and one that does not exist is an error.
    public static func hasWildcards(_ pattern: String) -> Bool {
        var scalars = pattern.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            switch scalar {
            case "\\": _ = scalars.next()
            case "*", "?", "[": return true
            default: break
            }
        }
        return false
    }

    enum Token: Equatable {
        case literal(Unicode.Scalar)
        case star
        case one
        case set(negated: Bool, ranges: [ClosedRange<Unicode.Scalar>])

        func accepts(_ scalar: Unicode.Scalar) -> Bool {
            switch self {
            case .literal(let literal): return literal == scalar
            case .star: return scalar != "/"
            case .one: return scalar != "/"
            case .set(let negated, let ranges):
                return scalar != "/" && ranges.contains(where: { $0.contains(scalar) }) != negated
            }
        }
    }

    static func badPattern(_ pattern: String) -> DockerfileError {
        DockerfileError("syntax error in pattern \"\(pattern)\"")
    }

    static func compile(_ pattern: String) throws -> [Token] {
        let scalars = Array(pattern.unicodeScalars)
        var tokens: [Token] = []
        var index = 0
        func escaped() throws -> Unicode.Scalar {
            guard index < scalars.count else { throw badPattern(pattern) }
            var scalar = scalars[index]
            index += 1
            if scalar == "\\" {
                guard index < scalars.count else { throw badPattern(pattern) }
                scalar = scalars[index]
                index += 1
            }
            return scalar
        }
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            switch scalar {
            case "*": tokens.append(.star)
            case "?": tokens.append(.one)
            case "\\":
                guard index < scalars.count else { throw badPattern(pattern) }
                tokens.append(.literal(scalars[index]))
                index += 1
            case "[":
                var negated = false
                if index < scalars.count && scalars[index] == "^" {
                    negated = true
                    index += 1
                }
                var ranges: [ClosedRange<Unicode.Scalar>] = []
                while true {
                    guard index < scalars.count else { throw badPattern(pattern) }
                    if scalars[index] == "]" && !ranges.isEmpty {
                        index += 1
                        break
                    }
                    // Go refuses "-" and "]" unescaped where a character belongs.
                    if scalars[index] == "-" || scalars[index] == "]" { throw badPattern(pattern) }
                    let low = try escaped()
                    var high = low
                    if index < scalars.count && scalars[index] == "-" {
                        index += 1
                        guard index < scalars.count, scalars[index] != "-", scalars[index] != "]" else {
                            throw badPattern(pattern)
                        }
                        high = try escaped()
                    }
                    guard low <= high else { throw badPattern(pattern) }
                    ranges.append(low...high)
                }
                tokens.append(.set(negated: negated, ranges: ranges))
            default:
                tokens.append(.literal(scalar))
            }
        }
        return tokens
    }

    static func match(_ tokens: ArraySlice<Token>, _ name: ArraySlice<Unicode.Scalar>) -> Bool {
        guard let token = tokens.first else { return name.isEmpty }
        if token == .star {
            var rest = name
            while true {
                if match(tokens.dropFirst(), rest) { return true }
                guard let first = rest.first, first != "/" else { return false }
                rest = rest.dropFirst()
            }
        }
        guard let first = name.first, token.accepts(first) else { return false }
        return match(tokens.dropFirst(), name.dropFirst())
    }
}
