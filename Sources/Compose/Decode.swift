import Support
import YAML

/// Turns the merged canonical tree into the typed model, checking every value that needs more
/// than a type check (the schema already ran) at the node it came from.
struct ModelDecoder {
    var warn: (String) -> Void

    // MARK: - Scalars

    func text(_ n: Node) -> String {
        switch n.scalarKind {
        case .string(let s)?: return s
        case .null?, nil: return ""
        case .bool(let b)?: return b ? "true" : "false"
        case .int(let i)?: return String(i)
        case .double(let d)?: return formatGoFloat(d, bits: 64)
        }
    }

    func bool(_ n: Node, _ path: @autoclosure () -> String) throws -> Bool {
        if let b = n.bool { return b }
        if let t = n.scalarString {
            switch t.lowercased() {
            case "true": return true
            case "false": return false
            case "y", "yes", "on":
                warn("\"\(t)\" for boolean is not supported by YAML 1.2, please use `true`")
                return true
            case "n", "no", "off":
                warn("\"\(t)\" for boolean is not supported by YAML 1.2, please use `false`")
                return false
            default: break
            }
        }
        throw ComposeError("invalid boolean \"\(n.text ?? "")\"", at: n.mark, key: path())
    }

    func int(_ n: Node, _ path: @autoclosure () -> String) throws -> Int {
        if let i = n.int { return i }
        if let t = n.scalarString, let i = Int(t.trimming(while: { $0 == " " })) { return i }
        throw ComposeError("invalid integer \"\(n.text ?? "")\"", at: n.mark, key: path())
    }

    /// A whole number from a YAML number or numeric string, within Int64.
    func int64(_ n: Node, _ path: @autoclosure () -> String) throws -> Int64 {
        let d = try double(n, path())
        guard d > -9.2e18 && d < 9.2e18 else {
            throw ComposeError("number \(n.text ?? "") is out of range", at: n.mark, key: path())
        }
        return Int64(d)
    }

    func double(_ n: Node, _ path: @autoclosure () -> String) throws -> Double {
        if let d = n.double, d.isFinite { return d }
        if let t = n.scalarString, let d = Double(t), d.isFinite { return d }
        throw ComposeError("invalid number \"\(n.text ?? "")\"", at: n.mark, key: path())
    }

    /// `cpus` is a float32 in compose-go: a value outside its range is an error, not infinity.
    func cpus(_ n: Node, _ path: @autoclosure () -> String) throws -> Double {
        let d = try double(n, path())
        guard Float(d).isFinite, d >= 0 else {
            throw ComposeError(
                "invalid cpus \"\(n.text ?? "")\": use a number of CPUs like 0.5 or 2", at: n.mark, key: path())
        }
        return d
    }

    func bytes(_ n: Node, _ path: @autoclosure () -> String) throws -> Int64 {
        if let i = n.int { return Int64(i) }
        if n.isPlain, let d = n.double, d > -9.2e18 && d < 9.2e18 { return Int64(d) }
        if let t = n.scalarString, let b = ByteSize.parse(t) { return b }
        throw ComposeError(
            "invalid byte size \"\(n.text ?? "")\": use a number of bytes or a size like 512m, 1.5g", at: n.mark,
            key: path())
    }

    func duration(_ n: Node, _ path: @autoclosure () -> String) throws -> ComposeDuration {
        if let t = n.scalarString, let d = ComposeDuration.parse(t) { return d }
        throw ComposeError(
            "invalid duration \"\(n.text ?? "")\": use a number with a unit (ns, us, ms, s, m, h), like 1m30s",
            at: n.mark, key: path())
    }

    func strings(_ n: Node) -> [String] {
        if let items = n.sequence { return items.map(text) }
        if n.isNull { return [] }
        return [text(n)]
    }

    /// Mapping values as strings; null becomes "".
    func stringMap(_ n: Node) -> [String: String] {
        var m: [String: String] = [:]
        if let items = n.sequence {
            // list_or_dict in list form: "KEY=VALUE", "KEY" alone maps to ""
            for item in items {
                let t = text(item)
                if let eq = t.firstIndex(of: "=") {
                    m[String(t[..<eq])] = String(t[t.index(after: eq)...])
                } else {
                    m[t] = ""
                }
            }
            return m
        }
        for p in n.mapping ?? [] { m[p.key.text ?? ""] = text(p.value) }
        return m
    }

    func optionalStringMap(_ n: Node) -> [String: String?] {
        var m: [String: String?] = [:]
        for p in n.mapping ?? [] { m[p.key.text ?? ""] = p.value.isNull ? .some(nil) : .some(text(p.value)) }
        return m
    }

