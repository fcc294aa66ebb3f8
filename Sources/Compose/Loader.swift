/// How the loader works
/// ====================
///
/// `ComposeLoader.load(options)` turns compose files into a `Project`, following the Compose
/// Specification and what `docker compose` (compose-go) does, in this order:
///
/// 1. **Environment and files.** The shell environment, then the `.env` file of the project
///    directory (or every `--env-file`) parsed by `DotEnv`; the shell wins. Files are the `-f`
///    options (`-` is standard input), else `COMPOSE_FILE` (split at `COMPOSE_PATH_SEPARATOR`),
///    else the first of compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml found
///    in the project directory or a parent, plus its `*.override.*` file. The project directory
///    is `--project-directory`, else the first file's folder.
/// 2. **Project name.** `-p`, else `COMPOSE_PROJECT_NAME`, else the last top-level `name:`
///    (interpolated, normalized), else the project directory's name (normalized). It is then
///    visible to interpolation as `COMPOSE_PROJECT_NAME`.
/// 3. **Per file** (`loadFile`): parse (`YAMLParser`; anchors and `<<` already applied),
///    interpolate every scalar value with one `Interpolator` (not keys), check the file against
///    the schema (`SchemaValidator`: unknown keys, types — every error has file:line:col and the
///    key path), rewrite short syntaxes to long ones (`Canonical`), import `include`d projects
///    (each loaded by this same pipeline with its own directory and env files; local
///    definitions win), then resolve `extends` (same file or another one, recursively, with the
///    other file's relative paths resolved against its folder).
/// 4. **Merge** every file onto the previous ones (`Merger`, with `!reset` and `!override`),
///    then make identified sequences unique (`Unicity`: ports, volumes, secrets...), and make
///    relative paths absolute against the project directory (`PathResolver`).
/// 5. **Decode** the merged tree into the typed model (`ModelDecoder`), checking values
///    (durations, byte sizes, ports, restart policies...) at the node they came from.
/// 6. **Normalize** (`Normalizer`): default network, resource names prefixed with the project,
///    implicit dependencies (links, `service:` namespaces, volumes_from), build defaults,
///    environment values taken from the project environment.
/// 7. **Profiles** split enabled from disabled services; then the enabled services' env_file
///    contents are loaded under `environment`, and `ConsistencyChecker` checks references to
///    services, networks, volumes, secrets and configs and cycles (`DependencyGraph`).
///
/// Rendering (`Render`) prints the model as `docker compose config` does, in compose-go's field
/// order: JSON by a small ordered writer, YAML through libyaml's emitter (whose layout differs
/// from go-yaml's only in whitespace: sequences are not indented under their key).
///
/// Everything is linear in the size of the files: mappings are indexed by key once per stage, and
/// the per-service stages (canonical form, decoding, rendering) run on all cores for large
/// projects (`parallelMap`; errors are still reported in file order).
import FoundationEssentials
import Support
import Synchronization
import YAML

/// What `docker compose`'s global options say, plus the process context.
public struct ProjectOptions {
    /// `-f` files; "-" is standard input; empty means `COMPOSE_FILE` or discovery.
    public var files: [String] = []
    public var projectName: String?
    public var profiles: [String] = []
    public var envFiles: [String] = []
    public var projectDirectory: String?
    /// The current directory; relative options are resolved against it.
    public var workingDirectory: String
    /// The shell environment.
    public var environment: [String: String]
    public var interpolate = true
    /// Services asked for by name: they are enabled even when their profiles are not, and when
    /// non-empty the project keeps only them and what they depend on.
    public var services: [String] = []
    public var readStdin: () -> String
    public var warn: (String) -> Void
    /// Set by a command that exits right after using the project (`berth config`): the loader
    /// then keeps its intermediate trees instead of spending time freeing them.
    public var fastExit = false

