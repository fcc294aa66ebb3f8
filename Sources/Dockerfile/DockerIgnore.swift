/// A build context's `.dockerignore`, with Docker's rules (moby/patternmatcher, as BuildKit
/// applies it when it sends the context):
///
/// - a line starting with `#` is a comment; blank lines are skipped; each pattern is trimmed,
///   cleaned like Go's filepath.Clean (`a//b/../c` is `a/c`) and loses a leading "/";
/// - `*` and `?` do not cross "/", `[...]` is a class, `\` escapes, and `**` matches any number
///   of directories (none too): `**/*.go` is every .go file, `docs/**` everything under docs;
/// - a pattern that matches a directory excludes everything under it;
/// - `!pattern` is an exception that includes again what it matches; the last matching line
///   wins, so an exception must follow the patterns it makes exceptions to.
public struct DockerIgnore: Sendable {
    private struct Rule: Sendable {
        var pattern: String
        var exception: Bool
        var tokens: [Token]
        /// The pattern cut at "/", for telling whether it can match under a directory.
        var segments: [String]
    }

    private enum Token: Equatable, Sendable {
        case literal(Unicode.Scalar)
        case star  // [^/]*
        case one  // [^/]
        case set(negated: Bool, ranges: [ClosedRange<Unicode.Scalar>])
        case directories  // (.*/)?  from "**/" or "**" before more pattern
        case anything  // .*  from a trailing "**"
    }

    private let rules: [Rule]

    public init(_ text: String) {
        var rules: [Rule] = []
        for line in lines(of: text) {
            if line.hasPrefix("#") { continue }
            var pattern = line.trimmingBlanks
            if pattern.isEmpty { continue }
            let exception = pattern.hasPrefix("!")
            if exception { pattern = String(pattern.dropFirst()).trimmingBlanks }
            if !pattern.isEmpty {
                pattern = Self.clean(pattern)
                if pattern.count > 1 && pattern.hasPrefix("/") { pattern.removeFirst() }
            }
            rules.append(
                Rule(
                    pattern: pattern, exception: exception, tokens: Self.compile(pattern),
                    segments: pattern.split(separator: "/", omittingEmptySubsequences: false).map(String.init)))
        }
        self.rules = rules
    }

    /// The patterns as cleaned, exceptions with their "!".
    public var patterns: [String] {
        rules.map { ($0.exception ? "!" : "") + $0.pattern }
    }

    /// Whether the file or directory at `relativePath` (relative to the context, "/"-separated)
    /// is left out of the context.
    public func excludes(_ relativePath: String) -> Bool {
        let path = Self.clean(relativePath)
        let components = path.split(separator: "/")
        // The path's parent directories, nearest the root first: "a", "a/b" for "a/b/c".
        let parents =
            components.count < 2 ? [] : (1..<components.count).map { components[0..<$0].joined(separator: "/") }
        var excluded = false
        for rule in rules where rule.exception == excluded {
            var matched = Self.match(rule.tokens[...], Array(path.unicodeScalars)[...])
            if !matched {
                matched = parents.contains { Self.match(rule.tokens[...], Array($0.unicodeScalars)[...]) }
            }
            if matched { excluded = !rule.exception }
        }
        return excluded
    }

    /// Whether some exception could include again something under this directory, so that a
    /// walker must look inside an excluded directory rather than skip it whole.
    public func mayIncludeUnder(_ relativeDirectory: String) -> Bool {
        let directory = Self.clean(relativeDirectory).split(separator: "/").map(String.init)
        return rules.contains { rule in
            rule.exception && Self.mayMatchUnder(rule.segments[...], directory[...])
        }
    }

    /// Whether a pattern's segments can match some path below `directory` (or the directory
    /// itself, which then takes its contents along).
    private static func mayMatchUnder(_ segments: ArraySlice<String>, _ directory: ArraySlice<String>) -> Bool {
        guard let segment = segments.first else { return true }
        if segment.contains("**") { return true }
        guard let component = directory.first else { return true }
        guard (try? PathPattern.matches(segment, component)) ?? false else { return false }
        return mayMatchUnder(segments.dropFirst(), directory.dropFirst())
    }

    // MARK: - Patterns

    /// Go's filepath.Clean for "/"-separated paths, "" being ".".
    static func clean(_ path: String) -> String {
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

    private static func compile(_ pattern: String) -> [Token] {
        let scalars = Array(pattern.unicodeScalars)
        var tokens: [Token] = []
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            switch scalar {
            case "*":
                guard index < scalars.count && scalars[index] == "*" else {
                    tokens.append(.star)
                    continue
                }
                index += 1
                if index < scalars.count && scalars[index] == "/" { index += 1 }
                tokens.append(index == scalars.count ? .anything : .directories)
            case "?":
                tokens.append(.one)
            case "\\":
                if index < scalars.count {
                    tokens.append(.literal(scalars[index]))
                    index += 1
                } else {
                    tokens.append(.literal("\\"))
                }
            case "[":
                // A class as in PathPattern; a malformed one matches its text literally.
                var end = index
                while end < scalars.count && (scalars[end] != "]" || end == index) { end += 1 }
                var text = ""
                text.unicodeScalars.append(contentsOf: scalars[(index - 1)..<min(end + 1, scalars.count)])
                if end < scalars.count, let compiled = try? PathPattern.compile(text), compiled.count == 1,
                    case .set(let negated, let ranges) = compiled[0]
                {
                    tokens.append(.set(negated: negated, ranges: ranges))
                    index = end + 1
                } else {
                    tokens.append(.literal("["))
                }
            default:
                tokens.append(.literal(scalar))
            }
        }
        return tokens
    }

    private static func match(_ tokens: ArraySlice<Token>, _ path: ArraySlice<Unicode.Scalar>) -> Bool {
        guard let token = tokens.first else { return path.isEmpty }
        let rest = tokens.dropFirst()
        switch token {
        case .anything:
            return true
        case .directories:
            // Nothing, or any run of characters ending with "/".
            if match(rest, path) { return true }
            var index = path.startIndex
            while index < path.endIndex {
                if path[index] == "/" && match(rest, path[(index + 1)...]) { return true }
                index += 1
            }
            return false
        case .star:
            var remaining = path
            while true {
                if match(rest, remaining) { return true }
                guard let first = remaining.first, first != "/" else { return false }
                remaining = remaining.dropFirst()
            }
        case .one:
            guard let first = path.first, first != "/" else { return false }
            return match(rest, path.dropFirst())
        case .literal(let literal):
            guard path.first == literal else { return false }
            return match(rest, path.dropFirst())
        case .set(let negated, let ranges):
            guard let first = path.first, first != "/", ranges.contains(where: { $0.contains(first) }) != negated
            else { return false }
            return match(rest, path.dropFirst())
        }
    }
}
