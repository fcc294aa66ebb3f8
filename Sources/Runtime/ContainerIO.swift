import CRuntime
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// The descriptors around a container process. The child's ends are dup'ed onto its 0, 1, 2.
/// For an `exec`, berth reads the output itself (stdoutReader/stderrReader). For the container's
/// main process, berth-shim does: it gets the output's read ends (shimStdout/shimStderr), writes
/// them to the log, and copies them to the caller through tee pipes when the caller wants them
/// (then stdoutReader/stderrReader are the tees' read ends); it closes `notifyWriter` once the
/// exit is on disk.
final class ProcessIO {
    var childStdin: Int32 = -1, childStdout: Int32 = -1, childStderr: Int32 = -1
    var stdinWriter: Int32 = -1
    var stdoutReader: Int32 = -1, stderrReader: Int32 = -1
    /// The shim's ends (main process only).
    var shimStdout: Int32 = -1, shimStderr: Int32 = -1, teeStdout: Int32 = -1, teeStderr: Int32 = -1
    var shimHold: Int32 = -1, notifyWriter: Int32 = -1, notifyReader: Int32 = -1
    let tty: Bool

    /// `tee`: the caller reads the output (foreground); otherwise only the log gets it.
    init(stdio: Container.Stdio, container: String, supervised: Bool = false) throws {
        func fail(_ step: String) -> Container.Error {
            Container.Error(container: container, step: step, detail: ProcFS.errnoText(errno))
        }
        func pipe() throws -> (read: Int32, write: Int32) {
            var fds: [Int32] = [0, 0]
            guard berth_pipe_cloexec(&fds, 0) == 0 else {
                let e = fail("pipe")
                closeAll()
                throw e
            }
            return (fds[0], fds[1])
        }
        let wantsStdin: Bool, tee: Bool
        switch stdio {
        case .tty: (tty, wantsStdin, tee) = (true, true, true)
        case .pipes(let stdin): (tty, wantsStdin, tee) = (false, stdin, true)
        case .detached(let stdin, let terminal): (tty, wantsStdin, tee) = (terminal, stdin, false)
        }
        if tty {
            var master: Int32 = -1, slave: Int32 = -1
            let rc = berth_open_pty(&master, &slave)
            guard rc == 0 else {
                errno = -rc
                throw fail("open pseudo-terminal")
            }
            if tee && isatty(STDOUT_FILENO) != 0 {
                var rows: UInt16 = 0, cols: UInt16 = 0
                if berth_ioctl_get_winsize(STDOUT_FILENO, &rows, &cols) == 0 { berth_ioctl_winsize(master, rows, cols) }
            }
            (childStdin, childStdout, childStderr) = (slave, slave, slave)
            stdinWriter = master
            stdoutReader = master
        } else {
            let out = try pipe(), err = try pipe()
            (stdoutReader, childStdout) = (out.read, out.write)
            (stderrReader, childStderr) = (err.read, err.write)
            if wantsStdin {
                let input = try pipe()
                (childStdin, stdinWriter) = (input.read, input.write)
            } else {
                childStdin = open("/dev/null", O_RDONLY | O_CLOEXEC)
            }
        }
        guard supervised else { return }
        // The output's read ends go to the shim; the caller keeps tees of them, or nothing.
        shimStdout = tty ? dup(stdoutReader) : stdoutReader
        shimStderr = tty ? -1 : stderrReader
        _ = fcntl(shimStdout, F_SETFD, FD_CLOEXEC)
        (stdoutReader, stderrReader) = (-1, -1)
        if tee {
            let out = try pipe()
            (stdoutReader, teeStdout) = (out.read, out.write)
            if !tty {
                let err = try pipe()
                (stderrReader, teeStderr) = (err.read, err.write)
            }
        }
        if !tee {
            // Nobody writes to a detached container's stdin, but `-i` keeps it open (as Docker),
            // so an interactive shell waits instead of reading EOF: the shim holds the writer.
            if wantsStdin || tty { shimHold = stdinWriter }
            stdinWriter = -1
        }
        let notify = try pipe()
        (notifyReader, notifyWriter) = (notify.read, notify.write)
    }

    /// The descriptors berth-shim keeps across its exec.
    var shimDescriptors: [Int32] {
        [shimStdout, shimStderr, teeStdout, teeStderr, shimHold, notifyWriter].filter { $0 >= 0 }
    }

