import CNetlink
import NIOCore
import NIOPosix
import Network
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// berth-netd: runs the NameServer of one root and takes commands on ROOT/netd.sock (see
/// NameServerControl, the other end):
///
///     reload  read networks and endpoints again, bind and close listeners; `ok` once bound
///             (`error: TEXT` for what failed). With no endpoint left on a served network the
///             daemon then exits: nothing to answer.
///     stop    exit.
///
/// One per root: it holds an exclusive flock of ROOT/netd.lock while it lives, and exits at
/// once when another has it. ROOT/netd.pid has its pid; errors go to ROOT/netd.log.
public enum NameServerDaemon {
    struct Options {
        var root = ""
        var detach = false
        var readyFD: Int32 = -1
    }

    public static func main(_ arguments: [String]) -> Never {
        guard let options = parse(arguments) else {
            StandardStreams.writeError("usage: berth-netd --root ROOT [--detach] [--ready-fd FD]\n")
            exit(2)
        }
        if options.detach {
            // The caller spawned us in a session of our own; fork once more so that the caller
            // can reap its child at once and the daemon is nobody's child (no zombie in a
            // long-lived caller). No other thread exists yet, so fork is safe.
            let child = fork()
            if child < 0 { exit(1) }
            if child > 0 { _exit(0) }
        }
        closeInheritedDescriptors(keeping: options.readyFD)
        exit(run(options))
    }

    static func parse(_ arguments: [String]) -> Options? {
        var options = Options()
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            switch argument {
            case "--root": options.root = rest.popFirst() ?? ""
            case "--detach": options.detach = true
            case "--ready-fd":
                guard let fd = rest.popFirst().flatMap({ Int32($0) }) else { return nil }
                options.readyFD = fd
            default: return nil
            }
        }
        return options.root.isEmpty ? nil : options
    }

    static func run(_ options: Options) -> Int32 {
        let root = options.root
        let log = Log(path: root + "/netd.log")
        signal(SIGPIPE, SIG_IGN)
        signal(SIGHUP, SIG_IGN)

        // The lock first: a daemon that loses it leaves everything to the winner.
        guard
            let lock = Support.FileDescriptor(taking: open(root + "/netd.lock", O_RDONLY | O_CREAT | O_CLOEXEC, 0o600))
        else {
            log.write("cannot open \(root)/netd.lock: \(String(cString: strerror(errno)))")
            return 1
        }
        guard flock(lock.rawValue, LOCK_EX | LOCK_NB) == 0 else { return 0 }
        // Let go last, after the socket and pid files are gone (and keeps `lock` alive till then).
        defer { flock(lock.rawValue, LOCK_UN) }

        guard let stopPipe = SignalPipe() else {
            log.write("cannot make the signal pipe: \(String(cString: strerror(errno)))")
            return 1
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let server = NameServer(root: root, group: group) { log.write($0) }
        defer { server.shutdown() }
        do { try server.reload() } catch { log.write("reload: \(error)") }

        let socketPath = NameServerControl.socketPath(root)
        let listener: Support.FileDescriptor
        do { listener = try listen(socketPath) } catch {
            log.write("\(error)")
            return 1
        }
        defer { unlink(socketPath) }
        let pidPath = root + "/netd.pid"
        let pid = Array("\(getpid())\n".utf8)
        do { try pid.withUnsafeBytes { try Files.replace(pidPath, with: $0, mode: 0o644) } } catch {
            log.write("\(error)")
        }
        defer { unlink(pidPath) }

        log.write("serving \(server.listening.sorted { $0.key < $1.key }.map { "\($0.key) on \($0.value)" })")
        // Ready: the starter's pipe gets its byte and is let go.
        if options.readyFD >= 0 {
            var byte = UInt8(ascii: "1")
            _ = write(options.readyFD, &byte, 1)
            close(options.readyFD)
        }

        while true {
            var fds = [
                pollfd(fd: listener.rawValue, events: Int16(POLLIN), revents: 0),
                pollfd(fd: stopPipe.readEnd, events: Int16(POLLIN), revents: 0),
            ]
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                log.write("poll: \(String(cString: strerror(errno)))")
                return 1
            }
            if fds[1].revents != 0 { return 0 }
            guard fds[0].revents != 0 else { continue }
            // accept4 is behind _GNU_SOURCE for Swift; nothing here forks, so plain accept will do.
            guard let connection = Support.FileDescriptor(taking: accept(listener.rawValue, nil, nil)) else { continue }
            switch serve(connection, server: server, log: log) {
            case .goOn: continue
            case .exit: return 0
            }
        }
    }

    enum Next { case goOn, exit }

    /// One command from one connection.
    static func serve(_ descriptor: borrowing Support.FileDescriptor, server: NameServer, log: Log) -> Next {
        let fd = descriptor.rawValue
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var line: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while !line.contains(UInt8(ascii: "\n")), line.count < 65536 {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return .goOn }
            line += buffer[0..<count]
        }
        let command = String(decoding: line.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        func reply(_ text: String) {
            let bytes = Array((text + "\n").utf8)
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        let words = command.split(separator: " ").map(String.init)
        switch words.first ?? "" {
        case "reload":
            // "reload NETWORK...": what a joining container needs; the others' failures are
            // logged but do not fail its start.
            do {
                try server.reload(networks: Set(words.dropFirst()))
                reply("ok")
            } catch let error as NameServer.Error where !error.concernsCaller {
                log.write("reload: \(error)")
                reply("ok")
            } catch {
                log.write("reload: \(error)")
                reply("error: \(error)")
            }
            guard server.hasEndpoints else {
                log.write("no endpoint left on a network it serves: exiting")
                return .exit
            }
            return .goOn
        case "stop":
            reply("ok")
            return .exit
        default:
            reply("error: unknown command \"\(command)\"")
            return .goOn
        }
    }

    /// The control socket, made afresh: we hold the lock, so one left at the path is stale.
    static func listen(_ path: String) throws -> Support.FileDescriptor {
        do { return try DaemonControl.listen(path, daemon: "berth-netd") } catch {
            throw NameServer.Error(description: "\(error)")
        }
    }

    /// Every descriptor but stdio and the readiness pipe: the starter's own open files are not
    /// ours to keep open (posix_spawn's closefrom is not in Swift's view of glibc).
    static func closeInheritedDescriptors(keeping kept: Int32) {
        guard let dir = opendir("/proc/self/fd") else { return }
        var numbers: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let fd = Int32(name), fd > 2, fd != kept { numbers.append(fd) }
        }
        let own = dirfd(dir)
        closedir(dir)
        for fd in numbers where fd != own { close(fd) }
    }
}

/// ROOT/netd.log: one short line per event, appended.
struct Log: Sendable {
    let path: String

    func write(_ message: String) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let line = Array("\(now.tv_sec) berth-netd[\(getpid())]: \(message)\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }
}

/// SIGTERM and SIGINT as a byte on a pipe that the control loop polls (a handler may run on
/// any thread; writing to a pipe is all it does, which is async-signal-safe).
private nonisolated(unsafe) var signalPipeWriteEnd: Int32 = -1

private struct SignalPipe {
    let readEnd: Int32

    init?() {
        // A socket pair rather than pipe2, which Swift's view of glibc lacks.
        var ends: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        guard socketpair(AF_UNIX, type, 0, &ends) == 0 else { return nil }
        readEnd = ends[0]
        signalPipeWriteEnd = ends[1]
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            var byte: UInt8 = 1
            _ = write(signalPipeWriteEnd, &byte, 1)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(SIGTERM, &action, nil)
        sigaction(SIGINT, &action, nil)
    }
}
