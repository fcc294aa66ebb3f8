import NIOCore
import NIOPosix
import Network
import Testing

@testable import NameServer

/// Who sees which names, from records made in memory (no listener, no daemon).
struct RecordsTests {
    static func endpoint(
        _ name: String, id: String, _ address: String, aliases: [String] = [], hostname: String? = nil,
        dns: [String] = []
    ) -> EndpointRecord {
        EndpointRecord(
            containerID: id + String(repeating: "0", count: 64 - id.count), containerName: name, hostname: hostname,
            aliases: aliases, address: IPv4Address(address)!, macAddress: "02:42:00:00:00:01", hostInterface: "veth0",
            interface: "eth0", namespacePath: "/nonexistent", dnsServers: dns)
    }

    static func network(_ name: String, _ subnet: String, internal: Bool = false) -> NetworkRecord {
        let subnet = IPv4Subnet(subnet)!
        let gateway = IPv4Address(subnet.network.bytes.0, subnet.network.bytes.1, subnet.network.bytes.2, 1)
        return NetworkRecord(
            name: name, id: String(repeating: "a", count: 64), bridge: "br-test", subnet: subnet, gateway: gateway,
            internal: `internal`, created: "2024-01-01T00:00:00Z")
    }

    /// front: web1, web2 (alias "web"), client; back: db, and multi (also on front).
    static var records: Records {
        var records = Records()
        records.networks["front"] = Records.Network(
            record: network("front", "10.1.0.0/24"),
            endpoints: [
                endpoint("web1", id: "aaa1", "10.1.0.2", aliases: ["web"], hostname: "webhost"),
                endpoint("web2", id: "aaa2", "10.1.0.3", aliases: ["web"]),
                endpoint("client", id: "ccc", "10.1.0.10"),
                endpoint("multi", id: "mmm", "10.1.0.20"),
            ])
        records.networks["back.net"] = Records.Network(
            record: network("back.net", "10.2.0.0/24", internal: true),
            endpoints: [endpoint("db", id: "ddd", "10.2.0.2"), endpoint("multi", id: "mmm", "10.2.0.20")])
        return records
    }

    func lookup(_ name: String, from address: String, on network: String, search: [String] = []) -> [String]? {
        let records = Self.records
        let asker = records.asker(address: IPv4Address(address)!, network: network)
        return records.lookup(DNSMessage.Name(name)!, asker: asker, network: network, searchDomains: search)?
            .map(\.description)
    }

    @Test func namesOfEndpointsOnSharedNetworks() {
        #expect(lookup("web1", from: "10.1.0.10", on: "front") == ["10.1.0.2"])
        #expect(lookup("WEB1.", from: "10.1.0.10", on: "front") == ["10.1.0.2"])
        #expect(lookup("webhost", from: "10.1.0.10", on: "front") == ["10.1.0.2"])
        #expect(lookup("aaa100000000", from: "10.1.0.10", on: "front") == ["10.1.0.2"])
        #expect(Set(lookup("web", from: "10.1.0.10", on: "front") ?? []) == ["10.1.0.2", "10.1.0.3"])
        // client is not on back.net: db is not its name to know.
        #expect(lookup("db", from: "10.1.0.10", on: "front") == nil)
        // multi is, and asks on front.
        #expect(lookup("db", from: "10.1.0.20", on: "front") == ["10.2.0.2"])
        #expect(Set(lookup("multi", from: "10.1.0.20", on: "front") ?? []) == ["10.1.0.20", "10.2.0.20"])
        // An asker we do not know sees the network it asked on.
        #expect(lookup("web1", from: "10.9.9.9", on: "front") == ["10.1.0.2"])
        #expect(lookup("db", from: "10.9.9.9", on: "front") == nil)
        #expect(lookup("db", from: "10.9.9.9", on: "back.net") == ["10.2.0.2"])
    }

    @Test func nameDotNetworkAndSearchDomains() {
        #expect(lookup("web1.front", from: "10.1.0.10", on: "front") == ["10.1.0.2"])
        #expect(lookup("db.back.net", from: "10.1.0.20", on: "front") == ["10.2.0.2"])
        #expect(lookup("db.back.net", from: "10.1.0.10", on: "front") == nil)
        #expect(lookup("web1.corp.example", from: "10.1.0.10", on: "front", search: ["corp.example"]) == ["10.1.0.2"])
        #expect(lookup("web1.corp.example", from: "10.1.0.10", on: "front") == nil)
    }

    @Test func forwardingFromInternalNetworksOnly() {
        let records = Self.records
        let db = records.asker(address: IPv4Address("10.2.0.2")!, network: "back.net")
        #expect(!records.mayForward(asker: db, network: "back.net"))
        let multi = records.asker(address: IPv4Address("10.2.0.20")!, network: "back.net")
        #expect(records.mayForward(asker: multi, network: "back.net"))
        #expect(records.hasEndpoints)
        #expect(!Records().hasEndpoints)
    }

    @Test func upstreamAddresses() throws {
        #expect(Upstreams.parse("10.0.0.1")?.port == 53)
        #expect(Upstreams.parse("10.0.0.1:5353")?.port == 5353)
        #expect(Upstreams.parse("[::1]:54")?.port == 54)
        #expect(Upstreams.parse("::1")?.port == 53)
        #expect(Upstreams.parse("dns.example") == nil)
        #expect(Upstreams.parse("10.0.0.1:0") == nil)
        let conf = Upstreams.resolvConf("# comment\nnameserver 10.0.0.1\nsearch a.example b.example\nnameserver ::1\n")
        #expect(conf.servers == ["10.0.0.1", "::1"])
        #expect(conf.search == ["a.example", "b.example"])
    }

    /// The server's answers, asked directly (no listener): garbage, opcodes, local names.
    @Test func answersFromTheServerItself() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let root = try TemporaryRoot()
        defer { root.remove() }
        do { try await askTheServer(root: root, group: group) } catch {
            try await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    func askTheServer(root: TemporaryRoot, group: MultiThreadedEventLoopGroup) async throws {
        let store = NetworkStore(root: root.path)
        try store.write(Self.network("front", "10.1.0.0/24"))
        try store.write(Self.endpoint("web1", id: "aaa1", "10.1.0.2", aliases: ["web"]), on: "front")
        let server = NameServer(root: root.path, group: group)
        let asker = try SocketAddress(ipAddress: "10.1.0.9", port: 40000)

        // Bytes with a header but no sense: FORMERR under their ID; no header: nothing.
        let garbage: [UInt8] = [0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0x40]
        let formErr = try #require(await server.answer(garbage, from: asker, network: "front", overTCP: false))
        #expect(DNSMessage.id(of: formErr) == 0xabcd)
        #expect(formErr[3] & 0xf == DNSMessage.ResponseCode.formatError.rawValue)
        #expect(await server.answer([1, 2, 3], from: asker, network: "front", overTCP: false) == nil)

        // Not a standard query: NOTIMP.
        var status = DNSMessageTests.webQuery
        status[2] = 0x10
        let notImp = try #require(await server.answer(status, from: asker, network: "front", overTCP: false))
        #expect(notImp[3] & 0xf == DNSMessage.ResponseCode.notImplemented.rawValue)

        // "web" was never loaded (no reload): found by reading the store on the miss.
        let web = try #require(
            await server.answer(DNSMessageTests.webQuery, from: asker, network: "front", overTCP: false))
        let message = try DNSMessage(parsing: web)
        #expect(message.id == 0x1234)
        #expect(message.answers.compactMap(\.ipv4) == [[10, 1, 0, 2]])
    }
}