    func closeChildEnds() {
        for fd in Set([childStdin, childStdout, childStderr]) where fd >= 0 { close(fd) }
        childStdin = -1; childStdout = -1; childStderr = -1
    }

    /// After the shim has its copies.
    func closeShimEnds() {
        for fd in Set(shimDescriptors) { close(fd) }
        (shimStdout, shimStderr, teeStdout, teeStderr, shimHold, notifyWriter) = (-1, -1, -1, -1, -1, -1)
    }

    func closeAll() {
        closeChildEnds()
        closeShimEnds()
        for fd in Set([stdinWriter, stdoutReader, stderrReader, notifyReader]) where fd >= 0 { close(fd) }
        stdinWriter = -1; stdoutReader = -1; stderrReader = -1; notifyReader = -1
    }
}

/// Signals that reach berth while it waits in the foreground, handed to the poll loop through a
/// self-pipe (the only async-signal-safe way out of a handler).
private nonisolated(unsafe) var signalPipeWriter: Int32 = -1

private func forwardToPipe(_ sig: Int32) {
    var byte = UInt8(truncatingIfNeeded: sig)
    _ = write(signalPipeWriter, &byte, 1)
}

/// A running container process (the main one, or one started by exec) and the loop that
/// waits for it.
public final class ContainerProcess {
    public let container: Container
    public let pid: Int32
    let pidfd: Int32
    let io: ProcessIO
    let cgroup: Cgroup?
    let isMain: Bool

    init(container: Container, pid: Int32, pidfd: Int32, io: ProcessIO, cgroup: Cgroup?, isMain: Bool) {
        self.container = container
        self.pid = pid
        self.pidfd = pidfd
        self.io = io
        self.cgroup = cgroup
        self.isMain = isMain
    }

    /// Waits for the process: copies its output into the container's json-file log (main process)
    /// and, when `echo`, to berth's own stdout/stderr; forwards berth's stdin when `forwardStdin`,
    /// and SIGINT/SIGTERM/... when `proxySignals`. Records the exit of the main process.
    /// Returns the exit code (128+n for signal n). `removing`: the caller removes the container
    /// right after, so its exit is not written to state.json.
    /// `holdStdin`: keep the container's stdin open though nothing is forwarded (`run -d -i`:
    /// docker keeps it open so that an interactive shell waits instead of reading EOF).
    /// `output`: the caller's own sink for the output (each container its own), called with each
    /// chunk as it comes and whether it came from stderr; independent of `echo`.
    public func wait(echo: Bool = false, forwardStdin: Bool = false, holdStdin: Bool = false, proxySignals: Bool = false,
                     removing: Bool = false, output: ((UnsafeRawBufferPointer, _ isStderr: Bool) -> Void)? = nil) -> Int32 {
        // The main process is berth-shim's: its output reaches this process through the shim's
        // tees (after the shim wrote it to the log), and its end when the shim closes `notify`
        // with exit.json on disk. An exec's process is this process's own child.
        let supervised = io.notifyReader >= 0
        var savedTerminal: termios?
        if io.tty && forwardStdin && isatty(STDIN_FILENO) != 0 {
            var t = termios()
            if tcgetattr(STDIN_FILENO, &t) == 0 {
                savedTerminal = t
                var raw = t
                cfmakeraw(&raw)
                tcsetattr(STDIN_FILENO, TCSANOW, &raw)
            }
        }
        var signalPipe: [Int32] = [-1, -1]
        let proxied: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH]
        var previous: [Int32: sigaction] = [:]
        if proxySignals, berth_pipe_cloexec(&signalPipe, 1) == 0 {
            signalPipeWriter = signalPipe[1]
            for sig in proxied {
                var action = sigaction()
                action.__sigaction_handler.sa_handler = forwardToPipe
                action.sa_flags = SA_RESTART
                var old = sigaction()
                sigaction(sig, &action, &old)
                previous[sig] = old
            }
        }
        defer {
            if let saved = savedTerminal {
                var t = saved
                tcsetattr(STDIN_FILENO, TCSANOW, &t)
            }
            for (sig, old) in previous {
                var o = old
                sigaction(sig, &o, nil)
            }
            if signalPipe[0] >= 0 {
                signalPipeWriter = -1
                close(signalPipe[0]); close(signalPipe[1])
            }
        }

