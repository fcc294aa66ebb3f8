import YAML

/// Rewrites the short syntaxes of one (validated) file into the long ones, on the node tree, so
/// that files merge key by key and every later stage sees one form. Synthesized nodes carry the
/// position of what they were made from, so later errors still point at the user's text.
/// Tags (`!reset`, `!override`) on rewritten values are kept for the merge.
enum Canonical {
    /// `validateServices`: check each service body against the schema first (the caller
    /// validated the rest of the file with `skippingServiceBodies`).
    static func file(_ root: Node, validateServices: Bool = false, warn: (String) -> Void) throws -> Node {
        guard let pairs = root.mapping else { return root }
        var out: [Node.Pair] = []
        out.reserveCapacity(pairs.count)
        for p in pairs {
            let key = p.key.text ?? ""
            var value = p.value
            switch key {
            case "services":
                if let services = value.mapping {
                    let converted = try parallelMap(services) { s in
                        let name = s.key.text ?? ""
                        if validateServices { try SchemaValidator.validateService(s.value, name: name) }
                        return Node.Pair(key: s.key, value: try service(s.value, path: "services.\(name)"))
                    }
                    value = value.withValue(.mapping(converted))
                }
            case "networks", "volumes", "secrets", "configs":
                if let resources = value.mapping {
                    var converted: [Node.Pair] = []
                    for r in resources {
                        converted.append(
                            Node.Pair(
                                key: r.key, value: try resource(r.value, path: "\(key).\(r.key.text ?? "")", warn: warn)
                            ))
                    }
                    value = value.withValue(.mapping(converted))
                }
            case "include":
                if let items = value.sequence {
                    value = value.withValue(
                        .sequence(
                            items.map { item in
                                item.isStringScalar ? .map([("path", item)], at: item.mark) : item
                            }))
                }
            default:
                break
            }
            out.append(Node.Pair(key: p.key, value: value))
        }
        return root.withValue(.mapping(out))
    }

    /// `external: {name: x}` (deprecated) becomes `external: true` plus `name: x`.
    static func resource(_ node: Node, path: String, warn: (String) -> Void) throws -> Node {
        var node = node
        if let labels = node["labels"], labels.isSequence {
            node = node.setting("labels", try keyValues(labels, path: path + ".labels", environment: false))
        }
        guard let ext = node["external"], ext.isMapping else { return node }
        var result = node.setting("external", .plain("true", at: ext.mark))
        if let extName = ext["name"] {
            warn("\(path): external.name is deprecated. Please set name and external: true")
            if let name = node["name"] {
                if name.text != extName.text {
                    throw ComposeError("name and external.name conflict; only use name", at: ext.mark, key: path)
                }
            } else {
                result = result.setting("name", extName)
            }
        }
        return result
    }

    static func service(_ node: Node, path: String) throws -> Node {
        guard let pairs = node.mapping else { return node }
        var out: [Node.Pair] = []
        out.reserveCapacity(pairs.count)
        for p in pairs {
            let key = p.key.text ?? ""
            let v = p.value
            var value = v
            if !v.isReset {
                var keyPath: String { joinPath(path, key) }
                switch key {
                case "build": value = try build(v, path: keyPath)
                case "depends_on": value = dependsOn(v)
                case "env_file": value = envFile(v)
                case "label_file", "dns", "dns_search", "tmpfs": value = stringToList(v)
                case "extends": value = v.isStringScalar ? .map([("service", v)], at: v.mark, tag: v.tag) : v
                case "networks", "models": value = listToNullMap(v)
                case "volumes": value = try volumes(v, path: keyPath)
                case "devices": value = try devices(v, path: keyPath)
                case "secrets", "configs": value = fileReferences(v)
                case "ports": value = try ports(v, path: keyPath)
                case "environment": value = try keyValues(v, path: keyPath, environment: true)
                case "labels", "annotations", "sysctls": value = try keyValues(v, path: keyPath, environment: false)
                case "extra_hosts": value = extraHosts(v)
                case "deploy":
                    if let labels = v["labels"], !labels.isReset {
                        value = v.setting(
                            "labels", try keyValues(labels, path: keyPath + ".labels", environment: false))
                    }
                default: break
                }
            }
            out.append(Node.Pair(key: p.key, value: value))
        }
        return node.withValue(.mapping(out))
    }