    func extensions(_ n: Node) -> [String: RawValue] {
        var m: [String: RawValue] = [:]
        for p in n.mapping ?? [] where (p.key.text ?? "").hasPrefix("x-") { m[p.key.text!] = p.value.raw }
        return m
    }

    /// File modes: a YAML integer (a leading 0 means octal, as YAML 1.1 reads it) or an octal string.
    func fileMode(_ n: Node, _ path: @autoclosure () -> String) throws -> UInt32 {
        if n.isPlain, let t = n.text {
            if t.count > 1, t.hasPrefix("0"), t.allSatisfy(\.isNumber), let v = UInt32(t, radix: 8) { return v }
            if let i = n.int, i >= 0, i <= Int(UInt32.max) { return UInt32(i) }
        }
        if let t = n.scalarString, let v = UInt32(t.hasPrefix("0o") ? String(t.dropFirst(2)) : t, radix: 8) { return v }
        throw ComposeError("invalid file mode \"\(n.text ?? "")\"", at: n.mark, key: path())
    }

    // MARK: - Project

    /// `prepare` runs on each service node before it is decoded (in the same parallel task).
    func project(
        _ root: Node, name: String, workingDir: String,
        prepare: ((Node, String) throws -> Node)? = nil
    ) throws -> Project {
        var project = Project(name: name, workingDir: workingDir)
        for p in root.mapping ?? [] {
            let key = p.key.text ?? ""
            let v = p.value
            switch key {
            case "services":
                var services = try parallelMap(v.mapping ?? []) { s in
                    let name = s.key.text ?? ""
                    let node = try prepare?(s.value, name) ?? s.value
                    return try service(name, node, keyMark: s.key.mark, workingDir: workingDir)
                }
                services.sort { $0.name < $1.name }
                project.services = services
            case "networks":
                for r in v.mapping ?? [] {
                    project.networks[r.key.text ?? ""] = try network(r.value, "networks.\(r.key.text ?? "")")
                }
            case "volumes":
                for r in v.mapping ?? [] {
                    project.volumes[r.key.text ?? ""] = try volume(r.value, "volumes.\(r.key.text ?? "")")
                }
            case "secrets":
                for r in v.mapping ?? [] {
                    project.secrets[r.key.text ?? ""] = try fileObject(r.value, "secrets.\(r.key.text ?? "")")
                }
            case "configs":
                for r in v.mapping ?? [] {
                    project.configs[r.key.text ?? ""] = try fileObject(r.value, "configs.\(r.key.text ?? "")")
                }
            case "models":
                for r in v.mapping ?? [] { project.models[r.key.text ?? ""] = r.value.raw }
            case "name", "version", "include":
                break
            default:
                if key.hasPrefix("x-") { project.extensions[key] = v.raw }
            }
        }
        return project
    }

    func external(_ n: Node, _ path: String) throws -> Bool {
        if n.isMapping { return true }
        return try bool(n, path)
    }

    func network(_ n: Node, _ path: String) throws -> Network {
        var net = Network()
        for p in n.mapping ?? [] {
            let key = p.key.text ?? ""
            let v = p.value
            var kp: String { joinPath(path, key) }
            switch key {
            case "name": net.name = text(v)
            case "driver": net.driver = text(v)
            case "driver_opts": net.driverOpts = stringMap(v)
            case "external": net.external = try external(v, kp)
            case "internal": net.internal = try bool(v, kp)
            case "attachable": net.attachable = try bool(v, kp)
            case "enable_ipv4": net.enableIPv4 = try bool(v, kp)
            case "enable_ipv6": net.enableIPv6 = try bool(v, kp)
            case "labels": net.labels = stringMap(v)
            case "ipam":
                for q in v.mapping ?? [] {
                    switch q.key.text ?? "" {
                    case "driver": net.ipam.driver = text(q.value)
                    case "options": net.ipam.options = stringMap(q.value)
                    case "config":
                        net.ipam.config = (q.value.sequence ?? []).map { c in
                            var pool = IPAMPool()
                            pool.subnet = c["subnet"].map(text)
                            pool.gateway = c["gateway"].map(text)
                            pool.ipRange = c["ip_range"].map(text)
                            pool.auxAddresses = c["aux_addresses"].map(stringMap) ?? [:]
                            pool.extensions = extensions(c)
                            return pool
                        }
                    default: break
                    }
                }
                net.ipam.extensions = extensions(v)
            default: break
            }
        }
        net.extensions = extensions(n)
        return net
    }