    public init(
        files: [String] = [], projectName: String? = nil, profiles: [String] = [],
        envFiles: [String] = [], projectDirectory: String? = nil,
        workingDirectory: String = FileManager.default.currentDirectoryPath,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        interpolate: Bool = true, services: [String] = [],
        readStdin: @escaping () -> String = { String(decoding: StandardStreams.readInput(), as: UTF8.self) },
        warn: @escaping (String) -> Void = { StandardStreams.writeError("WARN: \($0)\n") }
    ) {
        self.files = files
        self.projectName = projectName
        self.profiles = profiles
        self.envFiles = envFiles
        self.projectDirectory = projectDirectory
        self.workingDirectory = workingDirectory
        self.environment = environment
        self.interpolate = interpolate
        self.services = services
        self.readStdin = readStdin
        self.warn = warn
    }
}

public enum ComposeLoader {
    public static let defaultFileNames = ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"]
    public static let defaultOverrideFileNames = [
        "compose.override.yml", "compose.override.yaml",
        "docker-compose.override.yml", "docker-compose.override.yaml",
    ]

    public static func load(_ options: ProjectOptions) throws -> Project {
        let context = LoadContext(options: options)
        return try context.load()
    }

    /// compose-go's NormalizeProjectName: lowercase, only [a-z0-9_-], no leading "_" or "-".
    public static func normalizeProjectName(_ s: String) -> String {
        let kept = s.lowercased().unicodeScalars.filter { c in
            (c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c == "_" || c == "-"
        }
        var out = String(String.UnicodeScalarView(kept))
        while let f = out.first, f == "_" || f == "-" { out.removeFirst() }
        return out
    }

    static func invalidProjectName(_ v: String) -> ComposeError {
        ComposeError(
            "invalid project name \"\(v)\": must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
        )
    }
}

/// Collects warnings from concurrent work.
final class WarningSink: Sendable {
    private let state = Mutex((seen: Set<String>(), messages: [String]()))

    var messages: [String] { state.withLock { $0.messages } }

    func add(_ message: String) {
        state.withLock { state in
            if state.seen.insert(message).inserted { state.messages.append(message) }
        }
    }
}

/// Values kept until the process ends, so that a command about to exit does not pay for freeing
/// large trees (see `ProjectOptions.fastExit`).
enum ProcessLifetime {
    nonisolated(unsafe) static var kept: [Any] = []
    static func keep(_ value: Any) { kept.append(value) }
}

final class LoadContext {
    let options: ProjectOptions
    let cwd: String
    var environment: [String: String]
    var home: String?
    var interpolators: [Interpolator] = []
    var warnedVersion = Set<String>()

    init(options: ProjectOptions) {
        self.options = options
        self.cwd = PathUtil.clean(options.workingDirectory)
        self.environment = options.environment
        self.home = options.environment["HOME"]
    }

    func abs(_ p: String) -> String { PathUtil.absolute(p, base: cwd, home: nil) }

    // MARK: - Top level

