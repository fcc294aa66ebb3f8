import CRuntime
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

extension Container {
    // MARK: start

    public enum Stdio: Sendable {
        /// stdin from /dev/null (or a pipe when `stdin`), stdout and stderr through pipes; the
        /// caller gets the output too (`ContainerProcess.wait`).
        case pipes(stdin: Bool)
        /// One pseudo-terminal for all three (-t), the caller's; it starts at the caller's size.
        case tty(TerminalSize?)
        /// Nothing comes back to the caller: the output goes to the log only (`run -d`). `stdin`
        /// keeps the container's stdin open (Docker's `-d -i`), `tty` gives it a terminal.
        case detached(stdin: Bool, tty: Bool)
    }

    /// berth-shim, the container's reaper: $BERTH_SHIM, else the one next to this program (the
    /// berth binary, or a test bundle in the same build folder).
    static func shimPath() throws -> String {
        let path = Companion.path("berth-shim", override: "BERTH_SHIM")
        guard access(path, X_OK) == 0 else {
            throw Error(
                container: "", stage: .start, detail: "berth-shim was not found at \(path) (set BERTH_SHIM to its path)"
            )
        }
        return path
    }

    /// berth-shim's command line for this container and these descriptors.
    func shimArguments(path: String, io: ProcessIO, cgroup: Cgroup?, exitCommand: [String]?) -> [String] {
        let spec = record.spec
        var args = [
            path, "--dir", dir, "--max-size", String(spec.logMaxSize ?? 0), "--max-files",
            String(spec.logMaxFiles ?? 1),
        ]
        // Without --log the shim passes the output on to an attached caller only.
        if spec.logDriver != "none" { args += ["--log", logPath] }
        let fds: [(String, Int32)] = [
            ("--stdout", io.shimStdout), ("--stderr", io.shimStderr), ("--tee-stdout", io.teeStdout),
            ("--tee-stderr", io.teeStderr), ("--hold", io.shimHold), ("--notify", io.notifyWriter),
        ]
        for (flag, fd) in fds where fd >= 0 { args += [flag, String(fd)] }
        for path in cgroup?.paths ?? [] { args += ["--cgroup", path] }
        if let exitCommand, !exitCommand.isEmpty { args += ["--"] + exitCommand }
        return args
    }

