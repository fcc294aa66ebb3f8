import FoundationEssentials
import YAML

/// The defaults and derived values `docker compose` adds to a model (compose-go's Normalize and
/// environment resolution).
struct Normalizer {
    var environment: [String: String]

    func normalize(_ project: inout Project) {
        var usesDefault = false
        for i in project.services.indices {
            normalize(&project.services[i], projectName: project.name, usesDefault: &usesDefault)
        }
        if usesDefault && project.networks["default"] == nil {
            project.networks["default"] = Network()
        }
        let prefix = project.name + "_"
        for (k, var v) in project.networks where v.name == nil {
            v.name = v.external ? k : prefix + k
            project.networks[k] = v
        }
        for (k, var v) in project.volumes where v.name == nil {
            v.name = v.external ? k : prefix + k
            project.volumes[k] = v
        }
        for (k, var v) in project.secrets {
            if v.name == nil { v.name = v.external ? k : prefix + k }
            if let env = v.environment, let value = environment[env] { v.content = value }
            project.secrets[k] = v
        }
        for (k, var v) in project.configs {
            if v.name == nil { v.name = v.external ? k : prefix + k }
            if let env = v.environment, let value = environment[env] { v.content = value }
            project.configs[k] = v
        }
    }

    func normalize(_ s: inout Service, projectName: String, usesDefault: inout Bool) {
        // Default network.
        if s.networkMode == nil && s.other["provider"] == nil {
            if s.networks.isEmpty {
                s.networks = ["default": ServiceNetwork?.none]
                usesDefault = true
            } else if s.networks["default"] != nil {
                usesDefault = true
            }
        }
        if s.pullPolicy == "if_not_present" { s.pullPolicy = "missing" }
        if var b = s.build {
            if b.dockerfile == nil && b.dockerfileInline == nil { b.dockerfile = "Dockerfile" }
            var args: [String: String?] = [:]
            for (k, v) in b.args {
                if let v { args[k] = v } else if let found = environment[k] { args[k] = found }
            }
            b.args = args
            s.build = b
        }
        for (k, v) in s.environment where v == nil {
            if let found = environment[k] { s.environment[k] = .some(found) }
        }
        // Implicit dependencies.
        func add(_ target: String, restart: Bool, kind: DependencyGraph.Edge.Kind, mark: Mark?) {
            guard !target.isEmpty, s.dependsOn[target] == nil else { return }
            s.dependsOn[target] = Dependency(condition: "service_started", restart: restart, required: true)
            s.implicitDependencies[target] = kind.rawValue
            if let mark { s.marks["depends_on.\(target)"] = mark }
        }
        for (i, link) in s.links.enumerated() {
            let parts = link.split(separator: ":", omittingEmptySubsequences: false)
            add(parts.count == 2 ? String(parts[0]) : link, restart: true, kind: .link, mark: s.marks["links[\(i)]"])
        }
        let namespaces: [(String, String?)] = [
            ("network_mode", s.networkMode), ("ipc", s.ipc), ("pid", s.pid),
            ("uts", s.other["uts"]?.string), ("cgroup", s.other["cgroup"]?.string),
        ]
        for (key, value) in namespaces {
            if let v = value, v.hasPrefix("service:") {
                add(String(v.dropFirst(8)), restart: true, kind: .networkMode, mark: s.marks[key])
            }
        }
        for (i, from) in s.volumesFrom.enumerated() where !from.hasPrefix("container:") {
            let target = String(from.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            add(target, restart: false, kind: .volumesFrom, mark: s.marks["volumes_from[\(i)]"])
        }
    }

    /// Loads each enabled service's env_file entries under its `environment` (which wins).
    func loadEnvFiles(_ project: inout Project, warn: (String) -> Void) throws {
        for i in project.services.indices where !project.services[i].envFiles.isEmpty {
            let s = project.services[i]
            var fromFiles: [String: String] = [:]
            for (n, f) in s.envFiles.enumerated() {
                var isDir = false
                guard FileManager.default.fileExists(atPath: f.path, isDirectory: &isDir), !isDir,
                    let data = FileManager.default.contents(atPath: f.path)
                else {
                    if f.required {
                        throw ComposeError(
                            "env file \(f.path) not found: stat \(f.path): no such file or directory",
                            at: s.marks["env_file"], key: "services.\(s.name).env_file[\(n)]")
                    }
                    continue
                }
                let text = String(decoding: data, as: UTF8.self)
                if f.format == "raw" {
                    for line in text.split(whereSeparator: \.isNewline) {
                        let l = String(line)
                        if l.hasPrefix("#") || l.isEmpty { continue }
                        if let eq = l.firstIndex(of: "=") {
                            fromFiles[String(l[..<eq])] = String(l[l.index(after: eq)...])
                        }
                    }
                    continue
                }
                let env = environment
                let serviceEnv = s.environment
                let pairs = try DotEnv.parse(
                    text, file: f.path,
                    lookup: { k in
                        if let v = env[k] { return v }
                        if let v = serviceEnv[k], let v { return v }
                        return nil
                    })
                for (k, v) in pairs { fromFiles[k] = v }
            }
            var merged: [String: String?] = fromFiles.mapValues { .some($0) }
            for (k, v) in s.environment { merged[k] = v }
            project.services[i].environment = merged
        }
    }
}

enum Profiles {
    /// Splits services by the active profiles: a service without profiles is always on; `*`
    /// enables every profile; services asked for by name bring their profiles along.
    static func apply(_ project: inout Project, profiles: [String], requested: [String]) throws {
        var active = Set(profiles)
        if !requested.isEmpty {
            for name in requested {
                if let s = project.service(name) { active.formUnion(s.profiles) }
            }
        }
        project.profiles = profiles
        if active.contains("*") {
            return
        }
        var enabled: [Service] = []
        var disabled: [Service] = []
        for s in project.services {
            if s.profiles.isEmpty || s.profiles.contains(where: active.contains) {
                enabled.append(s)
            } else {
                disabled.append(s)
            }
        }
        project.services = enabled
        project.disabledServices = disabled
    }