    func load() throws -> Project {
        let projectDir = options.projectDirectory.map(abs)
        var files = options.files.map { $0 == "-" ? "-" : abs($0) }

        if files.isEmpty {
            // COMPOSE_FILE may come from the shell or from the .env of the project directory (or cwd).
            var composeFile = environment["COMPOSE_FILE"]
            if composeFile == nil, options.envFiles.isEmpty {
                let dotEnv = PathUtil.join(projectDir ?? cwd, ".env")
                if isFile(dotEnv), let vars = try? readEnvFile(dotEnv, lookup: { self.environment[$0] }) {
                    composeFile = vars.first(where: { $0.key == "COMPOSE_FILE" })?.value
                    if let sep = vars.first(where: { $0.key == "COMPOSE_PATH_SEPARATOR" })?.value,
                        environment["COMPOSE_PATH_SEPARATOR"] == nil
                    {
                        environment["COMPOSE_PATH_SEPARATOR"] = sep
                    }
                }
            }
            if let composeFile, !composeFile.isEmpty {
                let sep = environment["COMPOSE_PATH_SEPARATOR"].flatMap { $0.isEmpty ? nil : $0 } ?? ":"
                for f in composeFile.components(separatedBy: sep) where !f.isEmpty {
                    let p = f == "-" ? "-" : abs(f)
                    if p != "-" && !FileManager.default.fileExists(atPath: p) {
                        throw ComposeError("COMPOSE_FILE: stat \(p): no such file or directory")
                    }
                    files.append(p)
                }
            }
        }
        if files.isEmpty {
            files = try discover(from: projectDir ?? cwd)
        }
        let workingDir = projectDir ?? files.first(where: { $0 != "-" }).map(PathUtil.dirname) ?? cwd

        // .env: explicit --env-file, else <project dir>/.env. The shell environment wins.
        var envFiles = options.envFiles.map(abs)
        if envFiles.isEmpty {
            let disabled = ["1", "true", "TRUE", "True"].contains(environment["COMPOSE_DISABLE_ENV_FILE"] ?? "")
            let dotEnv = PathUtil.join(workingDir, ".env")
            if !disabled && isFile(dotEnv) { envFiles = [dotEnv] }
        }
        // Later files see what earlier ones set (the shell still wins), as docker compose reads them.
        let shell = options.environment
        var fromFile: [String: String] = [:]
        for file in envFiles {
            guard isFile(file) else {
                throw ComposeError("couldn't find env file: \(file)")
            }
            for (k, v) in try readEnvFile(file, lookup: { shell[$0] ?? fromFile[$0] }) {
                fromFile[k] = v
                if shell[k] == nil { environment[k] = v }
            }
        }

        // Read and parse the files.
        var roots: [(path: String, root: Node?)] = []
        for f in files {
            let text: String
            let displayName: String
            if f == "-" {
                text = options.readStdin()
                displayName = "-"
            } else {
                text = try readFile(f)
                displayName = f
            }
            let root: Node?
            do {
                root = try YAMLParser.parse(text, file: displayName)
            } catch let e as YAMLError {
                throw ComposeError(e.message, at: e.mark)
            }
            if let root, !root.isMapping {
                throw ComposeError("top-level object must be a mapping", at: root.mark)
            }
            roots.append((displayName, root))
        }

        // Project name.
        let name = try projectName(roots: roots.map(\.root), workingDir: workingDir)
        environment["COMPOSE_PROJECT_NAME"] = name

        // Load each file and merge.
        let interpolator: Interpolator? =
            options.interpolate ? Interpolator(lookup: { [environment] in environment[$0] }) : nil
        if let interpolator { interpolators.append(interpolator) }
        var model: Node? = nil
        for (path, root) in roots {
            guard let root else { continue }
            let fileNode = try loadFile(
                root, path: path, contextDir: workingDir, interpolator: interpolator,
                environment: environment, includeStack: [path])
            model = model.map { Merger.mergeRoot($0, fileNode) } ?? fileNode.strippingTags()
            if options.fastExit {
                ProcessLifetime.keep(root)
                ProcessLifetime.keep(fileNode)
            }
        }
        if options.fastExit, let model { ProcessLifetime.keep(model) }
        guard var merged = model, let pairs = merged.mapping, !pairs.isEmpty else {
            throw ComposeError("empty compose file")
        }
        // Unicity and paths of each service are done with its decoding (in parallel).
        let resolver = PathResolver(base: workingDir, home: home)
        merged = try resolver.model(merged, skippingServices: true)
        if options.fastExit { ProcessLifetime.keep(merged) }

        // Typed model, normalization, profiles, environment, consistency.
        // Services are decoded in parallel: warnings are collected, then passed on in order.
        let sink = WarningSink()
        var project = try ModelDecoder(warn: sink.add).project(merged, name: name, workingDir: workingDir) {
            node, name in
            try resolver.service(Unicity.service(node), path: "services.\(name)")
        }
        for w in sink.messages { options.warn(w) }
        project.composeFiles = files
        project.environment = environment
        project.interpolated = options.interpolate
        project.fastExit = options.fastExit
        Normalizer(environment: environment).normalize(&project)

        var profiles = options.profiles
        if profiles.isEmpty, let env = environment["COMPOSE_PROFILES"] {
            profiles = env.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
        }
        try Profiles.apply(&project, profiles: profiles, requested: options.services)
        try Normalizer(environment: environment).loadEnvFiles(&project, warn: options.warn)
        try ConsistencyChecker.check(project)
        if !options.services.isEmpty {
            try Profiles.select(&project, services: options.services)
        }

        var warned = Set<String>()
        for interpolator in interpolators {
            for v in interpolator.unsetVariables where warned.insert(v).inserted {
                options.warn("The \"\(v)\" variable is not set. Defaulting to a blank string.")
            }
        }
        return project
    }

