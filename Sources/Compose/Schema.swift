import YAML

/// The shape of a compose file (keys and value types), after the Compose Specification's JSON
/// schema, checked on every file as read so each error names the file, line, column and key path.
/// Values that need more than a type check (durations, ports, restart policies...) are checked when
/// the model is decoded.
indirect enum Shape {
    struct Kinds: OptionSet {
        let rawValue: UInt8
        static let string = Kinds(rawValue: 1)
        static let bool = Kinds(rawValue: 2)
        static let int = Kinds(rawValue: 4)
        static let number = Kinds(rawValue: 8)
        static let null = Kinds(rawValue: 16)
    }

    case any
    /// A scalar of one of these kinds ("number" includes integers).
    case scalar(Kinds)
    case enumOf([String])
    case list(Shape)
    /// A mapping with free keys (optionally matching a name rule).
    case dict(Shape, names: NameRule?)
    case object(ObjectShape)
    /// Alternatives told apart by node kind (scalar / sequence / mapping).
    case oneOf([Shape])

    struct ObjectShape {
        var properties: [String: Shape]
        var required: [String] = []
        var allowExtensions = true
        var nullable = false
    }

    enum NameRule { case resourceName }
}

private let str = Shape.scalar([.string])
private let boolOrString = Shape.scalar([.bool, .string])
private let numberOrString = Shape.scalar([.number, .string])
private let intOrString = Shape.scalar([.int, .string])
private let number = Shape.scalar([.number])
private let listOfStrings = Shape.list(str)
private let stringOrList = Shape.oneOf([str, listOfStrings])
private let listOrDict = Shape.oneOf([.dict(.scalar([.string, .number, .bool, .null]), names: nil), .list(str)])
private let stringOrNumberDict = Shape.dict(.scalar([.string, .number]), names: nil)
private let command = Shape.oneOf([.scalar([.null, .string]), listOfStrings])

private func obj(_ properties: [String: Shape], required: [String] = [], x: Bool = true, nullable: Bool = false)
    -> Shape
{
    .object(.init(properties: properties, required: required, allowExtensions: x, nullable: nullable))
}

private let ulimits = Shape.dict(
    .oneOf([intOrString, obj(["hard": intOrString, "soft": intOrString], required: ["soft", "hard"])]), names: nil)

private let fileReferences = Shape.list(
    .oneOf([
        str,
        obj([
            "source": str, "target": str, "uid": str, "gid": str, "mode": numberOrString,
        ]),
    ]))

private let extraHosts = Shape.oneOf([.dict(.oneOf([str, listOfStrings]), names: nil), listOfStrings])

private let deviceRequests = Shape.list(
    obj([
        "capabilities": listOfStrings, "count": intOrString, "device_ids": listOfStrings,
        "driver": str, "options": listOrDict,
    ]))

private let updateConfig = obj([
    "parallelism": intOrString, "delay": str, "failure_action": str, "monitor": str,
    "max_failure_ratio": numberOrString, "order": .enumOf(["start-first", "stop-first"]),
])

private let deploy = obj(
    [
        "mode": str, "endpoint_mode": str, "replicas": intOrString, "labels": listOrDict,
        "rollback_config": updateConfig, "update_config": updateConfig,
        "resources": obj([
            "limits": obj(["cpus": numberOrString, "memory": str, "pids": intOrString]),
            "reservations": obj([
                "cpus": numberOrString, "memory": str, "devices": deviceRequests,
                "generic_resources": .list(
                    obj(["discrete_resource_spec": obj(["kind": str, "value": numberOrString])])),
            ]),
        ]),
        "restart_policy": obj(["condition": str, "delay": str, "max_attempts": intOrString, "window": str]),
        "placement": obj([
            "constraints": .list(str), "preferences": .list(obj(["spread": str])),
            "max_replicas_per_node": intOrString,
        ]),
    ], nullable: true)

private let blkioLimit = obj(["path": str, "rate": intOrString], x: false)

private let serviceHook = obj(
    [
        "command": command, "user": str, "privileged": boolOrString, "working_dir": str, "environment": listOrDict,
        "image": str,
    ], required: ["command"])