    func volume(_ n: Node, _ path: String) throws -> Volume {
        var vol = Volume()
        for p in n.mapping ?? [] {
            let key = p.key.text ?? ""
            let v = p.value
            var kp: String { joinPath(path, key) }
            switch key {
            case "name": vol.name = text(v)
            case "driver": vol.driver = text(v)
            case "driver_opts": vol.driverOpts = stringMap(v)
            case "external": vol.external = try external(v, kp)
            case "labels": vol.labels = stringMap(v)
            default: break
            }
        }
        vol.extensions = extensions(n)
        return vol
    }

    func fileObject(_ n: Node, _ path: String) throws -> FileObject {
        var f = FileObject()
        for p in n.mapping ?? [] {
            let key = p.key.text ?? ""
            let v = p.value
            var kp: String { joinPath(path, key) }
            switch key {
            case "name": f.name = text(v)
            case "file": f.file = text(v)
            case "environment": f.environment = text(v)
            case "content": f.content = text(v)
            case "external": f.external = try external(v, kp)
            case "labels": f.labels = stringMap(v)
            case "driver": f.driver = text(v)
            case "driver_opts": f.driverOpts = stringMap(v)
            case "template_driver": f.templateDriver = text(v)
            default: break
            }
        }
        f.extensions = extensions(n)
        return f
    }

    // MARK: - Service

    /// Keys whose position later checks report.
    static let markedKeys: Set<String> = [
        "build", "env_file", "network_mode", "ipc", "pid", "uts", "cgroup", "scale", "cpus",
        "mem_limit", "pids_limit", "container_name", "tmpfs", "networks", "depends_on",
    ]

    static let restartPolicies = ["no", "always", "on-failure", "unless-stopped"]

