import CNetlink
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// How berth talks to berth-netd, the process that runs a root's embedded DNS server: one line
/// over the unix socket ROOT/netd.sock (`reload`, `stop`), one line back (`ok` or `error: TEXT`).
/// Plain system calls, no swift-nio: the CLI links this module.
///
/// `reload` starts the daemon when none listens. Only one runs per root: it holds an exclusive
/// flock of ROOT/netd.lock for its lifetime, and one that cannot take it exits at once, so
/// callers racing to start it just connect again to the one that won.
public enum NameServerControl {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        /// What was being done ("connect to /var/lib/berth/netd.sock", "start berth-netd", ...).
        public var step: String
        /// The errno, or 0 when `detail` says what went wrong.
        public var errno: Int32
        /// berth-netd's own error text (its `error: TEXT` reply).
        public var detail: String?

        public init(step: String, errno: Int32 = 0, detail: String? = nil) {
            self.step = step
            self.errno = errno
            self.detail = detail
        }

        public var description: String {
            "berth-netd: \(step): " + (detail ?? String(cString: strerror(errno)))
        }
    }

    /// How long a call waits for a daemon to start and answer.
    static let startTimeout: Int64 = 5_000_000_000
    /// How long a reply may take (a reload binds listeners before it answers).
    static let replyTimeout: Int = 10

    /// Makes the root's berth-netd read the networks and endpoints again, starting it (the
    /// binary at `netd`) when none runs; returns once it has its listeners bound. Starts none
    /// when no network with the embedded DNS server has an endpoint: there is nothing to serve
    /// (a running one is still told, and exits).
    /// `networks`: those the caller needs served (their listeners' failures are thrown; the
    /// others' only logged); none: all.
    public static func reload(root: String, netd: String, networks: [String] = []) throws {
        let deadline = now() + startTimeout
        while true {
            let unreachable: Int32
            switch try send((["reload"] + networks).joined(separator: " "), root: root) {
            case .ok: return
            case .unreachable(let error): unreachable = error
            }
            guard needsServer(root: root) else { return }
            guard now() < deadline else {
                throw Error(step: "reach berth-netd at \(socketPath(root)) (see \(root)/netd.log)", errno: unreachable)
            }
            if try !start(root: root, netd: netd, deadline: deadline) {
                // Another daemon holds the lock (one starting, or one going away): ask again shortly.
                var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)
                nanosleep(&pause, nil)
            }
        }
    }

    /// Stops the root's berth-netd, if one runs, and returns once it is gone (its lock free).
    public static func stop(root: String) throws {
        _ = try send("stop", root: root)
        let lockPath = root + "/netd.lock"
        let deadline = now() + startTimeout
        while true {
            let fd = open(lockPath, O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                if errno == ENOENT { return }
                throw Error(step: "open \(lockPath)", errno: errno)
            }
            let taken = flock(fd, LOCK_EX | LOCK_NB) == 0
            close(fd)
            if taken { return }
            guard now() < deadline else { throw Error(step: "wait for berth-netd to stop", errno: EWOULDBLOCK) }
            var pause = timespec(tv_sec: 0, tv_nsec: 10_000_000)
            nanosleep(&pause, nil)
        }
    }

    public static func socketPath(_ root: String) -> String { root + "/netd.sock" }

    /// Whether any network that uses the embedded DNS server has an endpoint.
    static func needsServer(root: String) -> Bool {
        let store = NetworkStore(root: root)
        return store.networks().contains { $0.embeddedDNS && !store.endpoints(of: $0.name).isEmpty }
    }

    enum Outcome: Equatable {
        case ok
        /// Nobody listens (ENOENT, ECONNREFUSED), or the daemon went away before it answered.
        case unreachable(Int32)
    }

    /// One command, one reply line.
    static func send(_ command: String, root: String) throws -> Outcome {
        let path = socketPath(root)
        guard
            let fd = FileDescriptor(
                taking: socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0))
        else { throw Error(step: "socket", errno: errno) }
        var address = try unixAddress(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd.rawValue, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if connected != 0 {
            let error = errno
            if error == ENOENT || error == ECONNREFUSED { return .unreachable(error) }
            throw Error(step: "connect to \(path)", errno: error)
        }
        var timeout = timeval(tv_sec: replyTimeout, tv_usec: 0)
        setsockopt(fd.rawValue, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd.rawValue, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let line = Array((command + "\n").utf8)
        let sent = line.withUnsafeBytes { Glibc.send(fd.rawValue, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if sent != line.count {
            let error = errno
            if error == EPIPE || error == ECONNRESET { return .unreachable(error) }
            throw Error(step: "send \(command) to \(path)", errno: error)
        }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while !reply.contains(UInt8(ascii: "\n")) {
            let count = buffer.withUnsafeMutableBytes { recv(fd.rawValue, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == ECONNRESET { return .unreachable(ECONNRESET) }
                throw Error(step: "wait for the answer to \(command)", errno: errno)
            }
            // The end without a line: the daemon was going away (it closes pending connections).
            if count == 0 { return .unreachable(ECONNRESET) }
            reply += buffer[0..<count]
        }
        let text = String(decoding: reply.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        if text == "ok" { return .ok }
        let detail = text.hasPrefix("error: ") ? String(text.dropFirst(7)) : text
        throw Error(step: command, detail: detail)
    }

    /// Starts berth-netd for `root`, detached: its own session (no terminal's SIGHUP reaches
    /// it), stdio on /dev/null, no descriptor of ours but the readiness pipe (fd 3), and a
    /// grandchild of ours (it forks once more, `--detach`), so it outlives us and we reap the
    /// child at once. True once it says it listens (a byte on the pipe), false when it ended
    /// without (another one held the lock).
    static func start(root: String, netd: String, deadline: Int64) throws -> Bool {
        // A socket pair, made close-on-exec at once (pipe2 is behind _GNU_SOURCE for Swift):
        // another thread's spawn must not inherit it, or its EOF would never come.
        var ends: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &ends) == 0 else { throw Error(step: "socketpair", errno: errno) }
        guard let readEnd = FileDescriptor(taking: ends[0]) else { throw Error(step: "pipe", errno: EBADF) }
        // The write end must not be fd 3 itself: dup2(3, 3) would keep its close-on-exec flag.
        var writeNumber = ends[1]
        if writeNumber == 3 {
            writeNumber = fcntl(3, F_DUPFD_CLOEXEC, 4)
            close(3)
        }
        guard let writeEnd = FileDescriptor(taking: writeNumber) else { throw Error(step: "pipe", errno: errno) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd.rawValue, 3)
        // Other inherited descriptors (not close-on-exec ones of ours or of other threads) are
        // closed by berth-netd itself first thing: addclosefrom_np is behind _GNU_SOURCE too.

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // POSIX_SPAWN_SETSID (0x80, glibc 2.26) is behind _GNU_SOURCE, which Swift's import lacks.
        let setsid: Int32 = 0x80
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | setsid))
        var signals = sigset_t()
        sigemptyset(&signals)
        posix_spawnattr_setsigmask(&attributes, &signals)
        for signal in [SIGHUP, SIGINT, SIGTERM, SIGPIPE] { sigaddset(&signals, signal) }
        posix_spawnattr_setsigdefault(&attributes, &signals)

        let arguments = [netd, "--root", root, "--detach", "--ready-fd", "3"]
        let environment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer { for string in argv + envp { free(string) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, netd, &actions, &attributes, argv, envp)
        guard spawned == 0 else { throw Error(step: "start \(netd)", errno: spawned) }
        _ = consume writeEnd
        // The child forks the daemon and exits at once; reap it.
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}

        var byte: UInt8 = 0
        while true {
            let left = Int32(max(0, min((deadline - now()) / 1_000_000, 5000)))
            var poller = pollfd(fd: readEnd.rawValue, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, left)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { throw Error(step: "wait for \(netd) to listen (see \(root)/netd.log)", errno: ETIMEDOUT) }
            let count = read(readEnd.rawValue, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            return count == 1
        }
    }

    /// The sockaddr of a unix socket path; ENAMETOOLONG past sun_path's 107 bytes.
    public static func unixAddress(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw Error(step: "socket path \(path)", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        return address
    }

    /// CLOCK_MONOTONIC in nanoseconds.
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
