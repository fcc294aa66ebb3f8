import YAML

/// Merging of canonical trees, as `docker compose` merges several `-f` files, `extends` and
/// `include` (compose-go's override package): mappings merge key by key, sequences append,
/// scalars are replaced; `command`, `entrypoint` and `healthcheck.test` are replaced whole;
/// key/value mappings (environment, labels...) merge per key; `!reset` removes the value
/// underneath and `!override` replaces it instead of merging. Sequences whose items have an
/// identity (ports, volumes, secrets...) are then made unique by `Unicity`.
enum Merger {
    enum Rule {
        case generic, replace, keyValues, logging, ulimits, extraHosts, ipamConfig
    }

    /// Merges a whole file (or an included model) onto the accumulated model.
    static func mergeRoot(_ base: Node, _ override: Node) -> Node {
        mergeMapping(base, override) { key in
            switch key {
            case "services": return .generic
            default: return .generic
            }
        } child: { key, b, o in
            switch key {
            case "services":
                return mergeMapping(b, o, rule: { _ in .generic }, child: { _, bs, os in mergeService(bs, os) })
            case "networks", "volumes", "secrets", "configs":
                return mergeMapping(b, o, rule: { _ in .generic }, child: { _, br, or in mergeResource(br, or) })
            default:
                return merge(b, o, rule: .generic)
            }
        }
    }

    static func mergeResource(_ base: Node, _ override: Node) -> Node {
        mergeMapping(
            base, override, rule: { key in key == "labels" ? .keyValues : .generic },
            child: { key, b, o in
                if key == "ipam" {
                    return mergeMapping(b, o, rule: { $0 == "config" ? .ipamConfig : .generic }, child: nil)
                }
                return merge(b, o, rule: key == "labels" ? .keyValues : .generic)
            })
    }

    /// Merges two service definitions (also used for `extends`: base, then the extending service).
    static func mergeService(_ base: Node, _ override: Node) -> Node {
        mergeMapping(
            base, override, rule: serviceRule,
            child: { key, b, o in
                switch key {
                case "build":
                    return mergeMapping(
                        b, o,
                        rule: {
                            ["args", "labels", "additional_contexts"].contains($0)
                                ? .keyValues : ($0 == "extra_hosts" ? .extraHosts : .generic)
                        }, child: nil)
                case "healthcheck":
                    return mergeMapping(b, o, rule: { $0 == "test" ? .replace : .generic }, child: nil)
                case "deploy":
                    return mergeMapping(b, o, rule: { $0 == "labels" ? .keyValues : .generic }, child: nil)
                case "ulimits":
                    return mergeMapping(b, o, rule: { _ in .ulimits }, child: nil)
                case "volumes":
                    return merge(b, o, rule: .generic)
                default:
                    return merge(b, o, rule: serviceRule(key))
                }
            })
    }

    static func serviceRule(_ key: String) -> Rule {
        switch key {
        case "command", "entrypoint": return .replace
        case "environment", "labels", "annotations", "sysctls": return .keyValues
        case "extra_hosts": return .extraHosts
        case "logging": return .logging
        default: return .generic
        }
    }

    /// Merges `override` onto `base` under `rule`.
    static func merge(_ base: Node, _ override: Node, rule: Rule) -> Node {
        if override.isOverride { return override.strippingTags() }
        switch rule {
        case .replace:
            return override.strippingTags()
        case .keyValues:
            guard base.isMapping, override.isMapping else { return override.strippingTags() }
            return mergeMapping(base, override, rule: { _ in .replace }, child: nil)
        case .ulimits:
            return override.strippingTags()
        case .logging:
            guard base.isMapping, override.isMapping else { return override.strippingTags() }
            if let d1 = base["driver"]?.text, let d2 = override["driver"]?.text, d1 != d2 {
                return override.strippingTags()
            }
            return mergeMapping(base, override, rule: { _ in .generic }, child: nil)
        case .extraHosts:
            guard let b = base.sequence, let o = override.sequence else { return override.strippingTags() }
            var seen = Set(b.compactMap(\.text))
            var items = b
            for item in o where !item.isReset {
                if let t = item.text, seen.contains(t) { continue }
                if let t = item.text { seen.insert(t) }
                items.append(item.strippingTags())
            }
            return base.withValue(.sequence(items))
        case .ipamConfig:
            guard var items = base.sequence, let o = override.sequence else { return override.strippingTags() }
            for item in o where !item.isReset {
                if let subnet = item["subnet"]?.text, let i = items.firstIndex(where: { $0["subnet"]?.text == subnet })
                {
                    items[i] = mergeMapping(items[i], item, rule: { _ in .generic }, child: nil)
                } else {
                    items.append(item.strippingTags())
                }
            }
            return base.withValue(.sequence(items))
        case .generic:
            if override.isNull { return base }
            switch (base.value, override.value) {
            case (.mapping, .mapping):
                return mergeMapping(base, override, rule: { _ in .generic }, child: nil)
            case (.sequence(let b), .sequence(let o)):
                return base.withValue(.sequence(b + o.filter { !$0.isReset }.map { $0.strippingTags() }))
            default:
                return override.strippingTags()
            }
        }
    }