    func service(_ name: String, _ node: Node, keyMark: Mark, workingDir: String) throws -> Service {
        var s = Service(name: name)
        let base = "services.\(name)"
        s.marks[""] = keyMark
        for p in node.mapping ?? [] {
            let key = p.key.text ?? ""
            let v = p.value
            var path: String { joinPath(base, key) }
            if Self.markedKeys.contains(key) { s.marks[key] = v.mark }
            if key.hasPrefix("x-") {
                s.extensions[key] = v.raw
                continue
            }
            switch key {
            case "image": s.image = text(v)
            case "build": s.build = try build(v, path, workingDir: workingDir)
            case "command": s.command = try command(v, path)
            case "entrypoint": s.entrypoint = try command(v, path)
            case "cap_add": s.capAdd = strings(v)
            case "cap_drop": s.capDrop = strings(v)
            case "cpus": s.cpus = try cpus(v, path)
            case "cpu_shares": s.cpuShares = try int64(v, path)
            case "configs": s.configs = try fileReferences(v, path, secrets: false, marks: &s.marks, key: key)
            case "secrets": s.secrets = try fileReferences(v, path, secrets: true, marks: &s.marks, key: key)
            case "container_name":
                let n = text(v)
                // Docker's rule (Support's DockerNames, which Runtime applies too); the name is
                // kept as written, leading "/" and all, as compose-go keeps it.
                guard DockerNames.containerName(n) != nil else {
                    throw ComposeError(
                        "invalid container name \"\(n)\": only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed", at: v.mark,
                        key: path)
                }
                s.containerName = n
            case "depends_on":
                for d in v.mapping ?? [] {
                    let dep = d.key.text ?? ""
                    var dp: String { joinPath(path, dep) }
                    var dependency = Dependency()
                    if let c = d.value["condition"] { dependency.condition = text(c) }
                    if let r = d.value["restart"] { dependency.restart = try bool(r, dp + ".restart") }
                    if let r = d.value["required"] { dependency.required = try bool(r, dp + ".required") }
                    dependency.extensions = extensions(d.value)
                    s.dependsOn[dep] = dependency
                    s.marks["depends_on.\(dep)"] = d.key.mark
                }
            case "deploy": s.deploy = try deploy(v, path)
            case "devices":
                s.devices = (v.sequence ?? []).map { d in
                    let src = d["source"].map(text) ?? ""
                    var m = DeviceMapping(
                        source: src, target: d["target"].map(text) ?? src,
                        permissions: d["permissions"].map(text) ?? "rwm")
                    m.extensions = extensions(d)
                    return m
                }
            case "dns": s.dns = strings(v)
            case "dns_opt": s.dnsOpt = strings(v)
            case "dns_search": s.dnsSearch = strings(v)
            case "domainname": s.domainname = text(v)
            case "environment": s.environment = optionalStringMap(v)
            case "env_file":
                s.envFiles = try (v.sequence ?? []).enumerated().map { i, e in
                    var f = EnvFile(path: e["path"].map(text) ?? "")
                    if let r = e["required"] { f.required = try bool(r, indexPath(path, i) + ".required") }
                    f.format = e["format"].map(text)
                    return f
                }
            case "expose": s.expose = strings(v)
            case "extra_hosts": s.extraHosts = try extraHosts(v, path)
            case "hostname": s.hostname = text(v)
            case "healthcheck": s.healthcheck = try healthcheck(v, path)
            case "init": s.`init` = try bool(v, path)
            case "ipc": s.ipc = text(v)
            case "labels": s.labels = stringMap(v)
            case "links":
                s.links = strings(v)
                for (i, item) in (v.sequence ?? []).enumerated() { s.marks["links[\(i)]"] = item.mark }
            case "logging":
                var l = Logging()
                l.driver = v["driver"].map(text)
                l.options = v["options"].map(stringMap) ?? [:]
                l.extensions = extensions(v)
                s.logging = l
            case "mem_limit": s.memLimit = try bytes(v, path)
            case "mem_reservation": s.memReservation = try bytes(v, path)
            case "memswap_limit": s.memswapLimit = try bytes(v, path)
            case "network_mode": s.networkMode = text(v)
            case "networks":
                for n in v.mapping ?? [] {
                    let net = n.key.text ?? ""
                    s.marks["networks.\(net)"] = n.key.mark
                    s.networks[net] =
                        n.value.isNull ? .some(nil) : .some(try serviceNetwork(n.value, joinPath(path, net)))
                }
            case "pid": s.pid = v.isNull ? nil : text(v)
            case "pids_limit": s.pidsLimit = try int64(v, path)
            case "platform": s.platform = text(v)
            case "ports": s.ports = try ports(v, path)
            case "privileged": s.privileged = try bool(v, path)
            case "profiles": s.profiles = strings(v)
            case "pull_policy": s.pullPolicy = try pullPolicy(v, path)
            case "read_only": s.readOnly = try bool(v, path)
            case "restart":
                let r = text(v)
                guard Self.isRestartPolicy(r) else {
                    throw ComposeError(
                        "invalid restart policy \"\(r)\": must be one of \"no\", \"always\", \"on-failure[:max-retries]\", \"unless-stopped\"",
                        at: v.mark, key: path)
                }
                s.restart = r
            case "scale":
                let n = try int(v, path)
                guard n >= 0 else { throw ComposeError("must be greater than or equal to 0", at: v.mark, key: path) }
                s.scale = n
            case "security_opt": s.securityOpt = strings(v)
            case "shm_size": s.shmSize = try bytes(v, path)
            case "stdin_open": s.stdinOpen = try bool(v, path)
            case "stop_grace_period": s.stopGracePeriod = try duration(v, path)
            case "stop_signal": s.stopSignal = text(v)
            case "sysctls": s.sysctls = stringMap(v)
            case "tmpfs": s.tmpfs = strings(v)
            case "tty": s.tty = try bool(v, path)
            case "ulimits":
                for u in v.mapping ?? [] {
                    var up: String { joinPath(path, u.key.text ?? "") }
                    var limit: Ulimit
                    if u.value.isMapping {
                        limit = Ulimit(
                            soft: try int(u.value["soft"] ?? u.value, up + ".soft"),
                            hard: try int(u.value["hard"] ?? u.value, up + ".hard"))
                        if limit.soft! > limit.hard! {
                            throw ComposeError(
                                "soft limit \(limit.soft!) is greater than hard limit \(limit.hard!)", at: u.value.mark,
                                key: up)
                        }
                        limit.extensions = extensions(u.value)
                    } else {
                        limit = Ulimit(single: try int(u.value, up))
                    }
                    s.ulimits[u.key.text ?? ""] = limit
                }
            case "user": s.user = text(v)
            case "volumes":
                s.volumes = try (v.sequence ?? []).enumerated().map { i, e in
                    s.marks["volumes[\(i)]"] = e.mark
                    return try serviceVolume(e, indexPath(path, i))
                }
            case "volumes_from":
                s.volumesFrom = strings(v)
                for (i, item) in (v.sequence ?? []).enumerated() { s.marks["volumes_from[\(i)]"] = item.mark }
            case "working_dir": s.workingDir = text(v)
            case "extends":
                break  // already applied
            default:
                s.other[key] = try otherValue(key, v, path)
            }
        }
        return s
    }

    static func isRestartPolicy(_ r: String) -> Bool {
        if restartPolicies.contains(r) { return true }
        if r.hasPrefix("on-failure:"), let n = Int(r.dropFirst(11)), n >= 0 { return true }
        return false
    }