private let service: Shape = obj([
    "develop": .any,
    "deploy": deploy,
    "annotations": listOrDict,
    "attach": boolOrString,
    "build": .oneOf([
        str,
        obj([
            "context": str, "dockerfile": str, "dockerfile_inline": str, "entitlements": .list(str),
            "args": listOrDict, "ssh": listOrDict, "labels": listOrDict, "cache_from": .list(str),
            "cache_to": .list(str), "no_cache": boolOrString, "no_cache_filter": stringOrList,
            "additional_contexts": listOrDict, "network": str, "provenance": .scalar([.string, .bool]),
            "sbom": .scalar([.string, .bool]), "pull": boolOrString, "target": str, "shm_size": intOrString,
            "extra_hosts": extraHosts, "isolation": str, "privileged": boolOrString, "secrets": fileReferences,
            "tags": .list(str), "ulimits": ulimits, "platforms": .list(str),
        ]),
    ]),
    "blkio_config": obj(
        [
            "device_read_bps": .list(blkioLimit), "device_read_iops": .list(blkioLimit),
            "device_write_bps": .list(blkioLimit), "device_write_iops": .list(blkioLimit),
            "weight": intOrString, "weight_device": .list(obj(["path": str, "weight": intOrString], x: false)),
        ], x: false),
    "cap_add": .list(str),
    "cap_drop": .list(str),
    "cgroup": .enumOf(["host", "private"]),
    "cgroup_parent": str,
    "command": command,
    "configs": fileReferences,
    "container_name": str,
    "cpu_count": intOrString,
    "cpu_percent": intOrString,
    "cpu_shares": numberOrString,
    "cpu_quota": numberOrString,
    "cpu_period": numberOrString,
    "cpu_rt_period": numberOrString,
    "cpu_rt_runtime": numberOrString,
    "cpus": numberOrString,
    "cpuset": str,
    "credential_spec": obj(["config": str, "file": str, "registry": str]),
    "depends_on": .oneOf([
        listOfStrings,
        .dict(
            obj([
                "restart": boolOrString, "required": boolOrString,
                "condition": .enumOf(["service_started", "service_healthy", "service_completed_successfully"]),
            ]), names: .resourceName),
    ]),
    "device_cgroup_rules": listOfStrings,
    "devices": .list(.oneOf([str, obj(["source": str, "target": str, "permissions": str], required: ["source"])])),
    "dns": stringOrList,
    "dns_opt": .list(str),
    "dns_search": stringOrList,
    "domainname": str,
    "entrypoint": command,
    "env_file": .oneOf([
        str,
        .list(
            .oneOf([str, obj(["path": str, "format": str, "required": boolOrString], required: ["path"], x: false)])),
    ]),
    "label_file": .oneOf([str, .list(str)]),
    "environment": listOrDict,
    "expose": .list(.scalar([.string, .number])),
    "extends": .oneOf([str, obj(["service": str, "file": str], required: ["service"], x: false)]),
    "provider": obj(["type": str, "options": .dict(.any, names: nil)], required: ["type"]),
    "external_links": .list(str),
    "extra_hosts": extraHosts,
    "gpus": .oneOf([.enumOf(["all"]), deviceRequests]),
    "group_add": .list(.scalar([.string, .number])),
    "healthcheck": obj([
        "disable": boolOrString, "interval": str, "retries": numberOrString,
        "test": .oneOf([str, .list(str)]), "timeout": str, "start_period": str, "start_interval": str,
    ]),
    "hostname": str,
    "image": str,
    "init": boolOrString,
    "ipc": str,
    "isolation": str,
    "labels": listOrDict,
    "links": .list(str),
    "logging": obj(["driver": str, "options": .dict(.scalar([.string, .number, .null]), names: nil)]),
    "mac_address": str,
    "mem_limit": numberOrString,
    "mem_reservation": intOrString,
    "mem_swappiness": intOrString,
    "memswap_limit": numberOrString,
    "network_mode": str,
    "models": .oneOf([listOfStrings, .dict(.any, names: .resourceName)]),
    "networks": .oneOf([
        listOfStrings,
        .dict(
            .oneOf([
                .scalar([.null]),
                obj([
                    "aliases": listOfStrings, "interface_name": str, "ipv4_address": str, "ipv6_address": str,
                    "link_local_ips": listOfStrings, "mac_address": str, "driver_opts": stringOrNumberDict,
                    "priority": number, "gw_priority": number,
                ]),
            ]), names: .resourceName),
    ]),
    "oom_kill_disable": boolOrString,
    "oom_score_adj": intOrString,
    "pid": .scalar([.string, .null]),
    "pids_limit": numberOrString,
    "platform": str,
    "ports": .list(
        .oneOf([
            number, str,
            obj([
                "name": str, "mode": str, "host_ip": str, "target": intOrString, "published": .scalar([.string, .int]),
                "protocol": str, "app_protocol": str,
            ]),
        ])),
    "pre_start": .list(serviceHook),
    "post_start": .list(serviceHook),
    "pre_stop": .list(serviceHook),
    "privileged": boolOrString,
    "profiles": listOfStrings,
    "pull_policy": str,
    "pull_refresh_after": str,
    "read_only": boolOrString,
    "restart": str,
    "runtime": str,
    "scale": intOrString,
    "security_opt": .list(str),
    "shm_size": numberOrString,
    "secrets": fileReferences,
    "sysctls": listOrDict,
    "stdin_open": boolOrString,
    "stop_grace_period": str,
    "stop_signal": str,
    "storage_opt": .dict(.any, names: nil),
    "tmpfs": stringOrList,
    "tty": boolOrString,
    "ulimits": ulimits,
    "use_api_socket": .scalar([.bool]),
    "user": str,
    "uts": str,
    "userns_mode": str,
    "volumes": .list(
        .oneOf([
            str,
            obj(
                [
                    "type": .enumOf(["bind", "volume", "tmpfs", "cluster", "npipe", "image"]),
                    "source": str, "target": str, "read_only": boolOrString, "consistency": str,
                    "bind": obj([
                        "propagation": str, "create_host_path": boolOrString,
                        "recursive": .enumOf(["enabled", "disabled", "writable", "readonly"]),
                        "selinux": .enumOf(["z", "Z"]),
                    ]),
                    "volume": obj(["labels": listOrDict, "nocopy": boolOrString, "subpath": str]),
                    "tmpfs": obj(["size": intOrString, "mode": numberOrString]),
                    "image": obj(["subpath": str]),
                ], required: ["type"]),
        ])),
    "volumes_from": .list(str),
    "working_dir": str,
])