        var outputs: [(fd: Int32, stream: String, echoFD: Int32)] = []
        if io.stdoutReader >= 0 { outputs.append((io.stdoutReader, "stdout", STDOUT_FILENO)) }
        if io.stderrReader >= 0 { outputs.append((io.stderrReader, "stderr", STDERR_FILENO)) }
        var stdinOpen = forwardStdin && io.stdinWriter >= 0
        if !forwardStdin && !holdStdin && io.stdinWriter >= 0 && !io.tty {
            // Nothing will ever be written: let the container see EOF.
            close(io.stdinWriter)
            io.stdinWriter = -1
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var status: Int32 = 0
        var exited = false
        var drainDeadline: Int32 = 0
        var notifyOpen = supervised

        func pump(_ fd: Int32, stream: String, echoFD: Int32) -> Bool {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { return true }
            if n <= 0 { return false } // EOF, or EIO from a pty whose slave side is gone
            buffer.withUnsafeBytes { raw in
                let chunk = UnsafeRawBufferPointer(rebasing: raw[0..<n])
                if echo { writeAll(echoFD, chunk) }
                output?(chunk, stream == "stderr")
            }
            return true
        }

        while !outputs.isEmpty || !exited || notifyOpen {
            var fds: [pollfd] = outputs.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let pidIndex = fds.count
            if !exited { fds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
            let notifyIndex = fds.count
            if notifyOpen { fds.append(pollfd(fd: io.notifyReader, events: Int16(POLLIN), revents: 0)) }
            let stdinIndex = fds.count
            if stdinOpen && !exited { fds.append(pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)) }
            let sigIndex = fds.count
            if signalPipe[0] >= 0 && !exited { fds.append(pollfd(fd: signalPipe[0], events: Int16(POLLIN), revents: 0)) }

            // After exit, output still in the pipes is drained; a process that escaped with
            // the pipe open cannot hold berth forever (the shim bounds its own drain likewise).
            let rc = poll(&fds, nfds_t(fds.count), exited && !notifyOpen ? 2000 : -1)
            if rc < 0 {
                if errno == EINTR { continue }
                break
            }
            if rc == 0 && exited {
                drainDeadline += 1
                if drainDeadline >= 1 { break }
                continue
            }
            var closed: [Int32] = []
            for (i, o) in outputs.enumerated() where fds[i].revents != 0 {
                if !pump(o.fd, stream: o.stream, echoFD: o.echoFD) { closed.append(o.fd) }
            }
            outputs.removeAll { closed.contains($0.fd) }
            if !exited && fds[pidIndex].revents != 0 {
                if !supervised { while waitpid(pid, &status, 0) < 0 && errno == EINTR {} }
                exited = true
            }
            if notifyOpen && fds[notifyIndex].revents != 0 {
                var byte: UInt8 = 0
                if read(io.notifyReader, &byte, 1) <= 0 { notifyOpen = false }
            }
            if stdinOpen && stdinIndex < fds.count && fds[stdinIndex].fd == STDIN_FILENO && fds[stdinIndex].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
                if n > 0 {
                    buffer.withUnsafeBytes { writeAll(io.stdinWriter, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                } else if n == 0 || errno != EINTR {
                    stdinOpen = false
                    if !io.tty {
                        close(io.stdinWriter)
                        io.stdinWriter = -1
                    }
                }
            }
            if sigIndex < fds.count && fds[sigIndex].fd == signalPipe[0] && fds[sigIndex].revents != 0 {
                var sig: UInt8 = 0
                while read(signalPipe[0], &sig, 1) == 1 {
                    if Int32(sig) == SIGWINCH {
                        var rows: UInt16 = 0, cols: UInt16 = 0
                        if io.tty && berth_ioctl_get_winsize(STDOUT_FILENO, &rows, &cols) == 0 {
                            berth_ioctl_winsize(io.stdoutReader, rows, cols)
                        }
                    } else {
                        _ = berth_pidfd_send_signal(pidfd, Int32(sig))
                    }
                }
            }
        }
        if !exited && !supervised { while waitpid(pid, &status, 0) < 0 && errno == EINTR {} }
        io.closeAll()
        if pidfd >= 0 { close(pidfd) }
        guard supervised else { return berth_wait_status_exit(status) }
        // The shim wrote the exit before it closed `notify`; without the record (a shim that was
        // killed), the status is unknown and reads 255, as Docker records it.
        let exit = container.exitRecord()
        let code = exit?.exitCode ?? 255
        if isMain { container.recordExit(code: code, finishedAt: exit?.finishedAt, removing: removing) }
        return code
    }
}

func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        done += n
    }
}
