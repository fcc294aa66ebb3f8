import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// The foreground side of `run` and `exec`: this process's terminal, standard streams and
/// signals, lent to one container process while berth waits for it. The runtime touches none of
/// them (a process that starts fifty containers has one terminal and one set of handlers); this
/// is where a CLI call hands them over.
enum Foreground {
    /// Signals a user sends to a foreground `docker run` and that reach the container instead.
    static let forwarded: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH]

    /// Copies the process's output to stdout and stderr, this process's stdin to it when
    /// `interactive`, forwards signals (and terminal resizes) until it ends; returns its exit code.
    static func attach(_ process: ContainerProcess, interactive: Bool, tty: Bool, removing: Bool = false) -> Int32 {
        let terminal = tty && interactive ? RawTerminal(STDIN_FILENO) : nil
        defer { terminal?.restore() }
        let forwarding = SignalForwarding(to: process.control)
        defer { forwarding.stop() }
        return process.wait(input: interactive ? STDIN_FILENO : nil, removing: removing) { chunk, isStderr in
            StandardStreams.write(chunk, to: isStderr ? STDERR_FILENO : STDOUT_FILENO)
        }
    }

    /// The terminal on `fd` in raw mode (keys go to the container's terminal as typed), until
    /// `restore`.
    final class RawTerminal {
        let fd: Int32
        let saved: termios

        init?(_ fd: Int32) {
            var t = termios()
            guard isatty(fd) != 0, tcgetattr(fd, &t) == 0 else { return nil }
            self.fd = fd
            saved = t
            cfmakeraw(&t)
            tcsetattr(fd, TCSANOW, &t)
        }

        func restore() {
            var t = saved
            tcsetattr(fd, TCSANOW, &t)
        }
    }

    /// Handlers for `forwarded` that write the signal's number to a pipe (the only
    /// async-signal-safe way out of a handler), and a thread that passes each on: as a signal,
    /// or for SIGWINCH as the terminal's new size.
    final class SignalForwarding {
        private var pipe: [Int32] = [-1, -1]
        private var previous: [(Int32, sigaction)] = []
        private var reader: BackgroundWork<Void>?

        init(to control: ProcessControl) {
            guard Glibc.pipe(&pipe) == 0 else { return }
            for fd in pipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            Foreground.signalPipeWriter = pipe[1]
            for sig in Foreground.forwarded {
                var action = sigaction()
                action.__sigaction_handler.sa_handler = { sig in
                    var byte = UInt8(truncatingIfNeeded: sig)
                    _ = Glibc.write(Foreground.signalPipeWriter, &byte, 1)
                }
                action.sa_flags = SA_RESTART
                var old = sigaction()
                sigaction(sig, &action, &old)
                previous.append((sig, old))
            }
            let readEnd = pipe[0]
            reader = BackgroundWork {
                var sig: UInt8 = 0
                while true {
                    let n = Glibc.read(readEnd, &sig, 1)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 || sig == 0 { return }
                    if Int32(sig) == SIGWINCH {
                        if let size = TerminalSize.of(STDOUT_FILENO) { control.resize(size) }
                    } else {
                        control.signal(Int32(sig))
                    }
                }
            }
        }

        /// Restores the handlers and ends the thread (a zero byte tells it to).
        func stop() {
            for (sig, old) in previous {
                var o = old
                sigaction(sig, &o, nil)
            }
            previous = []
            guard pipe[1] >= 0 else { return }
            var stopByte: UInt8 = 0
            _ = Glibc.write(pipe[1], &stopByte, 1)
            try? reader?.wait()
            reader = nil
            Foreground.signalPipeWriter = -1
            close(pipe[0])
            close(pipe[1])
            pipe = [-1, -1]
        }
    }

    /// Where the handlers write; -1 when no forwarding is on.
    nonisolated(unsafe) static var signalPipeWriter: Int32 = -1
}