private let external = Shape.oneOf([boolOrString, obj(["name": str])])

private let network = obj(
    [
        "name": str, "driver": str, "driver_opts": stringOrNumberDict,
        "ipam": obj([
            "driver": str,
            "config": .list(
                obj(["subnet": str, "ip_range": str, "gateway": str, "aux_addresses": .dict(str, names: nil)])),
            "options": .dict(str, names: nil),
        ]),
        "external": external, "internal": boolOrString, "enable_ipv4": boolOrString, "enable_ipv6": boolOrString,
        "attachable": boolOrString, "labels": listOrDict,
    ], nullable: true)

private let volume = obj(
    [
        "name": str, "driver": str, "driver_opts": stringOrNumberDict, "external": external, "labels": listOrDict,
    ], nullable: true)

private let secret = obj([
    "name": str, "environment": str, "file": str, "external": external, "labels": listOrDict,
    "driver": str, "driver_opts": stringOrNumberDict, "template_driver": str,
])

private let config = obj([
    "name": str, "content": str, "environment": str, "file": str, "external": external,
    "labels": listOrDict, "template_driver": str,
])

/// The shape of one service definition.
let serviceShape = service

/// The file's shape with service bodies left to `SchemaValidator.validateService` (which runs
/// per service, in parallel with the rest of the per-service work).
let composeFileShapeWithoutServiceBodies: Shape = obj([
    "version": str,
    "name": str,
    "include": .list(
        .oneOf([str, obj(["path": stringOrList, "env_file": stringOrList, "project_directory": str], x: false)])),
    "services": .dict(.any, names: .resourceName),
    "models": .dict(.any, names: .resourceName),
    "networks": .dict(network, names: .resourceName),
    "volumes": .dict(volume, names: .resourceName),
    "secrets": .dict(secret, names: .resourceName),
    "configs": .dict(config, names: .resourceName),
])

let composeFileShape: Shape = obj([
    "version": str,
    "name": str,
    "include": .list(
        .oneOf([str, obj(["path": stringOrList, "env_file": stringOrList, "project_directory": str], x: false)])),
    "services": .dict(service, names: .resourceName),
    "models": .dict(.any, names: .resourceName),
    "networks": .dict(network, names: .resourceName),
    "volumes": .dict(volume, names: .resourceName),
    "secrets": .dict(secret, names: .resourceName),
    "configs": .dict(config, names: .resourceName),
])

/// Checks a parsed compose file against `composeFileShape`. The key path is kept as a stack of
/// parts and only spelled out for an error.
struct SchemaValidator {
    enum Part {
        case key(String)
        case index(Int)
    }
    var stack: [Part] = []

    static func validate(_ root: Node, skippingServiceBodies: Bool = false) throws {
        var v = SchemaValidator()
        v.stack.reserveCapacity(16)
        try v.check(root, skippingServiceBodies ? composeFileShapeWithoutServiceBodies : composeFileShape)
    }

    /// Checks the body of `services.<name>`.
    static func validateService(_ node: Node, name: String) throws {
        var v = SchemaValidator()
        v.stack = [.key("services"), .key(name)]
        try v.check(node, serviceShape)
    }

