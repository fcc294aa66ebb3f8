import CRuntime
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Which device nodes a container may create (mknod) and open, enforced by its cgroup: without
/// this fence a process with CAP_MKNOD (one of Docker's default capabilities) could make a node
/// for any host device (`mknod /tmp/ser c 4 64`) and read or write it.
///
/// The list is an allow list, as Docker's: everything not granted is refused with EPERM.
/// - cgroup v1: `devices.deny` "a", then one `devices.allow` line per rule.
/// - cgroup v2: no control file exists; a BPF_PROG_TYPE_CGROUP_DEVICE program built from the rules
///   (Sources/CRuntime/devices.c) is attached to the container's group directory.
/// Privileged containers get no fence, as in Docker.
public enum DeviceRules {
    /// One allow rule, written as cgroup v1 writes it: "c 1:3 rwm", "c 136:* rwm", "b *:* m".
    public struct Rule: Equatable, Hashable, Sendable, CustomStringConvertible {
        public enum Kind: Character, Sendable {
            case char = "c"
            case block = "b"
            /// Character and block devices alike.
            case all = "a"
        }

        /// What the rule grants; the bit values are the kernel's BPF_DEVCG_ACC_*.
        public struct Access: OptionSet, Hashable, Sendable {
            public let rawValue: UInt32
            public init(rawValue: UInt32) { self.rawValue = rawValue }
            public static let mknod = Access(rawValue: UInt32(BERTH_DEVICE_MKNOD))
            public static let read = Access(rawValue: UInt32(BERTH_DEVICE_READ))
            public static let write = Access(rawValue: UInt32(BERTH_DEVICE_WRITE))
            public static let rwm: Access = [.read, .write, .mknod]
        }

        public var kind: Kind
        /// nil matches any major (or minor) number, written "*".
        public var major: Int32?
        public var minor: Int32?
        public var access: Access

        public init(_ kind: Kind, major: Int32?, minor: Int32?, access: Access) {
            self.kind = kind
            self.major = major
            self.minor = minor
            self.access = access
        }

        /// The v1 syntax: "TYPE MAJOR:MINOR ACCESS", `*` for any number, `a` alone for everything
        /// (as `--device-cgroup-rule` and compose `device_cgroup_rules` write it). nil if malformed.
        public init?(parsing text: String) {
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first, first.count == 1, let kind = Kind(rawValue: first.first!) else {
                return nil
            }
            if fields.count == 1 {
                guard kind == .all else { return nil }
                self.init(.all, major: nil, minor: nil, access: .rwm)
                return
            }
            guard fields.count == 3 else { return nil }
            let numbers = fields[1].split(separator: ":", omittingEmptySubsequences: false)
            guard numbers.count == 2 else { return nil }
            func number(_ s: Substring) -> Int32?? {
                if s == "*" { return .some(nil) }
                guard let n = Int32(s), n >= 0 else { return nil }
                return .some(n)
            }
            guard let major = number(numbers[0]), let minor = number(numbers[1]) else { return nil }
            var access: Access = []
            for c in fields[2] {
                switch c {
                case "r": access.insert(.read)
                case "w": access.insert(.write)
                case "m": access.insert(.mknod)
                default: return nil
                }
            }
            guard !access.isEmpty else { return nil }
            self.init(kind, major: major, minor: minor, access: access)
        }

        public var description: String {
            var letters = ""
            if access.contains(.read) { letters += "r" }
            if access.contains(.write) { letters += "w" }
            if access.contains(.mknod) { letters += "m" }
            return "\(kind.rawValue) \(major.map(String.init) ?? "*"):\(minor.map(String.init) ?? "*") \(letters)"
        }

        /// The flat struct devices.c reads.
        var cRule: berth_device_rule {
            berth_device_rule(
                type: CChar(kind.rawValue.asciiValue!), major: major ?? -1, minor: minor ?? -1,
                access: access.rawValue)
        }
    }