    func pullPolicy(_ v: Node, _ path: String) throws -> String {
        let p = text(v)
        switch p {
        case "always", "never", "build", "missing", "refresh", "daily", "weekly": return p
        case "if_not_present": return "missing"
        default:
            if p.hasPrefix("every_"), ComposeDuration.parse(String(p.dropFirst(6))) != nil { return p }
            throw ComposeError(
                "invalid pull policy \"\(p)\": must be one of always, never, missing, build, refresh, daily, weekly, every_<duration>",
                at: v.mark, key: path)
        }
    }

    /// `command` / `entrypoint`: null (unset), a string split like a shell does, or a list.
    func command(_ v: Node, _ path: String) throws -> [String]? {
        if v.isNull { return nil }
        if let items = v.sequence { return items.map(text) }
        guard let line = v.text else { return nil }
        guard let words = ShellWords.split(line) else {
            throw ComposeError("invalid command line string \"\(line)\": unterminated quote", at: v.mark, key: path)
        }
        return words
    }

    func build(_ v: Node, _ path: String, workingDir: String) throws -> Build {
        var b = Build(context: workingDir)
        for p in v.mapping ?? [] {
            let key = p.key.text ?? ""
            let x = p.value
            var kp: String { joinPath(path, key) }
            if key.hasPrefix("x-") {
                b.extensions[key] = x.raw
                continue
            }
            switch key {
            case "context": b.context = text(x)
            case "dockerfile": b.dockerfile = text(x)
            case "dockerfile_inline": b.dockerfileInline = text(x)
            case "args": b.args = optionalStringMap(x)
            case "labels": b.labels = stringMap(x)
            case "target": b.target = text(x)
            case "network": b.network = text(x)
            case "shm_size": b.shmSize = try bytes(x, kp)
            case "no_cache", "pull", "privileged": b.other[key] = .bool(try bool(x, kp))
            case "cache_from", "cache_to", "no_cache_filter", "tags", "platforms", "entitlements":
                b.other[key] = .list(strings(x).map(RawValue.string))
            case "additional_contexts": b.other[key] = .map(stringMap(x).mapValues(RawValue.string))
            case "extra_hosts":
                let hosts = try extraHosts(x, kp)
                b.other[key] = .list(
                    hosts.flatMap { h, ips in ips.map { RawValue.string("\(h)=\($0)") } }.sorted {
                        ($0.string ?? "") < ($1.string ?? "")
                    })
            case "secrets":
                var marks: [String: Mark] = [:]
                let refs = try fileReferences(x, kp, secrets: true, marks: &marks, key: key)
                b.other[key] = .list(refs.map(Render.fileReferenceRaw))
            case "provenance", "sbom": b.other[key] = .string(text(x))
            case "ssh":
                if let items = x.sequence {
                    b.other[key] = .list(items.map { .string(text($0)) })
                } else {
                    b.other[key] = .list(
                        (x.mapping ?? []).map { p in
                            .string(p.value.isNull ? (p.key.text ?? "") : "\(p.key.text ?? "")=\(text(p.value))")
                        }.sorted { ($0.string ?? "") < ($1.string ?? "") })
                }
            default: b.other[key] = x.raw
            }
        }
        return b
    }

    func healthcheck(_ v: Node, _ path: String) throws -> Healthcheck {
        var h = Healthcheck()
        for p in v.mapping ?? [] {
            let key = p.key.text ?? ""
            let x = p.value
            var kp: String { joinPath(path, key) }
            if key.hasPrefix("x-") {
                h.extensions[key] = x.raw
                continue
            }
            switch key {
            case "test":
                if let items = x.sequence { h.test = items.map(text) } else { h.test = ["CMD-SHELL", text(x)] }
            case "timeout": h.timeout = try duration(x, kp)
            case "interval": h.interval = try duration(x, kp)
            case "start_period": h.startPeriod = try duration(x, kp)
            case "start_interval": h.startInterval = try duration(x, kp)
            case "retries":
                let r = try int64(x, kp)
                guard r >= 0 else { throw ComposeError("must be greater than or equal to 0", at: x.mark, key: kp) }
                h.retries = UInt64(r)
            case "disable": h.disable = try bool(x, kp)
            default: break
            }
        }
        if let test = h.test, let first = test.first, !["CMD", "CMD-SHELL", "NONE"].contains(first) {
            throw ComposeError(
                "healthcheck.test must start either by \"CMD\", \"CMD-SHELL\" or \"NONE\"",
                at: v["test"]?.mark ?? v.mark, key: path + ".test")
        }
        return h
    }

