import ArgumentParser
import Compose
import FoundationEssentials
import Images
import Runtime
import Support
#if canImport(Glibc)
import Glibc
#endif


/// The process that stays with a detached container: it is the container's parent, reaps it,
/// writes its output to the json-file log and records the exit code (and removes it for --rm).
/// `run -d` starts it with setsid and waits on a pipe until the container started or failed.
struct ContainerMonitor: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "monitor", abstract: "Supervise a detached container (internal).",
                                                    shouldDisplay: false)

    @OptionGroup var global: RootOptions
    @Option(name: .customLong("report-fd"), help: "Where to report that the container started.")
    var reportFD: Int32 = -1
    @Argument var container: String

    func run() throws {
        let c = try Container.lookup(container, root: global.stateRoot)
        let process: ContainerProcess
        do {
            let spec = c.record.spec
            process = try c.start(stdio: spec.tty ? .tty : .pipes(stdin: spec.interactive))
        } catch {
            report("\(error)")
            if c.record.spec.autoRemove { try? c.remove(force: true) }
            throw CommandFailure(status: 1)
        }
        report("")
        _ = process.wait(holdStdin: c.record.spec.interactive, removing: c.record.spec.autoRemove)
        if c.record.spec.autoRemove { try? c.remove(force: true) }
    }

    func report(_ message: String) {
        guard reportFD >= 0 else { return }
        let bytes = Array(message.utf8)
        _ = bytes.withUnsafeBytes { write(reportFD, $0.baseAddress, $0.count) }
        close(reportFD)
    }

    /// Sets FD_CLOEXEC on every descriptor above stderr but `kept`; this process exits soon anyway.
    static func markInheritedDescriptorsCloseOnExec(keeping kept: Int32) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for name in names {
            guard let fd = Int32(name), fd > 2, fd != kept else { continue }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
    }

    /// Starts `berth container monitor ID` detached from this process and waits until it reports.
    static func launch(container: Container, root: String) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ContainerCommandError(description: "pipe: \(String(cString: strerror(errno)))") }
        // Only the dup2'ed fd 3 may reach the monitor, or the read below never sees EOF.
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // dup2 clears close-on-exec on fd 3 only; the read end (CLOEXEC) closes itself at exec.
        // (No addclose of fds[0] here: it may be 3 itself, which the dup2 just reused.)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
        // The monitor outlives this command: it must hold none of the caller's descriptors (a
        // pipe or socket it kept open would make the caller wait for the container to exit).
        markInheritedDescriptorsCloseOnExec(keeping: fds[1])
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(0x80)) // POSIX_SPAWN_SETSID: outlive the terminal
        let args = [exe, "container", "monitor", "--root", root, "--report-fd", "3", container.id]
        var cargs = args.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, &attr, &cargs, environ)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            try? container.remove(force: true)
            throw ContainerCommandError(description: "container \(container.name): cannot start its monitor: \(String(cString: strerror(rc)))")
        }
        var message: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fds[0], &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            message += buf[0..<n]
        }
        close(fds[0])
        if !message.isEmpty { throw ContainerCommandError(description: String(decoding: message, as: UTF8.self)) }
        var st = stat()
        if stat(container.logPath, &st) != 0, !container.isRunning, container.state().error != nil {
            throw ContainerCommandError(description: container.state().error ?? "container \(container.name) did not start")
        }
    }
}
