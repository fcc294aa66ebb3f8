import FoundationEssentials
import YAML

/// An ordered document tree: what `docker compose config` prints, in its key order (Go struct
/// field order for objects, sorted keys for maps).
indirect enum OValue {
    case null
    case bool(Bool)
    case int(Int64)
    case float(Double, bits: Int)
    case string(String)
    case array([OValue])
    case object([(String, OValue)])
}

/// Builds the ordered document of a project. `json` selects the JSON flavour: the two differ as
/// compose-go's marshallers do (JSON prints `command: null` and empty `ipam`/`resources`
/// objects; YAML prints `x-*` keys of nested objects).
struct Render {
    var json: Bool

    static func goLess(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    /// Appends (key, value) when the value is present.
    struct Fields {
        var items: [(String, OValue)] = []
        mutating func add(_ key: String, _ value: OValue?) {
            if let value { items.append((key, value)) }
        }
        mutating func str(_ key: String, _ value: String?) {
            if let value, !value.isEmpty { items.append((key, .string(value))) }
        }
        mutating func flag(_ key: String, _ value: Bool) {
            if value { items.append((key, .bool(true))) }
        }
        mutating func list(_ key: String, _ value: [String]) {
            if !value.isEmpty { items.append((key, .array(value.map(OValue.string)))) }
        }
        mutating func map(_ key: String, _ value: [String: String]) {
            if !value.isEmpty { items.append((key, Render.stringMap(value))) }
        }
        mutating func bytes(_ key: String, _ value: Int64?) {
            if let value, value != 0 { items.append((key, .string(String(value)))) }
        }
        mutating func duration(_ key: String, _ value: ComposeDuration?) {
            if let value { items.append((key, .string(value.description))) }
        }
    }

    static func stringMap(_ m: [String: String]) -> OValue {
        .object(m.keys.sorted(by: goLess).map { ($0, .string(m[$0]!)) })
    }

    func extensions(_ fields: inout Fields, _ ext: [String: RawValue]) {
        guard !json else { return }
        for k in ext.keys.sorted(by: Render.goLess) { fields.add(k, raw(ext[k]!)) }
    }

    func raw(_ v: RawValue, order: [String]? = nil) -> OValue {
        switch v {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(Int64(i))
        case .double(let d): return .float(d, bits: 64)
        case .string(let s): return .string(s)
        case .list(let items): return .array(items.map { raw($0, order: order) })
        case .map(let m):
            var keys = m.keys.sorted(by: Render.goLess)
            if let order {
                keys = order.filter { m[$0] != nil } + keys.filter { !order.contains($0) }
            }
            return .object(keys.map { ($0, raw(m[$0]!)) })
        }
    }

    // MARK: - Project

    func project(_ p: Project) -> OValue {
        var top: [(String, OValue)] = []
        let services = OValue.object(
            (try? parallelMap(p.services) { ($0.name, service($0)) }) ?? p.services.map { ($0.name, service($0)) })
        let networks =
            p.networks.isEmpty
            ? nil : OValue.object(p.networks.keys.sorted(by: Render.goLess).map { ($0, network(p.networks[$0]!)) })
        let volumes =
            p.volumes.isEmpty
            ? nil : OValue.object(p.volumes.keys.sorted(by: Render.goLess).map { ($0, volume(p.volumes[$0]!)) })
        let secrets =
            p.secrets.isEmpty
            ? nil
            : OValue.object(
                p.secrets.keys.sorted(by: Render.goLess).map { ($0, fileObject(p.secrets[$0]!, secret: true)) })
        let configs =
            p.configs.isEmpty
            ? nil
            : OValue.object(
                p.configs.keys.sorted(by: Render.goLess).map { ($0, fileObject(p.configs[$0]!, secret: false)) })
        let models = p.models.isEmpty ? nil : raw(.map(p.models))
        if json {
            var entries: [(String, OValue)] = [("name", .string(p.name)), ("services", services)]
            if let networks { entries.append(("networks", networks)) }
            if let volumes { entries.append(("volumes", volumes)) }
            if let secrets { entries.append(("secrets", secrets)) }
            if let configs { entries.append(("configs", configs)) }
            if let models { entries.append(("models", models)) }
            for (k, v) in p.extensions { entries.append((k, raw(v))) }
            top = entries.sorted { Render.goLess($0.0, $1.0) }
        } else {
            top.append(("name", .string(p.name)))
            top.append(("services", services))
            if let networks { top.append(("networks", networks)) }
            if let volumes { top.append(("volumes", volumes)) }
            if let secrets { top.append(("secrets", secrets)) }
            if let configs { top.append(("configs", configs)) }
            if let models { top.append(("models", models)) }
            for k in p.extensions.keys.sorted(by: Render.goLess) { top.append((k, raw(p.extensions[k]!))) }
        }
        return .object(top)
    }

    func network(_ n: Network) -> OValue {
        var f = Fields()
        f.str("name", n.name)
        f.str("driver", n.driver)
        f.map("driver_opts", n.driverOpts)
        let ipam = ipamValue(n.ipam)
        if json || !ipamIsEmpty(n.ipam) { f.add("ipam", ipam) }
        f.flag("external", n.external)
        f.flag("internal", n.internal)
        f.flag("attachable", n.attachable)
        f.map("labels", n.labels)
        f.add("enable_ipv4", n.enableIPv4.map(OValue.bool))
        f.add("enable_ipv6", n.enableIPv6.map(OValue.bool))
        extensions(&f, n.extensions)
        return .object(f.items)
    }

    func ipamIsEmpty(_ i: IPAM) -> Bool {
        i.driver == nil && i.config.isEmpty && i.options.isEmpty && i.extensions.isEmpty
    }

    func ipamValue(_ i: IPAM) -> OValue {
        var f = Fields()
        f.str("driver", i.driver)
        if !i.config.isEmpty {
            f.add(
                "config",
                .array(
                    i.config.map { pool in
                        var p = Fields()
                        p.str("subnet", pool.subnet)
                        p.str("gateway", pool.gateway)
                        p.str("ip_range", pool.ipRange)
                        p.map("aux_addresses", pool.auxAddresses)
                        extensions(&p, pool.extensions)
                        return .object(p.items)
                    }))
        }
        f.map("options", i.options)
        extensions(&f, i.extensions)
        return .object(f.items)
    }

    func volume(_ v: Volume) -> OValue {
        var f = Fields()
        f.str("name", v.name)
        f.str("driver", v.driver)
        f.map("driver_opts", v.driverOpts)
        f.flag("external", v.external)
        f.map("labels", v.labels)
        extensions(&f, v.extensions)
        return .object(f.items)
    }

    func fileObject(_ o: FileObject, secret: Bool) -> OValue {
        var f = Fields()
        f.str("name", o.name)
        f.str("file", o.file)
        f.str("environment", o.environment)
        if !secret && o.environment == nil { f.str("content", o.content) }
        f.flag("external", o.external)
        f.map("labels", o.labels)
        f.str("driver", o.driver)
        f.map("driver_opts", o.driverOpts)
        f.str("template_driver", o.templateDriver)
        extensions(&f, o.extensions)
        return .object(f.items)
    }

    // MARK: - Service

    static let deviceRequestOrder = ["capabilities", "driver", "count", "device_ids", "options"]

    /// Adds keys berth keeps as written (`Service.other`), at their place in the order.
    func other(_ f: inout Fields, _ s: Service, _ keys: String...) {
        guard !s.other.isEmpty else { return }
        for k in keys {
            if let v = s.other[k] { f.add(k, raw(v, order: k == "gpus" ? Render.deviceRequestOrder : nil)) }
        }
    }

    /// A service's fields in the order of compose-go's ServiceConfig struct.
    func service(_ s: Service) -> OValue {
        var f = Fields()
        f.list("profiles", s.profiles)
        other(&f, s, "annotations", "attach")
        f.add("build", s.build.map(build))
        other(&f, s, "develop", "blkio_config")
        f.list("cap_add", s.capAdd)
        f.list("cap_drop", s.capDrop)
        other(
            &f, s, "cgroup_parent", "cgroup", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period",
            "cpu_rt_runtime")
        f.add("cpus", s.cpus.flatMap { $0 == 0 ? nil : OValue.float($0, bits: 32) })
        other(&f, s, "cpuset")
        f.add("cpu_shares", s.cpuShares.flatMap { $0 == 0 ? nil : OValue.int($0) })
        if let c = s.command { f.add("command", .array(c.map(OValue.string))) } else if json { f.add("command", .null) }
        if !s.configs.isEmpty { f.add("configs", .array(s.configs.map(fileReference))) }
        f.str("container_name", s.containerName)
        other(&f, s, "credential_spec")
        if !s.dependsOn.isEmpty {
            f.add(
                "depends_on",
                .object(
                    s.dependsOn.keys.sorted(by: Render.goLess).map { name in
                        let d = s.dependsOn[name]!
                        var df = Fields()
                        df.str("condition", d.condition)
                        df.flag("restart", d.restart)
                        extensions(&df, d.extensions)
                        df.add("required", .bool(d.required))
                        return (name, .object(df.items))
                    }))
        }
        f.add("deploy", s.deploy.map(deploy))
        other(&f, s, "device_cgroup_rules")
        if !s.devices.isEmpty {
            f.add(
                "devices",
                .array(
                    s.devices.map { d in
                        var df = Fields()
                        df.str("source", d.source)
                        df.str("target", d.target)
                        df.str("permissions", d.permissions)
                        extensions(&df, d.extensions)
                        return .object(df.items)
                    }))
        }
        f.list("dns", s.dns)
        f.list("dns_opt", s.dnsOpt)
        f.list("dns_search", s.dnsSearch)
        other(&f, s, "dockerfile")
        f.str("domainname", s.domainname)
        if let c = s.entrypoint {
            f.add("entrypoint", .array(c.map(OValue.string)))
        } else if json {
            f.add("entrypoint", .null)
        }
        other(&f, s, "provider")
        if !s.environment.isEmpty {
            f.add(
                "environment",
                .object(
                    s.environment.keys.sorted(by: Render.goLess).map { k in
                        (k, s.environment[k]!.map(OValue.string) ?? .null)
                    }))
        }
        // env_file, extends and label_file: docker compose config resolves and drops them
        f.list("expose", s.expose)
        other(&f, s, "external_links")
        if !s.extraHosts.isEmpty {
            f.list("extra_hosts", s.extraHosts.flatMap { h, ips in ips.map { "\(h)=\($0)" } }.sorted(by: Render.goLess))
        }
        other(&f, s, "group_add", "gpus")
        f.str("hostname", s.hostname)
        f.add("healthcheck", s.healthcheck.map(healthcheck))
        f.str("image", s.image)
        f.add("init", s.`init`.map(OValue.bool))
        f.str("ipc", s.ipc)
        other(&f, s, "isolation")
        f.map("labels", s.labels)
        f.list("links", s.links)
        if let l = s.logging {
            var lf = Fields()
            lf.str("driver", l.driver)
            lf.map("options", l.options)
            extensions(&lf, l.extensions)
            f.add("logging", .object(lf.items))
        }
        other(&f, s, "log_driver", "log_opt")
        f.bytes("mem_limit", s.memLimit)
        f.bytes("mem_reservation", s.memReservation)
        f.bytes("memswap_limit", s.memswapLimit)
        other(&f, s, "mem_swappiness", "mac_address", "models", "net")
        f.str("network_mode", s.networkMode)
        if !s.networks.isEmpty {
            f.add(
                "networks",
                .object(
                    s.networks.keys.sorted(by: Render.goLess).map { k in
                        (k, s.networks[k]!.map(serviceNetwork) ?? .null)
                    }))
        }
        other(&f, s, "oom_kill_disable", "oom_score_adj")
        f.str("pid", s.pid)
        f.add("pids_limit", s.pidsLimit.flatMap { $0 == 0 ? nil : OValue.int($0) })
        f.str("platform", s.platform)
        if !s.ports.isEmpty { f.add("ports", .array(s.ports.map(port))) }
        f.flag("privileged", s.privileged)
        f.str("pull_policy", s.pullPolicy)
        f.flag("read_only", s.readOnly)
        f.str("restart", s.restart)
        other(&f, s, "runtime")
        f.add("scale", s.scale.map { OValue.int(Int64($0)) })
        if !s.secrets.isEmpty { f.add("secrets", .array(s.secrets.map(fileReference))) }
        f.list("security_opt", s.securityOpt)
        f.bytes("shm_size", s.shmSize)
        f.flag("stdin_open", s.stdinOpen)
        f.duration("stop_grace_period", s.stopGracePeriod)
        f.str("stop_signal", s.stopSignal)
        other(&f, s, "storage_opt")
        f.map("sysctls", s.sysctls)
        f.list("tmpfs", s.tmpfs)
        f.flag("tty", s.tty)
        if !s.ulimits.isEmpty {
            f.add(
                "ulimits",
                .object(
                    s.ulimits.keys.sorted(by: Render.goLess).map { k in
                        let u = s.ulimits[k]!
                        if let single = u.single, single != 0 { return (k, .int(Int64(single))) }
                        var uf = Fields()
                        if let soft = u.soft, soft != 0 { uf.add("soft", .int(Int64(soft))) }
                        if let hard = u.hard, hard != 0 { uf.add("hard", .int(Int64(hard))) }
                        extensions(&uf, u.extensions)
                        return (k, .object(uf.items))
                    }))
        }
        other(&f, s, "use_api_socket")
        f.str("user", s.user)
        other(&f, s, "userns_mode", "uts", "volume_driver")
        if !s.volumes.isEmpty { f.add("volumes", .array(s.volumes.map(serviceVolume))) }
        f.list("volumes_from", s.volumesFrom)
        f.str("working_dir", s.workingDir)
        other(&f, s, "pre_start", "post_start", "pre_stop")
        extensions(&f, s.extensions)
        return .object(f.items)
    }

    static let buildKeyOrder = [
        "context", "dockerfile", "dockerfile_inline", "entitlements", "args", "provenance", "sbom", "ssh", "labels",
        "cache_from", "cache_to", "no_cache", "no_cache_filter", "additional_contexts", "pull", "extra_hosts",
        "isolation", "network", "target", "secrets", "shm_size", "tags", "ulimits", "platforms", "privileged",
    ]

    func build(_ b: Build) -> OValue {
        var f = Fields()
        for key in Render.buildKeyOrder {
            switch key {
            case "context": f.str(key, b.context)
            case "dockerfile": f.str(key, b.dockerfile)
            case "dockerfile_inline": f.str(key, b.dockerfileInline)
            case "args":
                if !b.args.isEmpty {
                    f.add(
                        key,
                        .object(
                            b.args.keys.sorted(by: Render.goLess).map { k in (k, b.args[k]!.map(OValue.string) ?? .null)
                            }))
                }
            case "labels": f.map(key, b.labels)
            case "network": f.str(key, b.network)
            case "target": f.str(key, b.target)
            case "shm_size": f.bytes(key, b.shmSize)
            case "secrets":
                if let v = b.other[key] { f.add(key, raw(v, order: ["source", "target", "uid", "gid", "mode"])) }
            case "no_cache", "pull", "privileged":
                if case .bool(true)? = b.other[key] { f.add(key, .bool(true)) }
            default:
                if let v = b.other[key] { f.add(key, raw(v)) }
            }
        }
        extensions(&f, b.extensions)
        return .object(f.items)
    }

    func healthcheck(_ h: Healthcheck) -> OValue {
        var f = Fields()
        if let t = h.test, !t.isEmpty { f.add("test", .array(t.map(OValue.string))) }
        f.duration("timeout", h.timeout)
        f.duration("interval", h.interval)
        f.add("retries", h.retries.map { OValue.int(Int64($0)) })
        f.duration("start_period", h.startPeriod)
        f.duration("start_interval", h.startInterval)
        f.flag("disable", h.disable)
        extensions(&f, h.extensions)
        return .object(f.items)
    }

    func deploy(_ d: Deploy) -> OValue {
        var f = Fields()
        f.str("mode", d.mode)
        f.add("replicas", d.replicas.map { OValue.int(Int64($0)) })
        f.map("labels", d.labels)
        let updateOrder = ["parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order"]
        f.add("update_config", d.other["update_config"].map { raw($0, order: updateOrder) })
        f.add("rollback_config", d.other["rollback_config"].map { raw($0, order: updateOrder) })
        var r = Fields()
        r.add("limits", d.resources.limits.map(resource))
        r.add("reservations", d.resources.reservations.map(resource))
        extensions(&r, d.resources.extensions)
        if json || !r.items.isEmpty { f.add("resources", .object(r.items)) }
        if let p = d.restartPolicy {
            var pf = Fields()
            pf.str("condition", p.condition)
            pf.duration("delay", p.delay)
            pf.add("max_attempts", p.maxAttempts.map { OValue.int(Int64($0)) })
            pf.duration("window", p.window)
            extensions(&pf, p.extensions)
            f.add("restart_policy", .object(pf.items))
        }
        let placement =
            d.other["placement"].map { raw($0, order: ["constraints", "preferences", "max_replicas_per_node"]) }
            ?? .object([])
        if case .object(let items) = placement, items.isEmpty, !json {
            // omitted when empty in YAML
        } else {
            f.add("placement", placement)
        }
        f.str("endpoint_mode", d.endpointMode)
        extensions(&f, d.extensions)
        return .object(f.items)
    }

    func resource(_ r: Resource) -> OValue {
        var f = Fields()
        f.add("cpus", r.cpus.flatMap { $0 == 0 ? nil : OValue.float($0, bits: 32) })
        f.bytes("memory", r.memory)
        f.add("pids", r.pids.flatMap { $0 == 0 ? nil : OValue.int($0) })
        f.add("devices", r.other["devices"].map { raw($0, order: Render.deviceRequestOrder) })
        f.add("generic_resources", r.other["generic_resources"].map { raw($0) })
        extensions(&f, r.extensions)
        return .object(f.items)
    }

    func port(_ p: ServicePort) -> OValue {
        var f = Fields()
        f.str("name", p.name)
        f.str("mode", p.mode)
        f.str("host_ip", p.hostIP)
        if p.target != 0 { f.add("target", .int(Int64(p.target))) }
        f.str("published", p.published)
        f.str("protocol", p.protocol)
        f.str("app_protocol", p.appProtocol)
        extensions(&f, p.extensions)
        return .object(f.items)
    }

    func serviceVolume(_ v: ServiceVolume) -> OValue {
        var f = Fields()
        f.str("type", v.type)
        f.str("source", v.source)
        f.str("target", v.target)
        f.flag("read_only", v.readOnly)
        f.str("consistency", v.consistency)
        if let b = v.bind {
            var bf = Fields()
            bf.str("selinux", b.selinux)
            bf.str("propagation", b.propagation)
            if !b.createHostPath { bf.add("create_host_path", .bool(false)) }
            bf.str("recursive", b.recursive)
            extensions(&bf, b.extensions)
            f.add("bind", .object(bf.items))
        }
        if let o = v.volume {
            var of = Fields()
            of.map("labels", o.labels)
            of.flag("nocopy", o.nocopy)
            of.str("subpath", o.subpath)
            extensions(&of, o.extensions)
            f.add("volume", .object(of.items))
        }
        if let t = v.tmpfs {
            var tf = Fields()
            tf.bytes("size", t.size)
            if let mode = t.mode, mode != 0 { tf.add("mode", .int(Int64(mode))) }
            extensions(&tf, t.extensions)
            f.add("tmpfs", .object(tf.items))
        }
        if let i = v.image {
            var imf = Fields()
            imf.str("subpath", i.subpath)
            extensions(&imf, i.extensions)
            f.add("image", .object(imf.items))
        }
        extensions(&f, v.extensions)
        return .object(f.items)
    }

    func serviceNetwork(_ n: ServiceNetwork) -> OValue {
        var f = Fields()
        f.list("aliases", n.aliases)
        f.map("driver_opts", n.driverOpts)
        f.add("gw_priority", n.gwPriority.flatMap { $0 == 0 ? nil : OValue.int(Int64($0)) })
        f.str("interface_name", n.interfaceName)
        f.str("ipv4_address", n.ipv4Address)
        f.str("ipv6_address", n.ipv6Address)
        f.list("link_local_ips", n.linkLocalIPs)
        f.str("mac_address", n.macAddress)
        f.add("priority", n.priority.flatMap { $0 == 0 ? nil : OValue.int(Int64($0)) })
        extensions(&f, n.extensions)
        return .object(f.items)
    }

    func fileReference(_ r: FileReference) -> OValue {
        raw(Render.fileReferenceRaw(r), order: ["source", "target", "uid", "gid", "mode"])
    }

    static func fileReferenceRaw(_ r: FileReference) -> RawValue {
        var m: [String: RawValue] = ["source": .string(r.source)]
        if let t = r.target, !t.isEmpty { m["target"] = .string(t) }
        if let u = r.uid, !u.isEmpty { m["uid"] = .string(u) }
        if let g = r.gid, !g.isEmpty { m["gid"] = .string(g) }
        if let mode = r.mode { m["mode"] = .string("0" + String(mode, radix: 8)) }
        return .map(m)
    }

    // MARK: - Writers

    /// Go's json.MarshalIndent(v, "", "  ") (HTML-safe escaping included); with `dollars`, each
    /// "$" is written "$$".
    static func json(_ v: OValue, dollars: Bool = false) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(1 << 16)
        writeJSON(v, indent: 0, dollars: dollars, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func newline(_ indent: Int, _ out: inout [UInt8]) {
        out.append(10)
        for _ in 0..<indent {
            out.append(32)
            out.append(32)
        }
    }

    private static func writeJSON(_ v: OValue, indent: Int, dollars: Bool, into out: inout [UInt8]) {
        switch v {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .float(let d, let bits): out.append(contentsOf: formatGoFloat(d, bits: bits).utf8)
        case .string(let s): writeJSONString(s, dollars: dollars, into: &out)
        case .array(let items):
            if items.isEmpty {
                out.append(contentsOf: "[]".utf8)
                return
            }
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(indent + 1, &out)
                writeJSON(item, indent: indent + 1, dollars: dollars, into: &out)
            }
            newline(indent, &out)
            out.append(UInt8(ascii: "]"))
        case .object(let pairs):
            if pairs.isEmpty {
                out.append(contentsOf: "{}".utf8)
                return
            }
            out.append(UInt8(ascii: "{"))
            for (i, (k, item)) in pairs.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(indent + 1, &out)
                writeJSONString(k, dollars: dollars, into: &out)
                out.append(UInt8(ascii: ":"))
                out.append(32)
                writeJSON(item, indent: indent + 1, dollars: dollars, into: &out)
            }
            newline(indent, &out)
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    private static func writeJSONString(_ s: String, dollars: Bool, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var bytes = Array(s.utf8)
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "\""):
                out.append(92)
                out.append(c)
            case 92:
                out.append(92)
                out.append(92)
            case 10:
                out.append(92)
                out.append(UInt8(ascii: "n"))
            case 13:
                out.append(92)
                out.append(UInt8(ascii: "r"))
            case 9:
                out.append(92)
                out.append(UInt8(ascii: "t"))
            case 8:
                out.append(92)
                out.append(UInt8(ascii: "b"))
            case 12:
                out.append(92)
                out.append(UInt8(ascii: "f"))
            case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"):
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(c >> 4)])
                out.append(hex[Int(c & 15)])
            case UInt8(ascii: "$"):
                out.append(c)
                if dollars { out.append(c) }
            case 0xE2
            where i + 2 < bytes.count && bytes[i + 1] == 0x80 && (bytes[i + 2] == 0xA8 || bytes[i + 2] == 0xA9):
                out.append(contentsOf: (bytes[i + 2] == 0xA8 ? "\\u2028" : "\\u2029").utf8)
                i += 2
            default:
                if c < 0x20 {
                    out.append(contentsOf: "\\u00".utf8)
                    out.append(hex[Int(c >> 4)])
                    out.append(hex[Int(c & 15)])
                } else {
                    out.append(c)
                }
            }
            i += 1
        }
        bytes = []
        out.append(UInt8(ascii: "\""))
    }

}