    /// Starts the container (a created one, or an exited one again: its upper dir, and so what
    /// it wrote, is kept) under berth-shim, its reaper, which records the exit code on disk
    /// however this process ends. Returns once the container's program runs (or throws with the
    /// step that failed); `ContainerProcess.wait` then follows it. `beforeResume` runs while the
    /// child builds its root filesystem in its namespaces (network setup goes there: it is given the
    /// child's pid and a path to its network namespace, valid while it runs); the
    /// container's program starts after it returns. The child writes its sysctls before that
    /// (they must precede /proc/sys going read-only), so a per-interface sysctl for an interface
    /// a hook adds needs the hook to set it. `exitCommand` (`run --rm`'s removal) runs from the
    /// shim once the exit is recorded, unless a caller is still waiting for the container then:
    /// that caller does it itself, and the command covers a detached run and a caller that died.
    public func start(
        stdio: Stdio, exitCommand: [String]? = nil,
        beforeResume: ((_ pid: Int32, _ networkNamespace: String) throws -> Void)? = nil
    ) throws -> ContainerProcess {
        let lifecycle = HeldLock(path: dir + "/" + Container.lifecycleLockName, exclusive: true)
        defer { lifecycle?.keep() }
        let current = state()
        guard current.status != .running else {
            throw Error(container: name, stage: .start, detail: "the container is already running")
        }
        guard current.status != .dead else {
            // Docker's words: a removal failed half-way, so its files may be partly gone.
            throw Error(container: name, stage: .start, detail: "container is marked for removal and cannot be started")
        }
        // The last run's berth-shim removes that run's cgroup after it wrote the exit: let it be
        // done, or it would remove this run's (same ID, same group).
        if let previous = FileDescriptor(taking: openMonitor(current)) {
            _ = waitReadable(previous.rawValue, milliseconds: 10_000)
        }
        // The last run's exit record must not describe this one; a waiter reading it goes first.
        do {
            let waiters = HeldLock(path: dir + "/" + Container.waitLockName, exclusive: true)
            unlink(dir + "/exit.json")
            _ = consume waiters
        }
        let io: ProcessIO
        let shim: String
        do {
            shim = try Container.shimPath()
            io = try ProcessIO(stdio: stdio, container: name, supervised: true)
        } catch {
            try? preparedCgroup?.remove()
            preparedCgroup = nil
            preparedRootfs = nil
            preparedNetns = nil
            try? writePendingRecord()
            throw error
        }
        // Made by create() in this process, or now on the second core while this one builds the
        // spawn configuration.
        let id = self.id
        let name = self.name
        let spec = record.spec
        let cgroupWork =
            preparedCgroup == nil ? BackgroundWork { try Container.makeCgroup(id: id, name: name, spec: spec) } : nil
        var cgroup = preparedCgroup
        preparedCgroup = nil
        // The child attaches its own copy of the mount; this one closes when start() returns,
        // the clone done.
        var rootfs = preparedRootfs.take()
        let netns = preparedNetns.take()
        var child = berth_supervised(pid: -1, shim: -1, sync_fd: -1, error_fd: -1)
        var spawned = false
        var pidfd: FileDescriptor?
        do {
            // The configuration's failure is thrown only once the cgroup's thread is joined.
            let configured: Result<SpawnConfig, Swift.Error>
            do {
                if rootfs.rawValue < 0 {
                    rootfs = try SpawnConfig.openOverlay(
                        root: root, containerDir: dir, layerPaths: spec.layerPaths,
                        container: name)
                }
                configured = .success(try SpawnConfig(container: self, io: io, rootfs: rootfs.rawValue, netns: netns))
            } catch {
                configured = .failure(error)
            }
            if let cgroupWork { cgroup = try cgroupWork.wait() }
            let config = try configured.get()
            // The child moves itself into the group first thing (see spawn.c for why not us).
            let joinFiles = cgroup?.joinFiles ?? []
            config.container.cgroup_join = config.arena.stringArray(joinFiles)
            config.container.ncgroup_join = Int32(joinFiles.count)
            let args = shimArguments(path: shim, io: io, cgroup: cgroup, exitCommand: exitCommand)
            let keep = io.shimDescriptors
            let argv = config.arena.stringArray(args)
            let rc = withUnsafePointer(to: &config.container) { container in
                berth_spawn_supervised(container, shim, argv, keep, Int32(keep.count), &child)
            }
            guard rc == 0 else { throw Error(container: name, stage: .clone, errno: -rc) }
            spawned = true
            // Opened while the child waits for the go, so it names this very process: after the
            // release the program may exit, be reaped by the shim and its pid be reused at once.
            pidfd = FileDescriptor(taking: berth_pidfd_open(child.pid))
            io.closeChildEnds()
            io.closeShimEnds()
            // The child builds its rootfs meanwhile, on the other core, then waits for the go:
            // its program starts only once the network is in place and the start is recorded
            // (on a failure below, the catch overwrites this state with the error).
            // The child may not have joined a namespace made beforehand yet: that one is named by
            // the descriptor held for the clone; one the clone made is the child's already.
            let netns = config.container.netns_fd
            try beforeResume?(child.pid, netns >= 0 ? "/proc/self/fd/\(netns)" : "/proc/\(child.pid)/ns/net")
            try writePendingRecord()
            var running = ContainerState(status: .running)
            running.pid = child.pid
            running.pidStartTime = ProcFS.startTime(pid: child.pid)
            running.monitorPid = child.shim
            running.startedAt = Timestamp.now()
            // The last run's end stays until this one's, as Docker keeps FinishedAt.
            running.finishedAt = current.finishedAt
            writeState(running)
            var failure = berth_failure()
            let resumed = berth_supervised_release(&child, &failure)
            if resumed != 0 {
                // The shim's process waited for the child and is gone; nothing of it runs.
                spawned = false
                throw Error(container: name, childFailure: failure, step: config.describe(failure))
            }
            withExtendedLifetime(config) {}
        } catch {
            if spawned {
                // Before the release: closing the control socket makes the other side kill the
                // child, which never ran the container's program.
                berth_supervised_abort(&child)
                if pidfd.rawValue >= 0 { _ = berth_pidfd_send_signal(pidfd.rawValue, SIGKILL) }
            }
            io.closeAll()
            // A start that failed leaves a container that `ps -a` shows with its error.
            try? writePendingRecord()
            try? cgroup?.killAll()
            try? cgroup?.remove()
            var failed = ContainerState(status: .exited)
            // As Docker records a start that failed: 127 for a command not found, 126 for one
            // that cannot run, 128 ("unknown") for any other failure.
            let status = (error as? Error)?.startFailureStatus ?? 125
            failed.exitCode = status == 125 ? 128 : status
            failed.startedAt = current.startedAt
            failed.error = "\(error)"
            failed.finishedAt = Timestamp.now()
            writeState(failed)
            if let e = error as? Error { throw e }
            throw Error(container: name, stage: .start, detail: "\(error)")
        }
        return ContainerProcess(
            container: self, pid: child.pid, pidfd: pidfd.take(), io: io, cgroup: cgroup,
            isMain: true)
    }

    /// The container's cgroup with its limits and device rules; nothing is left if a step fails.
    static func makeCgroup(id: String, name: String, spec: ContainerSpec) throws -> Cgroup {
        let cgroup = try Cgroup.create(name: id, limits: spec.resources)
        do {
            // cgroup v1: devices.deny/allow; v2: a BPF device program (see DeviceRules).
            try DeviceRules.apply(to: cgroup, privileged: spec.privileged, container: name)
        } catch {
            try? cgroup.remove()
            throw error
        }
        return cgroup
    }

    /// Called by whoever waited for the main process: record the exit, drop the cgroup.
    /// `removing`: the caller removes the container next, so the exit is not written (a state
    /// left "running" by a crash in between reads as exited: its pid is gone).
    func recordExit(
        pid: Int32, code: Int32, finishedAt: String? = nil, error: String? = nil, oomKilled: Bool? = nil,
        removing: Bool = false
    ) {
        // The remover records nothing, and drops the cgroup itself beside the files.
        guard !removing else { return }
        // Another berth process may have started the container again meanwhile: that run is not
        // this one to record, nor its cgroup this one's to drop.
        var s = readRawState()
        guard s.pid == pid else { return }
        s.status = .exited
        s.exitCode = code
        s.error = error
        s.finishedAt = finishedAt ?? Timestamp.now()
        s.oomKilled = oomKilled
        writeState(s)
        try? Cgroup.destroy(name: id)
    }
}
