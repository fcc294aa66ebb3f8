import CNetlink
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// berth's packet filtering and NAT, all in one nftables table of its own (`ip berth`), changed
/// through the `nft` tool: one `nft -f -` transaction per change (atomic: no packet sees half a
/// change), never anything per packet. Every change runs under an flock on a host-wide lock
/// file, since several berth processes (several roots) may change the table at once.
///
/// The table:
///
///     set bridges          every berth bridge
///     map from-bridge      bridge -> jump from-BRIDGE      (forward: traffic leaving a bridge)
///     map to-bridge        bridge -> jump to-BRIDGE        (forward: traffic into a bridge)
///     chain forward        filter/forward: iifname vmap @from-bridge; oifname vmap @to-bridge
///     chain postrouting    nat/postrouting: per network `ip saddr SUBNET oifname != BRIDGE
///                          masquerade comment "BRIDGE"`
///     chain prerouting     nat/prerouting: to a local address, not from a berth bridge: jump ports
///     chain output         nat/output: to a local address but not 127.0.0.0/8: jump ports
///     chain ports          per container: jump ports-ID (ID: the first 12 characters of its id)
///     chain ports-ID       its DNAT rules
///
/// A network is its two chains, its map and set elements and its masquerade rule; a container's
/// ports are its chain and its jump. Removing the last of them deletes the table, leaving the
/// ruleset as it was before berth. Loopback (127.0.0.0/8) is the userland proxy's
/// (PublishedPorts): the kernel does not route DNATed loopback traffic out of the host.
///
/// An accept here ends only this table's chain: a drop in another table (an `iptables -P
/// FORWARD DROP`) still drops berth's traffic, as nftables evaluates every base chain of a hook.
public enum Firewall {
    /// An nft step that failed: which, and what nft said.
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public var step: String
        public var message: String