    func deploy(_ v: Node, _ path: String) throws -> Deploy? {
        if v.isNull { return nil }
        var d = Deploy()
        for p in v.mapping ?? [] {
            let key = p.key.text ?? ""
            let x = p.value
            var kp: String { joinPath(path, key) }
            if key.hasPrefix("x-") {
                d.extensions[key] = x.raw
                continue
            }
            switch key {
            case "mode": d.mode = text(x)
            case "endpoint_mode": d.endpointMode = text(x)
            case "replicas":
                let n = try int(x, kp)
                guard n >= 0 else { throw ComposeError("must be greater than or equal to 0", at: x.mark, key: kp) }
                d.replicas = n
            case "labels": d.labels = stringMap(x)
            case "resources":
                d.resources.limits = try x["limits"].map { try resource($0, kp + ".limits") }
                d.resources.reservations = try x["reservations"].map { try resource($0, kp + ".reservations") }
                d.resources.extensions = extensions(x)
            case "restart_policy":
                var r = DeployRestartPolicy()
                for q in x.mapping ?? [] {
                    let qk = q.key.text ?? ""
                    var qp: String { joinPath(kp, qk) }
                    switch qk {
                    case "condition": r.condition = text(q.value)
                    case "delay": r.delay = try duration(q.value, qp)
                    case "window": r.window = try duration(q.value, qp)
                    case "max_attempts": r.maxAttempts = UInt64(max(0, try int(q.value, qp)))
                    default: if qk.hasPrefix("x-") { r.extensions[qk] = q.value.raw }
                    }
                }
                d.restartPolicy = r
            case "update_config", "rollback_config":
                var m: [String: RawValue] = [:]
                for q in x.mapping ?? [] {
                    let qk = q.key.text ?? ""
                    var qp: String { joinPath(kp, qk) }
                    switch qk {
                    case "parallelism": m[qk] = .int(try int(q.value, qp))
                    case "delay", "monitor": m[qk] = .string(try duration(q.value, qp).description)
                    case "max_failure_ratio": m[qk] = .double(try double(q.value, qp))
                    case "failure_action", "order": m[qk] = .string(text(q.value))
                    default: break
                    }
                }
                d.other[key] = .map(m)
            case "placement":
                var m: [String: RawValue] = [:]
                for q in x.mapping ?? [] {
                    let qk = q.key.text ?? ""
                    var qp: String { joinPath(kp, qk) }
                    switch qk {
                    case "constraints": m[qk] = .list(strings(q.value).map(RawValue.string))
                    case "preferences":
                        m[qk] = .list(
                            (q.value.sequence ?? []).map { pref in
                                .map(pref["spread"].map { ["spread": RawValue.string(text($0))] } ?? [:])
                            })
                    case "max_replicas_per_node": m[qk] = .int(try int(q.value, qp))
                    default: break
                    }
                }
                d.other[key] = .map(m)
            default: break
            }
        }
        return d
    }

    func resource(_ v: Node, _ path: String) throws -> Resource {
        var r = Resource()
        for p in v.mapping ?? [] {
            let key = p.key.text ?? ""
            let x = p.value
            var kp: String { joinPath(path, key) }
            if key.hasPrefix("x-") {
                r.extensions[key] = x.raw
                continue
            }
            switch key {
            case "cpus": r.cpus = try cpus(x, kp)
            case "memory": r.memory = try bytes(x, kp)
            case "pids": r.pids = Int64(try int(x, kp))
            case "devices":
                r.other[key] = .list(
                    (x.sequence ?? []).map { dev in
                        deviceRequest(dev)
                    })
            default: r.other[key] = x.raw
            }
        }
        return r
    }

    func fileReferences(_ v: Node, _ path: String, secrets: Bool, marks: inout [String: Mark], key: String) throws
        -> [FileReference]
    {
        var refs: [FileReference] = []
        for (i, e) in (v.sequence ?? []).enumerated() {
            let ip = indexPath(path, i)
            marks["\(key)[\(i)]"] = e.mark
            var r = FileReference(source: e["source"].map(text) ?? "")
            r.target = e["target"].map(text)
            r.uid = e["uid"].map(text)
            r.gid = e["gid"].map(text)
            if let m = e["mode"] { r.mode = try fileMode(m, ip + ".mode") }
            if secrets && r.target == nil { r.target = "/run/secrets/\(r.source)" }
            r.extensions = extensions(e)
            refs.append(r)
        }
        return refs
    }

