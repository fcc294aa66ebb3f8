import CNetlink
import Foundation
import TestSupport
import Testing

@testable import Network

/// Bridge networks on the host, as berth makes them: real bridges (named from a root of the
/// test's own, so no two tests share one), real namespaces joined to them, and a check that
/// everything made is gone again. Root.
@Suite struct BridgeNetworksTests {
    /// A root of its own; `close()` removes its networks and files whatever the test left.
    final class Root {
        let path = "/tmp/berth-bridge-test-" + UUID().uuidString.prefix(8)
        var namespaces: [String] = []

        init(config: String? = nil) throws {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            if let config { try config.write(toFile: path + "/config.json", atomically: true, encoding: .utf8) }
        }

        /// A new network namespace kept at ROOT/netns/NAME (as a container's is).
        func namespace(_ name: String) throws -> String {
            let fd = berth_netlink_new_namespace()
            guard fd >= 0 else { throw Netlink.Error(operation: "make a network namespace", errno: -fd) }
            defer { close(fd) }
            let kept = path + "/netns/" + name
            try NamespaceFile.keep("/proc/self/fd/\(fd)", at: kept)
            namespaces.append(kept)
            return kept
        }

        func removeAll() {
            let networks = BridgeNetworks(root: path)
            for network in networks.store.networks() {
                for endpoint in networks.store.endpoints(of: network.name) {
                    try? networks.disconnect(container: endpoint.containerID, from: network.name)
                }
                try? networks.remove(network.name)
            }
            for kept in namespaces { try? NamespaceFile.release(kept) }
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    static func hostLinks() throws -> Set<String> { Set(try Netlink().links().map(\.name)) }

    @Test func networksGetTheirOwnSubnetsAndBridgesAndLeaveNothingBehind() throws {
        let root = try Root()
        defer { root.removeAll() }
        let networks = BridgeNetworks(root: root.path)
        var options = BridgeNetworks.Options()
        options.subnet = IPv4Subnet("10.231.1.0/24")
        options.mtu = 1400
        let front = try networks.create("front", options)
        let back = try networks.create("back")
        #expect(front.subnet == IPv4Subnet("10.231.1.0/24") && front.gateway == IPv4Address(10, 231, 1, 1))
        #expect(!back.subnet.overlaps(front.subnet))
        let links = try Netlink().links()
        let bridge = try #require(links.first { $0.name == front.bridge })
        #expect(bridge.kind == "bridge" && bridge.isUp && bridge.mtu == 1400)
        #expect(
            try Netlink().addresses().contains(
                InterfaceAddress(interface: bridge.index, address: front.gateway, prefixLength: 24)))
        #expect(throws: BridgeNetworks.Error.self) { try networks.create("front") }

        try networks.remove("front")
        try networks.remove("back")
        #expect(try Self.hostLinks().isDisjoint(with: [front.bridge, back.bridge]))
        #expect(networks.store.networks().isEmpty)
        #expect(try networks.ipam.networks().isEmpty)
    }

    /// Docker refuses a subnet another network has, or the host routes (another root's bridge
    /// here), and an invalid name; nothing of the refused network is left.
    @Test func overlappingSubnetsAndBadNamesAreRefusedWithNothingMade() throws {
        let first = try Root()
        let second = try Root()
        defer {
            first.removeAll()
            second.removeAll()
        }
        var options = BridgeNetworks.Options()
        options.subnet = IPv4Subnet("10.231.2.0/24")
        let made = try BridgeNetworks(root: first.path).create("one", options)
        let networks = BridgeNetworks(root: second.path)
        #expect {
            try networks.create("two", options)
        } throws: { "\($0)".contains("overlaps 10.231.2.0/24, which the host routes") }
        options.subnet = IPv4Subnet("10.231.2.128/25")
        #expect(throws: BridgeNetworks.Error.self) { try networks.create("three", options) }
        #expect(throws: BridgeNetworks.Error.self) { try networks.create("-bad", BridgeNetworks.Options()) }
        // No bridge of theirs (other suites make and remove links meanwhile: only these count).
        let refused = Set(["two", "three", "-bad"].map(networks.bridgeName))
        #expect(try Self.hostLinks().isDisjoint(with: refused))
        #expect(networks.store.networks().isEmpty)
        #expect(try networks.ipam.networks().isEmpty)
        #expect(made.subnet == IPv4Subnet("10.231.2.0/24"))
    }

    /// berth's config names the pools; once they are used up, Docker's error.
    @Test func anExhaustedPoolIsAnError() throws {
        let root = try Root(config: #"{"default-address-pools": [{"base": "10.232.0.0/23", "size": 24}]}"#)
        defer { root.removeAll() }
        let networks = BridgeNetworks(root: root.path)
        #expect(try networks.create("a").subnet == IPv4Subnet("10.232.0.0/24"))
        #expect(try networks.create("b").subnet == IPv4Subnet("10.232.1.0/24"))
        #expect {
            try networks.create("c")
        } throws: { "\($0)".contains("all predefined address pools have been fully subnetted") }
        #expect(networks.store.network("c") == nil)
    }

