extension Instruction {
    /// Docker's substitution rules for this instruction, then the typed command. `lookup` answers
    /// the variables in scope (the stage's ARGs and ENVs as the builder tracks them; for FROM, the
    /// global ARGs); nil is unset. Errors carry `file` and this instruction's position.
    ///
    /// Substituted: ADD, COPY (and their --from, --chown, --chmod, --exclude, --checksum), ENV,
    /// EXPOSE, FROM (and --platform), LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ARG's defaults, and
    /// RUN's --mount values. Not substituted: RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK (the
    /// shell does that when they run), MAINTAINER, and ONBUILD (its trigger, in the child build).
    public func command(file: String = "Dockerfile", escape: Character, lookup: (String) -> String?) throws
        -> Command
    {
        try withoutActuallyEscaping(lookup) { lookup in
            let typing = Typing(instruction: self, escape: escape, lookup: lookup, validating: false)
            do {
                return try typing.command()
            } catch let error as DockerfileError {
                throw error.located(file: file, at: position)
            }
        }
    }

    /// The checks that need no variable: run at parse time with every variable left as written
    /// and the checks of values that still hold a "$" skipped.
    func validate(file: String, escape: Character) throws {
        let typing = Typing(instruction: self, escape: escape, lookup: { _ in nil }, validating: true)
        do {
            _ = try typing.command()
        } catch let error as DockerfileError {
            throw error.located(file: file, at: position)
        }
    }
}

/// One instruction turned into a `Command`.
private struct Typing {
    let instruction: Instruction
    let escape: Character
    let lookup: (String) -> String?
    /// Parse time: nothing is known, `$NAME` stays as written.
    let validating: Bool

    var keyword: String { instruction.keyword }
    var arguments: String { instruction.arguments }

    func expand(_ word: String) throws -> String {
        var lexer = ShellLexer(word, escape: escape, lookup: lookup)
        lexer.skipUnset = validating
        return try lexer.run().result
    }

    /// Whether a value can be checked now: always at build time, at parse time only when no
    /// variable is left in it.
    func checkable(_ value: String) -> Bool {
        !validating || !value.contains("$")
    }

    func flags() throws -> Flags {
        try Flags(instruction.flags, allowed: Flags.allowed[keyword] ?? [:])
    }

    func command() throws -> Command {
        let flags = try self.flags()
        switch keyword {
        case "FROM": return try from(flags)
        case "RUN": return .run(try run(flags))
        case "CMD": return .cmd(try commandLine())
        case "ENTRYPOINT": return .entrypoint(try commandLine())
        case "LABEL": return .label(try keyValues())
        case "ENV": return .env(try keyValues())
        case "EXPOSE": return .expose(try expose())
        case "ADD": return .add(try copy(flags))
        case "COPY": return .copy(try copy(flags))
        case "VOLUME": return .volume(try volume())
        case "USER": return .user(try single())
        case "WORKDIR": return .workdir(try single())
        case "STOPSIGNAL": return .stopSignal(try single())
        case "ARG": return .arg(try arg())
        case "ONBUILD": return .onbuild(try onbuild())
        case "HEALTHCHECK": return .healthcheck(try healthcheck(flags))
        case "SHELL": return .shell(try shell())
        case "MAINTAINER":
            guard !arguments.isEmpty else { throw DockerfileError("MAINTAINER requires exactly one argument") }
            return .maintainer(arguments)
        default: throw DockerfileError("unknown instruction: \(keyword)")
        }
    }

    // MARK: - Instructions

    private func from(_ flags: Flags) throws -> Command {
        let words = Words.plain(arguments)
        guard words.count == 1 || (words.count == 3 && words[1].lowercased() == "as") else {
            throw DockerfileError("FROM requires either one or three arguments")
        }
        var alias: String?
        if words.count == 3 {
            let name = words[2].lowercased()
            guard Self.isStageName(name) else {
                throw DockerfileError(
                    "invalid name for build stage: \"\(words[2])\", name can't start with a number or contain symbols")
            }
            alias = name
        }
        let image = try expand(words[0])
        if !validating && image.isEmpty {
            throw DockerfileError("base name (\(words[0])) should not be blank")
        }
        return .from(image: image, platform: try flags[string: "platform"].map(expand), alias: alias)
    }