    static func build(_ v: Node, path: String) throws -> Node {
        if v.isStringScalar { return .map([("context", v)], at: v.mark, tag: v.tag) }
        guard v.isMapping else { return v }
        var b = v
        for key in ["args", "labels"] {
            if let x = b[key], !x.isReset {
                b = b.setting(key, try keyValues(x, path: path + "." + key, environment: false))
            }
        }
        if let x = b["additional_contexts"], let items = x.sequence {
            var pairs: [(String, Node)] = []
            for (i, item) in items.enumerated() {
                let text = item.scalarString ?? ""
                guard let eq = text.firstIndex(of: "=") else {
                    throw ComposeError(
                        "invalid value \(text), expected key=value", at: item.mark,
                        key: indexPath(path + ".additional_contexts", i))
                }
                pairs.append((String(text[..<eq]), .string(String(text[text.index(after: eq)...]), at: item.mark)))
            }
            b = b.setting("additional_contexts", .map(pairs, at: x.mark, tag: x.tag))
        }
        if let x = b["extra_hosts"] { b = b.setting("extra_hosts", extraHosts(x)) }
        if let x = b["secrets"] { b = b.setting("secrets", fileReferences(x)) }
        return b
    }

    static func dependsOn(_ v: Node) -> Node {
        if let items = v.sequence {
            return .map(
                items.map { item in
                    (
                        item.scalarString ?? "",
                        .map(
                            [
                                ("condition", .string("service_started", at: item.mark)),
                                ("required", .plain("true", at: item.mark)),
                            ], at: item.mark)
                    )
                }, at: v.mark, tag: v.tag)
        }
        guard let pairs = v.mapping else { return v }
        return v.withValue(
            .mapping(
                pairs.map { p in
                    var d = p.value
                    if d.isMapping {
                        if d["condition"] == nil { d = d.setting("condition", .string("service_started", at: d.mark)) }
                        if d["required"] == nil { d = d.setting("required", .plain("true", at: d.mark)) }
                    }
                    return Node.Pair(key: p.key, value: d)
                }))
    }

    static func envFile(_ v: Node) -> Node {
        func entry(_ n: Node) -> Node {
            if n.isStringScalar { return .map([("path", n), ("required", .plain("true", at: n.mark))], at: n.mark) }
            if n.isMapping && n["required"] == nil { return n.setting("required", .plain("true", at: n.mark)) }
            return n
        }
        if v.isStringScalar { return .seq([entry(v)], at: v.mark, tag: v.tag) }
        guard let items = v.sequence else { return v }
        return v.withValue(.sequence(items.map(entry)))
    }

    static func stringToList(_ v: Node) -> Node {
        v.isStringScalar ? .seq([v], at: v.mark, tag: v.tag) : v
    }

    static func listToNullMap(_ v: Node) -> Node {
        guard let items = v.sequence else { return v }
        return .map(items.map { ($0.scalarString ?? "", .null(at: $0.mark)) }, at: v.mark, tag: v.tag)
    }

    static func fileReferences(_ v: Node) -> Node {
        guard let items = v.sequence else { return v }
        return v.withValue(.sequence(items.map { $0.isStringScalar ? .map([("source", $0)], at: $0.mark) : $0 }))
    }

    static func extraHosts(_ v: Node) -> Node {
        guard let pairs = v.mapping else { return v }
        var items: [Node] = []
        for p in pairs {
            let host = p.key.text ?? ""
            if let ips = p.value.sequence {
                for ip in ips { items.append(.string("\(host)=\(ip.scalarString ?? "")", at: ip.mark)) }
            } else {
                items.append(.string("\(host)=\(p.value.scalarString ?? "")", at: p.value.mark))
            }
        }
        return .seq(items, at: v.mark, tag: v.tag)
    }

