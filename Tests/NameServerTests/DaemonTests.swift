import CNetlink
import Foundation
import NameServer
import Network
import TestSupport
import Testing

/// berth-netd as berth runs it (started by NameServerControl), asked over UDP and TCP on
/// loopback addresses: gateways and containers are addresses of 127/8, so no bridge is needed.
/// Nothing is sent anywhere but loopback.
@Suite(.serialized) struct DaemonTests {
    /// Network "front" on 127.X.Y.0/24 (web1, web2 with alias "web", client, multi), "back" on
    /// 127.X.Y+1.0/24 (db, multi), the upstream stub on 127.X.Y+2.1.
    struct Setup {
        let root: TemporaryRoot
        let front: String
        let back: String
        let stub: StubResolver

        var frontGateway: String { front + ".1" }
        var backGateway: String { back + ".1" }
        var store: NetworkStore { NetworkStore(root: root.path) }

        init() throws {
            root = try TemporaryRoot()
            let (x, y) = Loopback.subnet()
            front = "127.\(x).\(y)"
            back = "127.\(x).\(y + 1)"
            stub = try StubResolver(address: "127.\(x).\(y + 2).1", answer: (10, 9, 9, 9))
            let config = #"{"dns": ["\#(stub.address):\#(stub.port)"]}"#
            try config.write(toFile: root.path + "/config.json", atomically: true, encoding: .utf8)
            try store.write(network("front", front))
            try store.write(network("back", back))
            try add("web1", id: "a1", front + ".2", on: "front", aliases: ["web"])
            try add("web2", id: "a2", front + ".3", on: "front", aliases: ["web"])
            try add("client", id: "c1", front + ".10", on: "front")
            try add("multi", id: "m1", front + ".20", on: "front")
            try add("db", id: "d1", back + ".2", on: "back")
            try add("multi", id: "m1", back + ".20", on: "back")
        }

        func network(_ name: String, _ prefix: String) -> NetworkRecord {
            NetworkRecord(
                name: name, id: String(repeating: "b", count: 64), bridge: "br-none",
                subnet: IPv4Subnet(prefix + ".0/24")!,
                gateway: IPv4Address(prefix + ".1")!, created: "2024-01-01T00:00:00Z")
        }

        static func containerID(_ id: String) -> String { id + String(repeating: "f", count: 64 - id.count) }

        func add(_ name: String, id: String, _ address: String, on network: String, aliases: [String] = []) throws {
            try store.write(
                EndpointRecord(
                    containerID: Self.containerID(id), containerName: name, hostname: name + "-host", aliases: aliases,
                    address: IPv4Address(address)!, macAddress: "02:42:00:00:00:02", hostInterface: "veth-none",
                    interface: "eth0", namespacePath: "/nonexistent"),
                on: network)
        }

        func tearDown() {
            root.remove()
            stub.stop()
        }
    }

    @Test func answersNamesOfSharedNetworksAndForwardsTheRest() throws {
        let setup = try Setup()
        defer { setup.tearDown() }
        try NameServerControl.reload(root: setup.root.path, netd: netdExecutable)
        let pidText = try String(contentsOfFile: setup.root.path + "/netd.pid", encoding: .utf8)
        #expect(Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines)) != nil)

        let gateway = setup.frontGateway
        let client = setup.front + ".10"
        func ask(_ name: String, from source: String? = nil, type: UInt16 = DNSMessage.typeA) throws -> [String] {
            try Client.addresses(Client.udp(Client.query(name, type: type), to: gateway, from: source ?? client))
        }

        // Container name, short ID, host name; any case, with the root's dot.
        #expect(try ask("web1") == [setup.front + ".2"])
        #expect(try ask("WEB1.") == [setup.front + ".2"])
        #expect(try ask(String(Setup.containerID("a1").prefix(12))) == [setup.front + ".2"])
        #expect(try ask("web2-host") == [setup.front + ".3"])
        // An alias of two containers: both.
        #expect(try ask("web") == [setup.front + ".2", setup.front + ".3"])

        // AAAA for a known name: NOERROR, no answers.
        let aaaa = try #require(
            try Client.udp(Client.query("web1", type: DNSMessage.typeAAAA), to: gateway, from: client))
        let aaaaMessage = try DNSMessage(parsing: aaaa)
        #expect(aaaaMessage.responseCode == 0)
        #expect(aaaaMessage.answers.isEmpty)
        #expect(aaaaMessage.id == 0x4242)

