#if canImport(Glibc)
    import Glibc
#endif

/// A short-lived helper program run to completion (nft, a Docker credential helper): its input
/// given, its output collected.
public enum ChildProcess {
    public struct Output {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Why the program could not be run at all.
    public struct Failure: Swift.Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Runs `path` with `arguments`, `input` on its stdin, and collects stdout and stderr (both
    /// read as they fill, so a long output cannot block it). `environment` is the child's whole
    /// environment ("NAME=value"); nil passes this process's on.
    public static func run(_ path: String, _ arguments: [String], input: String, environment: [String]? = nil) throws
        -> Output
    {
        var pipes: [[Int32]] = []
        defer { for pair in pipes { for fd in pair where fd >= 0 { close(fd) } } }
        // Socket pairs rather than pipes: made CLOEXEC at once (pipe2 is not visible from Swift),
        // and a send() with MSG_NOSIGNAL cannot raise SIGPIPE here when nft exits before reading
        // its input.
        for _ in 0..<3 {
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw Failure(message: "socketpair: \(String(cString: strerror(errno)))")
            }
            pipes.append(pair)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipes[0][0], 0)
        posix_spawn_file_actions_adddup2(&actions, pipes[1][1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipes[2][1], 2)
        // The caller's blocked and ignored signals are not the program's (a test runner blocks
        // SIGCHLD; berth ignores SIGPIPE).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGCHLD, SIGINT, SIGTERM, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        var env = environment.map { $0.map { strdup($0) } + [nil] }
        defer { for item in env ?? [] { free(item) } }
        var pid: pid_t = 0
        let rc =
            env == nil
            ? posix_spawn(&pid, path, &actions, &attributes, argv, environ)
            : env!.withUnsafeMutableBufferPointer {
                posix_spawn(&pid, path, &actions, &attributes, argv, $0.baseAddress)
            }
        guard rc == 0 else { throw Failure(message: "\(path): \(String(cString: strerror(rc)))") }
        for (i, end) in [(0, 0), (1, 1), (2, 1)] {  // the child's ends
            close(pipes[i][end])
            pipes[i][end] = -1
        }

        // Feed stdin while draining stdout and stderr.
        var pending = Array(input.utf8)
        var outputs: [[UInt8]] = [[], []]
        if pending.isEmpty {
            close(pipes[0][1])
            pipes[0][1] = -1
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while pipes[1][0] >= 0 || pipes[2][0] >= 0 {
            var polled = [
                pollfd(fd: pipes[0][1], events: Int16(POLLOUT), revents: 0),
                pollfd(fd: pipes[1][0], events: Int16(POLLIN), revents: 0),
                pollfd(fd: pipes[2][0], events: Int16(POLLIN), revents: 0),
            ]
            if poll(&polled, 3, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            if pipes[0][1] >= 0 && polled[0].revents != 0 {
                let n = pending.withUnsafeBytes { send(pipes[0][1], $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n > 0 { pending.removeFirst(n) }
                if n <= 0 && errno != EINTR && errno != EAGAIN || pending.isEmpty {
                    close(pipes[0][1])
                    pipes[0][1] = -1
                }
            }
            for i in 1...2 where polled[i].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(pipes[i][0], $0.baseAddress, $0.count) }
                if n > 0 {
                    outputs[i - 1] += buffer[0..<n]
                } else if n == 0 || errno != EINTR {
                    close(pipes[i][0])
                    pipes[i][0] = -1
                }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Output(
            status: code, stdout: String(decoding: outputs[0], as: UTF8.self),
            stderr: String(decoding: outputs[1], as: UTF8.self))
    }
}