    /// `^[a-z][a-z0-9-_.]*$`, Docker's rule for stage names.
    static func isStageName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == "."
        }
    }

    private func run(_ flags: Flags) throws -> Run {
        guard !arguments.isEmpty || !instruction.heredocs.isEmpty else {
            throw DockerfileError("RUN requires at least one argument")
        }
        var run = Run(command: try commandLine(), heredocs: instruction.heredocs)
        var sshCount = 0
        for value in flags[list: "mount"] {
            let mount = try MountParser(typing: self).parse(value, sshIndex: sshCount)
            if mount.kind == .ssh { sshCount += 1 }
            run.mounts.append(mount)
        }
        if let network = flags[string: "network"] {
            guard ["default", "none", "host"].contains(network) else {
                throw DockerfileError("unsupported network mode \"\(network)\"")
            }
            run.network = network
        }
        if let security = flags[string: "security"] {
            guard ["sandbox", "insecure"].contains(security) else {
                throw DockerfileError("unsupported security mode \"\(security)\"")
            }
            run.security = security
        }
        return run
    }

    private func json(_ text: String) throws -> [String]? {
        switch JSONForm.parse(text) {
        case .strings(let strings): return strings
        case .notJSON: return nil
        case .notStrings:
            throw DockerfileError("when using JSON array syntax, arrays must be comprised of strings only")
        }
    }

    /// The JSON form when the arguments are a JSON array of strings, else the shell form as
    /// written (an empty CMD or ENTRYPOINT is `.shell("")`, which Docker also runs through the
    /// shell; `ENTRYPOINT []` is `.exec([])`, the way to clear an inherited one).
    private func commandLine() throws -> CommandLine {
        if let list = try json(arguments) { return .exec(list) }
        return .shell(arguments)
    }

    /// ENV and LABEL: `key=value ...`, or the legacy `key value with spaces` (one pair); keys and
    /// values substituted (which also removes their quotes).
    private func keyValues() throws -> [KeyValue] {
        let words = Words.quoted(arguments, escape: escape)
        guard let first = words.first else { throw DockerfileError("\(keyword) requires at least one argument") }
        var pairs: [(String, String)] = []
        if !first.contains("=") {
            let (key, value) = Words.first(arguments)
            guard !value.isEmpty else { throw DockerfileError("\(keyword) must have two arguments") }
            pairs.append((key, value))
        } else {
            for word in words {
                guard let equals = word.firstIndex(of: "=") else {
                    throw DockerfileError(
                        "Syntax error - can't find = in \"\(word)\". Must be of the form: name=value")
                }
                pairs.append((String(word[..<equals]), String(word[word.index(after: equals)...])))
            }
        }
        return try pairs.map { key, value in
            guard !key.isEmpty else { throw DockerfileError("\(keyword) names can not be blank") }
            let expandedKey = try expand(key)
            if !validating && expandedKey.isEmpty {
                throw DockerfileError("\(keyword) names can not be blank")
            }
            return KeyValue(key: expandedKey, value: try expand(value))
        }
    }

    private func expose() throws -> [String] {
        let words = Words.quoted(arguments, escape: escape)
        guard !words.isEmpty else { throw DockerfileError("EXPOSE requires at least one argument") }
        return try words.map { word in
            let port = try expand(word)
            if checkable(port) { try Self.checkPort(port) }
            return port
        }
    }

    /// `port`, `low-high`, each with an optional `/tcp`, `/udp` or `/sctp`.
    static func checkPort(_ spec: String) throws {
        var number = Substring(spec)
        if let slash = spec.firstIndex(of: "/") {
            number = spec[..<slash]
            let proto = spec[spec.index(after: slash)...].lowercased()
            guard ["tcp", "udp", "sctp"].contains(proto) else {
                throw DockerfileError("invalid protocol \"\(spec[spec.index(after: slash)...])\" in port \"\(spec)\"")
            }
        }
        let bounds = number.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        let values = bounds.map { bound in
            bound.allSatisfy({ $0.isASCII && $0.isNumber }) ? UInt16(bound) : nil
        }
        guard values.allSatisfy({ $0 != nil }), values.count == 1 || values[0]! <= values[1]! else {
            throw DockerfileError("invalid port \"\(spec)\": a port is a number up to 65535 or a range low-high")
        }
    }

    private func copy(_ flags: Flags) throws -> Copy {
        var raw: [String]
        var jsonForm = false
        if let list = try json(arguments) {
            raw = list
            jsonForm = true
        } else {
            raw = Words.quoted(arguments, escape: escape)
        }
        guard raw.count >= 2 else {
            let count = raw.isEmpty ? "none" : "only one"
            throw DockerfileError(
                "\(keyword) requires at least two arguments, but \(count) was provided. Destination could not be determined."
            )
        }
        let destination = try expand(raw.removeLast())
        var copy = Copy(sources: [], destination: destination)
        for word in raw {
            // A heredoc source names one of the bodies that follow the instruction.
            if !jsonForm, let marker = HeredocMarker.parse(word, escape: escape),
                let heredoc = instruction.heredocs.first(where: { $0.name == marker.name })
            {
                copy.heredocs.append(heredoc)
            } else {
                copy.sources.append(try expand(word))
            }
        }
        copy.from = try flags[string: "from"].map(expand)
        copy.chown = try flags[string: "chown"].map(expand)
        if let chmod = try flags[string: "chmod"].map(expand) {
            if checkable(chmod) {
                guard chmod.count <= 11, Units.uint32(chmod, radix: 8) != nil else {
                    throw DockerfileError("invalid chmod \"\(chmod)\": only octal modes such as 755 are supported")
                }
            }
            copy.chmod = chmod
        }
        copy.link = flags[bool: "link"]
        copy.parents = flags[bool: "parents"]
        copy.excludes = try flags[list: "exclude"].map(expand)
        copy.keepGitDir = flags[bool: "keep-git-dir"]
        copy.checksum = try flags[string: "checksum"].map(expand)
        return copy
    }

    private func volume() throws -> [String] {
        let raw = try json(arguments) ?? Words.quoted(arguments, escape: escape)
        guard !raw.isEmpty else { throw DockerfileError("VOLUME requires at least one argument") }
        return try raw.map { word in
            let volume = try expand(word)
            if !validating && volume.trimmingBlanks.isEmpty {
                throw DockerfileError("VOLUME specified can not be an empty string")
            }
            return volume
        }
    }

    /// USER, WORKDIR and STOPSIGNAL: the whole argument text is one value.
    private func single() throws -> String {
        guard !arguments.isEmpty else { throw DockerfileError("\(keyword) requires exactly one argument") }
        return try expand(arguments)
    }

    private func arg() throws -> [ArgDefinition] {
        let words = Words.quoted(arguments, escape: escape)
        guard !words.isEmpty else { throw DockerfileError("ARG requires at least one argument") }
        return try words.map { word in
            guard let equals = word.firstIndex(of: "=") else { return ArgDefinition(name: word) }
            let name = String(word[..<equals])
            guard !name.isEmpty else { throw DockerfileError("ARG names can not be blank") }
            return ArgDefinition(name: name, defaultValue: try expand(String(word[word.index(after: equals)...])))
        }
    }

    private func onbuild() throws -> String {
        let trigger = Words.first(arguments).word.uppercased()
        switch trigger {
        case "": throw DockerfileError("ONBUILD requires at least one argument")
        case "ONBUILD": throw DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        case "FROM", "MAINTAINER": throw DockerfileError("\(trigger) isn't allowed as an ONBUILD trigger")
        default:
            guard Dockerfile.keywords.contains(trigger) else {
                throw DockerfileError("unknown instruction: \(Words.first(arguments).word)")
            }
            return arguments
        }
    }

    private func healthcheck(_ flags: Flags) throws -> Healthcheck? {
        let (type, rest) = Words.first(arguments)
        switch type.uppercased() {
        case "":
            throw DockerfileError("HEALTHCHECK requires at least one argument")
        case "NONE":
            guard rest.isEmpty, instruction.flags.isEmpty else {
                throw DockerfileError("HEALTHCHECK NONE takes no arguments")
            }
            return nil
        case "CMD":
            guard !rest.isEmpty else { throw DockerfileError("Missing command after HEALTHCHECK CMD") }
            var check = Healthcheck(test: try json(rest).map { ["CMD"] + $0 } ?? ["CMD-SHELL", rest])
            check.interval = try Self.interval(flags, "interval")
            check.timeout = try Self.interval(flags, "timeout")
            check.startPeriod = try Self.interval(flags, "start-period")
            check.startInterval = try Self.interval(flags, "start-interval")
            if let retries = flags[string: "retries"] {
                guard let value = Int(retries) else {
                    throw DockerfileError("invalid value \"\(retries)\" for --retries: not a number")
                }
                guard value >= 0 else { throw DockerfileError("--retries cannot be negative (\(value))") }
                check.retries = value
            }
            return check
        default:
            throw DockerfileError("Unknown type \"\(type)\" in HEALTHCHECK (try CMD)")
        }
    }

    /// A Go duration of 0 (the default) or at least 1ms, as Docker requires.
    private static func interval(_ flags: Flags, _ name: String) throws -> Int64? {
        guard let text = flags[string: name] else { return nil }
        guard let value = Units.duration(text) else {
            throw DockerfileError("invalid duration \"\(text)\" for --\(name) (use 30s, 1m30s, 500ms)")
        }
        guard value >= 0 else { throw DockerfileError("Interval \"\(name)\" cannot be negative") }
        guard value == 0 || value >= 1_000_000 else {
            throw DockerfileError("Interval \"\(name)\" cannot be less than 1ms")
        }
        return value
    }

    private func shell() throws -> [String] {
        guard let list = try json(arguments) else {
            throw DockerfileError("SHELL requires the arguments to be in JSON form")
        }
        guard !list.isEmpty else { throw DockerfileError("SHELL requires at least one argument") }
        return list
    }
}