    func extraHosts(_ v: Node, _ path: String) throws -> [String: [String]] {
        var hosts: [String: [String]] = [:]
        for (i, item) in (v.sequence ?? []).enumerated() {
            let s = text(item)
            var host = ""
            var ip = ""
            if let eq = s.firstIndex(of: "=") {
                host = String(s[..<eq])
                ip = String(s[s.index(after: eq)...])
            } else if let colon = s.firstIndex(of: ":") {
                host = String(s[..<colon])
                ip = String(s[s.index(after: colon)...])
            } else {
                throw ComposeError("invalid additional host, missing IP: \(s)", at: item.mark, key: indexPath(path, i))
            }
            if host.isEmpty || host.contains(":") || host.contains("=") {
                throw ComposeError("bad host name '\(host)'", at: item.mark, key: indexPath(path, i))
            }
            for part in ip.split(separator: ",", omittingEmptySubsequences: false) {
                var addr = String(part)
                if addr.count > 2, addr.hasPrefix("["), addr.hasSuffix("]") {
                    addr = String(addr.dropFirst().dropLast())
                }
                hosts[host, default: []].append(addr)
            }
        }
        return hosts
    }

    func serviceNetwork(_ v: Node, _ path: String) throws -> ServiceNetwork {
        var n = ServiceNetwork()
        for p in v.mapping ?? [] {
            let key = p.key.text ?? ""
            let x = p.value
            var kp: String { joinPath(path, key) }
            if key.hasPrefix("x-") {
                n.extensions[key] = x.raw
                continue
            }
            switch key {
            case "aliases": n.aliases = strings(x)
            case "ipv4_address":
                let a = text(x)
                guard PortSpec.isIPv4(a) else {
                    throw ComposeError("invalid IPv4 address \"\(a)\"", at: x.mark, key: kp)
                }
                n.ipv4Address = a
            case "ipv6_address":
                let a = text(x)
                guard PortSpec.isIPAddress(a), a.contains(":") else {
                    throw ComposeError("invalid IPv6 address \"\(a)\"", at: x.mark, key: kp)
                }
                n.ipv6Address = a
            case "priority": n.priority = Int(try int64(x, kp))
            case "gw_priority": n.gwPriority = Int(try int64(x, kp))
            case "interface_name": n.interfaceName = text(x)
            case "mac_address": n.macAddress = text(x)
            case "link_local_ips": n.linkLocalIPs = strings(x)
            case "driver_opts": n.driverOpts = stringMap(x)
            default: break
            }
        }
        return n
    }

    func ports(_ v: Node, _ path: String) throws -> [ServicePort] {
        try (v.sequence ?? []).enumerated().map { i, e in
            let ip = indexPath(path, i)
            guard let t = e["target"] else {
                throw ComposeError("missing required key \"target\"", at: e.mark, key: ip)
            }
            let target = try int(t, ip + ".target")
            guard (0...65535).contains(target) else {
                throw ComposeError(
                    "invalid port \(target): must be between 0 and 65535", at: t.mark, key: ip + ".target")
            }
            var port = ServicePort(target: target)
            port.name = e["name"].map(text)
            port.mode = e["mode"].map(text) ?? "ingress"
            port.hostIP = e["host_ip"].map(text)
            if let pub = e["published"] {
                let s = text(pub)
                if !s.isEmpty {
                    guard PortSpec.range(s) != nil else {
                        throw ComposeError(
                            "invalid published port \"\(s)\": must be a port (0-65535) or a range", at: pub.mark,
                            key: ip + ".published")
                    }
                    port.published = s
                }
            }
            port.protocol = e["protocol"].map(text) ?? "tcp"
            if let proto = port.protocol, !["tcp", "udp", "sctp"].contains(proto.lowercased()) {
                throw ComposeError(
                    "invalid protocol \"\(proto)\": must be tcp, udp or sctp", at: e["protocol"]!.mark,
                    key: ip + ".protocol")
            }
            if let mode = port.mode, mode != "ingress" && mode != "host" {
                throw ComposeError(
                    "invalid port mode \"\(mode)\": must be ingress or host", at: e["mode"]!.mark, key: ip + ".mode")
            }
            port.appProtocol = e["app_protocol"].map(text)
            port.extensions = extensions(e)
            return port
        }
    }

