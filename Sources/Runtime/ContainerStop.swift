import CRuntime
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

extension Container {
    // MARK: stop, kill, remove

    /// The container's first process, held by a pidfd: signals sent through it reach that
    /// process or none, never another that reused its pid.
    struct RunningProcess: ~Copyable {
        let pid: Int32
        let pidfd: FileDescriptor
    }

    /// Opens a pidfd for the container's PID 1 and checks it is still the same process.
    func openProcess() -> RunningProcess? {
        let s = readRawState()
        guard s.status == .running, let pid = s.pid, let start = s.pidStartTime,
            let pidfd = FileDescriptor(taking: berth_pidfd_open(pid))
        else { return nil }
        guard ProcFS.startTime(pid: pid) == start else { return nil }
        return RunningProcess(pid: pid, pidfd: pidfd)
    }

    /// Waits up to `milliseconds` (nil: as long as it takes) for the current run's PID 1 to end;
    /// true once it has, or when it was not running. For a supervisor's health checks, which
    /// wait an interval or until the container ends, whichever comes first.
    public func waitForMainProcess(milliseconds: Int?) -> Bool {
        guard let process = openProcess() else { return true }
        return waitReadable(process.pidfd.rawValue, milliseconds: milliseconds ?? -1)
    }

    /// `docker stop`: the stop signal, then SIGKILL after `timeout` seconds. When PID 1 has no
    /// handler for the signal (SigCgt), the kernel drops it for a namespace init: kill at once.
    /// Returns when the process is gone and the exit is recorded.
    public func stop(timeout: Int? = nil) throws {
        // Not running, or PID 1 is gone and its shim is writing down the exit.
        guard let process = openProcess() else { return waitForRecordedExit() }
        // The run's berth-shim: what it does once the exit is recorded (its exit command, which
        // releases a container's networks) is done before `stop` returns, as Docker's stop
        // returns with the endpoints released. Bounded: a caller still attached holds it back.
        let shim = openMonitor(readRawState())
        defer {
            if shim >= 0 {
                _ = waitReadable(shim, milliseconds: 5000)
                close(shim)
            }
        }
        let pid = process.pid
        let fd = process.pidfd.rawValue
        let sig = record.process.stopSignal
        let bit = UInt64(1) << UInt64(sig - 1)
        let masks = ProcFS.signalMasks(pid: pid)
        // berth's own init (`init: true`) forwards every signal from sigwaitinfo(), during which
        // the kernel shows the awaited signals as neither caught nor blocked: it always handles.
        let handled =
            record.spec.initProcess
            || masks.map { ($0.caught & bit) != 0 || (($0.blocked & bit) != 0 && ($0.ignored & bit) == 0) } ?? false
        if handled && sig != SIGKILL {
            _ = berth_pidfd_send_signal(fd, sig)
            // Bounded so the milliseconds cannot overflow (a day is as good as forever here).
            let grace = min(max(0, timeout ?? record.process.stopTimeout), 86_400)
            if waitReadable(fd, milliseconds: grace * 1000) {
                waitForRecordedExit()
                return
            }
        }
        _ = berth_pidfd_send_signal(fd, SIGKILL)
        _ = waitReadable(fd, milliseconds: 10_000)
        waitForRecordedExit()
    }

    /// `docker kill -s SIG`.
    public func kill(signal: Int32 = SIGKILL) throws {
        guard let process = openProcess() else {
            throw Error(container: name, step: "kill", detail: "the container is not running")
        }
        if berth_pidfd_send_signal(process.pidfd.rawValue, signal) != 0 {
            throw Error(container: name, step: "kill", detail: ProcFS.errnoText(errno))
        }
    }

    /// `docker wait`: blocks until the container is not running and returns its exit code, at
    /// once for one that is not (0 for a created one, as Docker's "not-running" condition). It
    /// need not have been started by this process: see awaitExit.
    public func waitForExit() throws -> Int32 {
        // Held while waiting and reading the exit: a removal (`run -d --rm`'s, run by the shim
        // as soon as exit.json is written) waits for it, so no waiter loses the code to it.
        let lock = HeldLock(path: dir + "/" + Container.waitLockName, exclusive: false)
        defer { lock?.keep() }
        switch try awaitExit(milliseconds: nil) {
        case .ended(let s): return s.exitCode ?? 0
        case .removed:
            throw Error(
                container: name, stage: .lookup, errno: ENOENT,
                detail: "the container was removed before its exit code could be read")
        case .timedOut:
            throw Error(container: name, stage: .other, step: "wait", detail: "timed out")
        }
    }

    /// The lock file through which waiters hold off a removal until they have read the exit.
    static let waitLockName = "wait.lock"

    /// Held (exclusive) by `start` from its look at the state until the run is recorded, and by
    /// `remove` throughout: two starts never run one container twice, and a removal never
    /// empties the files of a run that is starting.
    static let lifecycleLockName = "lifecycle.lock"