    /// What Docker lets a default container use: Docker's spec allows 1:3, 1:5, 1:8, 1:9, 5:0 and
    /// 5:1, and runc appends its built-in list (the same devices plus 1:7, pseudo-terminals,
    /// tun/tap and mknod of anything), so this is the union both apply.
    public static let dockerDefaults: [Rule] = [
        // mknod of any node, as Docker allows: opening the node still needs one of the rules below.
        Rule(.char, major: nil, minor: nil, access: .mknod),
        Rule(.block, major: nil, minor: nil, access: .mknod),
        Rule(.char, major: 1, minor: 3, access: .rwm),  // /dev/null
        Rule(.char, major: 1, minor: 5, access: .rwm),  // /dev/zero
        Rule(.char, major: 1, minor: 7, access: .rwm),  // /dev/full
        Rule(.char, major: 1, minor: 8, access: .rwm),  // /dev/random
        Rule(.char, major: 1, minor: 9, access: .rwm),  // /dev/urandom
        Rule(.char, major: 5, minor: 0, access: .rwm),  // /dev/tty
        Rule(.char, major: 5, minor: 1, access: .rwm),  // /dev/console
        Rule(.char, major: 5, minor: 2, access: .rwm),  // /dev/ptmx
        Rule(.char, major: 136, minor: nil, access: .rwm),  // /dev/pts/*
        // runc dropped /dev/net/tun in 1.2.0 and restored it in 1.2.4: users rely on it.
        Rule(.char, major: 10, minor: 200, access: .rwm),  // /dev/net/tun
    ]

    /// Fences `cgroup` to Docker's default devices plus `extra` (`--device`, compose `devices:`);
    /// nothing for a privileged container. The single entry point for both cgroup versions.
    public static func apply(to cgroup: Cgroup, privileged: Bool, extra: [Rule] = [], container name: String) throws {
        guard !privileged else { return }
        let rules = dockerDefaults + extra.filter { !dockerDefaults.contains($0) }
        switch cgroup.layout {
        case .v1(let hierarchies):
            guard let dir = devicesDirectory(cgroup, hierarchies) else { return }
            try writeV1(rules, dir: dir, container: name)
        case .v2:
            for dir in cgroup.paths { try attachV2(rules, dir: dir, container: name) }
        }
    }

    /// The group's directory in the v1 hierarchy carrying the devices controller, if the host
    /// mounts one (without it v1 has no way to fence devices, as before).
    private static func devicesDirectory(_ cgroup: Cgroup, _ hierarchies: [CgroupLayout.Hierarchy]) -> String? {
        guard let dir = zip(hierarchies, cgroup.paths).first(where: { $0.0.controllers.contains("devices") })?.1,
            access(dir + "/devices.deny", W_OK) == 0
        else { return nil }
        return dir
    }

    /// Deny all, then allow each rule. v1 reads "a" in devices.allow as "allow everything" (it drops
    /// the numbers), so an `.all` rule is written as the same rule for character and block devices.
    static func writeV1(_ rules: [Rule], dir: String, container name: String) throws {
        try write("a", to: dir + "/devices.deny", container: name)
        for rule in rules {
            let kinds: [Rule.Kind] = rule.kind == .all ? [.char, .block] : [rule.kind]
            for kind in kinds {
                var line = rule
                line.kind = kind
                try write(line.description, to: dir + "/devices.allow", container: name)
            }
        }
    }

    /// Loads the rules as a BPF program and attaches it to `dir`, replacing an earlier one.
    static func attachV2(_ rules: [Rule], dir: String, container name: String) throws {
        let cRules = rules.map(\.cRule)
        let logSize = 16 * 1024
        let (rc, log): (Int32, String) = withUnsafeTemporaryAllocation(of: CChar.self, capacity: logSize) { log in
            let rc = cRules.withUnsafeBufferPointer {
                berth_device_fence_attach(dir, $0.baseAddress, $0.count, log.baseAddress, logSize)
            }
            return (rc, rc == 0 ? "" : String(cString: log.baseAddress!))
        }
        guard rc == 0 else {
            var detail = "cannot attach the device program: " + ProcFS.errnoText(-rc)
            if !log.isEmpty { detail += "; verifier: " + log.split(separator: "\n").suffix(5).joined(separator: " | ") }
            throw Container.Error(container: name, step: "cgroup \(dir) devices", detail: detail)
        }
    }

    /// One write(2) per line, as the devices controller parses one rule per write.
    private static func write(_ value: String, to path: String, container name: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw Container.Error(container: name, step: "cgroup \(path)", detail: ProcFS.errnoText(errno))
        }
        defer { close(fd) }
        guard Glibc.write(fd, value, value.utf8.count) == value.utf8.count else {
            throw Container.Error(container: name, step: "cgroup \(path) \(value)", detail: ProcFS.errnoText(errno))
        }
    }
}
