import CRuntime
import FoundationEssentials
import Support

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
        let wantsStdin: Bool
        let tee: Bool
        var size: TerminalSize?
        switch stdio {
        case .tty(let callerSize): (tty, wantsStdin, tee, size) = (true, true, true, callerSize)
        case .pipes(let stdin): (tty, wantsStdin, tee) = (false, stdin, true)
        case .detached(let stdin, let terminal): (tty, wantsStdin, tee) = (terminal, stdin, false)
        }
        if tty {
            var master: Int32 = -1
            var slave: Int32 = -1
            let rc = berth_open_pty(&master, &slave)
            guard rc == 0 else {
                errno = -rc
                throw fail("open pseudo-terminal")
            }
            if let size { berth_ioctl_winsize(master, size.rows, size.columns) }
            (childStdin, childStdout, childStderr) = (slave, slave, slave)
            stdinWriter = master
            stdoutReader = master
        } else {
            let out = try pipe()
            let err = try pipe()
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
        shimStdout = tty ? fcntl(stdoutReader, F_DUPFD_CLOEXEC, 0) : stdoutReader
        shimStderr = tty ? -1 : stderrReader
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
        childStdin = -1
        childStdout = -1
        childStderr = -1
    }

    /// After the shim has its copies.
    func closeShimEnds() {
        for fd in Set(shimDescriptors) { close(fd) }
        (shimStdout, shimStderr, teeStdout, teeStderr, shimHold, notifyWriter) = (-1, -1, -1, -1, -1, -1)
    }

    /// `keepingNotify`: the caller removes the container next, and the shim must not run its
    /// exit command (the same removal) before that is done: `notify` stays open until then.
    func closeAll(keepingNotify: Bool = false) {
        closeChildEnds()
        closeShimEnds()
        for fd in Set([stdinWriter, stdoutReader, stderrReader]) where fd >= 0 { close(fd) }
        stdinWriter = -1
        stdoutReader = -1
        stderrReader = -1
        if !keepingNotify && notifyReader >= 0 {
            close(notifyReader)
            notifyReader = -1
        }
    }

    /// A process that was never waited for (a caller that started a detached container and let
    /// it go) must not keep its ends open.
    deinit {
        closeAll()
    }
}

/// What a caller may do to a running process from any thread while another one waits for it:
/// signal it and resize its terminal. Owns the pidfd and a copy of the terminal's master; both
/// stay valid (and so never name a reused descriptor) for as long as the object lives.
public final class ProcessControl: Sendable {
    private let process: FileDescriptor?
    private let terminal: FileDescriptor?

    init(pidfd: consuming FileDescriptor?, terminal: Int32) {
        process = pidfd
        self.terminal = terminal >= 0 ? FileDescriptor(taking: fcntl(terminal, F_DUPFD_CLOEXEC, 3)) : nil
    }

    /// The pidfd, readable once the process has exited; -1 when there is none.
    var pidfd: Int32 { process.rawValue }

    /// Sends `signal` to the process; false when it is gone.
    @discardableResult
    public func signal(_ signal: Int32) -> Bool {
        pidfd >= 0 && berth_pidfd_send_signal(pidfd, signal) == 0
    }

    /// The process's terminal takes this size (SIGWINCH reaches its foreground group).
    public func resize(_ size: TerminalSize) {
        if terminal.rawValue >= 0 { berth_ioctl_winsize(terminal.rawValue, size.rows, size.columns) }
    }
}

/// A terminal's size, in character cells.
public struct TerminalSize: Sendable, Equatable {
    public var rows: UInt16
    public var columns: UInt16

    public init(rows: UInt16, columns: UInt16) {
        self.rows = rows
        self.columns = columns
    }

    /// The size of the terminal open on `fd`, if it is one.
    public static func of(_ fd: Int32) -> TerminalSize? {
        var rows: UInt16 = 0
        var columns: UInt16 = 0
        guard isatty(fd) != 0, berth_ioctl_get_winsize(fd, &rows, &columns) == 0 else { return nil }
        return TerminalSize(rows: rows, columns: columns)
    }
}

/// A running container process (the main one, or one started by exec) and the loop that
/// waits for it. Nothing here touches process-wide state (signal handlers, the terminal, this
/// process's own standard streams): those belong to the foreground caller, which passes its
/// input descriptor, an output sink and uses `control` to forward signals.
///
/// Sendable so that a caller can start a process on one thread and wait for it on another (as a
/// supervisor following many containers does): the only mutable state, the descriptors in `io`,
/// is touched by `wait()` alone, which is called once; everything else is immutable.
public final class ContainerProcess: @unchecked Sendable {
    public let container: Container
    public let pid: Int32
    public let control: ProcessControl
    let io: ProcessIO
    let cgroup: Cgroup?
    let isMain: Bool

    init(
        container: Container, pid: Int32, pidfd: consuming FileDescriptor?, io: ProcessIO, cgroup: Cgroup?,
        isMain: Bool
    ) {
        self.container = container
        self.pid = pid
        self.control = ProcessControl(pidfd: pidfd, terminal: io.tty ? io.stdinWriter : -1)
        self.io = io
        self.cgroup = cgroup
        self.isMain = isMain
    }

