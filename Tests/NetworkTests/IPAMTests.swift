import Foundation
import Testing

@testable import Network

/// IPAM on files of its own (a temporary directory per test).
@Suite struct IPAMTests {
    final class Directory {
        let path = NSTemporaryDirectory() + "berth-ipam-\(UUID().uuidString.prefix(8))"
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    @Test func networksTakeDockersPoolsInOrderAndKeepTheirSubnet() throws {
        let dir = Directory()
        let ipam = IPAM(directory: dir.path)
        let first = try ipam.reserveNetwork("p_default")
        #expect(first.subnet == IPv4Subnet("172.17.0.0/16") && first.gateway == IPv4Address(172, 17, 0, 1))
        let second = try ipam.reserveNetwork("p_back")
        #expect(second.subnet == IPv4Subnet("172.18.0.0/16"))
        #expect(try ipam.reserveNetwork("p_default") == first, "the same network, the same subnet")
        // Another process (here, another value) reads the same state.
        #expect(try IPAM(directory: dir.path).networks()["p_back"]?.subnet == second.subnet)
        // A subnet the host routes already is skipped.
        #expect(
            try ipam.reserveNetwork("p_third", avoiding: [IPv4Subnet("172.19.0.0/24")!]).subnet
                == IPv4Subnet("172.20.0.0/16"))
        try ipam.releaseNetwork("p_default")
        #expect(try ipam.reserveNetwork("p_new").subnet == IPv4Subnet("172.17.0.0/16"), "a released subnet is free")
    }

