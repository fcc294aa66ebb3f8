/// An instruction's `--name=value` flags checked against the ones it accepts (BuildKit's BFlags).
struct Flags {
    enum Kind {
        case string
        case bool
        /// Repeatable: every occurrence is kept, in order.
        case list
    }

    private(set) var strings: [String: String] = [:]
    private(set) var bools: [String: Bool] = [:]
    private(set) var lists: [String: [String]] = [:]

    init(_ words: [String], allowed: [String: Kind]) throws {
        for word in words {
            guard word.hasPrefix("--") else { throw DockerfileError("invalid flag \"\(word)\"") }
            let body = word.dropFirst(2)
            let name: String
            let value: String?
            if let equals = body.firstIndex(of: "=") {
                name = String(body[..<equals])
                value = String(body[body.index(after: equals)...])
            } else {
                name = String(body)
                value = nil
            }
            guard let kind = allowed[name] else { throw DockerfileError("unknown flag: \(name)") }
            switch kind {
            case .bool:
                guard bools[name] == nil else { throw DockerfileError("duplicate flag specified: \(name)") }
                switch value?.lowercased() {
                case nil, "true": bools[name] = true
                case "false": bools[name] = false
                default: throw DockerfileError("expecting boolean value for flag \(name), not: \(value!)")
                }
            case .string:
                guard let value else { throw DockerfileError("missing a value on flag: \(name)") }
                guard strings[name] == nil else { throw DockerfileError("duplicate flag specified: \(name)") }
                strings[name] = value
            case .list:
                guard let value else { throw DockerfileError("missing a value on flag: \(name)") }
                lists[name, default: []].append(value)
            }
        }
    }

    subscript(string name: String) -> String? { strings[name] }
    subscript(bool name: String) -> Bool { bools[name] ?? false }
    subscript(list name: String) -> [String] { lists[name] ?? [] }

    static let allowed: [String: [String: Kind]] = [
        "FROM": ["platform": .string],
        "RUN": ["mount": .list, "network": .string, "security": .string],
        "COPY": [
            "from": .string, "chown": .string, "chmod": .string, "link": .bool, "parents": .bool, "exclude": .list,
        ],
        "ADD": [
            "chown": .string, "chmod": .string, "link": .bool, "keep-git-dir": .bool, "checksum": .string,
            "exclude": .list,
        ],
        "HEALTHCHECK": [
            "interval": .string, "timeout": .string, "start-period": .string, "start-interval": .string,
            "retries": .string,
        ],
    ]
}