extension Project {
    /// The model as `docker compose config --format json` prints it (no trailing newline).
    public func canonicalJSON() -> String {
        let doc = Render(json: true).project(self)
        if fastExit { ProcessLifetime.keep(doc) }
        return Render.json(doc, dollars: interpolated)
    }

    /// The model as `docker compose config` prints it (YAML), as libyaml's emitter writes it.
    public func canonicalYAML() throws -> String {
        String(decoding: try canonicalYAMLBytes(), as: UTF8.self)
    }

    /// `canonicalYAML()` as UTF-8 bytes, for writing out without another copy.
    public func canonicalYAMLBytes() throws -> [UInt8] {
        let doc = Render(json: false).project(self)
        if fastExit { ProcessLifetime.keep(doc) }
        let writer = try YAMLWriter()
        try Render.writeYAML(doc, to: writer, dollars: interpolated)
        return try writer.finish()
    }
}

extension Render {
    /// Streams the document into libyaml's emitter. Strings go as quoted-style scalars so that
    /// the emitter quotes the ones that would read back as another type; numbers, booleans and
    /// null stay plain.
    static func writeYAML(_ value: OValue, to writer: YAMLWriter, dollars: Bool) throws {
        func string(_ text: String) throws {
            let escaped = dollars && text.utf8.contains(UInt8(ascii: "$")) ? text.replacing("$", with: "$$") : text
            try writer.scalar(escaped, style: .doubleQuoted)
        }
        switch value {
        case .null: try writer.scalar("null", style: .plain)
        case .bool(let b): try writer.scalar(b ? "true" : "false", style: .plain)
        case .int(let i): try writer.scalar(String(i), style: .plain)
        case .float(let d, let bits): try writer.scalar(formatGoFloat(d, bits: bits), style: .plain)
        case .string(let s): try string(s)
        case .array(let items):
            try writer.beginSequence()
            for item in items { try writeYAML(item, to: writer, dollars: dollars) }
            try writer.endSequence()
        case .object(let pairs):
            try writer.beginMapping()
            for (key, item) in pairs {
                try string(key)
                try writeYAML(item, to: writer, dollars: dollars)
            }
            try writer.endMapping()
        }
    }
}
