import CNetlink
import Foundation
import Testing

@testable import Network

/// rtnetlink against real namespaces. Each test makes its own network namespaces (never touching
/// the host's) and closes them at the end: a namespace goes with its last reference, and its
/// links, addresses and routes with it. Root.
@Suite struct NetlinkTests {
    /// A new network namespace, open while the value lives.
    final class Namespace {
        let fd: Int32

        init() throws {
            fd = berth_netlink_new_namespace()
            guard fd >= 0 else { throw Netlink.Error(operation: "make a network namespace", errno: -fd) }
        }

        deinit { close(fd) }
    }

    @Test func aBridgeWithAnAddressComesUp() throws {
        let ns = try Namespace()
        let netlink = try Netlink(namespace: ns.fd)
        try netlink.createBridge("br-test", mtu: 1400)
        try netlink.addAddress(IPv4Address(10, 99, 0, 1), prefixLength: 24, to: "br-test")
        try netlink.setUp("br-test")
        let bridge = try #require(try netlink.links().first { $0.name == "br-test" })
        #expect(bridge.kind == "bridge")
        #expect(bridge.isUp)
        #expect(bridge.mtu == 1400)
        let added = InterfaceAddress(interface: bridge.index, address: IPv4Address(10, 99, 0, 1), prefixLength: 24)
        #expect(try netlink.addresses().contains(added))
        // Made in the namespace it was handed, not in this process's own.
        #expect(try !Netlink().links().contains { $0.name == "br-test" })
    }

    /// The container's end of a veth pair is made in its namespace; attached to the bridge, with
    /// addresses and a default route, a datagram crosses from the container to the bridge's side.
    @Test func aVethPeerInAnotherNamespaceCarriesTrafficThroughTheBridge() throws {
        let host = try Namespace()
        let container = try Namespace()
        let outside = try Netlink(namespace: host.fd)
        let inside = try Netlink(namespace: container.fd)
        let gateway = IPv4Address(10, 88, 0, 1)
        let address = IPv4Address(10, 88, 0, 2)
        try outside.createBridge("br0")
        try outside.addAddress(gateway, prefixLength: 16, to: "br0")
        try outside.setUp("br0")
        try outside.createVethPair("veth-test0", peer: "eth0", peerNamespace: container.fd)
        #expect(try !outside.links().contains { $0.name == "eth0" })
        try outside.setMaster("veth-test0", bridge: "br0")
        try outside.setUp("veth-test0")
        try inside.addAddress(address, prefixLength: 16, to: "eth0")
        try inside.setUp("lo")
        try inside.setUp("eth0")
        try inside.addDefaultRoute(via: gateway)

        let bridge = try outside.index(of: "br0")
        let veth = try #require(try outside.links().first { $0.name == "veth-test0" })
        #expect(veth.master == bridge && veth.kind == "veth" && veth.isUp)
        let eth0 = try #require(try inside.links().first { $0.name == "eth0" })
        #expect(eth0.kind == "veth" && eth0.isUp)
        let defaultRoute = Route(destination: nil, prefixLength: 0, gateway: gateway, interface: eth0.index)
        #expect(try inside.routes().contains(defaultRoute))
        #expect(try inside.routedSubnets() == [IPv4Subnet("10.88.0.0/16")!], "the connected subnet, not the default")

        // A UDP datagram from the container's namespace, through its default route, reaches a
        // socket bound to the gateway's address on the bridge.
        let arrived = try Self.datagram("hello", from: container.fd, to: gateway, in: host.fd, port: 47_001)
        #expect(arrived?.text == "hello", "nothing arrived")
        #expect(arrived?.sender == address)

        // Either end takes the pair with it.
        try outside.deleteLink("veth-test0")
        #expect(try !inside.links().contains { $0.name == "eth0" })
    }