    func uniqueServices(_ model: Node) -> Node {
        guard let services = model["services"], let pairs = services.mapping else { return model }
        return model.setting(
            "services",
            services.withValue(
                .mapping(
                    pairs.map {
                        Node.Pair(key: $0.key, value: Unicity.service($0.value))
                    })))
    }

    // MARK: - Discovery and files

    func discover(from start: String) throws -> [String] {
        var dir = start
        while true {
            let candidates = ComposeLoader.defaultFileNames.map { PathUtil.join(dir, $0) }.filter(isFile)
            if let winner = candidates.first {
                if candidates.count > 1 {
                    options.warn(
                        "Found multiple config files with supported names: \(candidates.joined(separator: ", "))")
                    options.warn("Using \(winner)")
                }
                var result = [winner]
                let overrides = ComposeLoader.defaultOverrideFileNames.map { PathUtil.join(dir, $0) }.filter(isFile)
                if let o = overrides.first {
                    if overrides.count > 1 {
                        options.warn(
                            "Found multiple override files with supported names: \(overrides.joined(separator: ", "))")
                        options.warn("Using \(o)")
                    }
                    result.append(o)
                }
                return result
            }
            let parent = PathUtil.dirname(dir)
            if parent == dir { break }
            dir = parent
        }
        throw ComposeError("no configuration file provided: not found")
    }

    func isFile(_ path: String) -> Bool {
        var isDir = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && !isDir
    }

