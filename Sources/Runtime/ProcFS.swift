import CRuntime
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// What berth reads about processes from /proc, and small time helpers.
enum ProcFS {
    /// Field 22 of /proc/PID/stat (start time in clock ticks since boot) of a live process: with
    /// the pid it names one process for good, so a recycled pid is never mistaken for the
    /// container. nil for a zombie: a container whose reaper was killed ends as the zombie of
    /// whatever adopted it, which may never reap it (an init that does not, in some sandboxes).
    static func startTime(pid: Int32) -> UInt64? {
        guard let text = Files.readText("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); start time is field 22.
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return nil }
        return UInt64(fields[19])
    }

    /// The signal masks of /proc/PID/status: caught (has a handler), blocked and ignored.
    static func signalMasks(pid: Int32) -> (caught: UInt64, blocked: UInt64, ignored: UInt64)? {
        guard let text = Files.readText("/proc/\(pid)/status") else { return nil }
        var caught: UInt64 = 0
        var blocked: UInt64 = 0
        var ignored: UInt64 = 0
        for line in text.split(separator: "\n") {
            let value = { UInt64(line.split(separator: "\t").last.map(String.init) ?? "", radix: 16) ?? 0 }
            if line.hasPrefix("SigCgt:") {
                caught = value()
            } else if line.hasPrefix("SigBlk:") {
                blocked = value()
            } else if line.hasPrefix("SigIgn:") {
                ignored = value()
            }
        }
        return (caught, blocked, ignored)
    }

    static func errnoText(_ e: Int32) -> String {
        String(cString: strerror(e))
    }
}

/// Signal names as Docker accepts them: "SIGTERM", "TERM", "15".
public enum Signals {
    static let table: [String: Int32] = [
        "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "ILL": SIGILL, "TRAP": SIGTRAP, "ABRT": SIGABRT,
        "BUS": SIGBUS, "FPE": SIGFPE, "KILL": SIGKILL, "USR1": SIGUSR1, "SEGV": SIGSEGV, "USR2": SIGUSR2,
        "PIPE": SIGPIPE, "ALRM": SIGALRM, "TERM": SIGTERM, "STKFLT": SIGSTKFLT, "CHLD": SIGCHLD,
        "CONT": SIGCONT, "STOP": SIGSTOP, "TSTP": SIGTSTP, "TTIN": SIGTTIN, "TTOU": SIGTTOU, "URG": SIGURG,
        "XCPU": SIGXCPU, "XFSZ": SIGXFSZ, "VTALRM": SIGVTALRM, "PROF": SIGPROF, "WINCH": SIGWINCH,
        "IO": SIGIO, "PWR": SIGPWR, "SYS": SIGSYS,
    ]

    public static func number(_ name: String) -> Int32? {
        if let n = Int32(name), n > 0, n < 65 { return n }
        var key = name.uppercased()
        if key.hasPrefix("SIG") { key.removeFirst(3) }
        if key.hasPrefix("RTMIN+"), let n = Int32(key.dropFirst(6)) { return 34 + n }
        if key.hasPrefix("RTMAX-"), let n = Int32(key.dropFirst(6)) { return 64 - n }
        return table[key]
    }
}