    @Test func requestedSubnetsAndGatewaysAreHonouredOrRefused() throws {
        let dir = Directory()
        let ipam = IPAM(directory: dir.path)
        let mine = try ipam.reserveNetwork(
            "custom", subnet: IPv4Subnet("10.5.0.0/24"), gateway: IPv4Address(10, 5, 0, 254))
        #expect(mine.gateway == IPv4Address(10, 5, 0, 254))
        #expect(throws: IPAM.Error(description: "subnet 10.5.0.128/25 of network other overlaps 10.5.0.0/24")) {
            try ipam.reserveNetwork("other", subnet: IPv4Subnet("10.5.0.128/25"))
        }
        #expect(throws: IPAM.Error.self) {
            try ipam.reserveNetwork("bad-gw", subnet: IPv4Subnet("10.6.0.0/24"), gateway: IPv4Address(10, 7, 0, 1))
        }
        #expect(throws: IPAM.Error.self) {
            try ipam.reserveNetwork("net-addr-gw", subnet: IPv4Subnet("10.6.0.0/24"), gateway: IPv4Address(10, 6, 0, 0))
        }
        #expect(try ipam.networks().keys.sorted() == ["custom"], "nothing reserved by a refusal")
        // The pools skip a subnet that a requested one overlaps.
        let taken = try ipam.reserveNetwork("in-pool", subnet: IPv4Subnet("172.17.5.0/24"))
        #expect(taken.subnet == IPv4Subnet("172.17.5.0/24"))
        #expect(try ipam.reserveNetwork("next").subnet == IPv4Subnet("172.18.0.0/16"))
        #expect(IPv4Subnet("10.0.0.5/8") == nil, "host bits set")
    }

    @Test func containersGetTheNextFreeAddressOrTheOneTheyAsk() throws {
        let dir = Directory()
        let ipam = IPAM(directory: dir.path)
        _ = try ipam.reserveNetwork("n", subnet: IPv4Subnet("10.9.0.0/29"))
        #expect(try ipam.allocate(on: "n", for: "a") == IPv4Address(10, 9, 0, 2))
        #expect(try ipam.allocate(on: "n", for: "b", wanted: IPv4Address(10, 9, 0, 5)) == IPv4Address(10, 9, 0, 5))
        #expect(try ipam.allocate(on: "n", for: "c") == IPv4Address(10, 9, 0, 3))
        #expect(try ipam.allocate(on: "n", for: "a") == IPv4Address(10, 9, 0, 2), "the same holder, the same address")
        // Asking for another one gives up the first.
        #expect(try ipam.allocate(on: "n", for: "a", wanted: IPv4Address(10, 9, 0, 6)) == IPv4Address(10, 9, 0, 6))
        #expect(try ipam.networks()["n"]?.addresses["10.9.0.2"] == nil)
        #expect(try ipam.allocate(on: "n", for: "a", wanted: IPv4Address(10, 9, 0, 2)) == IPv4Address(10, 9, 0, 2))
        #expect(throws: IPAM.Error(description: "address 10.9.0.5 is already in use on network n")) {
            try ipam.allocate(on: "n", for: "d", wanted: IPv4Address(10, 9, 0, 5))
        }
        #expect(throws: IPAM.Error.self) { try ipam.allocate(on: "n", for: "d", wanted: IPv4Address(10, 9, 0, 7)) }
        #expect(throws: IPAM.Error.self) { try ipam.allocate(on: "n", for: "d", wanted: IPv4Address(10, 9, 0, 1)) }
        _ = try ipam.allocate(on: "n", for: "d")
        _ = try ipam.allocate(on: "n", for: "e")
        #expect(throws: IPAM.Error(description: "no address left on network n (10.9.0.0/29)")) {
            try ipam.allocate(on: "n", for: "f")
        }
        try ipam.release(holder: "c")
        #expect(try ipam.allocate(on: "n", for: "f") == IPv4Address(10, 9, 0, 3), "a released address is free again")
        #expect(throws: IPAM.Error(description: "no such network: missing")) {
            try ipam.allocate(on: "missing", for: "x")
        }
    }

    @Test func addressesOfDeadHoldersAreReclaimed() throws {
        let dir = Directory()
        let ipam = IPAM(directory: dir.path)
        _ = try ipam.reserveNetwork("n", subnet: IPv4Subnet("10.9.0.0/24"))
        for holder in ["alive", "dead-1", "dead-2"] { _ = try ipam.allocate(on: "n", for: holder) }
        #expect(try ipam.reclaim { $0 == "alive" } == ["dead-1", "dead-2"])
        #expect(try ipam.networks()["n"]?.addresses == ["10.9.0.2": "alive"])
    }

    /// The lock, not luck: 40 allocations at once from separate IPAM values (each opens and locks
    /// the files itself, as separate processes would) never hand out one address twice.
    @Test func concurrentAllocationsNeverCollide() throws {
        let dir = Directory()
        _ = try IPAM(directory: dir.path).reserveNetwork("n", subnet: IPv4Subnet("10.9.0.0/24"))
        let results = UnsafeMutableBufferPointer<IPv4Address?>.allocate(capacity: 40)
        defer { results.deallocate() }
        results.initialize(repeating: nil)
        DispatchQueue.concurrentPerform(iterations: 40) { i in
            results[i] = try? IPAM(directory: dir.path).allocate(on: "n", for: "holder-\(i)")
        }
        let addresses = results.compactMap { $0 }
        #expect(addresses.count == 40)
        #expect(Set(addresses).count == 40)
        #expect(try IPAM(directory: dir.path).networks()["n"]?.addresses.count == 40)
    }

    /// A file that does not parse (a subnet with host bits) is refused and left as it is, never
    /// taken for an empty state and written over.
    @Test func aDamagedStateIsRefusedNotReplaced() throws {
        let dir = Directory()
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        let damaged = #"{"n":{"addresses":{},"gateway":"10.0.0.1","subnet":"10.0.0.5/8"}}"#
        try damaged.write(toFile: dir.path + "/ipam.json", atomically: false, encoding: .utf8)
        let error = #expect(throws: IPAM.Error.self) { try IPAM(directory: dir.path).reserveNetwork("other") }
        #expect(error?.description.contains("is damaged") == true, "\(String(describing: error))")
        #expect(try String(contentsOfFile: dir.path + "/ipam.json", encoding: .utf8) == damaged)
    }

    @Test func bridgeNamesAreStableShortAndDistinct() {
        let name = BridgeName.of(project: "shop", network: "default")
        #expect(name == BridgeName.of(project: "shop", network: "default"))
        #expect(name.count == 15 && name.hasPrefix("br-"))
        #expect(name != BridgeName.of(project: "shop", network: "back"))
        #expect(BridgeName.of(project: "a", network: "bc") != BridgeName.of(project: "ab", network: "c"))
    }
}
