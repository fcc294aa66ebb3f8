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
    /// Go's filepath.Clean for "/"-separated paths, "" being ".".
    public static func clean(_ path: String) -> String {
        let rooted = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            switch part {
            case ".": continue
            case "..":
                if let last = parts.last, last != ".." {
                    parts.removeLast()
                } else if !rooted {
                    parts.append(part)
                }
            default: parts.append(part)
            }
        }
        let joined = parts.joined(separator: "/")
        if rooted { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

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

    /// Whether `tokens` match the whole of `name`: a set of token positions at a time over the
    /// characters, O(tokens × name), where trying every split at every star was exponential.
    static func match(_ pattern: ArraySlice<Token>, _ name: ArraySlice<Unicode.Scalar>) -> Bool {
        let tokens = Array(pattern)
        let n = tokens.count
        var at = [Bool](repeating: false, count: n + 1)
        func close(_ states: inout [Bool]) {
            for t in 0..<n where states[t] && tokens[t] == .star { states[t + 1] = true }
        }
        at[0] = true
        close(&at)
        for c in name {
            var next = [Bool](repeating: false, count: n + 1)
            for t in 0..<n where at[t] && tokens[t].accepts(c) {
                next[tokens[t] == .star ? t : t + 1] = true
            }
            close(&next)
            at = next
            if !at.contains(true) { return false }
        }
        return at[n]
    }
}