    /// After a stop or kill: returns once the exit is on disk (berth-shim renames exit.json into
    /// place before it goes), or once nobody is left to write it; 10 s at most. A run whose
    /// reaper was killed is then recorded as an unknown exit (255), ended now: the caller has
    /// just seen its PID 1 go.
    func waitForRecordedExit() {
        _ = try? awaitExit(milliseconds: 10_000, recordingUnknownExit: true)
    }

    enum ExitWait {
        /// Not running (any more): the state then, with its exit code.
        case ended(ContainerState)
        /// The container was removed before its exit could be read.
        case removed
        case timedOut
    }

    /// Waits until the run that state.json calls "running" is over, without polling: an inotify
    /// watch on the container's directory wakes it when berth-shim renames exit.json into place
    /// (or state.json is replaced), and pidfds when the container's PID 1 or its berth-shim end.
    /// The shim writes exit.json before it exits, so once both processes are gone and there is
    /// no exit.json, nothing will write one: the exit is unknown (255, `unknownExit`), ended when
    /// this wait saw PID 1 go (else when is not known either). `recordingUnknownExit`: the caller
    /// has just seen PID 1 go (stop, rm), and the unknown exit is written down as of now. The shim
    /// may exec `run -d --rm`'s removal, which takes exit.json away: the watch's event brings
    /// the waiter to it first. `milliseconds`: nil waits as long as it takes.
    func awaitExit(milliseconds: Int?, recordingUnknownExit: Bool = false) throws -> ExitWait {
        // Before the first look, so nothing that happens after it goes unseen. Without inotify
        // (out of instances) the pidfds still tell the end: the shim goes after exit.json is in.
        var watch = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        defer { if watch >= 0 { close(watch) } }
        let mask = IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF
        if watch >= 0 && inotify_add_watch(watch, dir, UInt32(mask)) < 0 {
            if errno == ENOENT { return .removed }
            close(watch)
            watch = -1
        }
        var process: Int32 = -1
        var shim: Int32 = -1
        defer { for fd in [process, shim] where fd >= 0 { close(fd) } }
        // The run waited for, once seen: its PID 1 and shim are looked up once.
        var run: ContainerState?
        var processGone = false
        var shimGone = false
        var sawEnd = false
        let deadline = milliseconds.map { monotonicMilliseconds() + Int64($0) }
        var events = [UInt8](repeating: 0, count: 4096)
        while true {
            guard var s = JSONFiles.read(ContainerState.self, statePath) else {
                // No state.json: never started, or removed (a removal empties the directory).
                if run == nil {
                    return access(dir + "/config.json", F_OK) == 0 ? .ended(ContainerState(status: .created)) : .removed
                }
                guard let exit = exitRecord(), var last = run else { return .removed }
                last.apply(exit)
                return .ended(last)
            }
            if s.status == .running, let exit = exitRecord() { s.apply(exit) }
            guard s.status == .running else { return .ended(s) }
            if let run, run.pid != s.pid || run.startedAt != s.startedAt {
                // Stopped and started again between two looks (the exit record went with the
                // new start): the run waited for is over, how is no longer known.
                return .ended(Container.withUnknownExit(run))
            }
            if run == nil {
                run = s
                if isAlive(s), let pid = s.pid {
                    process = berth_pidfd_open(pid)
                    // Checked after the open, so the descriptor names the process checked.
                    if process >= 0 && !isAlive(s) {
                        close(process)
                        process = -1
                    }
                }
                shim = openMonitor(s)
                processGone = process < 0
                shimGone = shim < 0
            }
            if processGone && shimGone {
                // The shim renames exit.json into place before it goes; one more look.
                if exitRecord() != nil { continue }
                let seen = sawEnd || recordingUnknownExit
                let ended = Container.withUnknownExit(s, finishedAt: seen ? Timestamp.now() : nil)
                if recordingUnknownExit { recordUnknownExit(ended, of: s) }
                return .ended(ended)
            }
            var fds = [pollfd(fd: watch, events: Int16(POLLIN), revents: 0)]  // ignored by poll when -1
            if !processGone { fds.append(pollfd(fd: process, events: Int16(POLLIN), revents: 0)) }
            if !shimGone { fds.append(pollfd(fd: shim, events: Int16(POLLIN), revents: 0)) }
            var timeout: Int32 = -1
            if let deadline {
                let left = deadline - monotonicMilliseconds()
                if left <= 0 { return .timedOut }
                timeout = Int32(min(left, Int64(Int32.max)))
            }
            let rc = poll(&fds, nfds_t(fds.count), timeout)
            if rc < 0 && errno != EINTR {
                throw Error(container: name, stage: .other, step: "wait", errno: errno)
            }
            guard rc > 0 else { continue }
            for p in fds.dropFirst() where p.revents != 0 {
                if p.fd == process {
                    processGone = true
                    sawEnd = true
                } else {
                    shimGone = true
                }
            }
            if watch >= 0 && fds[0].revents != 0 { while read(watch, &events, events.count) > 0 {} }
        }
    }