    /// list_or_dict → mapping; "KEY=VALUE" items split at the first "=", "KEY" alone maps to null.
    static func keyValues(_ v: Node, path: String, environment: Bool) throws -> Node {
        guard let items = v.sequence else { return v }
        var pairs: [(String, Node)] = []
        pairs.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            let text = item.scalarString ?? ""
            if let eq = text.firstIndex(of: "=") {
                let key = String(text[..<eq])
                if environment, let last = key.last, last == " " || last == "\t" {
                    throw ComposeError(
                        "environment variable \(key) is declared with a trailing space", at: item.mark,
                        key: indexPath(path, i))
                }
                pairs.append((key, .string(String(text[text.index(after: eq)...]), at: item.mark)))
            } else {
                if environment, let last = text.last, last == " " || last == "\t" {
                    throw ComposeError(
                        "environment variable \(text) is declared with a trailing space", at: item.mark,
                        key: indexPath(path, i))
                }
                pairs.append((text, .null(at: item.mark)))
            }
        }
        return .map(pairs, at: v.mark, tag: v.tag)
    }

    static func volumes(_ v: Node, path: String) throws -> Node {
        guard let items = v.sequence else { return v }
        var out: [Node] = []
        for (i, item) in items.enumerated() {
            guard item.isStringScalar, let spec = item.text else {
                out.append(item)
                continue
            }
            let parsed: ServiceVolume
            do {
                parsed = try VolumeSpec.parse(spec)
            } catch {
                throw ComposeError("\(error)", at: item.mark, key: indexPath(path, i))
            }
            out.append(volumeNode(parsed, at: item.mark))
        }
        return v.withValue(.sequence(out))
    }

    static func volumeNode(_ vol: ServiceVolume, at m: Mark) -> Node {
        var pairs: [(String, Node)] = [("type", .string(vol.type, at: m))]
        if let s = vol.source { pairs.append(("source", .string(s, at: m))) }
        pairs.append(("target", .string(vol.target.isEmpty ? "" : PathUtil.clean(vol.target), at: m)))
        if vol.readOnly { pairs.append(("read_only", .plain("true", at: m))) }
        if let b = vol.bind {
            var bp: [(String, Node)] = []
            if let p = b.propagation { bp.append(("propagation", .string(p, at: m))) }
            bp.append(("create_host_path", .plain(b.createHostPath ? "true" : "false", at: m)))
            if let s = b.selinux { bp.append(("selinux", .string(s, at: m))) }
            pairs.append(("bind", .map(bp, at: m)))
        }
        if let o = vol.volume {
            pairs.append(("volume", .map(o.nocopy ? [("nocopy", .plain("true", at: m))] : [], at: m)))
        }
        return .map(pairs, at: m)
    }

    static func devices(_ v: Node, path: String) throws -> Node {
        guard let items = v.sequence else { return v }
        var out: [Node] = []
        for (i, item) in items.enumerated() {
            guard item.isStringScalar, let spec = item.text else {
                out.append(item)
                continue
            }
            let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            var src = ""
            var dst = ""
            var perms = "rwm"
            switch parts.count {
            case 3:
                src = parts[0]
                dst = parts[1]
                perms = parts[2]
            case 2:
                src = parts[0]
                dst = parts[1]
            case 1: src = parts[0]
            default:
                throw ComposeError(
                    "confusing device mapping, please use long syntax: \(spec)", at: item.mark, key: indexPath(path, i))
            }
            if dst.isEmpty { dst = src }
            out.append(
                .map(
                    [
                        ("source", .string(src, at: item.mark)), ("target", .string(dst, at: item.mark)),
                        ("permissions", .string(perms, at: item.mark)),
                    ], at: item.mark))
        }
        return v.withValue(.sequence(out))
    }

    static func ports(_ v: Node, path: String) throws -> Node {
        guard let items = v.sequence else { return v }
        var out: [Node] = []
        for (i, item) in items.enumerated() {
            guard item.isScalar, !item.isNull else {
                out.append(item)
                continue
            }
            let spec = item.text ?? ""
            let parsed: [ServicePort]
            do {
                parsed = try PortSpec.parse(spec)
            } catch {
                throw ComposeError("invalid port \"\(spec)\": \(error)", at: item.mark, key: indexPath(path, i))
            }
            for port in parsed {
                let m = item.mark
                var pairs: [(String, Node)] = [("mode", .string("ingress", at: m))]
                if let ip = port.hostIP { pairs.append(("host_ip", .string(ip, at: m))) }
                pairs.append(("target", .plain(String(port.target), at: m)))
                if let p = port.published { pairs.append(("published", .string(p, at: m))) }
                pairs.append(("protocol", .string(port.protocol ?? "tcp", at: m)))
                out.append(.map(pairs, at: m))
            }
        }
        return v.withValue(.sequence(out))
    }
}
