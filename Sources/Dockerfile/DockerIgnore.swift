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
                pattern = PathPattern.clean(pattern)
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
        let path = PathPattern.clean(relativePath)
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
        let directory = PathPattern.clean(relativeDirectory).split(separator: "/").map(String.init)
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

    /// Whether `tokens` match the whole `path`: the pattern run as an automaton over the path's
    /// characters, a set of token positions at a time, O(tokens × path). Trying every split at
    /// every star was exponential: `*a*a*a*a*a*a*a*a*a*a*a*a*b` against a 200-character name
    /// held a build for hours, deaf to SIGTERM.
    private static func match(_ pattern: ArraySlice<Token>, _ path: ArraySlice<Unicode.Scalar>) -> Bool {
        let tokens = Array(pattern)
        let n = tokens.count
        // `at[t]`: token t is next; `inRun[t]`: within the "(.*/)" of a `directories` token t.
        var at = [Bool](repeating: false, count: n + 1)
        var inRun = [Bool](repeating: false, count: n + 1)
        var accepted = false
        // What matches nothing is passed: a star, a directories token (no directory), and a
        // trailing "**" takes whatever is left.
        func close(_ states: inout [Bool]) {
            for t in 0..<n where states[t] {
                switch tokens[t] {
                case .star, .directories: states[t + 1] = true
                case .anything: accepted = true
                default: break
                }
            }
        }
        at[0] = true
        close(&at)
        for c in path {
            if accepted { return true }
            var next = [Bool](repeating: false, count: n + 1)
            var nextRun = [Bool](repeating: false, count: n + 1)
            for t in 0..<n where at[t] || inRun[t] {
                switch tokens[t] {
                case .directories:
                    nextRun[t] = true
                    if c == "/" { next[t + 1] = true }
                case .star:
                    if at[t] && c != "/" { next[t] = true }
                case .one:
                    if at[t] && c != "/" { next[t + 1] = true }
                case .literal(let literal):
                    if at[t] && c == literal { next[t + 1] = true }
                case .set(let negated, let ranges):
                    if at[t] && c != "/" && ranges.contains(where: { $0.contains(c) }) != negated { next[t + 1] = true }
                case .anything:
                    break
                }
            }
            close(&next)
            at = next
            inRun = nextRun
            if !accepted && !at.contains(true) && !inRun.contains(true) { return false }
        }
        return accepted || at[n]
    }
}
