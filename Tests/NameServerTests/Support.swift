import CNetlink
import Foundation
import NameServer
import Network
import TestSupport

/// A temporary ROOT under /tmp; `remove()` (in a defer) stops any berth-netd of it first.
final class TemporaryRoot {
    let path: String

    init() throws {
        var template = Array("/tmp/berth-dns-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        path = String(cString: made)
    }

    func remove() {
        try? NameServerControl.stop(root: path)
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// berth-netd, built in the same folder as the test bundle (as BerthProcess finds `berth`).
let netdExecutable: String = {
    let runner =
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: runner).deletingLastPathComponent()
    while !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("berth-netd").path), dir.path != "/"
    {
        dir.deleteLastPathComponent()
    }
    return dir.appendingPathComponent("berth-netd").path
}()

/// A /24 of 127/8 of a test's own: 127.X.Y.0, X from the pid (runs of the suite apart), Y a
/// counter (tests in one run apart). All of 127/8 is local, so anything binds there.
enum Loopback {
    private static let counter = NSLock()
    nonisolated(unsafe) private static var next = 0

    static func subnet() -> (UInt8, UInt8) {
        counter.lock()
        defer { counter.unlock() }
        next += 1
        return (UInt8(100 + getpid() % 100), UInt8(next * 4 % 250))
    }
}

/// A DNS client for the tests: a socket bound to the asking container's address.
enum Client {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func address(_ text: String, port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, text, &address.sin_addr)
        return address
    }

    static func socket(_ type: Int32, from source: String, timeout: Int = 4) throws -> Int32 {
        let fd = Glibc.socket(AF_INET, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(errno)") }
        var local = address(source, port: 0)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            close(fd)
            throw Failure(description: "bind \(source): \(String(cString: strerror(errno)))")
        }
        var time = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func query(_ name: String, type: UInt16 = DNSMessage.typeA, id: UInt16 = 0x4242) -> [UInt8] {
        DNSMessage(id: id, flags: 0x0100, questions: [.init(name: DNSMessage.Name(name)!, type: type)]).bytes
    }

    /// One datagram to SERVER:53 from SOURCE, the answer back (nil: none in time).
    static func udp(
        _ bytes: [UInt8], to server: String, port: UInt16 = 53, from source: String, timeout: Int = 4
    ) throws -> [UInt8]? {
        let fd = try socket(Int32(SOCK_DGRAM.rawValue), from: source, timeout: timeout)
        defer { close(fd) }
        var remote = address(server, port: port)
        let sent = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard sent == bytes.count else { throw Failure(description: "sendto: \(String(cString: strerror(errno)))") }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count < 0 ? nil : Array(buffer[0..<count])
    }

    /// One length-framed message over TCP, the answer back.
    static func tcp(_ bytes: [UInt8], to server: String, port: UInt16 = 53, from source: String) throws -> [UInt8]? {
        let fd = try socket(Int32(SOCK_STREAM.rawValue), from: source)
        defer { close(fd) }
        var remote = address(server, port: port)
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw Failure(description: "connect: \(String(cString: strerror(errno)))") }
        let framed = [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xff)] + bytes
        guard send(fd, framed, framed.count, Int32(MSG_NOSIGNAL)) == framed.count else {
            throw Failure(description: "send: \(String(cString: strerror(errno)))")
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while received.count < 2 || received.count < 2 + (Int(received[0]) << 8 | Int(received[1])) {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { return nil }
            received += buffer[0..<count]
        }
        return Array(received.dropFirst(2))
    }

    static func addresses(_ reply: [UInt8]?) throws -> [String] {
        guard let reply else { throw Failure(description: "no answer") }
        let message = try DNSMessage(parsing: reply)
        return message.answers.compactMap(\.ipv4).map { $0.map(String.init).joined(separator: ".") }.sorted()
    }
}

/// An upstream resolver for the tests, on a loopback address: answers every A question with
/// `answer` (UDP and TCP on one port), and counts what it was asked.
final class StubResolver: @unchecked Sendable {
    let address: String
    let port: UInt16
    let answer: (UInt8, UInt8, UInt8, UInt8)
    private let udp: Int32
    private let tcp: Int32
    private let stopPipe: [Int32]
    private let thread: Thread
    private let log = NameLog()

    /// The names asked, in order.
    final class NameLog: @unchecked Sendable {
        private let lock = NSLock()
        private var names: [String] = []