    /// Two namespaces attached to one bridge reach each other by address, and a failed attach
    /// leaves no veth behind.
    @Test func attachedNamespacesReachEachOtherThroughTheBridge() throws {
        let host = try Namespace()
        let first = try Namespace()
        let second = try Namespace()
        let outside = try Netlink(namespace: host.fd)
        let gateway = IPv4Address(10, 77, 0, 1)
        try outside.ensureBridge("br-attach", gateway: gateway, prefixLength: 24)
        try outside.ensureBridge("br-attach", gateway: gateway, prefixLength: 24)  // again: nothing changes
        #expect(try outside.addresses().filter { $0.address == gateway }.count == 1)
        let a = IPv4Address(10, 77, 0, 2)
        let b = IPv4Address(10, 77, 0, 3)
        try outside.attach(
            namespace: first.fd, to: "br-attach",
            Attachment(hostInterface: "veth-a", interface: "eth0", address: a, prefixLength: 24, gateway: gateway))
        try outside.attach(
            namespace: second.fd, to: "br-attach",
            Attachment(hostInterface: "veth-b", interface: "eth0", address: b, prefixLength: 24, gateway: gateway))

        let arrived = try Self.datagram("across", from: first.fd, to: b, in: second.fd, port: 47_002)
        #expect(arrived?.text == "across" && arrived?.sender == a, "nothing arrived")

        // A second default route in a namespace that has one: the attach fails at its last step
        // and takes its veth (both ends) away.
        let refused = #expect(throws: Netlink.Error.self) {
            try outside.attach(
                namespace: second.fd, to: "br-attach",
                Attachment(
                    hostInterface: "veth-c", interface: "eth1", address: IPv4Address(10, 77, 0, 4), prefixLength: 24,
                    gateway: gateway))
        }
        #expect(refused?.errno == EEXIST)
        #expect(try !outside.links().contains { $0.name == "veth-c" })
        #expect(try !Netlink(namespace: second.fd).links().contains { $0.name == "eth1" })
    }

    @Test func refusalsNameTheRequestAndTheErrno() throws {
        let ns = try Namespace()
        let netlink = try Netlink(namespace: ns.fd)
        try netlink.createBridge("twice")
        let again = #expect(throws: Netlink.Error.self) { try netlink.createBridge("twice") }
        #expect(again == Netlink.Error(operation: "create bridge twice", errno: EEXIST))
        #expect(again?.description == "create bridge twice: File exists")
        let before = try netlink.links()
        try netlink.createBridge("fifteen-chars-x")  // the kernel's limit, allowed
        let long = #expect(throws: Netlink.Error.self) { try netlink.createBridge("sixteen-chars-xx") }
        #expect(long?.errno == EINVAL)
        #expect(throws: Netlink.Error.self) { try netlink.createBridge("a/b") }
        #expect(try netlink.links().count == before.count + 1)
        let missing = #expect(throws: Netlink.Error.self) { try netlink.setUp("nosuch") }
        #expect(missing?.errno == ENODEV)
        // No connected route reaches the gateway.
        let unreachable = #expect(throws: Netlink.Error.self) {
            try netlink.addDefaultRoute(via: IPv4Address(10, 1, 1, 1))
        }
        #expect(unreachable?.errno == ENETUNREACH)
    }

    @Test func addressesAreReadAsDockerReadsThem() {
        #expect(IPv4Address("10.0.0.1") == IPv4Address(10, 0, 0, 1))
        #expect(IPv4Address("255.255.255.255")?.description == "255.255.255.255")
        for bad in ["10.0.0", "10.0.0.01", "256.0.0.1", " 1.2.3.4", "1.2.3.4.5", "1..2.3", "a.b.c.d", "١.2.3.4"] {
            #expect(IPv4Address(bad) == nil, "\(bad)")
        }
    }

    // MARK: helpers

    /// Sends `text` in a UDP datagram from the namespace `sender` to `address:port`, received by
    /// a socket bound there in the namespace `receiver`; what arrived and from where, or nil
    /// when nothing did within 10 s.
    static func datagram(_ text: String, from sender: Int32, to address: IPv4Address, in receiver: Int32, port: UInt16)
        throws -> (text: String, sender: IPv4Address?)?
    {
        let inbound = try udpSocket(in: receiver, bound: address, port: port)
        defer { close(inbound) }
        let outbound = try udpSocket(in: sender, bound: nil, port: 0)
        defer { close(outbound) }
        var to = socketAddress(address, port: port)
        let bytes = Array(text.utf8)
        let sent = withUnsafePointer(to: &to) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(outbound, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard sent == bytes.count else { return nil }
        var ready = pollfd(fd: inbound, events: Int16(POLLIN), revents: 0)
        guard poll(&ready, 1, 10_000) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 256)
        var from = sockaddr_in()
        var fromLength = socklen_t(MemoryLayout<sockaddr_in>.size)
        let got = withUnsafeMutablePointer(to: &from) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                recvfrom(inbound, &buffer, buffer.count, Int32(MSG_DONTWAIT), $0, &fromLength)
            }
        }
        guard got >= 0 else { return nil }
        return (
            String(decoding: buffer.prefix(got), as: UTF8.self),
            IPv4Address(array: withUnsafeBytes(of: from.sin_addr) { Array($0) })
        )
    }

    static func udpSocket(in namespace: Int32, bound address: IPv4Address?, port: UInt16) throws -> Int32 {
        let fd = berth_socket_in_namespace(namespace, AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw Netlink.Error(operation: "open a UDP socket", errno: -fd) }
        var local = socketAddress(address ?? IPv4Address(0, 0, 0, 0), port: port)
        let rc = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw Netlink.Error(operation: "bind a UDP socket", errno: e)
        }
        return fd
    }

    static func socketAddress(_ address: IPv4Address, port: UInt16) -> sockaddr_in {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        withUnsafeMutableBytes(of: &sa.sin_addr) { $0.copyBytes(from: address.array) }
        return sa
    }
}
