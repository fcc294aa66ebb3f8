import CNetlink
import Foundation
import Testing

@testable import Network

/// berth's nftables table, checked by listing it with `nft`, in network namespaces of the tests'
/// own (Isolated, and the Lab below): each test sees only its rules and leaves the ruleset as it
/// found it. Root.
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

    /// A network namespace of the test's own, and a way to run code in it: nft and the
    /// ip_forward sysctl follow the calling thread's namespace, so a test there sees its rules
    /// alone (other suites make networks, and so rules, at the same time) and the machine's
    /// ruleset is never touched. Each call runs on a thread of its own that enters it.
    final class Isolated {
        let namespace = try! NetlinkTests.Namespace()

        final class Box<T>: @unchecked Sendable {
            var body: () throws -> T
            var result: Result<T, any Swift.Error>?
            init(_ body: @escaping () throws -> T) { self.body = body }
        }

        func run<T>(_ body: @escaping () throws -> T) throws -> T {
            let box = Box(body)
            let done = DispatchSemaphore(value: 0)
            let fd = namespace.fd
            let thread = Thread {
                defer { done.signal() }
                // The thread ends in the namespace; it is never used for anything else.
                guard berthTestSetns(fd, 0x4000_0000) == 0 else {  // CLONE_NEWNET
                    box.result = .failure(Netlink.Error(operation: "setns", errno: errno))
                    return
                }
                box.result = Result { try box.body() }
            }
            thread.start()
            done.wait()
            return try box.result!.get()
        }

        var ruleset: String { (try? run { try FirewallTests.nft("list", "ruleset") }) ?? "?" }
        var table: String { (try? run { try FirewallTests.nft("list", "table", "ip", "berth") }) ?? "" }
    }

    @Test func aNetworkAndPortsAreAddedAndRemovedWithoutTrace() throws {
        let ns = Isolated()
        let before = ns.ruleset
        let bridge = Self.unique("br-")
        let owner = Self.unique("c") + "0123456789abcdef"
        try ns.run { try Firewall.addNetwork(bridge: bridge, subnet: IPv4Subnet("10.253.7.0/24")!, internal: false) }
        let forwarding = try ns.run { try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8) }
        #expect(forwarding == "1\n")
        let ports = try PortMapping.parse("8080:80") + PortMapping.parse("127.0.0.1:5353:53/udp")
        try ns.run {
            try Firewall.addPorts(owner: owner, mappings: ports, containerAddress: IPv4Address(10, 253, 7, 2))
        }

        let table = ns.table
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

        try ns.run { try Firewall.removePorts(owner: owner) }
        #expect(!ns.table.contains(chain))
        try ns.run { try Firewall.removeNetwork(bridge: bridge) }
        #expect(ns.ruleset == before, "the ruleset is not as it was")
    }

    @Test func addingTwiceDoesNotDuplicateAndRemovingTwiceIsFine() throws {
        let ns = Isolated()
        let before = ns.ruleset
        let bridge = Self.unique("br-")
        let owner = Self.unique("d") + "00000000"
        let subnet = IPv4Subnet("10.253.8.0/24")!
        let mappings = try PortMapping.parse("9090:90")
        for _ in 0..<2 {
            try ns.run {
                try Firewall.addNetwork(bridge: bridge, subnet: subnet, internal: false)
                try Firewall.addPorts(owner: owner, mappings: mappings, containerAddress: IPv4Address(10, 253, 8, 2))
            }
        }
        let table = ns.table
        func count(_ text: String) -> Int { table.components(separatedBy: text).count - 1 }
        #expect(count("masquerade comment \"\(bridge)\"") == 1)
        #expect(count("jump ports-\(owner.prefix(12))") == 1)
        #expect(count("dnat to 10.253.8.2:90") == 1)
        #expect(count("oifname @bridges drop") == 1)
        #expect(count("iifname vmap @from-bridge") == 1)

        // Replaced, not added to: other ports for the same owner.
        let other = try PortMapping.parse("9191:91")
        try ns.run {
            try Firewall.addPorts(owner: owner, mappings: other, containerAddress: IPv4Address(10, 253, 8, 2))
        }
        let replaced = ns.table
        #expect(!replaced.contains("dnat to 10.253.8.2:90") && replaced.contains("dnat to 10.253.8.2:91"))

        for _ in 0..<2 {
            try ns.run {
                try Firewall.removePorts(owner: owner)
                try Firewall.removeNetwork(bridge: bridge)
            }
        }
        #expect(ns.ruleset == before)
    }

    @Test func anInternalNetworkIsClosedAndNotMasqueraded() throws {
        let ns = Isolated()
        let before = ns.ruleset
        let bridge = Self.unique("br-")
        try ns.run { try Firewall.addNetwork(bridge: bridge, subnet: IPv4Subnet("10.253.9.0/24")!, internal: true) }
        let table = ns.table
        #expect(!table.contains("masquerade"))
        #expect(table.contains("iifname \"\(bridge)\" accept"))
        #expect(table.contains("oifname \"\(bridge)\" accept"))
        #expect(!table.contains("ct status dnat accept"), "nothing comes in, published or not")
        try ns.run { try Firewall.removeNetwork(bridge: bridge) }
        #expect(ns.ruleset == before)
    }

    /// Two networks: removing one keeps the other's rules and the table; removing both, nothing.
    @Test func theTableGoesWithItsLastNetwork() throws {
        let ns = Isolated()
        let before = ns.ruleset
        let front = Self.unique("br-")
        let back = Self.unique("br-")
        try ns.run {
            try Firewall.addNetwork(bridge: front, subnet: IPv4Subnet("10.253.10.0/24")!, internal: false)
            try Firewall.addNetwork(bridge: back, subnet: IPv4Subnet("10.253.11.0/24")!, internal: false)
            try Firewall.removeNetwork(bridge: front)
        }
        let table = ns.table
        #expect(!table.contains(front))
        #expect(table.contains("chain from-\(back) {") && table.contains("comment \"\(back)\""))
        try ns.run { try Firewall.removeNetwork(bridge: back) }
        #expect(ns.ruleset == before)
    }

    @Test func badNamesAreRefusedBeforeNftSeesThem() {
        #expect(throws: Firewall.Error(step: "check bridge name", message: "not a valid bridge name: br x; flush")) {
            try Firewall.addNetwork(bridge: "br x; flush", subnet: IPv4Subnet("10.253.12.0/24")!, internal: false)
        }
        #expect(throws: Firewall.Error(step: "check container id", message: "not a valid container id: a\"b")) {
            try Firewall.removePorts(owner: "a\"b")
        }
    }

    // MARK: - The rules at work, in namespaces of the test's

    /// A "host" namespace with two bridge networks (front, back), a container namespace on each
    /// and an "outside" one on a veth of its own. Firewall runs from a thread inside "host" (nft
    /// and the ip_forward sysctl follow the calling thread's namespace), so the machine's own
    /// ruleset is never touched.
    struct Lab {
        let host: NetlinkTests.Namespace
        let front: NetlinkTests.Namespace
        let back: NetlinkTests.Namespace
        let outside: NetlinkTests.Namespace
        static let hostOutside = IPv4Address(192, 168, 250, 1)
        static let outsideAddress = IPv4Address(192, 168, 250, 2)
        static let frontAddress = IPv4Address(10, 61, 0, 2)
        static let backAddress = IPv4Address(10, 62, 0, 2)

        init() throws {
            host = try NetlinkTests.Namespace()
            front = try NetlinkTests.Namespace()
            back = try NetlinkTests.Namespace()
            outside = try NetlinkTests.Namespace()
            let h = try Netlink(namespace: host.fd)
            try h.setUp("lo")
            for (bridge, third, ns) in [("br-front", UInt8(61), front), ("br-back", UInt8(62), back)] {
                let gateway = IPv4Address(10, third, 0, 1)
                try h.ensureBridge(bridge, gateway: gateway, prefixLength: 24)
                try h.attach(
                    namespace: ns.fd, to: bridge,
                    Attachment(
                        hostInterface: "v-\(bridge)", interface: "eth0", address: IPv4Address(10, third, 0, 2),
                        prefixLength: 24, gateway: gateway))
            }
            try h.createVethPair("up0", peer: "eth0", peerNamespace: outside.fd)
            try h.addAddress(Self.hostOutside, prefixLength: 24, to: "up0")
            try h.setUp("up0")
            let o = try Netlink(namespace: outside.fd)
            try o.addAddress(Self.outsideAddress, prefixLength: 24, to: "eth0")
            try o.setUp("lo")
            try o.setUp("eth0")
        }

        /// Runs `body` on a thread of its own inside the host namespace.
        func inHost(_ body: @escaping @Sendable () throws -> Void) throws {
            final class Outcome: @unchecked Sendable { var error: (any Swift.Error)? }
            let outcome = Outcome()
            let done = DispatchSemaphore(value: 0)
            let fd = host.fd
            let thread = Thread {
                defer { done.signal() }
                // The thread ends in the namespace; it is never used for anything else.
                guard berthTestSetns(fd, 0x4000_0000) == 0 else {  // CLONE_NEWNET
                    outcome.error = Netlink.Error(operation: "setns", errno: errno)
                    return
                }
                do { try body() } catch { outcome.error = error }
            }
            thread.start()
            done.wait()
            if let error = outcome.error { throw error }
        }

        func ruleset() throws -> String {
            final class Text: @unchecked Sendable { var value = "" }
            let text = Text()
            try inHost {
                let result = try Firewall.run(["list", "ruleset"], input: "")
                text.value = result.status == 0 ? result.stdout : "nft failed: \(result.stderr)"
            }
            return text.value
        }
    }

    /// A UDP datagram from a socket in `sender` to `address:port`, received by a socket in
    /// `receiver` bound to `bound:boundPort`: who sent it as the receiver sees it, or nil when
    /// nothing arrived within `wait` milliseconds.
    static func datagram(
        from sender: Int32, to address: IPv4Address, port: UInt16, receiver: Int32, bound: IPv4Address,
        port boundPort: UInt16, wait: Int32 = 2000
    ) throws -> IPv4Address?? {
        let inbound = try NetlinkTests.udpSocket(in: receiver, bound: bound, port: boundPort)
        defer { close(inbound) }
        let outbound = try NetlinkTests.udpSocket(in: sender, bound: nil, port: 0)
        defer { close(outbound) }
        var to = PublishedPorts.socketAddress(address, port)
        let sent = withUnsafePointer(to: &to) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(outbound, "x", 1, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard sent == 1 else { return nil }
        var ready = pollfd(fd: inbound, events: Int16(POLLIN), revents: 0)
        guard poll(&ready, 1, wait) == 1 else { return nil }
        var from = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        var byte: UInt8 = 0
        _ = withUnsafeMutablePointer(to: &from) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(inbound, &byte, 1, 0, $0, &length) }
        }
        return .some(IPv4Address(array: withUnsafeBytes(of: from.sin_addr) { Array($0) }))
    }

    /// Masquerade out, isolation between the two networks, DNAT of a published port from
    /// outside and from the host itself (but not on loopback); and without the rules, the two
    /// networks reach each other again (what isolation stopped).
    @Test func theRulesAtWorkBetweenNamespaces() throws {
        let lab = try Lab()
        defer {
            try? lab.inHost {
                try? Firewall.removePorts(owner: "labowner")
                try? Firewall.removeNetwork(bridge: "br-front")
                try? Firewall.removeNetwork(bridge: "br-back")
            }
        }
        try lab.inHost {
            try Firewall.addNetwork(bridge: "br-front", subnet: IPv4Subnet("10.61.0.0/24")!, internal: false)
            try Firewall.addNetwork(bridge: "br-back", subnet: IPv4Subnet("10.62.0.0/24")!, internal: false)
            try Firewall.addPorts(
                owner: "labowner", mappings: try PortMapping.parse("8080:80/udp"), containerAddress: Lab.backAddress)
        }
        // Out through the host: masqueraded to the host's address.
        let out = try Self.datagram(
            from: lab.front.fd, to: Lab.outsideAddress, port: 47_100, receiver: lab.outside.fd,
            bound: Lab.outsideAddress, port: 47_100)
        #expect(out == .some(Lab.hostOutside), "not masqueraded: \(String(describing: out))")
        // Between the networks: dropped, both ways.
        #expect(
            try Self.datagram(
                from: lab.front.fd, to: Lab.backAddress, port: 47_101, receiver: lab.back.fd, bound: Lab.backAddress,
                port: 47_101, wait: 300) == nil)
        #expect(
            try Self.datagram(
                from: lab.back.fd, to: Lab.frontAddress, port: 47_102, receiver: lab.front.fd,
                bound: Lab.frontAddress, port: 47_102, wait: 300) == nil)
        // A published port, from another host: DNATed, the client's address kept.
        let published = try Self.datagram(
            from: lab.outside.fd, to: Lab.hostOutside, port: 8080, receiver: lab.back.fd, bound: Lab.backAddress,
            port: 80)
        #expect(published == .some(Lab.outsideAddress), "not published: \(String(describing: published))")
        // From the host itself to its own non-loopback address: DNATed too.
        let local = try Self.datagram(
            from: lab.host.fd, to: Lab.hostOutside, port: 8080, receiver: lab.back.fd, bound: Lab.backAddress,
            port: 80)
        #expect(local != nil, "not published to the host itself")
        // On loopback: the proxy's, not DNAT's.
        #expect(
            try Self.datagram(
                from: lab.host.fd, to: IPv4Address(127, 0, 0, 1), port: 8080, receiver: lab.back.fd,
                bound: Lab.backAddress, port: 80, wait: 300) == nil)

        try lab.inHost {
            try Firewall.removePorts(owner: "labowner")
            try Firewall.removeNetwork(bridge: "br-front")
            try Firewall.removeNetwork(bridge: "br-back")
        }
        #expect(try lab.ruleset() == "")
        let across = try Self.datagram(
            from: lab.front.fd, to: Lab.backAddress, port: 47_103, receiver: lab.back.fd, bound: Lab.backAddress,
            port: 47_103)
        #expect(across == .some(Lab.frontAddress), "without the rules the networks route to each other")
    }

    /// An internal network: its containers reach each other's bridge but nothing beyond, and
    /// nothing from beyond reaches them.
    @Test func anInternalNetworkIsCutOffBetweenNamespaces() throws {
        let lab = try Lab()
        defer { try? lab.inHost { try? Firewall.removeNetwork(bridge: "br-front") } }
        try lab.inHost {
            try Firewall.addNetwork(bridge: "br-front", subnet: IPv4Subnet("10.61.0.0/24")!, internal: true)
        }
        #expect(
            try Self.datagram(
                from: lab.front.fd, to: Lab.outsideAddress, port: 47_110, receiver: lab.outside.fd,
                bound: Lab.outsideAddress, port: 47_110, wait: 300) == nil)
        // Back is no berth network here: only the internal one's own rules stand in the way.
        #expect(
            try Self.datagram(
                from: lab.back.fd, to: Lab.frontAddress, port: 47_111, receiver: lab.front.fd,
                bound: Lab.frontAddress, port: 47_111, wait: 300) == nil)
        try lab.inHost { try Firewall.removeNetwork(bridge: "br-front") }
        #expect(try lab.ruleset() == "")
    }
}

/// setns(2), which Glibc's Swift module does not show (a _GNU_SOURCE declaration).
@_silgen_name("setns") func berthTestSetns(_ fd: Int32, _ type: Int32) -> Int32
