import CNetlink
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// An rtnetlink connection to one network namespace: requests (acknowledged, failures thrown with
/// their errno) and dumps. It is handed a namespace, never a container, and runs no `ip`: links,
/// addresses and routes are messages built here (Links.swift, Addresses.swift, Routes.swift).
/// One thread at a time.
public final class Netlink {
    /// A request the kernel refused, or a socket call that failed: what was asked and the errno.
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public var operation: String
        public var errno: Int32

        public init(operation: String, errno: Int32) {
            self.operation = operation
            self.errno = errno
        }

        public var description: String { "\(operation): \(String(cString: strerror(errno)))" }
    }

    private let socket: FileDescriptor
    private var sequence: UInt32 = 0

    /// A connection to the namespace open on `namespace` (a descriptor of /proc/PID/ns/net or of
    /// a bind-mounted nsfs file), or to this thread's own when nil.
    public init(namespace: Int32? = nil) throws {
        let fd = berth_socket_in_namespace(namespace ?? -1, AF_NETLINK, Int32(SOCK_RAW.rawValue), NETLINK_ROUTE)
        guard let socket = FileDescriptor(taking: fd) else {
            throw Error(operation: "open a netlink socket", errno: -fd)
        }
        self.socket = socket
    }

    /// A connection to the namespace at `path` (/proc/PID/ns/net, /run/netns/NAME, ...).
    public convenience init(namespacePath path: String) throws {
        guard let ns = FileDescriptor(taking: open(path, O_RDONLY | O_CLOEXEC)) else {
            throw Error(operation: "open network namespace \(path)", errno: errno)
        }
        try self.init(namespace: ns.rawValue)
    }

    /// Sends `message` with NLM_F_ACK and waits for the kernel's answer.
    func request(_ message: NetlinkMessage, _ operation: @autoclosure () -> String) throws {
        let seq = try send(message)
        while true {
            for reply in try receive() where reply.type == UInt16(NLMSG_ERROR) {
                guard let error = reply.header(nlmsgerr.self), error.msg.nlmsg_seq == seq else { continue }
                if error.error != 0 { throw Error(operation: operation(), errno: -error.error) }
                return
            }
        }
    }

    /// Sends a request for one object and returns the kernel's answer (its error thrown).
    func get(_ message: NetlinkMessage, _ operation: @autoclosure () -> String) throws -> NetlinkReply {
        let seq = try send(message)
        while true {
            for reply in try receive() {
                if reply.type == UInt16(NLMSG_ERROR), let error = reply.header(nlmsgerr.self) {
                    guard error.msg.nlmsg_seq == seq else { continue }
                    throw Error(operation: operation(), errno: error.error != 0 ? -error.error : ENODATA)
                }
                return reply
            }
        }
    }

    /// Sends a dump request and returns every message of the answer.
    func dump(_ message: NetlinkMessage, _ operation: @autoclosure () -> String) throws -> [NetlinkReply] {
        let seq = try send(message)
        var all: [NetlinkReply] = []
        while true {
            for reply in try receive() {
                if reply.type == UInt16(NLMSG_DONE) {
                    // A dump the kernel could not finish ends with its errno here.
                    if let code = reply.body.count >= 4
                        ? reply.body.withUnsafeBytes({ $0.loadUnaligned(as: Int32.self) }) : nil,
                        code < 0
                    {
                        throw Error(operation: operation(), errno: -code)
                    }
                    return all
                }
                if reply.type == UInt16(NLMSG_ERROR), let error = reply.header(nlmsgerr.self),
                    error.msg.nlmsg_seq == seq, error.error != 0
                {
                    throw Error(operation: operation(), errno: -error.error)
                }
                all.append(reply)
            }
        }
    }

    private func send(_ message: NetlinkMessage) throws -> UInt32 {
        sequence &+= 1
        let bytes = message.finished(sequence: sequence)
        var kernel = sockaddr_nl()
        kernel.nl_family = sa_family_t(AF_NETLINK)
        let sent = bytes.withUnsafeBytes { raw in
            withUnsafePointer(to: &kernel) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(
                        socket.rawValue, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                }
            }
        }
        guard sent == bytes.count else { throw Error(operation: "send a netlink request", errno: errno) }
        return sequence
    }

    private func receive() throws -> [NetlinkReply] {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(socket.rawValue, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Error(operation: "read a netlink answer", errno: n < 0 ? errno : EPROTO) }
            return NetlinkReply.parse(Array(buffer[0..<n]), headerSize: Netlink.headerSize)
        }
    }

    /// The size of the family header that follows nlmsghdr in a message of `type`.
    static func headerSize(_ type: UInt16) -> Int {
        switch Int32(type) {
        case Int32(NLMSG_ERROR): return MemoryLayout<nlmsgerr>.size
        case Int32(RTM_NEWLINK), Int32(RTM_DELLINK): return MemoryLayout<ifinfomsg>.size
        case Int32(RTM_NEWADDR), Int32(RTM_DELADDR): return MemoryLayout<ifaddrmsg>.size
        case Int32(RTM_NEWROUTE), Int32(RTM_DELROUTE): return MemoryLayout<rtmsg>.size
        default: return 0
        }
    }
}
