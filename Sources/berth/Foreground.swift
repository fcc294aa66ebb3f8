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
        let forwarding = SignalForwarding()
        defer { forwarding.stop() }
        let control = process.control
        let events = forwarding.descriptor.map { fd in (descriptor: fd, handler: { forwarding.forward(to: control) }) }
        return process.wait(input: interactive ? STDIN_FILENO : nil, events: events, removing: removing) {
            chunk, isStderr in
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
    /// async-signal-safe way out of a handler), whose other end the wait loop watches and passes
    /// on: as a signal, or for SIGWINCH as the terminal's new size.
    final class SignalForwarding {
        private var pipe: [Int32] = [-1, -1]
        private var previous: [(Int32, sigaction)] = []
        private var previousMask = sigset_t()

        init() {
            guard Glibc.pipe(&pipe) == 0 else { return }
            for fd in pipe {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            }
            Foreground.signalPipeWriter = pipe[1]
            for sig in Foreground.forwarded {
                var action = sigaction()
                action.__sigaction_handler.sa_handler = { sig in
                    let saved = errno  // the interrupted code may be about to read it
                    var byte = UInt8(truncatingIfNeeded: sig)
                    _ = Glibc.write(Foreground.signalPipeWriter, &byte, 1)
                    errno = saved
                }
                action.sa_flags = SA_RESTART
                var old = sigaction()
                sigaction(sig, &action, &old)
                previous.append((sig, old))
            }
            // A parent may have left them blocked (they are inherited): they would never arrive.
            var set = sigset_t()
            sigemptyset(&set)
            for sig in Foreground.forwarded { sigaddset(&set, sig) }
            pthread_sigmask(SIG_UNBLOCK, &set, &previousMask)
        }

        /// The end to watch, if forwarding is on.
        var descriptor: Int32? { pipe[0] >= 0 ? pipe[0] : nil }

        /// Passes on every signal that came in.
        func forward(to control: ProcessControl) {
            var sig: UInt8 = 0
            while Glibc.read(pipe[0], &sig, 1) == 1 {
                if Int32(sig) == SIGWINCH {
                    if let size = TerminalSize.of(STDOUT_FILENO) { control.resize(size) }
                } else {
                    control.signal(Int32(sig))
                }
            }
        }

        /// The signals that came in since the last call (compose's `up` decides itself what each means).
        func received() -> [Int32] {
            var signals: [Int32] = []
            var sig: UInt8 = 0
            while pipe[0] >= 0, Glibc.read(pipe[0], &sig, 1) == 1 { signals.append(Int32(sig)) }
            return signals
        }

        /// Restores the handlers, then closes the pipe.
        func stop() {
            if !previous.isEmpty { pthread_sigmask(SIG_SETMASK, &previousMask, nil) }
            for (sig, old) in previous {
                var o = old
                sigaction(sig, &o, nil)
            }
            previous = []
            guard pipe[0] >= 0 else { return }
            Foreground.signalPipeWriter = -1
            close(pipe[0])
            close(pipe[1])
            pipe = [-1, -1]
        }
    }

    /// Where the handlers write; -1 when no forwarding is on.
    nonisolated(unsafe) static var signalPipeWriter: Int32 = -1
}