    /// Keeps only the named services and what they depend on.
    static func select(_ project: inout Project, services: [String]) throws {
        for name in services where project.service(name) == nil {
            throw ComposeError("no such service: \(name)")
        }
        let keep = project.dependencyGraph.subgraph(services, includeDependencies: true)
        project.services = project.services.filter { keep.contains($0.name) }
    }
}

/// Checks a loaded model refers only to things it defines (compose-go's checkConsistency), and
/// that the dependencies can be ordered.
enum ConsistencyChecker {
    static func check(_ project: Project) throws {
        let disabled = Dictionary(project.disabledServices.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for s in project.services {
            let base = "services.\(s.name)"
            if s.build == nil && s.image == nil && s.other["provider"] == nil {
                throw ComposeError(
                    "service \"\(s.name)\" has neither an image nor a build context specified", at: s.marks[""],
                    key: base)
            }
            if let b = s.build, b.dockerfile != nil && b.dockerfileInline != nil && s.marks["build"] != nil {
                throw ComposeError(
                    "service \"\(s.name)\" declares mutually exclusive dockerfile and dockerfile_inline",
                    at: s.marks["build"], key: base + ".build")
            }
            if s.networkMode != nil && s.marks["networks"] != nil && !s.networks.isEmpty {
                throw ComposeError(
                    "service \"\(s.name)\" declares mutually exclusive `network_mode` and `networks`",
                    at: s.marks["network_mode"], key: base + ".network_mode")
            }
            for net in s.networks.keys.sorted() where project.networks[net] == nil {
                throw ComposeError(
                    "service \"\(s.name)\" refers to undefined network \(net)",
                    at: s.marks["networks.\(net)"] ?? s.marks["networks"], key: base + ".networks.\(net)")
            }
            for dep in s.dependsOn.keys.sorted() where project.service(dep) == nil {
                if let d = s.dependsOn[dep], !d.required, disabled[dep] != nil { continue }
                let kind = s.implicitDependencies[dep].flatMap(DependencyGraph.Edge.Kind.init(rawValue:))
                let what: String
                switch kind {
                case .link?: what = "links to"
                case .volumesFrom?: what = "takes volumes from"
                case .networkMode?: what = "shares a namespace with"
                default: what = "depends on"
                }
                let reason = disabled[dep] != nil ? " (it is disabled: its profiles are not active)" : ""
                throw ComposeError(
                    "service \"\(s.name)\" \(what) undefined service \"\(dep)\"\(reason)",
                    at: s.marks["depends_on.\(dep)"] ?? s.marks["depends_on"],
                    key: base + (kind == nil ? ".depends_on.\(dep)" : ""))
            }
            for (i, v) in s.volumes.enumerated() where v.type == "volume" {
                if let src = v.source, project.volumes[src] == nil {
                    throw ComposeError(
                        "service \"\(s.name)\" refers to undefined volume \(src)", at: s.marks["volumes[\(i)]"],
                        key: base + ".volumes[\(i)]")
                }
            }
            for (i, c) in s.configs.enumerated() where project.configs[c.source] == nil {
                throw ComposeError(
                    "service \"\(s.name)\" refers to undefined config \(c.source)", at: s.marks["configs[\(i)]"],
                    key: base + ".configs[\(i)]")
            }
            for (i, c) in s.secrets.enumerated() where project.secrets[c.source] == nil {
                throw ComposeError(
                    "service \"\(s.name)\" refers to undefined secret \(c.source)", at: s.marks["secrets[\(i)]"],
                    key: base + ".secrets[\(i)]")
            }
            if case .list(let items)? = s.build?.other["secrets"] {
                for item in items {
                    if case .map(let m) = item, let src = m["source"]?.string, project.secrets[src] == nil {
                        throw ComposeError(
                            "service \"\(s.name)\" refers to undefined build secret \(src)", at: s.marks["build"],
                            key: base + ".build.secrets")
                    }
                }
            }
            if let scale = s.scale, let replicas = s.deploy?.replicas, scale != replicas {
                throw ComposeError(
                    "can't set distinct values on 'scale' and 'deploy.replicas'", at: s.marks["scale"], key: base)
            }
            if let cpus = s.cpus, let limit = s.deploy?.resources.limits?.cpus, Float(cpus) != Float(limit) {
                throw ComposeError(
                    "can't set distinct values on 'cpus' and 'deploy.resources.limits.cpus'", at: s.marks["cpus"],
                    key: base)
            }
            if let mem = s.memLimit, let limit = s.deploy?.resources.limits?.memory, mem != limit {
                throw ComposeError(
                    "can't set distinct values on 'mem_limit' and 'deploy.resources.limits.memory'",
                    at: s.marks["mem_limit"], key: base)
            }
            if let pids = s.pidsLimit, let limit = s.deploy?.resources.limits?.pids, pids != limit {
                throw ComposeError(
                    "can't set distinct values on 'pids_limit' and 'deploy.resources.limits.pids'",
                    at: s.marks["pids_limit"], key: base)
            }
            if s.replicas > 1, s.containerName != nil {
                throw ComposeError(
                    "can't set container_name and \(s.scale != nil ? "scale" : "deploy.replicas") as container name must be unique",
                    at: s.marks["container_name"], key: base + ".container_name")
            }
            var mounts: [String: String] = [:]
            for (i, t) in s.tmpfs.enumerated() {
                let target = String(t.split(separator: ":", maxSplits: 1).first ?? "")
                let loc = "\(base).tmpfs[\(i)]"
                if let other = mounts[target] {
                    throw ComposeError("target \(target) already mounted as \(other)", at: s.marks["tmpfs"], key: loc)
                }
                mounts[target] = loc
            }
            for (i, v) in s.volumes.enumerated() {
                let loc = "\(base).volumes[\(i)]"
                if let other = mounts[v.target] {
                    throw ComposeError(
                        "target \(v.target) already mounted as \(other)", at: s.marks["volumes[\(i)]"], key: loc)
                }
                mounts[v.target] = loc
            }
        }
        for name in project.secrets.keys.sorted() {
            let secret = project.secrets[name]!
            if !secret.external && secret.file == nil && secret.environment == nil {
                throw ComposeError(
                    "secret \"\(name)\" must declare either `file` or `environment`", key: "secrets.\(name)")
            }
        }
        _ = try project.dependencyGraph.startLevels()
    }
}