    /// Key-by-key merge of two mappings. `child` merges values present on both sides (default:
    /// `merge` with `rule(key)`).
    static func mergeMapping(
        _ base: Node, _ override: Node, rule: (String) -> Rule,
        child: ((String, Node, Node) -> Node)?
    ) -> Node {
        if override.isOverride { return override.strippingTags() }
        guard var pairs = base.mapping, let other = override.mapping else {
            if override.isNull { return base }
            return override.strippingTags()
        }
        var index = base.keyIndex()
        var removed = false
        for p in other {
            let key = p.key.text ?? ""
            if let i = index[key] {
                if p.value.isReset {
                    pairs[i].key.tag = "!removed"
                    removed = true
                } else if p.value.isOverride {
                    pairs[i].value = p.value.strippingTags()
                } else if let child {
                    pairs[i].value = child(key, pairs[i].value, p.value)
                } else {
                    pairs[i].value = merge(pairs[i].value, p.value, rule: rule(key))
                }
            } else if !p.value.isReset {
                index[key] = pairs.count
                pairs.append(Node.Pair(key: p.key, value: p.value.strippingTags()))
            }
        }
        if removed { pairs.removeAll { $0.key.tag == "!removed" } }
        return base.withValue(.mapping(pairs))
    }
}

/// Removes redefinitions from sequences whose items have an identity: the later definition takes
/// the place of the first (compose-go's EnforceUnicity).
enum Unicity {
    static let identified: Set<String> = [
        "cap_add", "cap_drop", "dns", "dns_opt", "dns_search", "links", "profiles", "tmpfs",
        "expose", "ports", "volumes", "devices", "secrets", "configs", "env_file",
    ]
    static func service(_ node: Node) -> Node {
        guard let pairs = node.mapping else { return node }
        guard
            pairs.contains(where: { p in
                if identified.contains(p.key.text ?? "") { return (p.value.sequence?.count ?? 0) > 1 }
                guard p.key.text == "networks", let nets = p.value.mapping else { return false }
                return nets.contains {
                    ($0.value["aliases"]?.sequence?.count ?? 0) > 1
                        || ($0.value["link_local_ips"]?.sequence?.count ?? 0) > 1
                }
            })
        else { return node }
        var out = pairs
        for (i, p) in pairs.enumerated() {
            let key = p.key.text ?? ""
            let indexer: ((Node) -> String?)?
            switch key {
            case "cap_add", "cap_drop", "dns", "dns_opt", "dns_search", "links", "profiles", "tmpfs", "expose":
                indexer = { n in
                    guard let s = n.scalarString else { return nil }
                    guard let eq = s.utf8.firstIndex(of: 61) else { return s }  // "="
                    return String(s[..<eq])
                }
            case "ports":
                indexer = { n in
                    guard n.isMapping else { return n.scalarString }
                    return
                        "\(n["host_ip"]?.text ?? "0.0.0.0"):\(n["published"]?.text ?? ""):\(n["target"]?.text ?? "")/\(n["protocol"]?.text ?? "tcp")"
                }
            case "volumes", "devices":
                indexer = { n in n["target"].flatMap { $0.text.map(PathUtil.clean) } }
            case "secrets":
                indexer = { n in n["target"]?.text ?? "/run/secrets/\(n["source"]?.text ?? "")" }
            case "configs":
                indexer = { n in n["target"]?.text ?? "/\(n["source"]?.text ?? "")" }
            case "env_file":
                indexer = { n in n["path"]?.text }
            case "networks":
                if let nets = p.value.mapping {
                    out[i].value = p.value.withValue(
                        .mapping(
                            nets.map { np in
                                var v = np.value
                                for k in ["aliases", "link_local_ips"] {
                                    if let seq = v[k] { v = v.setting(k, unique(seq, { $0.scalarString })) }
                                }
                                return Node.Pair(key: np.key, value: v)
                            }))
                }
                continue
            default:
                indexer = nil
            }
            if let indexer { out[i].value = unique(p.value, indexer) }
        }
        return node.withValue(.mapping(out))
    }

    static func unique(_ seq: Node, _ key: (Node) -> String?) -> Node {
        guard let items = seq.sequence, items.count > 1 else { return seq }
        var seen = Set<String>()
        var duplicate = false
        for item in items {
            if let k = key(item), !seen.insert(k).inserted {
                duplicate = true
                break
            }
        }
        guard duplicate else { return seq }
        var result: [Node] = []
        result.reserveCapacity(items.count)
        var positions: [String: Int] = [:]
        for item in items {
            if let k = key(item) {
                if let j = positions[k] {
                    result[j] = item
                    continue
                }
                positions[k] = result.count
            }
            result.append(item)
        }
        return seq.withValue(.sequence(result))
    }
}