    /// Waits for the process and returns its exit code (128+n for signal n). `output` gets each
    /// chunk of its output as it comes, and whether it came from stderr (a main process's output
    /// is in its json-file log already: berth-shim wrote it there before passing it on). `input`:
    /// a descriptor of the caller's whose data is copied to the process's stdin until its end
    /// (then the process reads EOF); without one, a pipe stdin is closed at once and a terminal
    /// stays open. `events`: another descriptor of the caller's to watch until the end, and what
    /// to do when it is readable (the handler reads it): the CLI's self-pipe of signals to
    /// forward, served on this thread rather than one of its own. `removing`: the caller removes
    /// the container right after, so the exit of a main process is not written to state.json, and
    /// the shim's own exit command (the same removal, for when no caller is left) waits until this
    /// value is released: keep it alive until the removal is done.
    public func wait(
        input: Int32? = nil, events: (descriptor: Int32, handler: () -> Void)? = nil, removing: Bool = false,
        output: ((UnsafeRawBufferPointer, _ isStderr: Bool) -> Void)? = nil
    ) -> Int32 {
        // The main process is berth-shim's child: its output comes through the shim's tees, and
        // its end when the shim closes `notify` with exit.json on disk (a pidfd cannot say it:
        // the process may be gone and reaped before this call). An exec's process is this
        // process's own child, followed through its pidfd.
        let supervised = io.notifyReader >= 0
        var outputs: [(fd: Int32, isStderr: Bool)] = []
        if io.stdoutReader >= 0 { outputs.append((io.stdoutReader, false)) }
        if io.stderrReader >= 0 { outputs.append((io.stderrReader, true)) }
        var inputOpen = input != nil && io.stdinWriter >= 0
        if !inputOpen && io.stdinWriter >= 0 && !io.tty {
            // Nothing will ever be written: let the process see EOF.
            close(io.stdinWriter)
            io.stdinWriter = -1
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var status: Int32 = 0
        var ended = false  // exec: the child has exited; main: the shim has recorded the exit

        func pump(_ fd: Int32, isStderr: Bool) -> Bool {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { return true }
            if n <= 0 { return false }  // EOF, or EIO from a pty whose slave side is gone
            buffer.withUnsafeBytes { raw in output?(UnsafeRawBufferPointer(rebasing: raw[0..<n]), isStderr) }
            return true
        }

        while !outputs.isEmpty || !ended {
            var fds: [pollfd] = outputs.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let endIndex = fds.count
            if !ended {
                fds.append(pollfd(fd: supervised ? io.notifyReader : control.pidfd, events: Int16(POLLIN), revents: 0))
            }
            var inputIndex: Int?
            if inputOpen && !ended, let input {
                inputIndex = fds.count
                fds.append(pollfd(fd: input, events: Int16(POLLIN), revents: 0))
            }
            var eventsIndex: Int?
            if let events, !ended {
                eventsIndex = fds.count
                fds.append(pollfd(fd: events.descriptor, events: Int16(POLLIN), revents: 0))
            }

            // After the end, output still in the pipes is drained; a process that escaped with a
            // pipe open cannot hold the caller forever (the shim bounds its own drain likewise).
            let rc = poll(&fds, nfds_t(fds.count), ended ? 2000 : -1)
            if rc < 0 {
                if errno == EINTR { continue }
                break
            }
            if rc == 0 && ended { break }
            var closed: [Int32] = []
            for (i, o) in outputs.enumerated() where fds[i].revents != 0 {
                if !pump(o.fd, isStderr: o.isStderr) { closed.append(o.fd) }
            }
            outputs.removeAll { closed.contains($0.fd) }
            if !ended && fds[endIndex].revents != 0 {
                if supervised {
                    var byte: UInt8 = 0
                    // The byte (exit.json is written), or EOF (a shim that died without).
                    ended = read(io.notifyReader, &byte, 1) != -1 || errno != EINTR
                } else {
                    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                    ended = true
                }
            }
            if let inputIndex, let input, fds[inputIndex].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if n > 0 {
                    buffer.withUnsafeBytes {
                        StandardStreams.write(UnsafeRawBufferPointer(rebasing: $0[0..<n]), to: io.stdinWriter)
                    }
                } else if n == 0 || errno != EINTR {
                    inputOpen = false
                    if !io.tty {
                        close(io.stdinWriter)
                        io.stdinWriter = -1
                    }
                }
            }
            if let events, let eventsIndex, fds[eventsIndex].revents != 0 { events.handler() }
        }
        if !ended && !supervised { while waitpid(pid, &status, 0) < 0 && errno == EINTR {} }
        io.closeAll(keepingNotify: removing)
        guard supervised else { return berth_wait_status_exit(status) }
        // The shim wrote the exit before it closed `notify`; without the record (a shim that was
        // killed), the status is unknown and reads 255, as Docker records it.
        let exit = container.exitRecord()
        let code = exit?.exitCode ?? 255
        if isMain {
            container.recordExit(
                pid: pid, code: code, finishedAt: exit?.finishedAt, error: exit == nil ? Container.unknownExit : nil,
                oomKilled: exit?.oomKilled, removing: removing)
        }
        return code
    }
}
