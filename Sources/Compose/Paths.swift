import YAML

/// Makes the relative paths of a canonical model absolute against `base` (the project directory
/// for the project's own files, the file's folder for a service taken from another file by
/// `extends`, the included project's directory for `include`). Absolute paths are left as written;
/// a leading `~` is the home directory.
struct PathResolver {
    var base: String
    var home: String?

    func absolute(_ p: String) -> String {
        p.isEmpty ? p : PathUtil.absolute(p, base: base, home: home)
    }

    func model(_ root: Node, skippingServices: Bool = false) throws -> Node {
        guard var pairs = root.mapping else { return root }
        for i in pairs.indices {
            let key = pairs[i].key.text ?? ""
            let value = pairs[i].value
            switch key {
            case "services":
                guard !skippingServices, let services = value.mapping else { continue }
                pairs[i].value = value.withValue(
                    .mapping(
                        try services.map { s in
                            Node.Pair(key: s.key, value: try service(s.value, path: "services.\(s.key.text ?? "")"))
                        }))
            case "configs", "secrets":
                guard let items = value.mapping else { continue }
                pairs[i].value = value.withValue(
                    .mapping(
                        items.map { r in
                            guard let file = r.value["file"], let text = file.text, !file.isNull else { return r }
                            return Node.Pair(
                                key: r.key, value: r.value.setting("file", .string(absolute(text), at: file.mark)))
                        }))
            case "volumes":
                guard let items = value.mapping else { continue }
                pairs[i].value = value.withValue(
                    .mapping(
                        items.map { r in
                            guard r.value["driver"]?.text == "local", let opts = r.value["driver_opts"],
                                opts["o"]?.text == "bind", let dev = opts["device"], let text = dev.scalarString
                            else { return r }
                            return Node.Pair(
                                key: r.key,
                                value: r.value.setting(
                                    "driver_opts", opts.setting("device", .string(absolute(text), at: dev.mark))))
                        }))
            default:
                continue
            }
        }
        return root.withValue(.mapping(pairs))
    }

    func service(_ node: Node, path: String) throws -> Node {
        guard node.isMapping else { return node }
        var s = node
        if let build = s["build"], build.isMapping {
            var b = build
            if let ctx = b["context"], let text = ctx.text, !ctx.isNull {
                b = b.setting("context", .string(contextPath(text), at: ctx.mark))
            }
            if let extra = b["additional_contexts"], let pairs = extra.mapping {
                b = b.setting(
                    "additional_contexts",
                    extra.withValue(
                        .mapping(
                            pairs.map { p in
                                guard let text = p.value.text, !p.value.isNull else { return p }
                                return Node.Pair(key: p.key, value: .string(contextPath(text), at: p.value.mark))
                            })))
            }
            s = s.setting("build", b)
        }
        if let envFiles = s["env_file"], let items = envFiles.sequence {
            s = s.setting(
                "env_file",
                envFiles.withValue(
                    .sequence(
                        items.map { item in
                            guard let p = item["path"], let text = p.text else { return item }
                            return item.setting("path", .string(absolute(text), at: p.mark))
                        })))
        }
        if let labelFiles = s["label_file"], let items = labelFiles.sequence {
            s = s.setting(
                "label_file",
                labelFiles.withValue(
                    .sequence(
                        items.map { item in
                            guard let text = item.text else { return item }
                            return .string(absolute(text), at: item.mark)
                        })))
        }
        if let ext = s["extends"], let file = ext["file"], let text = file.text {
            s = s.setting("extends", ext.setting("file", .string(absolute(text), at: file.mark)))
        }
        if let volumes = s["volumes"], let items = volumes.sequence {
            var out: [Node] = []
            out.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                guard item.isMapping, item["type"]?.text == "bind" else {
                    out.append(item)
                    continue
                }
                guard let src = item["source"], let text = src.text, !src.isNull else {
                    throw ComposeError(
                        "invalid mount config for type \"bind\": field Source must not be empty", at: item.mark,
                        key: indexPath(path + ".volumes", i))
                }
                out.append(item.setting("source", .string(absolute(text), at: src.mark)))
            }
            s = s.setting("volumes", volumes.withValue(.sequence(out)))
        }
        return s
    }

    /// Build contexts that are URLs, git references or `service:` stay as written.
    func contextPath(_ v: String) -> String {
        if v.contains("://") || v.hasPrefix("service:") { return v }
        for prefix in ["https://", "http://", "git://", "ssh://", "github.com/", "git@"] where v.hasPrefix(prefix) {
            return v
        }
        return absolute(v)
    }
}
