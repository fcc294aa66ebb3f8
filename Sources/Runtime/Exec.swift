import CRuntime
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `docker exec`: what to run in a running container. Unset fields take the container's.
public struct ExecSpec: Sendable {
    public var argv: [String]
    public var env: [String]
    public var user: String?
    public var workingDir: String?
    public var tty: Bool
    public var interactive: Bool
    /// The terminal's size at the start (with `tty`).
    public var terminalSize: TerminalSize?

    public init(
        argv: [String], env: [String] = [], user: String? = nil, workingDir: String? = nil,
        tty: Bool = false, interactive: Bool = false, terminalSize: TerminalSize? = nil
    ) {
        self.argv = argv
        self.env = env
        self.user = user
        self.workingDir = workingDir
        self.tty = tty
        self.interactive = interactive
        self.terminalSize = terminalSize
    }
}

extension Container {
    static let namespaceOrder = ["ipc", "uts", "net", "pid", "cgroup", "mnt"]

    /// Starts `spec.argv` inside the container (its namespaces, cgroup, capabilities, seccomp and
    /// user rules) as a child of this process; wait for it with `ContainerProcess.wait`.
    public func exec(_ spec: ExecSpec) throws -> ContainerProcess {
        guard !spec.argv.isEmpty else { throw Error(container: name, step: "exec", detail: "no command given") }
        // Held until the namespaces are open: while the process can be signalled, its pid names it.
        guard let running = openProcess() else {
            throw Error(container: name, step: "exec", detail: "the container is not running")
        }
        let pid = running.pid
        var nsFDs: [Int32] = []
        defer { for fd in nsFDs { close(fd) } }
        for ns in Container.namespaceOrder {
            let fd = open("/proc/\(pid)/ns/\(ns)", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw Error(container: name, step: "open namespace \(ns)", detail: ProcFS.errnoText(errno))
            }
            nsFDs.append(fd)
        }
        // The pid may have been reused between reading state and opening the namespaces.
        guard ProcFS.startTime(pid: pid) == readRawState().pidStartTime else {
            throw Error(container: name, step: "exec", detail: "the container is not running")
        }
        // "running" is recorded while the child still builds its rootfs; until it has pivoted,
        // its mount namespace's root is the host's, which an exec must never enter.
        var hostRoot = stat()
        var containerRoot = stat()
        guard stat("/", &hostRoot) == 0, stat("/proc/\(pid)/root", &containerRoot) == 0,
            hostRoot.st_dev != containerRoot.st_dev || hostRoot.st_ino != containerRoot.st_ino
        else {
            throw Error(container: name, step: "exec", detail: "the container is still starting; try again")
        }
        var user = record.process.user
        if let u = spec.user, !u.isEmpty {
            do {
                user = try ProcessResolution.user(u) { try RootFiles.read($0, inRootOf: pid) }
            } catch {
                throw Error(container: name, step: "user", detail: "\(error)")
            }
        }
        var env = record.process.env
        for entry in spec.env {
            let key = entry.split(separator: "=", maxSplits: 1).first.map(String.init) ?? entry
            env.removeAll { $0 == key || $0.hasPrefix(key + "=") }
            env.append(entry)
        }
        if spec.tty && !env.contains(where: { $0.hasPrefix("TERM=") }) { env.append("TERM=xterm") }
        let io = try ProcessIO(
            stdio: spec.tty ? .tty(spec.terminalSize) : .pipes(stdin: spec.interactive), container: name)
        let arena = CArena()
        var names: [String] = []
        var process = try SpawnConfig.process(
            record: record, root: root, io: io, arena: arena, container: name,
            rlimitNames: &names, argv: spec.argv, env: env, user: user,
            cwd: spec.workingDir ?? record.process.workingDir)
        let procs = Cgroup.open(name: id)?.joinFiles ?? []
        var child = berth_child()
        var failure = berth_failure()
        let rc = withUnsafePointer(to: &process) { p in
            nsFDs.withUnsafeBufferPointer { ns in
                withExtendedLifetime(procs) {
                    let cProcs = procs.map { arena.string($0) as UnsafePointer<CChar>? }
                    return cProcs.withUnsafeBufferPointer { pp in
                        berth_exec_spawn(
                            p, ns.baseAddress, Int32(ns.count), pp.baseAddress, Int32(pp.count), &child, &failure)
                    }
                }
            }
        }
        io.closeChildEnds()
        if rc != 0 {
            io.closeAll()
            if rc < 0 { throw Error(container: name, step: "exec", detail: ProcFS.errnoText(-rc)) }
            let step = SpawnConfig.describe(
                failure, plan: MountPlan(), sysctls: [], rlimits: [], argv0: spec.argv[0],
                cwd: spec.workingDir ?? record.process.workingDir)
            var detail = ProcFS.errnoText(failure.err)
            if failure.stage == Int32(BERTH_STAGE_SETNS.rawValue), failure.index >= 0,
                Int(failure.index) < Container.namespaceOrder.count
            {
                detail = "\(Container.namespaceOrder[Int(failure.index)]) namespace: " + detail
            }
            throw Error(container: name, step: step, detail: detail)
        }
        return ContainerProcess(
            container: self, pid: child.pid, pidfd: FileDescriptor(taking: child.pidfd), io: io,
            cgroup: nil, isMain: false)
    }
}