        // db is on back, which client does not share: not ours to answer, so the upstream's.
        #expect(try ask("db") == ["10.9.9.9"])
        #expect(setup.stub.asked.contains("db"))
        // multi shares back: db's own address (asked on front's gateway).
        #expect(try ask("db", from: setup.front + ".20") == [setup.back + ".2"])

        // Unknown names go upstream, over UDP and over TCP, under the asker's ID.
        #expect(try ask("example.com") == ["10.9.9.9"])
        let overTCP = try Client.tcp(Client.query("tcp.example", id: 0x7777), to: gateway, from: client)
        #expect(try Client.addresses(overTCP) == ["10.9.9.9"])
        #expect(try DNSMessage(parsing: overTCP!).id == 0x7777)
        // Local names over TCP too.
        #expect(try Client.addresses(Client.tcp(Client.query("web"), to: gateway, from: client)).count == 2)

        // A container started after the last reload resolves at once.
        try setup.add("late", id: "l1", setup.front + ".30", on: "front")
        #expect(try ask("late") == [setup.front + ".30"])

        // Garbage with a header: FORMERR, and the server goes on.
        let garbage: [UInt8] = [0x99, 0x01, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
        let formErr = try #require(try Client.udp(garbage, to: gateway, from: client))
        #expect(formErr[0] == 0x99 && formErr[1] == 0x01 && formErr[3] & 0xf == 1)
        #expect(try ask("web1") == [setup.front + ".2"])

        // back's listener answers its own containers.
        #expect(
            try Client.addresses(Client.udp(Client.query("multi"), to: setup.backGateway, from: setup.back + ".2"))
                == [setup.back + ".20"])