    var path: String {
        var out = ""
        for part in stack {
            switch part {
            case .key(let k): out = joinPath(out, k)
            case .index(let i): out = indexPath(out, i)
            }
        }
        return out
    }

    private static func kind(of node: Node) -> Shape.Kinds? {
        switch node.scalarKind {
        case nil: return nil
        case .null?: return .null
        case .bool?: return .bool
        case .int?: return .int
        case .double?: return .number
        case .string?: return .string
        }
    }

    private static func matches(_ node: Node, _ kinds: Shape.Kinds) -> Bool {
        guard let k = kind(of: node) else { return false }
        if kinds.contains(k) { return true }
        if k == .int && kinds.contains(.number) { return true }
        return false
    }

    static func describe(_ shape: Shape) -> String {
        switch shape {
        case .any: return "anything"
        case .scalar(let kinds):
            let order: [(Shape.Kinds, String)] = [
                (.string, "a string"), (.int, "an integer"), (.number, "a number"), (.bool, "a boolean"),
                (.null, "null"),
            ]
            return order.filter { kinds.contains($0.0) }.map(\.1).joined(separator: " or ")
        case .enumOf(let values): return "one of " + values.joined(separator: ", ")
        case .list: return "a list"
        case .dict, .object: return "a mapping"
        case .oneOf(let shapes): return shapes.map(describe).joined(separator: " or ")
        }
    }

    private func typeError(_ node: Node, _ shape: Shape) -> ComposeError {
        ComposeError("must be \(Self.describe(shape)), not \(node.kindDescription)", at: node.mark, key: path)
    }

    private mutating func check(_ node: Node, _ shape: Shape) throws {
        if node.tag != nil && node.isReset { return }  // `!reset` removes whatever was there
        switch shape {
        case .any:
            return
        case .scalar(let kinds):
            guard Self.matches(node, kinds) else { throw typeError(node, shape) }
        case .enumOf(let values):
            guard node.isScalar, let text = node.text, values.contains(text), !node.isNull else {
                if node.isScalar && !node.isNull {
                    throw ComposeError(
                        "must be one of \(values.map { "\"\($0)\"" }.joined(separator: ", ")), not \"\(node.text ?? "")\"",
                        at: node.mark, key: path)
                }
                throw typeError(node, shape)
            }
        case .list(let item):
            guard case .sequence(let items) = node.value else { throw typeError(node, shape) }
            for i in items.indices {
                stack.append(.index(i))
                try check(items[i], item)
                stack.removeLast()
            }
        case .dict(let value, let names):
            guard case .mapping(let pairs) = node.value else { throw typeError(node, shape) }
            for p in pairs {
                let key = p.key.text ?? ""
                stack.append(.key(key))
                if names == .resourceName && !Self.isResourceName(key) {
                    throw ComposeError(
                        "invalid name \"\(key)\": only [a-zA-Z0-9._-] are allowed", at: p.key.mark, key: path)
                }
                try check(p.value, value)
                stack.removeLast()
            }
        case .object(let o):
            guard case .mapping(let pairs) = node.value else {
                if o.nullable && node.isNull { return }
                throw typeError(node, shape)
            }
            for p in pairs {
                let key = p.key.text ?? ""
                stack.append(.key(key))
                if let sub = o.properties[key] {
                    try check(p.value, sub)
                } else if !(o.allowExtensions && key.hasPrefix("x-")) {
                    throw ComposeError("unknown key \"\(key)\"", at: p.key.mark, key: path)
                }
                stack.removeLast()
            }
            for r in o.required where !pairs.contains(where: { $0.key.text == r }) {
                throw ComposeError("missing required key \"\(r)\"", at: node.mark, key: path)
            }
        case .oneOf(let shapes):
            // Pick the alternative for this node kind.
            for s in shapes where Self.accepts(node, s) {
                return try check(node, s)
            }
            throw typeError(node, shape)
        }
    }

    /// Whether `shape` is the alternative meant for `node`'s kind.
    private static func accepts(_ node: Node, _ shape: Shape) -> Bool {
        switch shape {
        case .any: return true
        case .scalar(let kinds): return matches(node, kinds)
        case .enumOf: return node.isScalar && !node.isNull
        case .list: return node.isSequence
        case .dict: return node.isMapping
        case .object(let o): return node.isMapping || (o.nullable && node.isNull)
        case .oneOf(let shapes): return shapes.contains { accepts(node, $0) }
        }
    }

    static func isResourceName(_ s: String) -> Bool {
        !s.isEmpty
            && s.utf8.allSatisfy { c in
                (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 46 || c == 95 || c == 45
            }
    }
}
