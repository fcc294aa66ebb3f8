import FoundationEssentials
import Support

/// Linux capabilities by name and Docker's rules for the sets a container gets.
public enum Capabilities {
    public struct Error: Swift.Error, CustomStringConvertible {
        public var description: String
    }

    /// Index = capability number (linux/capability.h).
    public static let names = [
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
        "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
        "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
        "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
        "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
        "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
    ]

    /// Docker's 14 defaults: CapEff 00000000a80425fb.
    public static let dockerDefaults = [
        "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
        "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
    ]

    /// "CAP_SYS_ADMIN", "sys_admin" and "SYS_ADMIN" all name capability 21.
    public static func number(_ name: String) -> Int? {
        var n = name.uppercased()
        if n.hasPrefix("CAP_") { n.removeFirst(4) }
        return names.firstIndex(of: n)
    }

    public static func name(_ number: Int) -> String {
        number < names.count ? "CAP_" + names[number] : "CAP_\(number)"
    }

    /// The highest capability this kernel knows.
    public static let lastCap: Int = {
        if let text = try? String(contentsOfFile: "/proc/sys/kernel/cap_last_cap", encoding: .utf8),
            let n = Int(text.trimmingWhitespaceAndNewlines())
        {
            return n
        }
        return names.count - 1
    }()

    /// The bounding set berth itself runs with: a container can never hold more.
    public static let hostBounding: UInt64 = {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("CapBnd:") {
            return UInt64(line.dropFirst(7).trimmingWhitespace(), radix: 16) ?? 0
        }
        return 0
    }()

    static func mask(_ list: [String]) throws -> UInt64 {
        var m: UInt64 = 0
        for name in list {
            guard let n = number(name) else { throw Error(description: "unknown capability \"\(name)\"") }
            m |= 1 << UInt64(n)
        }
        return m
    }

    /// Docker's rule: start from the defaults (or everything for privileged), add cap_add,
    /// drop cap_drop; "ALL" in cap_add means every capability, in cap_drop the empty set.
    /// Never more than the host's bounding set.
    public static func effectiveSet(privileged: Bool, add: [String], drop: [String]) throws -> UInt64 {
        let all = lastCap >= 63 ? UInt64.max : (UInt64(1) << UInt64(lastCap + 1)) - 1
        var set: UInt64 = privileged ? all : try mask(dockerDefaults)
        let adds = add.filter { $0.uppercased() != "ALL" }
        let drops = drop.filter { $0.uppercased() != "ALL" }
        let addMask = try mask(adds)
        let dropMask = try mask(drops)
        if drop.contains(where: { $0.uppercased() == "ALL" }) { set = 0 }
        if add.contains(where: { $0.uppercased() == "ALL" }) { set = all }
        set |= addMask
        set &= ~dropMask
        if drop.contains(where: { $0.uppercased() == "ALL" }) { set = addMask & ~dropMask }
        return set & all & hostBounding
    }

    public static func names(of set: UInt64) -> [String] {
        (0..<64).filter { set & (1 << UInt64($0)) != 0 }.map { name($0) }
    }
}