        func append(_ name: String) {
            lock.lock()
            names.append(name)
            lock.unlock()
        }

        var all: [String] {
            lock.lock()
            defer { lock.unlock() }
            return names
        }
    }

    init(address: String, answer: (UInt8, UInt8, UInt8, UInt8)) throws {
        self.address = address
        self.answer = answer
        let udp = try Client.socket(Int32(SOCK_DGRAM.rawValue), from: address)
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(udp, $0, &length) }
        }
        let port = UInt16(bigEndian: local.sin_port)
        let tcp = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var same = Client.address(address, port: port)
        _ = withUnsafePointer(to: &same) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(tcp, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        listen(tcp, 8)
        (self.udp, self.tcp, self.port) = (udp, tcp, port)
        var ends: [Int32] = [-1, -1]
        socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends)
        stopPipe = ends
        let (stop, log) = (ends[0], log)
        thread = Thread { StubResolver.serve(udp: udp, tcp: tcp, stop: stop, answer: answer, record: log.append) }
        thread.start()
    }

    var asked: [String] { log.all }

    func stop() {
        var byte: UInt8 = 1
        write(stopPipe[1], &byte, 1)
        // The thread closes the sockets; wait for it (bounded) so nothing outlives the test.
        for _ in 0..<200 where !thread.isFinished { usleep(10_000) }
        close(stopPipe[0])
        close(stopPipe[1])
    }

    private static func reply(to bytes: [UInt8], answer: (UInt8, UInt8, UInt8, UInt8), record: (String) -> Void)
        -> [UInt8]?
    {
        guard let query = try? DNSMessage(parsing: bytes), let question = query.questions.first else { return nil }
        record(question.name.key)
        return DNSMessage.response(
            to: query, code: .noError, answers: [DNSMessage.aRecord(question.name, address: answer, ttl: 30)]
        ).bytes
    }

    private static func serve(
        udp: Int32, tcp: Int32, stop: Int32, answer: (UInt8, UInt8, UInt8, UInt8), record: (String) -> Void
    ) {
        defer {
            close(udp)
            close(tcp)
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var fds = [
                pollfd(fd: udp, events: Int16(POLLIN), revents: 0), pollfd(fd: tcp, events: Int16(POLLIN), revents: 0),
                pollfd(fd: stop, events: Int16(POLLIN), revents: 0),
            ]
            guard poll(&fds, 3, 10_000) >= 0 else { continue }
            if fds[2].revents != 0 { return }
            if fds[0].revents != 0 {
                var from = sockaddr_in()
                var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                let count = withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(udp, &buffer, buffer.count, 0, $0, &length)
                    }
                }
                if count > 0, let out = reply(to: Array(buffer[0..<count]), answer: answer, record: record) {
                    _ = withUnsafePointer(to: &from) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(udp, out, out.count, 0, $0, length)
                        }
                    }
                }
            }
            if fds[1].revents != 0 {
                let connection = accept(tcp, nil, nil)
                guard connection >= 0 else { continue }
                var time = timeval(tv_sec: 2, tv_usec: 0)
                setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
                var received: [UInt8] = []
                while received.count < 2 || received.count < 2 + (Int(received[0]) << 8 | Int(received[1])) {
                    let count = recv(connection, &buffer, buffer.count, 0)
                    if count <= 0 { break }
                    received += buffer[0..<count]
                }
                if received.count >= 2,
                    let out = reply(to: Array(received.dropFirst(2)), answer: answer, record: record)
                {
                    let framed = [UInt8(out.count >> 8), UInt8(out.count & 0xff)] + out
                    _ = send(connection, framed, framed.count, Int32(MSG_NOSIGNAL))
                }
                close(connection)
            }
        }
    }
}

/// Whether ROOT/netd.lock is free (no berth-netd holds it).
func lockIsFree(_ root: String) -> Bool {
    let fd = open(root + "/netd.lock", O_RDONLY | O_CLOEXEC)
    if fd < 0 { return true }
    defer { close(fd) }
    return flock(fd, LOCK_EX | LOCK_NB) == 0
}

/// berth-netd processes running for `root` (from /proc/PID/cmdline).
func netdProcesses(root: String) -> [Int32] {
    let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
    return pids.filter { pid in
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard let first = arguments.first, first.hasSuffix("berth-netd") else { return false }
        return zip(arguments, arguments.dropFirst()).contains { $0 == "--root" && $1 == root }
    }
}
