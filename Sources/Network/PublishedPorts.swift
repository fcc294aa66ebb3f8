import CNetlink
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A container's published ports on the host's side: bound before the container starts, so a
/// port in use fails the start with nothing left behind, then handed to berth-proxy, which
/// carries what arrives on them (loopback above all: nftables' DNAT serves the rest) to the
/// container until it exits.
public enum PublishedPorts {
    /// A port that could not be bound or handed on: one line, Docker's wording where it has one.
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Binds every mapping now (tcp: listening; udp: bound), in order. Ephemeral ports (0) are
    /// given by the kernel and a host range (`8000-8010:80`) takes its first free port: the
    /// returned mappings carry the real ports. On any failure, nothing stays open.
    public static func bind(_ mappings: [PortMapping]) throws -> BoundPorts {
        var bound = BoundPorts()
        for mapping in mappings {
            var real = mapping
            let (fd, port) = try bindOne(mapping)
            bound.descriptors.append(fd)  // owned by `bound` from here: closed if a later one fails
            real.hostPort = port
            real.hostPortEnd = nil
            bound.mappings.append(real)
        }
        return bound
    }

    private static func bindOne(_ mapping: PortMapping) throws -> (Int32, UInt16) {
        let ip = mapping.hostIP ?? IPv4Address(0, 0, 0, 0)
        guard mapping.proto == "tcp" || mapping.proto == "udp" else {
            throw Error(description: "Bind for \(ip):\(mapping.hostPort) failed: unsupported protocol \(mapping.proto)")
        }
        let tcp = mapping.proto == "tcp"
        let candidates = mapping.hostPort...max(mapping.hostPort, mapping.hostPortEnd ?? mapping.hostPort)
        var failure: Int32 = 0
        let type = Int32(tcp ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        for port in candidates {
            guard let socket = FileDescriptor(taking: Glibc.socket(AF_INET, type, 0)) else {
                throw Error(description: "Bind for \(ip):\(port) failed: socket: \(errorText(errno))")
            }
            // As docker-proxy (Go's net.Listen) does for tcp, so that a port whose last
            // connections linger in TIME_WAIT can be published again; never for udp, where it
            // would let two sockets share the port.
            var one: Int32 = 1
            if tcp { setsockopt(socket.rawValue, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) }
            var address = socketAddress(ip, port)
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.bind(socket.rawValue, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if rc != 0 {
                failure = errno
                if failure == EADDRINUSE { continue }  // the next port of a range, if any
                throw Error(description: "Bind for \(ip):\(port) failed: \(errorText(failure))")
            }
            if tcp && listen(socket.rawValue, SOMAXCONN) != 0 {
                throw Error(description: "Bind for \(ip):\(port) failed: listen: \(errorText(errno))")
            }
            var actual = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &actual) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket.rawValue, $0, &length) }
            }
            return (socket.release(), UInt16(bigEndian: actual.sin_port))
        }
        let what = mapping.hostPortEnd.map { "\(mapping.hostPort)-\($0)" } ?? "\(mapping.hostPort)"
        throw Error(description: "Bind for \(ip):\(what) failed: port is already allocated (\(errorText(failure)))")
    }

    static func socketAddress(_ ip: IPv4Address, _ port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        withUnsafeMutableBytes(of: &address.sin_addr) { $0.copyBytes(from: ip.array) }
        return address
    }

    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }
}

/// Published ports bound and not yet handed to a proxy; closed when the value ends unless
/// `startProxy` took them.
public struct BoundPorts: ~Copyable {
    /// The mappings as bound: real host ports, no ranges.
    public internal(set) var mappings: [PortMapping] = []
    /// One listening (tcp) or bound (udp) socket per mapping, in the same order.
    var descriptors: [Int32] = []

    init() {}

    /// Starts berth-proxy (at path `proxy`) carrying each port to `containerAddress`, until the
    /// process `containerPid` ends (the proxy watches it with a pidfd) or it gets SIGTERM, and
    /// returns its pid. The proxy runs in a session of its own with stdio on /dev/null; it is a
    /// child of this process, which reaps it if it outlives it (waitpid), or leaves it to init.
    /// The sockets are closed here once handed on, whether the start succeeded or not.
    public consuming func startProxy(to containerAddress: IPv4Address, containerPid: Int32, proxy: String) throws
        -> Int32
    {
        guard !descriptors.isEmpty else { throw PublishedPorts.Error(description: "no published ports to proxy") }
        // Each socket goes to descriptor 3 + i in the proxy. Copies above that range first, so
        // that no dup2 of the spawn overwrites a socket still to be placed; they are CLOEXEC, the
        // dup2'ed ones are not.
        let first = Int32(3)
        var copies: [Int32] = []
        defer { for fd in copies { close(fd) } }
        for fd in descriptors {
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, first + Int32(descriptors.count))
            guard copy >= 0 else {
                throw PublishedPorts.Error(description: "start berth-proxy: dup: \(PublishedPorts.errorText(errno))")
            }
            copies.append(copy)
        }
        var arguments = [proxy, "--pid", "\(containerPid)"]
        for (i, mapping) in mappings.enumerated() {
            arguments.append("\(first + Int32(i)):\(mapping.proto):\(containerAddress):\(mapping.containerPort)")
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDWR, 0)
        posix_spawn_file_actions_adddup2(&actions, 0, 1)
        posix_spawn_file_actions_adddup2(&actions, 0, 2)
        for (i, copy) in copies.enumerated() { posix_spawn_file_actions_adddup2(&actions, copy, first + Int32(i)) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        // POSIX_SPAWN_SETSID (glibc, _GNU_SOURCE only, so not visible from Swift): a session of
        // its own, away from the terminal and process group of the berth command that started it.
        let setsid: Int32 = 0x80
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | setsid))

        let argv = arguments.map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        let environment: [UnsafeMutablePointer<CChar>?] = [nil]
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, proxy, &actions, &attributes, argv, environment)
        guard rc == 0 else {
            throw PublishedPorts.Error(description: "start berth-proxy \(proxy): \(PublishedPorts.errorText(rc))")
        }
        return pid
    }

    deinit {
        for fd in descriptors { close(fd) }
    }
}
