import CRuntime
import FoundationEssentials
import Support
#if canImport(Glibc)
import Glibc
#endif

extension Container {
    // MARK: start

    public enum Stdio {
        /// stdin from /dev/null (or a pipe when `stdin`), stdout and stderr through pipes.
        case pipes(stdin: Bool)
        /// One pseudo-terminal for all three (-t).
        case tty
    }

    /// Starts the container as a child of this process, which must then wait for it
    /// (ContainerIO.run). `beforeResume` runs while the child builds its root filesystem in its
    /// namespaces (network setup goes there); the container's program starts after it returns.
    /// The child writes its sysctls before that (they must precede /proc/sys going read-only),
    /// so a per-interface sysctl for an interface a hook adds needs the hook to set it.
    public func start(stdio: Stdio, beforeResume: ((Int32) throws -> Void)? = nil) throws -> ContainerProcess {
        let current = state()
        guard current.status == .created else {
            throw Error(container: name, step: "start", detail: current.status == .running ? "already running" : "the container has already run; remove it and run a new one")
        }
        let io: ProcessIO
        do { io = try ProcessIO(stdio: stdio, container: name) } catch {
            try? preparedCgroup?.remove()
            preparedCgroup = nil
            for fd in [preparedRootfs, preparedNetns] where fd >= 0 { close(fd) }
            (preparedRootfs, preparedNetns) = (-1, -1)
            try? writePendingRecord()
            throw error
        }
        // Made by create() in this process, or now on the second core while this one builds the
        // spawn configuration.
        let id = self.id, name = self.name, spec = record.spec
        let cgroupWork = preparedCgroup == nil ? BackgroundWork { try Container.makeCgroup(id: id, name: name, spec: spec) } : nil
        var cgroup = preparedCgroup
        preparedCgroup = nil
        var rootfs = preparedRootfs
        let netns = preparedNetns
        preparedRootfs = -1
        preparedNetns = -1
        // The child attaches its own copy of the mount; this one goes once the clone is done.
        defer { if rootfs >= 0 { close(rootfs) } }
        var child = berth_child()
        var spawned = false
        do {
            let configured = Result {
                if rootfs < 0 {
                    do {
                        rootfs = try SpawnConfig.openOverlay(root: root, containerDir: dir, layerPaths: spec.layerPaths, container: name)
                    } catch {
                        if netns >= 0 { close(netns) }
                        throw error
                    }
                }
                return try SpawnConfig(container: self, io: io, rootfs: rootfs, netns: netns)
            }
            if let cgroupWork { cgroup = try cgroupWork.wait() }
            let config = try configured.get()
            // The child moves itself into the group first thing (see spawn.c for why not us).
            let joinFiles = cgroup?.joinFiles ?? []
            config.container.cgroup_join = config.arena.stringArray(joinFiles)
            config.container.ncgroup_join = Int32(joinFiles.count)
            let rc = withUnsafePointer(to: &config.container) { berth_spawn($0, &child) }
            guard rc == 0 else { throw Error(container: name, step: "clone", detail: ProcFS.errnoText(-rc)) }
            spawned = true
            io.closeChildEnds()
            // The child builds its rootfs meanwhile, on the other core, then waits for the go:
            // its program starts only once the network is in place and the start is recorded
            // (on a failure below, the catch overwrites this state with the error).
            try beforeResume?(child.pid)
            try writePendingRecord()
            var running = ContainerState(status: .running)
            running.pid = child.pid
            running.pidStartTime = ProcFS.startTime(pid: child.pid)
            running.monitorPid = getpid()
            running.startedAt = Timestamp.now()
            writeState(running)
            let released = berth_release(&child)
            var failure = berth_failure()
            let resumed = berth_wait_exec(&child, released, &failure)
            if resumed != 0 {
                var status: Int32 = 0
                waitpid(child.pid, &status, 0)
                spawned = false
                if resumed < 0 { throw Error(container: name, step: "start", detail: ProcFS.errnoText(-resumed)) }
                throw Error(container: name, step: config.describe(failure), detail: config.detail(failure))
            }
            withExtendedLifetime(config) {}
        } catch {
            if spawned {
                if child.sync_fd >= 0 { close(child.sync_fd) }
                if child.error_fd >= 0 { close(child.error_fd) }
                Glibc.kill(child.pid, SIGKILL)
                var status: Int32 = 0
                waitpid(child.pid, &status, 0)
            }
            if child.pidfd > 0 { close(child.pidfd) }
            io.closeAll()
            // A start that failed leaves a container that `ps -a` shows with its error.
            try? writePendingRecord()
            try? cgroup?.killAll()
            try? cgroup?.remove()
            var failed = ContainerState(status: .exited)
            failed.exitCode = 127
            failed.error = "\(error)"
            failed.finishedAt = Timestamp.now()
            writeState(failed)
            if let e = error as? Error { throw e }
            throw Error(container: name, step: "start", detail: "\(error)")
        }
        return ContainerProcess(container: self, pid: child.pid, pidfd: child.pidfd, io: io, cgroup: cgroup, isMain: true)
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
    func recordExit(status: Int32, removing: Bool = false) {
        if !removing {
            var s = readRawState()
            s.status = .exited
            s.exitCode = berth_wait_status_exit(status)
            s.finishedAt = Timestamp.now()
            writeState(s)
        }
        // The remover drops the cgroup itself, beside the files.
        if !removing { try? Cgroup.destroy(name: id) }
    }
}