        public var description: String { "firewall: \(step): \(message)" }
    }

    public static let table = "ip berth"
    public static let lockPath = "/run/berth-firewall.lock"
    static let baseChains: Set<String> = ["forward", "postrouting", "prerouting", "output", "ports"]

    /// Forwarding and NAT for a bridge's network: masquerade of what leaves the host from
    /// `subnet` (unless internal), isolation from every other berth bridge, and for an internal
    /// network nothing in or out of the bridge but to itself. Enables IPv4 forwarding (as Docker
    /// does, and leaves it on). Adding a network again replaces its rules.
    public static func addNetwork(bridge: String, subnet: IPv4Subnet, internal isInternal: Bool) throws {
        try checkName(bridge, "bridge name")
        try enableForwarding()
        try locked { existing in
            let from = "from-\(bridge)"
            let to = "to-\(bridge)"
            var script = base
            for chain in [from, to] { script += "add chain \(table) \(chain)\nflush chain \(table) \(chain)\n" }
            if isInternal {
                script += """
                    add rule \(table) \(from) oifname "\(bridge)" accept
                    add rule \(table) \(from) drop
                    add rule \(table) \(to) iifname "\(bridge)" accept
                    add rule \(table) \(to) drop

                    """
            } else {
                // Within the bridge (routed, or bridged through br_netfilter) and out of the
                // host, but to no other berth bridge; into it, answers and published ports only.
                script += """
                    add rule \(table) \(from) oifname "\(bridge)" accept
                    add rule \(table) \(from) oifname @bridges drop
                    add rule \(table) \(from) accept
                    add rule \(table) \(to) ct state established,related accept
                    add rule \(table) \(to) ct status dnat accept
                    add rule \(table) \(to) drop

                    """
            }
            script += """
                add element \(table) bridges { "\(bridge)" }
                add element \(table) from-bridge { "\(bridge)" : jump \(from) }
                add element \(table) to-bridge { "\(bridge)" : jump \(to) }

                """
            for handle in existing?.handles(in: "postrouting", where: { $0.contains("comment \"\(bridge)\"") }) ?? [] {
                script += "delete rule \(table) postrouting handle \(handle)\n"
            }
            if !isInternal {
                script += """
                    add rule \(table) postrouting ip saddr \(subnet) oifname != "\(bridge)" masquerade comment "\(bridge)"

                    """
            }
            try nft(script, step: "add network \(bridge)")
        }
    }

    /// Removes what `addNetwork` added for `bridge`, and the table once nothing else is in it.
    /// Removing a network that is not there is not an error.
    public static func removeNetwork(bridge: String) throws {
        try checkName(bridge, "bridge name")
        try locked { existing in
            guard let existing else { return }
            let chains = ["from-\(bridge)", "to-\(bridge)"]
            var script = ""
            for handle in existing.handles(in: "postrouting", where: { $0.contains("comment \"\(bridge)\"") }) {
                script += "delete rule \(table) postrouting handle \(handle)\n"
            }
            if existing.chains.contains(chains[0]) || existing.chains.contains(chains[1]) {
                // Added first, so that each delete finds what it deletes whatever a crash left.
                script += """
                    add chain \(table) \(chains[0])
                    add chain \(table) \(chains[1])
                    add element \(table) bridges { "\(bridge)" }
                    add element \(table) from-bridge { "\(bridge)" : jump \(chains[0]) }
                    add element \(table) to-bridge { "\(bridge)" : jump \(chains[1]) }
                    delete element \(table) bridges { "\(bridge)" }
                    delete element \(table) from-bridge { "\(bridge)" }
                    delete element \(table) to-bridge { "\(bridge)" }
                    delete chain \(table) \(chains[0])
                    delete chain \(table) \(chains[1])

                    """
            }
            try nft(script + deleteIfEmpty(existing, removing: chains), step: "remove network \(bridge)")
        }
    }

    /// DNAT of each mapping's host port to `containerAddress`: for traffic from other hosts and
    /// from this host to its own non-loopback addresses (on `hostIP` only, when a mapping has
    /// one). `mappings` are the bound ones (`BoundPorts.mappings`: ephemeral ports and ranges
    /// resolved). Adding an owner's ports again replaces them.
    public static func addPorts(owner: String, mappings: [PortMapping], containerAddress: IPv4Address) throws {
        let chain = try portsChain(owner)
        try locked { existing in
            var script = base + "add chain \(table) \(chain)\nflush chain \(table) \(chain)\n"
            for mapping in mappings {
                guard mapping.proto == "tcp" || mapping.proto == "udp" else {
                    throw Error(step: "add ports of \(owner)", message: "unsupported protocol \(mapping.proto)")
                }
                // The mappings as bound (BoundPorts.mappings): a real port, not 0 or a range.
                guard mapping.hostPort != 0, mapping.hostPortEnd == nil else {
                    throw Error(step: "add ports of \(owner)", message: "port not bound yet: \(mapping.spec)")
                }
                let address = mapping.hostIP.map { "ip daddr \($0) " } ?? ""
                script += """
                    add rule \(table) \(chain) \(address)\(mapping.proto) dport \(mapping.hostPort) \
                    dnat to \(containerAddress):\(mapping.containerPort)

                    """
            }
            if existing?.handles(in: "ports", where: { jumps($0, to: chain) }).isEmpty ?? true {
                script += "add rule \(table) ports jump \(chain)\n"
            }
            try nft(script, step: "add ports of \(owner)")
        }
    }

    /// Removes the DNAT rules `addPorts` added for `owner` (none there: not an error), and the
    /// table once nothing else is in it.
    public static func removePorts(owner: String) throws {
        let chain = try portsChain(owner)
        try locked { existing in
            guard let existing else { return }
            var script = ""
            for handle in existing.handles(in: "ports", where: { jumps($0, to: chain) }) {
                script += "delete rule \(table) ports handle \(handle)\n"
            }
            if existing.chains.contains(chain) { script += "delete chain \(table) \(chain)\n" }
            try nft(script + deleteIfEmpty(existing, removing: [chain]), step: "remove ports of \(owner)")
        }
    }

    // MARK: - The table

    /// The table's fixed part, declared again before every change (`add` of what exists is a
    /// no-op) and the base chains' rules rewritten (a flush and the same rules, in the same
    /// transaction), so that a change never depends on what an earlier one left.
    static let base = """
        add table \(table)
        add set \(table) bridges { type ifname; }
        add map \(table) from-bridge { type ifname : verdict; }
        add map \(table) to-bridge { type ifname : verdict; }
        add chain \(table) forward { type filter hook forward priority filter; policy accept; }
        add chain \(table) postrouting { type nat hook postrouting priority srcnat; policy accept; }
        add chain \(table) prerouting { type nat hook prerouting priority dstnat; policy accept; }
        add chain \(table) output { type nat hook output priority -100; policy accept; }
        add chain \(table) ports
        flush chain \(table) forward
        add rule \(table) forward iifname vmap @from-bridge
        add rule \(table) forward oifname vmap @to-bridge
        flush chain \(table) prerouting
        add rule \(table) prerouting iifname != @bridges fib daddr type local jump ports
        flush chain \(table) output
        add rule \(table) output ip daddr != 127.0.0.0/8 fib daddr type local jump ports

        """

    /// `delete table` when, after a change removing `chains`, only the base chains remain: no
    /// network and no owner is left (each has chains of its own).
    static func deleteIfEmpty(_ existing: Listing, removing chains: [String]) -> String {
        existing.chains.subtracting(chains).isSubset(of: baseChains) ? "delete table \(table)\n" : ""
    }

    static func jumps(_ rule: String, to chain: String) -> Bool {
        let words = rule.split(separator: " ")
        return zip(words, words.dropFirst()).contains { $0 == "jump" && $1 == chain }
    }

    static func portsChain(_ owner: String) throws -> String {
        try checkName(owner, "container id")
        return "ports-\(owner.prefix(12))"
    }

    /// Names go into nft's script as they are: letters, digits, `-`, `_` and `.` only.
    static func checkName(_ name: String, _ what: String) throws {
        guard !name.isEmpty, name.count <= 64,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") })
        else { throw Error(step: "check \(what)", message: "not a valid \(what): \(name)") }
    }

    /// `nft -a list table ip berth`, read: the chains and each chain's rules with their handles.
    struct Listing {
        var chains: Set<String> = []
        var rules: [String: [(text: String, handle: Int)]] = [:]

        init(_ text: String) {
            var chain: String?
            for raw in text.split(separator: "\n") {
                let line = raw.drop { $0 == " " || $0 == "\t" }
                if line.hasPrefix("chain ") {
                    let name = String(line.dropFirst(6).prefix { $0 != " " })
                    chains.insert(name)
                    chain = name
                } else if line.hasPrefix("set ") || line.hasPrefix("map ") {
                    chain = nil
                } else if let chain, let marker = line.lastIndex(of: "#"), line[marker...].hasPrefix("# handle "),
                    let handle = Int(line[marker...].dropFirst(9))
                {
                    rules[chain, default: []].append((String(line[..<marker]).trimmingWhitespace(), handle))
                }
            }
        }

        func handles(in chain: String, where matches: (String) -> Bool) -> [Int] {
            (rules[chain] ?? []).filter { matches($0.text) }.map(\.handle)
        }
    }

    /// Runs `body` under the host-wide lock, with the table as it is (nil when there is none).
    static func locked(_ body: (Listing?) throws -> Void) throws {
        guard let lock = HeldLock(path: lockPath, exclusive: true) else {
            throw Error(step: "lock \(lockPath)", message: PublishedPorts.errorText(errno))
        }
        defer { lock.keep() }
        let listing = try run(["-a", "list", "table", "ip", "berth"], input: "")
        if listing.status != 0 {
            // The one failure that means "no table yet".
            guard listing.stderr.contains("No such file or directory") else {
                throw Error(step: "list table \(table)", message: oneLine(listing.stderr))
            }
            return try body(nil)
        }
        try body(Listing(listing.stdout))
    }

    static func nft(_ script: String, step: String) throws {
        guard !script.isEmpty else { return }
        let result = try run(["-f", "-"], input: script)
        guard result.status == 0 else { throw Error(step: step, message: oneLine(result.stderr)) }
    }

    static func oneLine(_ text: String) -> String {
        text.split(separator: "\n").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty && $0 != "^" }
            .joined(separator: "; ")
    }

    /// /proc/sys/net/ipv4/ip_forward = 1 unless it is already (Docker's default too).
    static func enableForwarding() throws {
        let path = "/proc/sys/net/ipv4/ip_forward"
        if Files.readText(path)?.hasPrefix("1") == true { return }
        guard let fd = FileDescriptor(taking: open(path, O_WRONLY | O_CLOEXEC)), write(fd.rawValue, "1\n", 2) == 2
        else {
            throw Error(step: "enable IPv4 forwarding", message: "\(path): \(PublishedPorts.errorText(errno))")
        }
    }

    // MARK: - Running nft

    static let nftPaths = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"]

    /// Runs nft with `input` on its stdin and collects its output.
    static func run(_ arguments: [String], input: String) throws -> ChildProcess.Output {
        guard let path = nftPaths.first(where: { access($0, X_OK) == 0 }) else {
            throw Error(step: "find nft", message: "nft not found in \(nftPaths.joined(separator: ", "))")
        }
        do {
            return try ChildProcess.run(
                path, arguments, input: input, environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
        } catch let failure as ChildProcess.Failure {
            throw Error(step: "run nft", message: failure.message)
        }
    }
}
