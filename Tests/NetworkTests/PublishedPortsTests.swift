import CNetlink
import Foundation
import TestSupport
import Testing

@testable import Network

/// Published ports on 127.0.0.1: bound before a container starts, and carried by berth-proxy into
/// a network namespace the test makes (a veth pair from the host to it). Root. One test at a
/// time: they check ports the kernel hands out, which a test beside them could be given next.
@Suite(.serialized) struct PublishedPortsTests {
    static let localhost = IPv4Address(127, 0, 0, 1)

    static var proxy: String {
        URL(fileURLWithPath: BerthProcess.executable).deletingLastPathComponent().appendingPathComponent("berth-proxy")
            .path
    }

    /// A socket of the test's own on 127.0.0.1 (port 0: the kernel's choice), and its port.
    /// SO_REUSEADDR for a given port: one that was handed out again as another test's
    /// connection's source (tests run side by side) does not count as taken; a socket still
    /// bound or listening on it (what the tests look for) does. Not for port 0: the kernel
    /// would then pick ports that other such sockets hold.
    static func socket(tcp: Bool = true, port: UInt16 = 0) throws -> (Int32, UInt16) {
        let fd = Glibc.socket(AF_INET, Int32(tcp ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue), 0)
        var one: Int32 = 1
        if port != 0 { setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) }
        var address = PublishedPorts.socketAddress(localhost, port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, !tcp || listen(fd, 8) == 0 else {
            let error = errno
            close(fd)
            throw PublishedPorts.Error(description: "test socket: \(PublishedPorts.errorText(error))")
        }
        return (fd, localPort(fd))
    }

    static func localPort(_ fd: Int32) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    /// A free port: bound by the test and let go.
    static func freePort() throws -> UInt16 {
        let (fd, port) = try socket()
        close(fd)
        return port
    }