    func readFile(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDir = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
                throw ComposeError(isDir ? "read \(path): is a directory" : "open \(path): permission denied")
            }
            throw ComposeError("open \(path): no such file or directory")
        }
        // Decoding would swap bad bytes for U+FFFD and carry on; docker compose refuses the file.
        guard let text = String(validating: data, as: UTF8.self) else {
            throw ComposeError("invalid UTF-8", at: Self.firstInvalidUTF8(data, file: path))
        }
        return text
    }

    /// Where the first byte that is not UTF-8 stands, counting columns in characters.
    static func firstInvalidUTF8(_ data: Data, file: String) -> Mark {
        var parser = Unicode.UTF8.ForwardParser()
        var bytes = data.makeIterator()
        var line = 1
        var column = 1
        while true {
            switch parser.parseScalar(from: &bytes) {
            case .valid(let encoded):
                if encoded.first == 0x0a {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
            case .error, .emptyInput:
                return Mark(file: file, line: line, column: column)
            }
        }
    }

    func readEnvFile(_ path: String, lookup: (String) -> String?) throws -> [(key: String, value: String)] {
        try DotEnv.parse(try readFile(path), file: path, lookup: lookup)
    }

    // MARK: - Project name

    func projectName(roots: [Node?], workingDir: String) throws -> String {
        if let p = options.projectName, !p.isEmpty {
            guard ComposeLoader.normalizeProjectName(p) == p else { throw ComposeLoader.invalidProjectName(p) }
            return p
        }
        if let p = environment["COMPOSE_PROJECT_NAME"], !p.isEmpty {
            guard ComposeLoader.normalizeProjectName(p) == p else { throw ComposeLoader.invalidProjectName(p) }
            return p
        }
        var fromFile: Node? = nil
        for root in roots {
            if let n = root?["name"], let t = n.scalarString, !t.isEmpty { fromFile = n }
        }
        if let n = fromFile {
            guard n.isStringScalar || n.int != nil else {
                throw ComposeError("must be a string, not \(n.kindDescription)", at: n.mark, key: "name")
            }
            var text = n.text ?? ""
            if options.interpolate {
                let interpolator = Interpolator(lookup: { [environment] in environment[$0] })
                text = try interpolator.interpolate(text, at: n.mark)
            }
            let normalized = ComposeLoader.normalizeProjectName(text)
            guard !normalized.isEmpty else {
                throw ComposeError("project name must not be empty", at: n.mark, key: "name")
            }
            return normalized
        }
        let normalized = ComposeLoader.normalizeProjectName(PathUtil.basename(workingDir))
        guard !normalized.isEmpty else { throw ComposeError("project name must not be empty") }
        return normalized
    }

    // MARK: - One file

    /// Interpolates, validates and canonicalizes one parsed file, then applies its `include`
    /// and `extends`. `contextDir` is the directory relative `include` and `extends.file` paths
    /// are resolved against (the project directory).
    func loadFile(
        _ root: Node, path: String, contextDir: String, interpolator: Interpolator?,
        environment env: [String: String], includeStack: [String]
    ) throws -> Node {
        var node = root
        if let interpolator { node = try interpolateFile(node, interpolator, environment: env) }
        try SchemaValidator.validate(node, skippingServiceBodies: true)
        if node["version"] != nil {
            if warnedVersion.insert(path).inserted {
                options.warn(
                    "\(path): the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion"
                )
            }
            node = node.setting("version", nil)
        }
        node = try Canonical.file(node, validateServices: true, warn: options.warn)
        if let include = node["include"] {
            node = try applyInclude(
                include, to: node.setting("include", nil), contextDir: contextDir,
                environment: env, includeStack: includeStack)
        }
        node = try applyExtends(node, file: path, contextDir: contextDir, interpolator: interpolator)
        return node
    }

    /// Substitutes variables in every scalar value (never in keys). A substituted plain scalar
    /// becomes a string, as in compose-go where interpolation happens on strings.
    func interpolate(_ node: Node, _ interpolator: Interpolator) throws -> Node {
        try interpolateIfNeeded(node, interpolator) ?? node
    }

    /// A whole file: a large `services` mapping is interpolated one service per task, each with
    /// its own `Interpolator` (their unset variables are reported after `interpolator`'s).
    func interpolateFile(_ root: Node, _ interpolator: Interpolator, environment env: [String: String]) throws -> Node {
        guard var pairs = root.mapping, let i = pairs.firstIndex(where: { $0.key.text == "services" }),
            let services = pairs[i].value.mapping, services.count >= 48
        else {
            return try interpolate(root, interpolator)
        }
        let done = try parallelMap(services) { p -> (Node.Pair, Interpolator) in
            let own = Interpolator(lookup: { env[$0] })
            return (Node.Pair(key: p.key, value: try interpolateIfNeeded(p.value, own) ?? p.value), own)
        }
        let servicesNode = pairs[i].value.withValue(.mapping(done.map(\.0)))
        pairs[i].value = Node.null(at: pairs[i].value.mark)  // interpolated above
        var result = try interpolate(root.withValue(.mapping(pairs)), interpolator)
        result = result.setting("services", servicesNode)
        interpolators.append(contentsOf: done.map(\.1))
        return result
    }

    /// The node with its scalars substituted, or nil when nothing in it changed (no copy).
    private func interpolateIfNeeded(_ node: Node, _ interpolator: Interpolator) throws -> Node? {
        switch node.value {
        case .scalar(let text, _):
            guard containsByte(text, 36) else { return nil }  // "$"
            let out = try interpolator.interpolate(text, at: node.mark)
            var copy = node
            copy.value = .scalar(out, .doubleQuoted)
            return copy
        case .sequence(let items):
            var changed: [Node]? = nil
            for (i, item) in items.enumerated() {
                if let new = try interpolateIfNeeded(item, interpolator) {
                    if changed == nil { changed = items }
                    changed![i] = new
                }
            }
            guard let changed else { return nil }
            return node.withValue(.sequence(changed))
        case .mapping(let pairs):
            var changed: [Node.Pair]? = nil
            for (i, p) in pairs.enumerated() {
                if let new = try interpolateIfNeeded(p.value, interpolator) {
                    if changed == nil { changed = pairs }
                    changed![i].value = new
                }
            }
            guard let changed else { return nil }
            return node.withValue(.mapping(changed))
        }
    }

    // MARK: - include

    func applyInclude(
        _ include: Node, to model: Node, contextDir: String, environment env: [String: String],
        includeStack: [String]
    ) throws -> Node {
        var model = model
        for (i, entry) in (include.sequence ?? []).enumerated() {
            let keyPath = indexPath("include", i)
            var paths: [(String, Mark)] = []
            if let p = entry["path"] {
                if let items = p.sequence {
                    paths = items.compactMap { n in
                        n.text.map { (PathUtil.absolute($0, base: contextDir, home: home), n.mark) }
                    }
                } else if let t = p.text {
                    paths = [(PathUtil.absolute(t, base: contextDir, home: home), p.mark)]
                }
            }
            guard let first = paths.first else {
                throw ComposeError("missing required key \"path\"", at: entry.mark, key: keyPath)
            }
            var projectDir = PathUtil.dirname(first.0)
            if let pd = entry["project_directory"]?.text {
                projectDir = PathUtil.absolute(pd, base: contextDir, home: home)
            }
            if includeStack.contains(first.0) {
                throw ComposeError(
                    "include cycle detected: \((includeStack + [first.0]).joined(separator: " -> "))", at: first.1,
                    key: keyPath + ".path")
            }
            // The included project's environment: ours, plus its env files for what we lack.
            var envFiles: [String] = []
            if let ef = entry["env_file"] {
                let items = ef.sequence ?? [ef]
                for item in items {
                    guard let t = item.text, t != "/dev/null" else { continue }
                    let f = PathUtil.absolute(t, base: contextDir, home: home)
                    guard isFile(f) else {
                        throw ComposeError("env file \(f) not found", at: item.mark, key: keyPath + ".env_file")
                    }
                    envFiles.append(f)
                }
            } else {
                let f = PathUtil.join(projectDir, ".env")
                if isFile(f) { envFiles = [f] }
            }
            var includedEnv = env
            for f in envFiles {
                for (k, v) in try readEnvFile(f, lookup: { includedEnv[$0] }) where includedEnv[k] == nil {
                    includedEnv[k] = v
                }
            }
            let interpolator: Interpolator? =
                options.interpolate ? Interpolator(lookup: { [includedEnv] in includedEnv[$0] }) : nil
            if let interpolator { interpolators.append(interpolator) }
            var included: Node? = nil
            for (file, mark) in paths {
                let text: String
                do {
                    text = try readFile(file)
                } catch let e as ComposeError {
                    throw ComposeError(e.message, at: mark, key: keyPath + ".path")
                }
                let root: Node?
                do {
                    root = try YAMLParser.parse(text, file: file)
                } catch let e as YAMLError {
                    throw ComposeError(e.message, at: e.mark)
                }
                guard let root else { continue }
                guard root.isMapping else { throw ComposeError("top-level object must be a mapping", at: root.mark) }
                let fileNode = try loadFile(
                    root, path: file, contextDir: projectDir, interpolator: interpolator,
                    environment: includedEnv, includeStack: includeStack + [file])
                included = included.map { Merger.mergeRoot($0, fileNode) } ?? fileNode.strippingTags()
            }
            guard var imported = included else { continue }
            imported = uniqueServices(imported)
            imported = try PathResolver(base: projectDir, home: home).model(imported)
            // Import resources; what the including file defines itself wins.
            for key in ["services", "volumes", "networks", "secrets", "configs", "models"] {
                guard let from = imported[key], let fromPairs = from.mapping else { continue }
                let existing = model[key]
                var pairs = existing?.mapping ?? []
                var index = existing?.keyIndex() ?? [:]
                for p in fromPairs {
                    let name = p.key.text ?? ""
                    if let j = index[name] {
                        pairs[j].value =
                            key == "services"
                            ? Merger.mergeService(p.value, pairs[j].value)
                            : Merger.mergeResource(p.value, pairs[j].value)
                    } else {
                        index[name] = pairs.count
                        pairs.append(p)
                    }
                }
                let container = existing ?? Node.map([], at: from.mark)
                model = model.setting(key, container.withValue(.mapping(pairs)))
            }
        }
        return model
    }

    // MARK: - extends

    struct ExtendsFile {
        var path: String
        var dir: String
        var services: [String: Node]
        var order: [String]
    }

    var otherFiles: [String: ExtendsFile] = [:]

    func applyExtends(_ model: Node, file: String, contextDir: String, interpolator: Interpolator?) throws -> Node {
        guard let servicesNode = model["services"], let pairs = servicesNode.mapping,
            pairs.contains(where: { $0.value["extends"] != nil })
        else { return model }
        var services: [String: Node] = [:]
        for p in pairs { services[p.key.text ?? ""] = p.value }
        var unit = ExtendsFile(path: file, dir: contextDir, services: services, order: pairs.map { $0.key.text ?? "" })
        var resolved: [String: Node] = [:]
        for name in unit.order {
            _ = try resolveExtends(name, in: &unit, resolved: &resolved, chain: [], interpolator: interpolator)
        }
        return model.setting(
            "services",
            servicesNode.withValue(
                .mapping(
                    pairs.map { p in
                        Node.Pair(key: p.key, value: resolved[p.key.text ?? ""] ?? p.value)
                    })))
    }

    /// The service `name` of `unit` with its `extends` chain applied.
    func resolveExtends(
        _ name: String, in unit: inout ExtendsFile, resolved: inout [String: Node],
        chain: [String], interpolator: Interpolator?
    ) throws -> Node {
        if let done = resolved[name] { return done }
        guard let service = unit.services[name] else { throw ComposeError("service \"\(name)\" not found") }
        guard let ext = service["extends"], ext.isMapping, let ref = ext["service"]?.text else {
            resolved[name] = service
            return service
        }
        let here = "\(name) in \(unit.path)"
        let keyPath = "services.\(name).extends"
        if chain.contains(here) {
            throw ComposeError(
                "circular reference: \((chain + [here]).joined(separator: " extends "))", at: ext.mark, key: keyPath)
        }
        var base: Node
        if let fileNode = ext["file"], let fileText = fileNode.text {
            let path = PathUtil.absolute(fileText, base: unit.dir, home: home)
            var other = try extendsFile(
                path, mark: fileNode.mark, keyPath: keyPath + ".file", interpolator: interpolator)
            guard other.services[ref] != nil else {
                throw ComposeError(
                    "cannot extend service \"\(name)\" in \(unit.path): service \"\(ref)\" not found in \(fileText)",
                    at: ext.mark, key: keyPath)
            }
            var otherResolved: [String: Node] = [:]
            base = try resolveExtends(
                ref, in: &other, resolved: &otherResolved, chain: chain + [here], interpolator: interpolator)
            base = try PathResolver(base: other.dir, home: home).service(base, path: "services.\(ref)")
        } else {
            guard unit.services[ref] != nil else {
                throw ComposeError(
                    "cannot extend service \"\(name)\" in \(unit.path): service \"\(ref)\" not found", at: ext.mark,
                    key: keyPath)
            }
            if ref == name {
                throw ComposeError("circular reference: \(here) extends itself", at: ext.mark, key: keyPath)
            }
            base = try resolveExtends(
                ref, in: &unit, resolved: &resolved, chain: chain + [here], interpolator: interpolator)
        }
        var merged = Merger.mergeService(base.setting("extends", nil).strippingTags(), service.setting("extends", nil))
        merged = merged.setting("extends", nil)
        resolved[name] = merged
        return merged
    }

    /// Another file named by `extends.file`: parsed, interpolated, validated, canonical; its own
    /// `extends` are resolved relative to its folder.
    func extendsFile(_ path: String, mark: Mark, keyPath: String, interpolator: Interpolator?) throws -> ExtendsFile {
        if let cached = otherFiles[path] { return cached }
        let text: String
        do {
            text = try readFile(path)
        } catch let e as ComposeError {
            throw ComposeError(e.message, at: mark, key: keyPath)
        }
        let root: Node?
        do {
            root = try YAMLParser.parse(text, file: path)
        } catch let e as YAMLError {
            throw ComposeError(e.message, at: e.mark)
        }
        guard let root, root.isMapping else {
            throw ComposeError("cannot extend from \(path): no services section", at: mark, key: keyPath)
        }
        var node = root
        if let interpolator { node = try interpolate(node, interpolator) }
        try SchemaValidator.validate(node)
        node = try Canonical.file(node, warn: options.warn)
        guard let pairs = node["services"]?.mapping else {
            throw ComposeError("cannot extend from \(path): no services section", at: mark, key: keyPath)
        }
        var services: [String: Node] = [:]
        for p in pairs { services[p.key.text ?? ""] = p.value }
        let unit = ExtendsFile(
            path: path, dir: PathUtil.dirname(path), services: services, order: pairs.map { $0.key.text ?? "" })
        otherFiles[path] = unit
        return unit
    }
}
