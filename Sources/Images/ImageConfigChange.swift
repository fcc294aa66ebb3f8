import FoundationEssentials
import Support

extension ImageConfig {
    /// Applies one Dockerfile-style instruction, as `docker import --change` takes them:
    /// `CMD ["sh"]`, `CMD echo hi`, `ENTRYPOINT [...]`, `ENV A=1 B=2`, `ENV A 1`, `EXPOSE 80 53/udp`,
    /// `LABEL k=v`, `USER u`, `WORKDIR /w`, `STOPSIGNAL SIGTERM`.
    public mutating func apply(change: String) throws {
        let trimmed = change.trimmingWhitespace()
        let keyword = trimmed.prefix { !$0.isWhitespace }
        let argument = trimmed.dropFirst(keyword.count).trimmingWhitespace()
        func bad(_ reason: String) -> ChangeError { ChangeError(change: change, reason: reason) }
        if argument.isEmpty { throw bad("\(keyword.uppercased()) needs an argument") }

        switch keyword.uppercased() {
        case "CMD":
            cmd = try Self.commandForm(argument, change: change)
        case "ENTRYPOINT":
            entrypoint = try Self.commandForm(argument, change: change)
        case "ENV":
            for (key, value) in try Self.pairs(argument, change: change, keyword: "ENV") {
                var list = (env ?? []).filter { !$0.hasPrefix(key + "=") }
                list.append(key + "=" + value)
                env = list
            }
        case "LABEL":
            for (key, value) in try Self.pairs(argument, change: change, keyword: "LABEL") {
                var map = labels ?? [:]
                map[key] = value
                labels = map
            }
        case "EXPOSE":
            for word in argument.split(whereSeparator: \.isWhitespace) {
                let parts = word.split(separator: "/", omittingEmptySubsequences: false)
                guard let port = Int(parts[0]), (1...65535).contains(port), parts.count <= 2 else {
                    throw bad("\(word) is not a port like 80 or 53/udp")
                }
                let proto = parts.count == 2 ? parts[1].lowercased() : "tcp"
                guard ["tcp", "udp", "sctp"].contains(proto) else {
                    throw bad("protocol \(proto) is not tcp, udp or sctp")
                }
                let entry = "\(port)/\(proto)"
                if !(exposedPorts ?? []).contains(entry) { exposedPorts = (exposedPorts ?? []) + [entry] }
            }
        case "USER":
            user = argument
        case "WORKDIR":
            guard argument.hasPrefix("/") else { throw bad("WORKDIR must be an absolute path") }
            workingDir = argument
        case "STOPSIGNAL":
            stopSignal = argument
        default:
            throw bad("berth supports CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER and WORKDIR")
        }
    }

    /// A `--change` that could not be applied.
    public struct ChangeError: Error, CustomStringConvertible, Equatable {
        public var change: String
        public var reason: String
        public var description: String { "invalid --change \"\(change)\": \(reason)" }
    }

    /// The JSON array form, or the shell form wrapped in `/bin/sh -c` as Docker does.
    private static func commandForm(_ argument: String, change: String) throws -> [String] {
        if argument.hasPrefix("[") {
            guard let list = try? JSONDecoder().decode([String].self, from: Data(argument.utf8)) else {
                throw ChangeError(change: change, reason: "the JSON form must be an array of strings")
            }
            return list
        }
        return ["/bin/sh", "-c", argument]
    }

    /// `K=V K2="v 2"` pairs, or the legacy single `K V` form.
    private static func pairs(_ argument: String, change: String, keyword: String) throws -> [(String, String)] {
        let words = try shellWords(argument, change: change)
        if let first = words.first, !first.contains("=") {
            // Legacy form: the first word is the key, everything after the first blank the value.
            let value = argument.drop { !$0.isWhitespace }.trimmingWhitespace()
            guard !value.isEmpty else { throw ChangeError(change: change, reason: "\(keyword) \(first) needs a value") }
            return [(first, value)]
        }
        return try words.map { word in
            guard let eq = word.firstIndex(of: "=") else {
                throw ChangeError(change: change, reason: "\(keyword) \(word) needs a value (KEY=VALUE)")
            }
            let key = String(word[..<eq])
            guard !key.isEmpty else {
                throw ChangeError(change: change, reason: "\(keyword) has an empty name in \(word)")
            }
            return (key, String(word[word.index(after: eq)...]))
        }
    }

    /// Splits on blanks, honouring double and single quotes and backslash escapes.
    private static func shellWords(_ text: String, change: String) throws -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for ch in text {
            if escaped {
                current.append(ch)
                escaped = false
            } else if ch == "\\" && quote != "'" {
                escaped = true
                inWord = true
            } else if let q = quote {
                if ch == q { quote = nil } else { current.append(ch) }
            } else if ch == "\"" || ch == "'" {
                quote = ch
                inWord = true
            } else if ch.isWhitespace {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(ch)
                inWord = true
            }
        }
        if quote != nil { throw ChangeError(change: change, reason: "a quote is not closed") }
        if inWord { words.append(current) }
        return words
    }
}