    /// A run that ended with nobody to see how: 255, as Docker records a status it lost.
    static func withUnknownExit(_ run: ContainerState, finishedAt: String? = nil) -> ContainerState {
        var s = run
        s.status = .exited
        s.exitCode = 255
        s.error = unknownExit
        s.finishedAt = finishedAt
        return s
    }

    /// Writes `ended` over state.json while it still describes `run` (another berth process may
    /// have recorded the exit, or started the container again, meanwhile).
    private func recordUnknownExit(_ ended: ContainerState, of run: ContainerState) {
        guard let now = JSONFiles.read(ContainerState.self, statePath), now == run, exitRecord() == nil else { return }
        writeState(ended)
    }

    /// `docker rm [-f]`: nothing of the container is left — process, cgroup, files, name.
    public func remove(force: Bool = false) throws {
        let lifecycle = HeldLock(path: dir + "/" + Container.lifecycleLockName, exclusive: true)
        defer { lifecycle?.keep() }
        // One read of state.json in the common case (an exited container).
        var s = readRawState()
        if s.status == .running && isAlive(s) {
            guard force else {
                throw Error(
                    container: name, stage: .remove,
                    detail: "the container is running; stop it first or use force (-f)")
            }
            // As `stop`: the shim's exit command (a network's release) is done before the
            // container's files go, so none of it outlives the removal.
            let shim = openMonitor(s)
            if let process = openProcess() {
                _ = berth_pidfd_send_signal(process.pidfd.rawValue, SIGKILL)
                _ = waitReadable(process.pidfd.rawValue, milliseconds: 10_000)
            }
            waitForRecordedExit()
            if shim >= 0 {
                _ = waitReadable(shim, milliseconds: 5000)
                close(shim)
            }
            s = readRawState()
        }
        // Waiters (`waitForExit`) read the exit before the files go.
        let waiters = HeldLock(path: dir + "/" + Container.waitLockName, exclusive: true)
        defer { waiters?.keep() }
        // A berth-shim still writing the log goes first. Once exit.json is in, all it has left is
        // the cgroup's rmdir (which ours tolerates) and its exit command (`--rm`'s removal: this
        // one, or another that finds the container gone), so there is nothing to wait for.
        if access(dir + "/exit.json", F_OK) != 0, s.monitorPid != getpid(),
            let shim = FileDescriptor(taking: openMonitor(s))
        {
            _ = waitReadable(shim.rawValue, milliseconds: 2000)
        }
        // The cgroup on the second core while this one empties the upper dir (the container's
        // writes). The directory goes last, and only once the cgroup is gone: if that fails,
        // `rm` can be run again. It is kept for the next container when it can be (ContainerPool).
        let id = self.id
        do {
            let cgroupRemoval = BackgroundWork { try Cgroup.destroy(name: id) }
            let emptied = Result { try FileTree.removeContents(of: dir + "/upper") }
            try cgroupRemoval.wait()
            do { try emptied.get() } catch var e as Error {
                e.container = name
                throw e
            }
            // A waiter that lost the race may still be writing its last state; one more pass.
            if !ContainerPool.give(root: root, dir: dir, id: id) {
                do { try TreeRemoval.remove(path: dir) } catch {
                    throw Error(container: name, stage: .remove, detail: "\(error)")
                }
            }
        } catch {
            // Part of it may be gone already (its writes, its cgroup): Docker's "dead", which
            // cannot start again and which `rm` removes. (A directory already half deleted has
            // no record left, and `rm` reclaims it as a leftover.)
            var dead = s.status == .running ? Container.withUnknownExit(s) : s
            dead.status = .dead
            dead.error = "\(error)"
            if access(dir + "/config.json", F_OK) == 0 { writeState(dead) }
            throw error
        }
        // The name this value knows, unless another berth process renamed the container
        // meanwhile: then whichever link names the ID (a scan, for that rare case only).
        let link = Container.namesDir(root) + "/" + name
        if NameLink.read(link) == id {
            Container.removeNameLink(link, ifItNames: id, root: root)
        } else {
            Container.removeNameLinks(naming: id, root: root)
        }
    }
}

/// CLOCK_MONOTONIC in milliseconds, for deadlines.
func monotonicMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}

/// poll() one fd for input; false on timeout.
func waitReadable(_ fd: Int32, milliseconds: Int) -> Bool {
    var deadline = timespec()
    clock_gettime(CLOCK_MONOTONIC, &deadline)
    let end = Int64(deadline.tv_sec) * 1000 + Int64(deadline.tv_nsec) / 1_000_000 + Int64(milliseconds)
    while true {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let left = end - (Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000)
        if left < 0 { return false }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let rc = poll(&p, 1, Int32(min(left, Int64(Int32.max))))
        if rc > 0 { return true }
        if rc < 0 && errno != EINTR { return false }
        if rc == 0 { return false }
    }
}
