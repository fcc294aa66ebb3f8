import Foundation
import Testing

@testable import Network

/// berth's nftables table, checked by listing it with `nft`. Each test leaves the ruleset (and
/// IPv4 forwarding) exactly as it found them; the tests run one at a time, since each compares
/// the whole ruleset. Names are unique per run, so other berth processes' rules are left alone.
/// Root.
@Suite(.serialized) struct FirewallTests {
    static func nft(_ arguments: String...) throws -> String {
        let result = try Firewall.run(arguments, input: "")
        return result.status == 0 ? result.stdout : ""
    }

    static var ruleset: String { (try? nft("list", "ruleset")) ?? "?" }
    static var table: String { (try? nft("list", "table", "ip", "berth")) ?? "" }

    static func unique(_ prefix: String) -> String {
        "\(prefix)\(String(UInt64.random(in: 0..<UInt64.max), radix: 16).prefix(10))"
    }

    /// Restores ip_forward as the test found it (Firewall leaves it on, as Docker does).
    struct Forwarding {
        let before = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8)

        func restore() {
            if let before {
                try? before.write(toFile: "/proc/sys/net/ipv4/ip_forward", atomically: false, encoding: .utf8)
            }
        }
    }

    @Test func aNetworkAndPortsAreAddedAndRemovedWithoutTrace() throws {
        let before = Self.ruleset
        let forwarding = Forwarding()
        let bridge = Self.unique("br-")
        let owner = Self.unique("c") + "0123456789abcdef"
        defer {
            try? Firewall.removePorts(owner: owner)
            try? Firewall.removeNetwork(bridge: bridge)
            forwarding.restore()
        }
        try Firewall.addNetwork(bridge: bridge, subnet: IPv4Subnet("10.253.7.0/24")!, internal: false)
        #expect((try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8)) == "1\n")
        let ports = try PortMapping.parse("8080:80") + PortMapping.parse("127.0.0.1:5353:53/udp")
        try Firewall.addPorts(owner: owner, mappings: ports, containerAddress: IPv4Address(10, 253, 7, 2))

        let table = Self.table
        let chain = "ports-\(owner.prefix(12))"
        for expected in [
            "ip saddr 10.253.7.0/24 oifname != \"\(bridge)\" masquerade comment \"\(bridge)\"",
            "iifname vmap @from-bridge", "oifname vmap @to-bridge",
            "iifname != @bridges fib daddr type local jump ports",
            "ip daddr != 127.0.0.0/8 fib daddr type local jump ports",
            "chain from-\(bridge) {", "oifname \"\(bridge)\" accept", "oifname @bridges drop",
            "chain to-\(bridge) {", "ct state established,related accept", "ct status dnat accept",
            "\"\(bridge)\" : jump from-\(bridge)", "\"\(bridge)\" : jump to-\(bridge)",
            "jump \(chain)", "chain \(chain) {", "tcp dport 8080 dnat to 10.253.7.2:80",
            "ip daddr 127.0.0.1 udp dport 5353 dnat to 10.253.7.2:53",
        ] {
            #expect(table.contains(expected), "missing: \(expected)\n\(table)")
        }

        try Firewall.removePorts(owner: owner)
        #expect(!Self.table.contains(chain))
        try Firewall.removeNetwork(bridge: bridge)
        #expect(Self.ruleset == before, "the ruleset is not as it was")
    }

    @Test func addingTwiceDoesNotDuplicateAndRemovingTwiceIsFine() throws {
        let before = Self.ruleset
        let forwarding = Forwarding()
        let bridge = Self.unique("br-")
        let owner = Self.unique("d") + "00000000"
        defer {
            try? Firewall.removePorts(owner: owner)
            try? Firewall.removeNetwork(bridge: bridge)
            forwarding.restore()
        }
        let subnet = IPv4Subnet("10.253.8.0/24")!
        let mappings = try PortMapping.parse("9090:90")
        for _ in 0..<2 {
            try Firewall.addNetwork(bridge: bridge, subnet: subnet, internal: false)
            try Firewall.addPorts(owner: owner, mappings: mappings, containerAddress: IPv4Address(10, 253, 8, 2))
        }
        let table = Self.table
        func count(_ text: String) -> Int { table.components(separatedBy: text).count - 1 }
        #expect(count("masquerade comment \"\(bridge)\"") == 1)
        #expect(count("jump ports-\(owner.prefix(12))") == 1)
        #expect(count("dnat to 10.253.8.2:90") == 1)
        #expect(count("oifname @bridges drop") == 1)
        #expect(count("iifname vmap @from-bridge") == 1)

        // Replaced, not added to: other ports for the same owner.
        try Firewall.addPorts(
            owner: owner, mappings: try PortMapping.parse("9191:91"), containerAddress: IPv4Address(10, 253, 8, 2))
        #expect(!Self.table.contains("dnat to 10.253.8.2:90") && Self.table.contains("dnat to 10.253.8.2:91"))

        for _ in 0..<2 {
            try Firewall.removePorts(owner: owner)
            try Firewall.removeNetwork(bridge: bridge)
        }
        #expect(Self.ruleset == before)
    }

    @Test func anInternalNetworkIsClosedAndNotMasqueraded() throws {
        let before = Self.ruleset
        let forwarding = Forwarding()
        let bridge = Self.unique("br-")
        defer {
            try? Firewall.removeNetwork(bridge: bridge)
            forwarding.restore()
        }
        try Firewall.addNetwork(bridge: bridge, subnet: IPv4Subnet("10.253.9.0/24")!, internal: true)
        let table = Self.table
        #expect(!table.contains("masquerade"))
        #expect(table.contains("iifname \"\(bridge)\" accept"))
        #expect(table.contains("oifname \"\(bridge)\" accept"))
        #expect(!table.contains("ct status dnat accept"), "nothing comes in, published or not")
        try Firewall.removeNetwork(bridge: bridge)
        #expect(Self.ruleset == before)
    }

    /// Two networks: removing one keeps the other's rules and the table; removing both, nothing.
    @Test func theTableGoesWithItsLastNetwork() throws {
        let before = Self.ruleset
        let forwarding = Forwarding()
        let front = Self.unique("br-")
        let back = Self.unique("br-")
        defer {
            try? Firewall.removeNetwork(bridge: front)
            try? Firewall.removeNetwork(bridge: back)
            forwarding.restore()
        }
        try Firewall.addNetwork(bridge: front, subnet: IPv4Subnet("10.253.10.0/24")!, internal: false)
        try Firewall.addNetwork(bridge: back, subnet: IPv4Subnet("10.253.11.0/24")!, internal: false)
        try Firewall.removeNetwork(bridge: front)
        let table = Self.table
        #expect(!table.contains(front))
        #expect(table.contains("chain from-\(back) {") && table.contains("comment \"\(back)\""))
        try Firewall.removeNetwork(bridge: back)
        #expect(Self.ruleset == before)
    }

    @Test func badNamesAreRefusedBeforeNftSeesThem() {
        #expect(throws: Firewall.Error(step: "check bridge name", message: "not a valid bridge name: br x; flush")) {
            try Firewall.addNetwork(bridge: "br x; flush", subnet: IPv4Subnet("10.253.12.0/24")!, internal: false)
        }
        #expect(throws: Firewall.Error(step: "check container id", message: "not a valid container id: a\"b")) {
            try Firewall.removePorts(owner: "a\"b")
        }
    }
}
