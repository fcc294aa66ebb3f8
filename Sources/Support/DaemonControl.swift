#if canImport(Glibc)
    import Glibc
#endif

/// How a berth command talks to one of its long-lived processes (berth-netd, a project's
/// supervisor): one line over a unix socket, one line back (`ok`, `ok TEXT` or `error: TEXT`);
/// and how it starts one, detached, and knows it is ready. Plain system calls: every command may
/// need it, none should pay for more.
///
/// A daemon holds an exclusive flock of its lock file for its whole life, so "is one running"
/// and "is it gone" are questions to that lock, never to a pid that may have been reused.
public enum DaemonControl {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        /// Whose control this is ("berth-netd", "supervisor of webstack").
        public var daemon: String
        /// What was being done ("connect to /var/lib/berth/netd.sock", "start berth-netd", ...).
        public var step: String
        /// The errno, or 0 when `detail` says what went wrong.
        public var errno: Int32
        /// The daemon's own error text (its `error: TEXT` reply).
        public var detail: String?

        public init(daemon: String, step: String, errno: Int32 = 0, detail: String? = nil) {
            self.daemon = daemon
            self.step = step
            self.errno = errno
            self.detail = detail
        }

        public var description: String {
            "\(daemon): \(step): " + (detail ?? String(cString: strerror(errno)))
        }
    }

    public enum Outcome: Equatable {
        /// The reply after `ok` (empty for a bare `ok`).
        case ok(String)
        /// Nobody listens (ENOENT, ECONNREFUSED), or the daemon went away before it answered.
        case unreachable(Int32)
    }

    /// One command, one reply line; `replyTimeout` seconds at most for each way.
    public static func send(_ command: String, socket path: String, daemon: String, replyTimeout: Int = 10) throws
        -> Outcome
    {
        func failure(_ step: String, _ error: Int32 = errno) -> Error {
            Error(daemon: daemon, step: step, errno: error)
        }
        guard
            let fd = FileDescriptor(
                taking: socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0))
        else { throw failure("socket") }
        var address = try unixAddress(path, daemon: daemon)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd.rawValue, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if connected != 0 {
            let error = errno
            if error == ENOENT || error == ECONNREFUSED { return .unreachable(error) }
            throw failure("connect to \(path)", error)
        }
        var timeout = timeval(tv_sec: replyTimeout, tv_usec: 0)
        setsockopt(fd.rawValue, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd.rawValue, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let line = Array((command + "\n").utf8)
        let sent = line.withUnsafeBytes { Glibc.send(fd.rawValue, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if sent != line.count {
            let error = errno
            if error == EPIPE || error == ECONNRESET { return .unreachable(error) }
            throw failure("send \(command) to \(path)", error)
        }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !reply.contains(UInt8(ascii: "\n")) {
            let count = buffer.withUnsafeMutableBytes { recv(fd.rawValue, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == ECONNRESET { return .unreachable(ECONNRESET) }
                throw failure("wait for the answer to \(command)")
            }
            // The end without a line: the daemon was going away (it closes pending connections).
            if count == 0 { return .unreachable(ECONNRESET) }
            reply += buffer[0..<count]
        }
        let text = String(decoding: reply.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        if text == "ok" { return .ok("") }
        if text.hasPrefix("ok ") { return .ok(String(text.dropFirst(3))) }
        let detail = text.hasPrefix("error: ") ? String(text.dropFirst(7)) : text
        throw Error(daemon: daemon, step: command, detail: detail)
    }

    /// Starts `arguments` detached: its own session (no terminal's SIGHUP reaches it), stdio on
    /// /dev/null, default signal handling, no descriptor of ours but a readiness socket as fd 3,
    /// on which it writes one byte once it serves (or `failureByte` when it could not start:
    /// then this throws, pointing at its log). `reap`: the program forks once more and its
    /// first process exits at once (berth-netd's `--detach`), so it is reaped here and the daemon
    /// is nobody's child; otherwise the daemon stays this process's child until this one ends.
    /// True once it says it is ready, false when it ended without (another one held the lock).
    public static func spawnDetached(
        _ arguments: [String], environment: [String], daemon: String, reap: Bool, deadline: Int64, log: String
    ) throws -> Bool {
        func failure(_ step: String, _ error: Int32 = errno) -> Error {
            Error(daemon: daemon, step: step, errno: error)
        }
        // A socket pair, made close-on-exec at once (pipe2 is behind _GNU_SOURCE for Swift):
        // another thread's spawn must not inherit it, or its EOF would never come.
        var ends: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &ends) == 0 else { throw failure("socketpair") }
        guard let readEnd = FileDescriptor(taking: ends[0]) else { throw failure("pipe", EBADF) }
        // The write end must not be fd 3 itself: dup2(3, 3) would keep its close-on-exec flag.
        var writeNumber = ends[1]
        if writeNumber == 3 {
            writeNumber = fcntl(3, F_DUPFD_CLOEXEC, 4)
            close(3)
        }
        guard let writeEnd = FileDescriptor(taking: writeNumber) else { throw failure("pipe") }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd.rawValue, 3)
        // Other inherited descriptors (not close-on-exec ones of ours or of other threads) are
        // closed by the daemon itself first thing: addclosefrom_np is behind _GNU_SOURCE too.

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // POSIX_SPAWN_SETSID (0x80, glibc 2.26) is behind _GNU_SOURCE, which Swift's import lacks.
        let setsid: Int32 = 0x80
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | setsid))
        var signals = sigset_t()
        sigemptyset(&signals)
        posix_spawnattr_setsigmask(&attributes, &signals)
        for signal in [SIGHUP, SIGINT, SIGTERM, SIGPIPE, SIGCHLD] { sigaddset(&signals, signal) }
        posix_spawnattr_setsigdefault(&attributes, &signals)

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer { for string in argv + envp { free(string) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp)
        guard spawned == 0 else { throw failure("start \(arguments[0])", spawned) }
        _ = consume writeEnd
        if reap {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }

        var byte: UInt8 = 0
        while true {
            let left = Int32(max(0, min((deadline - now()) / 1_000_000, 10_000)))
            var poller = pollfd(fd: readEnd.rawValue, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, left)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { throw failure("wait for \(arguments[0]) to be ready (see \(log))", ETIMEDOUT) }
            let count = read(readEnd.rawValue, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            if count == 1 && byte == failureByte {
                throw Error(daemon: daemon, step: "start \(arguments[0])", detail: "it could not start (see \(log))")
            }
            return count == 1
        }
    }

    /// What a daemon writes on its readiness socket when it fails before it serves.
    public static let failureByte = UInt8(ascii: "!")

    /// Whether a process holds `path`'s flock exclusively (a daemon that runs); false when the
    /// file is missing. Asked with a shared lock, so that any number of askers never make each
    /// other see a daemon (they may, for an instant, delay a daemon's own start: see `lock`).
    public static func isHeld(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return flock(fd, LOCK_SH | LOCK_NB) != 0
    }

    /// A daemon's exclusive lock of `path` for its life: false when another daemon holds it.
    /// Tried for 100 ms, so that an `isHeld` asking at that instant is not taken for a daemon.
    public static func lock(_ fd: Int32) -> Bool {
        for _ in 0..<50 {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
            var pause = timespec(tv_sec: 0, tv_nsec: 2_000_000)
            nanosleep(&pause, nil)
        }
        return false
    }

    /// Returns once nobody holds `path`'s flock (the daemon is gone), or throws at the deadline.
    public static func waitUntilFree(_ path: String, daemon: String, deadline: Int64) throws {
        while isHeld(path) {
            guard now() < deadline else { throw Error(daemon: daemon, step: "wait for it to stop", errno: EWOULDBLOCK) }
            var pause = timespec(tv_sec: 0, tv_nsec: 10_000_000)
            nanosleep(&pause, nil)
        }
    }

    /// A listening unix socket at `path`, made afresh (the caller holds the daemon's lock, so a
    /// socket left there is stale), mode 0600.
    public static func listen(_ path: String, daemon: String) throws -> FileDescriptor {
        unlink(path)
        guard
            let fd = FileDescriptor(
                taking: socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0))
        else { throw Error(daemon: daemon, step: "socket", errno: errno) }
        var address = try unixAddress(path, daemon: daemon)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd.rawValue, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, chmod(path, 0o600) == 0, Glibc.listen(fd.rawValue, 64) == 0 else {
            throw Error(daemon: daemon, step: "listen on \(path)", errno: errno)
        }
        return fd
    }

    /// The sockaddr of a unix socket path; ENAMETOOLONG past sun_path's 107 bytes.
    public static func unixAddress(_ path: String, daemon: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw Error(daemon: daemon, step: "socket path \(path)", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        return address
    }

    /// CLOCK_MONOTONIC in nanoseconds.
    public static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
