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
              let pidfd = FileDescriptor(taking: berth_pidfd_open(pid)) else { return nil }
        guard ProcFS.startTime(pid: pid) == start else { return nil }
        return RunningProcess(pid: pid, pidfd: pidfd)
    }

    /// `docker stop`: the stop signal, then SIGKILL after `timeout` seconds. When PID 1 has no
    /// handler for the signal (SigCgt), the kernel drops it for a namespace init: kill at once.
    /// Returns when the process is gone and the exit is recorded.
    public func stop(timeout: Int? = nil) throws {
        guard let process = openProcess() else { return }
        let pid = process.pid, fd = process.pidfd.rawValue
        let sig = record.process.stopSignal
        let bit = UInt64(1) << UInt64(sig - 1)
        let masks = ProcFS.signalMasks(pid: pid)
        let handled = masks.map { ($0.caught & bit) != 0 || (($0.blocked & bit) != 0 && ($0.ignored & bit) == 0) } ?? false
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

    /// Returns once the exit is on disk: berth-shim renames exit.json into place before it goes.
    /// Waits (10 s at most) on an inotify watch of the directory for that, and on the shim's
    /// pidfd, since a shim that was killed writes nothing (the state then reads 255, unknown).
    func waitForRecordedExit() {
        let s = readRawState()
        guard s.status == .running else { return }
        let inotify = FileDescriptor(taking: inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC)))
        let watch = inotify.rawValue
        if watch >= 0 { _ = inotify_add_watch(watch, dir, UInt32(IN_MOVED_TO | IN_CREATE)) }
        let shimProcess = FileDescriptor(taking: s.monitorPid.map { berth_pidfd_open($0) } ?? -1)
        let shim = shimProcess.rawValue
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        deadline.tv_sec += 10
        var events = [UInt8](repeating: 0, count: 4096)
        while access(dir + "/exit.json", F_OK) != 0 {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let left = Int(deadline.tv_sec - now.tv_sec) * 1000 + Int(deadline.tv_nsec - now.tv_nsec) / 1_000_000
            var fds = [watch, shim].filter { $0 >= 0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard left > 0, !fds.isEmpty else { return }
            let rc = poll(&fds, nfds_t(fds.count), Int32(left))
            if rc < 0 && errno != EINTR { return }
            if fds.contains(where: { $0.fd == shim && $0.revents != 0 }) { return }
            if watch >= 0 { while read(watch, &events, events.count) > 0 {} }
        }
    }

    /// `docker rm [-f]`: nothing of the container is left — process, cgroup, files, name.
    public func remove(force: Bool = false) throws {
        // One read of state.json in the common case (an exited container).
        var s = readRawState()
        if s.status == .running && isAlive(s) {
            guard force else {
                throw Error(container: name, stage: .remove,
                            detail: "the container is running; stop it first or use force (-f)")
            }
            if let process = openProcess() {
                _ = berth_pidfd_send_signal(process.pidfd.rawValue, SIGKILL)
                _ = waitReadable(process.pidfd.rawValue, milliseconds: 10_000)
            }
            waitForRecordedExit()
            s = readRawState()
        }
        // The monitor of a detached container may still be finishing; let it go first.
        if let monitor = s.monitorPid, monitor != getpid() {
            if let shim = FileDescriptor(taking: berth_pidfd_open(monitor)) {
                _ = waitReadable(shim.rawValue, milliseconds: 2000)
            }
        }
        // The cgroup on the second core while this one empties the upper dir (the container's
        // writes). The directory goes last, and only once the cgroup is gone: if that fails,
        // `rm` can be run again. It is kept for the next container when it can be (ContainerPool).
        let id = self.id
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
        Container.removeNameLink(Container.namesDir(root) + "/" + name, ifItNames: id, root: root)
    }
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
