import FoundationEssentials
import Images

/// `image ls --filter`: Docker's `dangling=true|false` and `reference=PATTERN`. Several values
/// of one key match when any does; different keys must all match, as in Docker.
struct ImageFilter {
    var dangling: Bool?
    var references: [String] = []

    init(_ filters: [String]) throws {
        for filter in filters {
            let parts = filter.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                throw ImageCommandError(description: "bad format of filter (expected name=value): \(filter)")
            }
            switch parts[0] {
            case "dangling":
                switch parts[1].lowercased() {
                case "true", "1": dangling = true
                case "false", "0": dangling = false
                default:
                    throw ImageCommandError(description: "invalid filter 'dangling=\(parts[1])': use true or false")
                }
            case "reference":
                references.append(parts[1])
            default:
                throw ImageCommandError(description: "invalid filter '\(parts[0])'")
            }
        }
    }

    func matches(_ image: Image) -> Bool {
        // No tag: untagged, or named by digest only (Docker lists those as dangling too).
        if let dangling, dangling != (image.reference.isEmpty || image.reference.contains("@")) { return false }
        if references.isEmpty { return true }
        // Docker's FamiliarMatch: the pattern against `name:tag`, then against the name alone.
        guard !image.reference.isEmpty else { return false }
        var name = Substring(image.reference)
        if let at = name.firstIndex(of: "@") { name = name[..<at] }
        if let colon = name.lastIndex(of: ":"), !name[colon...].contains("/") { name = name[..<colon] }
        return references.contains { Glob.match($0, image.reference) || Glob.match($0, String(name)) }
    }
}

/// Go's path.Match: `*` any run of characters but `/`, `?` one such character, `[...]` a class
/// (`^` or `!` negates, ranges with `-`), `\` escapes. A malformed pattern matches nothing.
enum Glob {
    static func match(_ pattern: String, _ name: String) -> Bool {
        match(Array(pattern), 0, Array(name), 0)
    }

    private static func match(_ p: [Character], _ pi: Int, _ s: [Character], _ si: Int) -> Bool {
        var pi = pi
        var si = si
        while pi < p.count {
            switch p[pi] {
            case "*":
                // Try every split, the shortest first; `*` never crosses a `/`.
                var k = si
                while true {
                    if match(p, pi + 1, s, k) { return true }
                    if k == s.count || s[k] == "/" { return false }
                    k += 1
                }
            case "?":
                guard si < s.count, s[si] != "/" else { return false }
            case "[":
                guard si < s.count, s[si] != "/", let (matched, end) = matchClass(p, pi + 1, s[si]), matched else {
                    return false
                }
                pi = end
                si += 1
                continue
            case "\\":
                pi += 1
                guard pi < p.count, si < s.count, p[pi] == s[si] else { return false }
            default:
                guard si < s.count, p[pi] == s[si] else { return false }
            }
            pi += 1
            si += 1
        }
        return si == s.count
    }

    /// Whether `c` is in the class that starts at `start` (just past `[`), and the index past `]`;
    /// nil for a class without its `]`.
    private static func matchClass(_ p: [Character], _ start: Int, _ c: Character) -> (Bool, Int)? {
        var i = start
        var negated = false
        if i < p.count, p[i] == "^" || p[i] == "!" {
            negated = true
            i += 1
        }
        var matched = false
        var first = true
        while i < p.count {
            if p[i] == "]" && !first { return (matched != negated, i + 1) }
            first = false
            var low = p[i]
            if low == "\\" {
                i += 1
                guard i < p.count else { return nil }
                low = p[i]
            }
            var high = low
            if i + 2 < p.count, p[i + 1] == "-", p[i + 2] != "]" {
                high = p[i + 2]
                i += 2
            }
            if low <= c && c <= high { matched = true }
            i += 1
        }
        return nil
    }
}