    func serviceVolume(_ e: Node, _ path: String) throws -> ServiceVolume {
        let type = e["type"].map(text) ?? "volume"
        let targetNode = e["target"]
        let target = targetNode.map(text) ?? ""
        if target.isEmpty && type != "image" {
            throw ComposeError("service volume is missing a mount target", at: e.mark, key: path)
        }
        var vol = ServiceVolume(
            type: type, source: e["source"].map(text).flatMap { $0.isEmpty ? nil : $0 },
            target: target.isEmpty ? "" : PathUtil.clean(target))
        if let r = e["read_only"] { vol.readOnly = try bool(r, path + ".read_only") }
        vol.consistency = e["consistency"].map(text)
        if let b = e["bind"] {
            var bind = BindOptions()
            bind.propagation = b["propagation"].map(text)
            if let propagation = bind.propagation,
                !["rprivate", "private", "rshared", "shared", "rslave", "slave"].contains(propagation)
            {
                throw ComposeError(
                    "invalid propagation \"\(propagation)\"", at: b["propagation"]!.mark,
                    key: path + ".bind.propagation")
            }
            bind.createHostPath =
                try b["create_host_path"].map { try bool($0, path + ".bind.create_host_path") } ?? true
            bind.selinux = b["selinux"].map(text)
            bind.recursive = b["recursive"].map(text)
            bind.extensions = extensions(b)
            vol.bind = bind
        }
        if let o = e["volume"] {
            var opts = VolumeOptions()
            if let n = o["nocopy"] { opts.nocopy = try bool(n, path + ".volume.nocopy") }
            opts.subpath = o["subpath"].map(text)
            opts.labels = o["labels"].map(stringMap) ?? [:]
            opts.extensions = extensions(o)
            vol.volume = opts
        }
        if let t = e["tmpfs"] {
            var opts = TmpfsOptions()
            if let size = t["size"] {
                let b = try bytes(size, path + ".tmpfs.size")
                guard b >= 0 else {
                    throw ComposeError("must be greater than or equal to 0", at: size.mark, key: path + ".tmpfs.size")
                }
                opts.size = b
            }
            if let mode = t["mode"] { opts.mode = try fileMode(mode, path + ".tmpfs.mode") }
            opts.extensions = extensions(t)
            vol.tmpfs = opts
        }
        if let i = e["image"] {
            var opts = ImageVolumeOptions()
            opts.subpath = i["subpath"].map(text)
            vol.image = opts
        }
        if type == "volume" && vol.volume == nil && e["volume"] == nil {
            // long syntax without options: compose-go leaves `volume` unset
        }
        vol.extensions = extensions(e)
        return vol
    }

    /// A device request (gpus, deploy devices): count "all" is -1, as compose-go keeps it.
    func deviceRequest(_ dev: Node) -> RawValue {
        guard case .map(var m) = dev.raw else { return dev.raw }
        if m["count"] == nil && m["device_ids"] == nil { m["count"] = .int(-1) }
        if case .string(let c)? = m["count"] { m["count"] = .int(c.lowercased() == "all" ? -1 : Int(c) ?? 0) }
        if let o = dev["options"] { m["options"] = .map(stringMap(o).mapValues(RawValue.string)) }
        return .map(m)
    }

    /// Keys berth keeps as written, converted to the types docker compose prints them as.
    func otherValue(_ key: String, _ v: Node, _ path: String) throws -> RawValue {
        switch key {
        case "attach", "oom_kill_disable", "use_api_socket":
            return .bool(try bool(v, path))
        case "cpu_count", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "oom_score_adj":
            return .int(Int(try int64(v, path)))
        case "cpu_percent":
            return .double(try double(v, path))
        case "mem_swappiness":
            return .string(String(try bytes(v, path)))
        case "annotations", "storage_opt", "log_opt":
            return .map(stringMap(v).mapValues(RawValue.string))
        case "device_cgroup_rules", "external_links", "group_add", "label_file":
            return .list(strings(v).map(RawValue.string))
        case "gpus":
            if v.isScalar { return .list([.map(["count": .int(-1)])]) }
            return .list((v.sequence ?? []).map(deviceRequest))
        default:
            if v.isStringScalar { return .string(text(v)) }
            return v.raw
        }
    }
}

/// go-shellwords' Parse as compose-go uses it for string commands: whitespace separates words,
/// quotes group, backslash escapes; no expansion.
enum ShellWords {
    static func split(_ line: String) -> [String]? {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character? = nil
        var escaped = false
        for c in line {
            if escaped {
                current.append(c)
                escaped = false
                inWord = true
                continue
            }
            if c == "\\" && quote != "'" {
                if quote == "\"" {
                    // inside double quotes a backslash only escapes these
                    escaped = true
                    continue
                }
                escaped = true
                continue
            }
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
                continue
            }
            if c == "'" || c == "\"" {
                quote = c
                inWord = true
                continue
            }
            if c == " " || c == "\t" || c == "\n" || c == "\r" {
                if inWord {
                    words.append(current)
                    current = ""
                    inWord = false
                }
                continue
            }
            current.append(c)
            inWord = true
        }
        if quote != nil || escaped { return nil }
        if inWord { words.append(current) }
        return words
    }
}