        // No endpoints left: the reload is answered, then the daemon goes.
        for (network, id) in [
            ("front", "a1"), ("front", "a2"), ("front", "c1"), ("front", "m1"), ("front", "l1"), ("back", "d1"),
            ("back", "m1"),
        ] {
            setup.store.removeEndpoint(container: Setup.containerID(id), from: network)
        }
        try NameServerControl.reload(root: setup.root.path, netd: netdExecutable)
        #expect(eventually { lockIsFree(setup.root.path) })
        #expect(!FileManager.default.fileExists(atPath: setup.root.path + "/netd.pid"))
        #expect(!FileManager.default.fileExists(atPath: setup.root.path + "/netd.sock"))
        // And a reload with nothing to serve starts none.
        try NameServerControl.reload(root: setup.root.path, netd: netdExecutable)
        #expect(!FileManager.default.fileExists(atPath: setup.root.path + "/netd.pid"))
    }

    @Test func oneDaemonPerRootStopAndSIGTERM() throws {
        let setup = try Setup()
        defer { setup.tearDown() }
        let root = setup.root.path

        // A descriptor of ours without close-on-exec must not reach the daemon.
        let marker = root + "/marker"
        let leaky = open(marker, O_CREAT | O_RDWR, 0o600)
        defer { close(leaky) }

        // Racing callers start one daemon between them.
        let errors = NSLockedErrors()
        DispatchQueue.concurrentPerform(iterations: 6) { _ in
            do { try NameServerControl.reload(root: root, netd: netdExecutable) } catch { errors.append(error) }
        }
        #expect(errors.all.isEmpty, "\(errors.all)")
        #expect(netdProcesses(root: root).count == 1)
        // Detached: not our child, in a session of its own, none of our files open.
        let daemon = try #require(netdProcesses(root: root).first)
        let stat = try String(contentsOfFile: "/proc/\(daemon)/stat", encoding: .utf8)
        let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
        #expect(Int32(fields[1]) != getpid())
        #expect(getsid(daemon) != getsid(0))
        let fdDirectory = "/proc/\(daemon)/fd"
        let targets = ((try? FileManager.default.contentsOfDirectory(atPath: fdDirectory)) ?? []).compactMap {
            try? FileManager.default.destinationOfSymbolicLink(atPath: fdDirectory + "/" + $0)
        }
        #expect(!targets.isEmpty && !targets.contains(marker))
        #expect(
            try Client.addresses(Client.udp(Client.query("web1"), to: setup.frontGateway, from: setup.front + ".10"))
                == [setup.front + ".2"])

        // A network added later gets its listener on reload; a removed one loses it.
        let (x, y) = Loopback.subnet()
        let extra = "127.\(x).\(y)"
        try setup.store.write(setup.network("extra", extra))
        try setup.add("solo", id: "e1", extra + ".2", on: "extra")
        try NameServerControl.reload(root: root, netd: netdExecutable)
        #expect(
            try Client.addresses(Client.udp(Client.query("solo"), to: extra + ".1", from: extra + ".2"))
                == [extra + ".2"])
        setup.store.removeEndpoint(container: Setup.containerID("e1"), from: "extra")
        try setup.store.remove("extra")
        try NameServerControl.reload(root: root, netd: netdExecutable)
        #expect(try Client.udp(Client.query("solo"), to: extra + ".1", from: extra + ".2", timeout: 1) == nil)

        // SIGTERM: gone, and its files with it.
        let pid = try #require(netdProcesses(root: root).first)
        kill(pid, SIGTERM)
        #expect(eventually { lockIsFree(root) })
        #expect(!FileManager.default.fileExists(atPath: root + "/netd.sock"))
        #expect(!FileManager.default.fileExists(atPath: root + "/netd.pid"))

        // Started again by the next reload; stop waits until it is gone.
        try NameServerControl.reload(root: root, netd: netdExecutable)
        #expect(netdProcesses(root: root).count == 1)
        try NameServerControl.stop(root: root)
        #expect(lockIsFree(root))
        #expect(netdProcesses(root: root).isEmpty)
        // Stopping none is fine.
        try NameServerControl.stop(root: root)
    }

    @Test func endpointServersWinAndSilentUpstreamsFail() throws {
        let setup = try Setup()
        defer { setup.tearDown() }
        // The endpoint's own servers win over config.json: here one where nothing listens
        // (a loopback port we bound and closed), so the answer is SERVFAIL after the timeout.
        let quiet = try Client.socket(Int32(SOCK_DGRAM.rawValue), from: setup.front + ".99")
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(quiet, $0, &length) }
        }
        close(quiet)
        var endpoint = try #require(setup.store.endpoints(of: "front").first { $0.containerName == "client" })
        endpoint.dnsServers = ["\(setup.front).99:\(UInt16(bigEndian: local.sin_port))"]
        try setup.store.write(endpoint, on: "front")
        try NameServerControl.reload(root: setup.root.path, netd: netdExecutable)

        let reply = try #require(
            try Client.udp(Client.query("nowhere.example"), to: setup.frontGateway, from: setup.front + ".10"))
        #expect(try DNSMessage(parsing: reply).responseCode == DNSMessage.ResponseCode.serverFailure.rawValue)
        #expect(!setup.stub.asked.contains("nowhere.example"))
        // Another container still goes to config.json's.
        #expect(
            try Client.addresses(
                Client.udp(Client.query("somewhere.example"), to: setup.frontGateway, from: setup.front + ".2"))
                == ["10.9.9.9"])
    }
}

/// Control errors name the step and the errno.
@Test func aMissingDaemonBinaryIsAnError() throws {
    let setup = try DaemonTests.Setup()
    defer { setup.tearDown() }
    #expect {
        try NameServerControl.reload(root: setup.root.path, netd: setup.root.path + "/no-such-netd")
    } throws: { error in
        let control = error as? NameServerControl.Error
        return control?.errno == ENOENT && "\(error)".contains("start")
    }
    #expect(!FileManager.default.fileExists(atPath: setup.root.path + "/netd.pid"))
}

final class NSLockedErrors: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [any Error] = []

    func append(_ error: any Error) {
        lock.lock()
        errors.append(error)
        lock.unlock()
    }

    var all: [any Error] {
        lock.lock()
        defer { lock.unlock() }
        return errors
    }
}