    @Test func aPortInUseFailsWithDockersTextAndNothingStaysBound() throws {
        let (taken, port) = try Self.socket()
        defer { close(taken) }
        let free = try Self.freePort()
        let (udp, freeUDP) = try Self.socket(tcp: false)
        close(udp)
        let mappings = [
            PortMapping(hostIP: Self.localhost, hostPort: free, containerPort: 80),
            PortMapping(hostIP: Self.localhost, hostPort: freeUDP, containerPort: 53, proto: "udp"),
            PortMapping(hostIP: Self.localhost, hostPort: port, containerPort: 80),
        ]
        #expect(
            throws: PublishedPorts.Error(
                description: "Bind for 127.0.0.1:\(port) failed: port is already allocated (Address already in use)")
        ) { _ = try PublishedPorts.bind(mappings) }
        // The ports bound before the failure are free again.
        let (again, _) = try Self.socket(port: free)
        close(again)
        let (againUDP, _) = try Self.socket(tcp: false, port: freeUDP)
        close(againUDP)
    }

    @Test func ephemeralPortsAndRangesAreReportedAsBound() throws {
        // A range whose first port is taken: Docker takes another of the range.
        var taken: (Int32, UInt16) = (-1, 0)
        var next: UInt16 = 0
        for _ in 0..<20 {
            taken = try Self.socket()
            next = taken.1 &+ 1
            if next > 1024, let (fd, _) = try? Self.socket(port: next) {
                close(fd)
                break
            }
            close(taken.0)
            taken.0 = -1
        }
        defer { if taken.0 >= 0 { close(taken.0) } }
        try #require(taken.0 >= 0, "no two consecutive free ports")

        let bound = try PublishedPorts.bind([
            PortMapping(hostIP: Self.localhost, hostPort: 0, containerPort: 80),
            PortMapping(hostIP: Self.localhost, hostPort: 0, containerPort: 53, proto: "udp"),
            PortMapping(hostIP: Self.localhost, hostPort: taken.1, hostPortEnd: next, containerPort: 8080),
        ])
        let mappings = bound.mappings
        #expect(mappings.count == 3)
        #expect(mappings[0].hostPort != 0 && mappings[1].hostPort != 0)
        #expect(mappings[2].hostPort == next && mappings[2].hostPortEnd == nil)
        #expect(mappings.map(\.containerPort) == [80, 53, 8080])
        // Really bound: the test can bind none of them now.
        #expect(throws: PublishedPorts.Error.self) { try Self.socket(port: mappings[0].hostPort) }
        #expect(throws: PublishedPorts.Error.self) { try Self.socket(tcp: false, port: mappings[1].hostPort) }
        _ = consume bound
        // And all are let go with the value.
        let (fd, _) = try Self.socket(port: mappings[0].hostPort)
        close(fd)
    }

    /// 127.0.0.1:PORT on the host reaches a TCP echo server and a UDP server in a namespace of
    /// the test's, through berth-proxy; the proxy exits by itself when the "container" process
    /// (a `sleep` of the test's) ends.
    @Test func theProxyCarriesTCPAndUDPIntoANamespaceAndEndsWithTheContainer() throws {
        let ns = berth_netlink_new_namespace()
        try #require(ns >= 0)
        defer { close(ns) }
        // A /30 of 10.254.0.0/16 per test run, on a host-side veth of its own.
        let third = UInt8.random(in: 0...255)
        let fourth = UInt8.random(in: 0...63) * 4
        let hostAddress = IPv4Address(10, 254, third, fourth + 1)
        let containerAddress = IPv4Address(10, 254, third, fourth + 2)
        let veth = "bp\(UInt32.random(in: 0..<UInt32.max))"
        let host = try Netlink()
        let inside = try Netlink(namespace: ns)
        try host.createVethPair(veth, peer: "eth0", peerNamespace: ns)
        defer { try? host.deleteLink(veth) }
        try host.addAddress(hostAddress, prefixLength: 30, to: veth)
        try host.setUp(veth)
        try inside.addAddress(containerAddress, prefixLength: 30, to: "eth0")
        try inside.setUp("lo")
        try inside.setUp("eth0")

        // The servers, on sockets made inside the namespace.
        let tcpServer = berth_socket_in_namespace(ns, AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let udpServer = berth_socket_in_namespace(ns, AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer {
            close(tcpServer)
            close(udpServer)
        }
        try #require(tcpServer >= 0 && udpServer >= 0)
        for fd in [tcpServer, udpServer] {
            var address = PublishedPorts.socketAddress(IPv4Address(0, 0, 0, 0), 5000)
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            try #require(rc == 0)
        }
        try #require(listen(tcpServer, 8) == 0)
        // Echo one connection, then half-close back.
        let echo = Thread {
            let connection = accept(tcpServer, nil, nil)
            guard connection >= 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                var at = 0
                while at < n {
                    let m = buffer[at..<n].withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
                    if m <= 0 { break }
                    at += m
                }
            }
            shutdown(connection, Int32(SHUT_WR))
            close(connection)
        }
        echo.start()
        // Answer one datagram in capitals.
        let reply = Thread {
            var buffer = [UInt8](repeating: 0, count: 2048)
            var client = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = withUnsafeMutablePointer(to: &client) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { from in
                    buffer.withUnsafeMutableBytes { recvfrom(udpServer, $0.baseAddress, $0.count, 0, from, &length) }
                }
            }
            guard n > 0 else { return }
            let upper = Array(String(decoding: buffer[0..<n], as: UTF8.self).uppercased().utf8)
            _ = withUnsafePointer(to: &client) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { to in
                    upper.withUnsafeBytes { sendto(udpServer, $0.baseAddress, $0.count, 0, to, length) }
                }
            }
        }
        reply.start()

        let container = Process()
        container.executableURL = URL(fileURLWithPath: "/bin/sleep")
        container.arguments = ["60"]
        try container.run()
        // SIGKILL: the test runner's children may inherit a blocked SIGTERM.
        defer {
            if container.isRunning { kill(container.processIdentifier, SIGKILL) }
            container.waitUntilExit()
        }

        let bound = try PublishedPorts.bind([
            PortMapping(hostIP: Self.localhost, hostPort: 0, containerPort: 5000),
            PortMapping(hostIP: Self.localhost, hostPort: 0, containerPort: 5000, proto: "udp"),
        ])
        let ports = bound.mappings.map(\.hostPort)
        let proxyPid = try bound.startProxy(
            to: containerAddress, containerPid: container.processIdentifier, proxy: Self.proxy)
        var proxyStatus: Int32? = nil
        defer {
            if proxyStatus == nil {
                kill(proxyPid, SIGKILL)
                waitpid(proxyPid, nil, 0)
            }
        }

        // TCP: 4 MiB there and back, then the echo's half-close reaches the client as EOF.
        let client = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        var target = PublishedPorts.socketAddress(Self.localhost, ports[0])
        let connected = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(connected == 0, "connect: \(PublishedPorts.errorText(errno))")
        let sent = (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
        let writer = Thread {
            var at = 0
            while at < sent.count {
                let n = sent[at...].withUnsafeBytes { write(client, $0.baseAddress, min($0.count, 1 << 16)) }
                if n <= 0 { break }
                at += n
            }
            shutdown(client, Int32(SHUT_WR))
        }
        writer.start()
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        while true {
            let n = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        #expect(received.count == sent.count)
        #expect(received == sent, "the bytes came back changed")

        // UDP: a datagram there, the answer back from the published port.
        let udp = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(udp) }
        setsockopt(udp, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var udpTarget = PublishedPorts.socketAddress(Self.localhost, ports[1])
        let ping = Array("ping".utf8)
        _ = withUnsafePointer(to: &udpTarget) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { to in
                ping.withUnsafeBytes {
                    sendto(udp, $0.baseAddress, $0.count, 0, to, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        var from = sockaddr_in()
        var fromLength = socklen_t(MemoryLayout<sockaddr_in>.size)
        let n = withUnsafeMutablePointer(to: &from) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { from in
                buffer.withUnsafeMutableBytes { recvfrom(udp, $0.baseAddress, $0.count, 0, from, &fromLength) }
            }
        }
        #expect(n > 0 && String(decoding: buffer[0..<max(n, 0)], as: UTF8.self) == "PING")
        #expect(UInt16(bigEndian: from.sin_port) == ports[1], "the answer comes from the published port")

        // The container ends: the proxy follows within a moment, by itself.
        kill(container.processIdentifier, SIGKILL)
        container.waitUntilExit()
        var status: Int32 = 0
        for _ in 0..<500 where proxyStatus == nil {
            if waitpid(proxyPid, &status, WNOHANG) == proxyPid { proxyStatus = status } else { usleep(10_000) }
        }
        #expect(proxyStatus == 0, "the proxy did not exit with the container")
        // Nothing kept the ports here either: they are free again.
        let (again, _) = try Self.socket(port: ports[0])
        close(again)
    }

    @Test func aProxyForAProcessThatIsGoneExitsAtOnce() throws {
        let bound = try PublishedPorts.bind([PortMapping(hostIP: Self.localhost, hostPort: 0, containerPort: 80)])
        let port = bound.mappings[0].hostPort
        // A pid that is no process: the kernel's limit.
        let pid = try bound.startProxy(to: IPv4Address(10, 0, 0, 2), containerPid: 4_194_304, proxy: Self.proxy)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(status != 0)
        // The port went with it.
        let (fd, _) = try Self.socket(port: port)
        close(fd)
    }

    @Test func aMissingProxyIsAClearErrorAndThePortsAreLetGo() throws {
        let bound = try PublishedPorts.bind([PortMapping(hostIP: Self.localhost, hostPort: 0, containerPort: 80)])
        let port = bound.mappings[0].hostPort
        do {
            _ = try bound.startProxy(
                to: IPv4Address(10, 0, 0, 2), containerPid: getpid(), proxy: "/nonexistent/berth-proxy")
            Issue.record("a proxy that is not there started")
        } catch let error as PublishedPorts.Error {
            #expect(error.description == "start berth-proxy /nonexistent/berth-proxy: No such file or directory")
        }
        let (fd, _) = try Self.socket(port: port)
        close(fd)
    }
}