/// `RUN --mount=type=...,key=value,...` as BuildKit reads it: comma-separated (CSV quoting),
/// `type` bind unless given, keys case-insensitive, values substituted, then validated and
/// defaulted.
private struct MountParser {
    let typing: Typing

    func parse(_ text: String, sshIndex: Int) throws -> RunMount {
        var kind = RunMount.Kind.bind
        var mount = RunMount(kind: .bind, target: "")
        var target: String?
        var readOnly: Bool?
        var requiredFlag = false
        var checkedValues = true
        for field in try Self.csv(text) {
            let key: String
            let rawValue: String?
            if let equals = field.firstIndex(of: "=") {
                key = field[..<equals].lowercased()
                rawValue = String(field[field.index(after: equals)...])
            } else {
                key = field.lowercased()
                rawValue = nil
            }
            guard let rawValue else {
                switch key {
                case "readonly", "ro": readOnly = true
                case "readwrite", "rw": readOnly = false
                case "required":
                    guard kind == .secret || kind == .ssh else {
                        throw DockerfileError("unexpected key 'required' for mount type '\(kind.rawValue)'")
                    }
                    requiredFlag = true
                default: throw DockerfileError("invalid field '\(field)' must be a key=value pair")
                }
                continue
            }
            let value = try typing.expand(rawValue)
            let checkable = typing.checkable(value)
            if !checkable { checkedValues = false }
            func bool() throws -> Bool {
                guard checkable else { return false }
                guard let bool = Units.bool(value) else { throw DockerfileError("invalid value for \(key): \(value)") }
                return bool
            }
            func number(_ radix: Int) throws -> UInt32? {
                guard checkable else { return nil }
                guard let number = Units.uint32(value, radix: radix) else {
                    throw DockerfileError("invalid value \(value) for \(key)")
                }
                return number
            }
            switch key {
            case "type":
                guard checkable else { continue }
                guard let parsed = RunMount.Kind(rawValue: value.lowercased()) else {
                    throw DockerfileError(
                        "unsupported mount type \"\(value)\" (use bind, cache, tmpfs, secret or ssh)")
                }
                kind = parsed
            case "from": mount.from = value
            case "source", "src": mount.source = value
            case "target", "dst", "destination": target = value
            case "readonly", "ro": readOnly = try bool()
            case "readwrite", "rw": readOnly = try !bool()
            case "required":
                guard kind == .secret || kind == .ssh else {
                    throw DockerfileError("unexpected key 'required' for mount type '\(kind.rawValue)'")
                }
                requiredFlag = try bool()
            case "size":
                guard kind == .tmpfs else {
                    throw DockerfileError("unexpected key 'size' for mount type '\(kind.rawValue)'")
                }
                guard checkable else { continue }
                guard let size = Units.bytes(value) else { throw DockerfileError("invalid value for size: \(value)") }
                mount.size = size
            case "id": mount.id = value
            case "sharing":
                guard checkable else { continue }
                guard ["shared", "private", "locked"].contains(value.lowercased()) else {
                    throw DockerfileError(
                        "unsupported sharing value \"\(value)\" (use shared, private or locked)")
                }
                mount.sharing = value.lowercased()
            case "mode": mount.mode = try number(8)
            case "uid": mount.uid = try number(10)
            case "gid": mount.gid = try number(10)
            default: throw DockerfileError("unexpected key '\(key)' in '\(field)'")
            }
        }
        mount.kind = kind
        mount.required = requiredFlag
        if kind != .secret && kind != .ssh && kind != .cache {
            for (name, set) in [("mode", mount.mode != nil), ("uid", mount.uid != nil), ("gid", mount.gid != nil)]
            where set {
                throw DockerfileError("\(name) not allowed for \"\(kind.rawValue)\" type mounts")
            }
        }
        mount.readOnly = readOnly ?? !(kind == .cache || kind == .tmpfs)
        if mount.sharing != nil && kind != .cache {
            throw DockerfileError("invalid cache sharing set for \(kind.rawValue) mount")
        }
        switch kind {
        case .secret:
            if mount.from != nil { throw DockerfileError("secret mount should not have a from") }
            if mount.source == nil && target == nil && mount.id == nil {
                throw DockerfileError("invalid secret mount. one of source, target required")
            }
            if mount.source != nil && mount.id != nil { throw DockerfileError("both source and id can't be set") }
            // The source of a secret is its id; the id names the file under /run/secrets.
            let id = mount.id ?? mount.source ?? Self.baseName(target ?? "")
            mount.id = id
            mount.source = nil
            mount.target = target ?? "/run/secrets/" + id
        case .ssh:
            mount.id = mount.id ?? "default"
            mount.target = target ?? "/run/buildkit/ssh_agent.\(sshIndex)"
        case .bind, .cache, .tmpfs:
            guard let target, !target.isEmpty || !checkedValues else {
                throw DockerfileError("mount of type \(kind.rawValue) requires a target")
            }
            mount.target = target
            if kind == .cache && mount.id == nil { mount.id = target }
        }
        return mount
    }

    static func baseName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    /// One CSV record (Go's encoding/csv): fields split at commas, a field that starts with a
    /// double quote runs to the closing one, "" inside standing for one ".
    static func csv(_ text: String) throws -> [String] {
        var fields: [String] = []
        var field = ""
        var characters = Substring(text)
        while true {
            if characters.first == "\"" {
                characters = characters.dropFirst()
                while true {
                    guard let character = characters.first else {
                        throw DockerfileError("failed to parse csv mounts: extraneous or missing \" in quoted-field")
                    }
                    characters = characters.dropFirst()
                    if character == "\"" {
                        if characters.first == "\"" {
                            field.append("\"")
                            characters = characters.dropFirst()
                            continue
                        }
                        break
                    }
                    field.append(character)
                }
                guard characters.isEmpty || characters.first == "," else {
                    throw DockerfileError("failed to parse csv mounts: extraneous or missing \" in quoted-field")
                }
            } else {
                let end = characters.firstIndex(of: ",") ?? characters.endIndex
                field += characters[..<end]
                characters = characters[end...]
            }
            fields.append(field)
            field = ""
            guard characters.first == "," else { return fields }
            characters = characters.dropFirst()
        }
    }
}