    /// An interface already named as the network's bridge would be is not taken over.
    @Test func aBridgeNameCollisionIsAnError() throws {
        let root = try Root()
        defer { root.removeAll() }
        let networks = BridgeNetworks(root: root.path)
        let name = networks.bridgeName(of: "taken")
        try Netlink().createBridge(name)
        defer { try? Netlink().deleteLink(name) }
        #expect {
            try networks.create("taken")
        } throws: { "\($0)".contains("an interface named \(name) already exists") }
        #expect(networks.store.network("taken") == nil)
        #expect(try networks.ipam.networks().isEmpty)
    }

    /// Two namespaces on one network: addresses in order, a static one honoured, one outside the
    /// subnet refused with nothing made, a datagram between them; teardown removes veths,
    /// addresses and records.
    @Test func connectedNamespacesTalkAndTeardownRemovesEverything() throws {
        let root = try Root()
        defer { root.removeAll() }
        let networks = BridgeNetworks(root: root.path)
        var options = BridgeNetworks.Options()
        options.subnet = IPv4Subnet("10.231.3.0/24")
        let network = try networks.create("net", options)
        let a = try root.namespace("a")
        let b = try root.namespace("b")
        let alive: (String) -> Bool = { _ in true }
        let first = try networks.connect(
            namespacePath: a, container: "a", to: network, interface: "eth0", defaultRoute: true,
            .init(containerName: "a"), isAlive: alive)
        var wanted = BridgeNetworks.EndpointOptions(containerName: "b")
        wanted.address = IPv4Address(10, 231, 3, 77)
        let second = try networks.connect(
            namespacePath: b, container: "b", to: network, interface: "eth0", defaultRoute: true, wanted,
            isAlive: alive)
        #expect(first.address == IPv4Address(10, 231, 3, 2) && second.address == IPv4Address(10, 231, 3, 77))
        #expect(first.macAddress == "02:42:0a:e7:03:02")
        #expect(networks.store.endpoints(of: "net").map(\.containerID) == ["a", "b"])

        wanted.address = IPv4Address(10, 231, 4, 5)
        let c = try root.namespace("c")
        #expect {
            try networks.connect(
                namespacePath: c, container: "c", to: network, interface: "eth0", defaultRoute: true, wanted,
                isAlive: alive)
        } throws: { "\($0)".contains("is not in network net's subnet") }
        #expect(try !Self.hostLinks().contains(BridgeNetworks.hostInterface(container: "c", network: "net")))

        let fd = open(a, O_RDONLY | O_CLOEXEC)
        let fdB = open(b, O_RDONLY | O_CLOEXEC)
        let arrived = try NetlinkTests.datagram("ping", from: fd, to: second.address, in: fdB, port: 47_011)
        close(fd)
        close(fdB)
        #expect(arrived?.text == "ping" && arrived?.sender == first.address)

        try networks.tearDown(container: "a", namespacePath: a)
        try networks.tearDown(container: "b", namespacePath: b)
        #expect(networks.store.endpoints(of: "net").isEmpty)
        #expect(try networks.ipam.networks()["net"]?.addresses.isEmpty == true)
        #expect(!NamespaceFile.isKept(a) && !FileManager.default.fileExists(atPath: a))
        // Nothing holds the namespaces now: the kernel removes them, veths and all, in the
        // background (BridgeNetworks.tearDown says why); 10 s at most.
        #expect(
            eventually {
                (try? Self.hostLinks().isDisjoint(with: [first.hostInterface, second.hostInterface])) == true
            })
    }

    /// A /30 has one address besides the gateway: the second container gets it only once the
    /// first is known dead, and then the dead one's veth is gone too.
    @Test func addressesOfDeadHoldersAreReclaimed() throws {
        let root = try Root()
        defer { root.removeAll() }
        let networks = BridgeNetworks(root: root.path)
        var options = BridgeNetworks.Options()
        options.subnet = IPv4Subnet("10.231.5.0/30")
        let network = try networks.create("tiny", options)
        let a = try root.namespace("a")
        let b = try root.namespace("b")
        let first = try networks.connect(
            namespacePath: a, container: "a", to: network, interface: "eth0", defaultRoute: true,
            .init(containerName: "a"), isAlive: { _ in true })
        #expect {
            try networks.connect(
                namespacePath: b, container: "b", to: network, interface: "eth0", defaultRoute: true,
                .init(containerName: "b"), isAlive: { _ in true })
        } throws: { "\($0)".contains("no address left") }
        let second = try networks.connect(
            namespacePath: b, container: "b", to: network, interface: "eth0", defaultRoute: true,
            .init(containerName: "b"), isAlive: { $0 != "a" })
        #expect(second.address == first.address)
        #expect(eventually { (try? Self.hostLinks().contains(first.hostInterface)) == false })
        #expect(networks.store.endpoints(of: "tiny").map(\.containerID) == ["b"])
    }
}
