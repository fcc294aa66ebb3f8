/// # Runtime: one container, from a plain description to a process in its own namespaces
///
/// Files (Swift, module Runtime):
/// - Container.swift: this type — create, start, wait (via ContainerIO), stop, kill, remove, lookup;
///   the parent side of the spawn protocol.
/// - ContainerSpec.swift: the description the CLI/orchestrator hands in (layer paths, image
///   defaults, overrides, mounts, security, limits). Runtime never imports Images.
/// - ContainerRecord.swift: what lives on disk (config.json, state.json) and atomic JSON writes.
/// - ProcessResolution.swift: Docker's Entrypoint/Cmd rules, environment, user lookup.
/// - RootFiles.swift: the user and group files, read inside the image's layers (overlay rules) or
///   a running container's root, never through a link to the host.
/// - DockerNames.swift: Docker's rule for container and volume names.
/// - DeviceRules.swift: Docker's default device list, as v1 rules or a v2 BPF program.
/// - Capabilities.swift: names, Docker's 14 defaults, cap_add/cap_drop/privileged.
/// - Seccomp.swift + SeccompDefaultProfile.swift: Docker-format profiles compiled by libseccomp
///   to BPF in the parent, cached by content hash under ROOT/cache/seccomp.
/// - MountPlan.swift: Docker's mounts, devices, masked and read-only paths as a table.
/// - CArena.swift: C memory for the flat structs the child reads.
/// - FileTree.swift: plain-syscall file writes and rm -rf for the hot path; the shared init
///   layer (ROOT/cache/init-layer) and overlay mount point (ROOT/cache/rootfs-mount).
/// - ProcFS.swift: /proc/PID/stat start time, SigCgt/SigBlk/SigIgn, timestamps, signal names.
/// - SpawnConfig.swift: fills struct berth_container / berth_process from the above.
/// - ContainerIO.swift: the waiting side — pumps stdout/stderr (pipes or pty) into the json-file
///   log and the terminal, forwards stdin and signals, reaps, records the exit code.
/// - ContainerLog.swift: json-file log writing (with size rotation) and reading (`logs -f`).
/// - Exec.swift: `exec` into a running container.
/// - Cgroup*.swift: cgroup v1/v2 (a colleague's), used through Cgroup.create/joinFiles/killAll/remove.
/// - ContainerPool.swift: removed containers' directories, emptied and reused (ext4 inode costs).
/// - BackgroundWork.swift: one job on a pthread, for the start and removal steps run side by side.
/// - NetworkNamespace.swift: a default-network namespace made ahead of the clone.
///
/// C (module CRuntime; only async-signal-safe calls after clone):
/// - spawn.c: clone with new mnt/pid/uts/ipc[/net] namespaces, the handshake, loopback up.
/// - mounts.c: the overlay as a detached mount (parent side), then in the child: attaching it,
///   mount table, devices, sysctls, masked/read-only paths, pivot_root.
/// - inroot.c: every path inside the container's root, resolved with openat2(RESOLVE_IN_ROOT)
///   and used by fd, so an image's or a volume's symlinks never lead to the host.
/// - devices.c: the cgroup v2 device program (BPF), built from a rule list and attached.
/// - process.c: rlimits, oom_score_adj, bounding set, seccomp, groups/uid/gid, capsets,
///   no_new_privs, cwd, PATH lookup, execve.
/// - init.c: `init: true` PID 1 (forward signals, reap, exit with the child's status).
/// - exec.c: setns from a single-threaded child, CLONE_PARENT so berth can waitpid.
///
/// Parent/child protocol (see spawn.c): the parent creates the cgroup, the overlay (detached) and
/// for the default network a network namespace, on background threads while it does the rest
/// (see create), then clones the child, which moves itself into that cgroup (writing "0" to v1
/// `tasks` files is ~1000x cheaper than the parent writing its pid to cgroup.procs), unshares its
/// cgroup namespace, joins the network namespace, builds the rootfs and blocks reading a CLOEXEC
/// sync pipe. Meanwhile the parent runs network hooks and records the start, then writes one
/// byte. The child drops privileges and execs; any failing step writes (stage, errno, index) on a
/// CLOEXEC error pipe. EOF on that pipe means execve succeeded. Failures become
/// "container NAME: step pivot_root: Invalid argument" and everything made so far is undone.
///
/// Detached containers: `berth container run -d` execs `berth container monitor ID` (setsid),
/// which starts the container as its own child, reports success or the error on a pipe, then
/// stays to pump logs, reap and record the exit code (and remove the container for --rm).
import CRuntime
import FoundationEssentials
import Support
#if canImport(Glibc)
import Glibc
#endif

public final class Container {
    /// "container NAME: step STEP: DETAIL"; a person can act on it.
    public struct Error: Swift.Error, CustomStringConvertible {
        public var container: String
        public var step: String
        public var detail: String
        public init(container: String, step: String, detail: String) {
            self.container = container
            self.step = step
            self.detail = detail
        }
        public var description: String {
            var text = container.isEmpty ? "" : "container \(container): "
            if !step.isEmpty { text += "step \(step): " }
            return text + detail
        }
    }

    public let root: String
    public let id: String
    public private(set) var record: ContainerRecord
    /// The cgroup create() made, for start() in the same process.
    var preparedCgroup: Cgroup?
    /// config.json is not written yet (create(startingNow:)); start() writes it.
    var recordPending = false
    /// The detached overlay and network namespace create(startingNow:) made, for start(); -1
    /// when none.
    var preparedRootfs: Int32 = -1
    var preparedNetns: Int32 = -1

    deinit {
        if preparedRootfs >= 0 { close(preparedRootfs) }
        if preparedNetns >= 0 { close(preparedNetns) }
    }

    /// In place: until this write, a recycled directory's stale record names another ID, which
    /// load() refuses, so no reader sees half of it (ContainerPool).
    func writePendingRecord() throws {
        guard recordPending else { return }
        try JSONFiles.overwrite(record, dir + "/config.json")
        recordPending = false
    }

    public var name: String { record.name }
    public var shortID: String { String(id.prefix(12)) }
    var dir: String { Container.containersDir(root) + "/" + id }
    var statePath: String { dir + "/state.json" }
    public var logPath: String { dir + "/container.log" }

    static func containersDir(_ root: String) -> String { root + "/containers" }
    static func namesDir(_ root: String) -> String { root + "/container-names" }

    init(root: String, record: ContainerRecord) {
        self.root = root
        self.id = record.id
        self.record = record
    }

    // MARK: create

    /// Validates the spec, resolves the process (Docker's rules, user in the image's files),
    /// reserves the name and writes ROOT/containers/ID. On any error nothing is left behind.
    /// `startingNow`: the caller calls start() next, in this process (`docker run`); the record
    /// is then written by start() while the child builds its root filesystem on the other core.
    /// `completingSpec`: fills in what is slow to find (the image's layers and defaults) while
    /// the cgroup and network namespace are being made; it must not change the name, resources,
    /// privileges or network. Its errors come out as they are.
    /// `networkNamespace`: one the caller made beforehand (`NetworkNamespace.make`) for a
    /// container on the default network that starts now; create() owns it from here.
    public static func create(spec: ContainerSpec, root: String, startingNow: Bool = false,
                              networkNamespace: Int32 = -1,
                              completingSpec: ((inout ContainerSpec) throws -> Void)? = nil) throws -> Container {
        let usesPrepared = startingNow && spec.network == .none && networkNamespace >= 0
        // Closed here unless the cgroup thread below takes it over.
        var unusedNetns = networkNamespace
        defer { if unusedNetns >= 0 { close(unusedNetns) } }
        let id = randomID()
        let name = spec.name ?? generatedName(id)
        guard isValidName(name) else {
            throw Error(container: name, step: "", detail: "invalid container name (allowed: [a-zA-Z0-9][a-zA-Z0-9_.-]*)")
        }
        // Numbers first, as Docker's daemon checks them: nothing is made for a spec it refuses
        // (an unchecked cpus once trapped after the name was taken).
        do { try spec.resources.validate() } catch {
            throw Error(container: name, step: "", detail: "\(error)")
        }
        if let adj = spec.oomScoreAdj, !(-1000...1000).contains(adj) {
            throw Error(container: name, step: "", detail: "Invalid value \(adj), range for oom score adj is [-1000, 1000]")
        }
        if access(namesDir(root), F_OK) != 0 || access(containersDir(root), F_OK) != 0 {
            // ext4's "T" attribute on ROOT and ROOT/containers: the directories made under them
            // (the names dir, each container's) are placed like top-level ones, in the block
            // group with the fewest directories, rather than beside a parent whose group other
            // programs' deletions may crowd (ContainerPool.take says why that matters). Other
            // file systems ignore it.
            try FileTree.mkdirs(root)
            // Root's alone, as Docker's /var/lib/docker: image layers and volumes hold setuid
            // files and device nodes that images and containers made (CVE-2021-41091).
            chmod(root, 0o700)
            _ = berth_mark_top_directory(root)
            try FileTree.mkdirs(namesDir(root))
            try FileTree.mkdirs(containersDir(root))
            _ = berth_mark_top_directory(containersDir(root))
        }
        let nameLink = namesDir(root) + "/" + name
        if symlink(NameLink.target(forID: id), nameLink) != 0 {
            if errno == EEXIST {
                let other = NameLink.read(nameLink) ?? "?"
                throw Error(container: name, step: "", detail: "the name is already in use by container \(other.prefix(12)); remove it or pick another name")
            }
            throw Error(container: name, step: "reserve name", detail: ProcFS.errnoText(errno))
        }
        let dir = containersDir(root) + "/" + id
        // The cgroup (a directory and limit files per hierarchy) and the network namespace are
        // made on the second core while this one resolves the process and writes the
        // container's files; start() uses them.
        if usesPrepared { unusedNetns = -1 }
        let cgroupWork = BackgroundWork { () throws -> (Cgroup?, Int32) in
            // A container started later (by the -d monitor) gets its cgroup then.
            guard startingNow else { return (nil, -1) }
            let cgroup: Cgroup
            do { cgroup = try makeCgroup(id: id, name: name, spec: spec) } catch {
                if usesPrepared { close(networkNamespace) }
                throw error
            }
            guard spec.network == .none else { return (cgroup, -1) }
            if usesPrepared { return (cgroup, networkNamespace) }
            let netns = berth_netns_open()
            guard netns >= 0 else {
                try? cgroup.remove()
                throw Error(container: name, step: "create network namespace", detail: ProcFS.errnoText(-netns))
            }
            return (cgroup, netns)
        }
        var rootfsWork: BackgroundWork<Int32>?
        var spec = spec
        var completing = false
        do {
            if !ContainerPool.take(root: root, into: dir) {
                try FileTree.mkdir(dir, mode: 0o710)
                for sub in ["upper", "work"] { try FileTree.mkdir(dir + "/" + sub) }
            }
            if let completingSpec {
                completing = true
                try completingSpec(&spec)
                completing = false
            }
            // The overlay too, on a third thread: mostly inode work in the upper dir's file system.
            if startingNow {
                let layerPaths = spec.layerPaths
                rootfsWork = BackgroundWork {
                    try SpawnConfig.openOverlay(root: root, containerDir: dir, layerPaths: layerPaths, container: name)
                }
            }
            let process = try resolveProcess(spec: spec, id: id, name: name)
            // Validate mounts now (missing bind sources) so create fails, not start.
            _ = try MountPlan.make(spec: spec, containerDir: dir, volumesDir: root + "/volumes")
            try writeEtcFiles(spec: spec, hostname: process.hostname, dir: dir)
            let record = ContainerRecord(id: id, name: name, created: Timestamp.now(), spec: spec, process: process)
            // No state.json yet: a missing one reads as "created" (readRawState). Each file here
            // costs a data block, and replacing or deleting it frees that block, which on this
            // host's ext4 (no journal, `discard`) waits for the device.
            let container = Container(root: root, record: record)
            container.recordPending = true
            if !startingNow { try container.writePendingRecord() }
            // Both jobs first: the container owns what they made only once neither failed (the
            // catch below cleans up after either).
            let (cgroup, netns) = try cgroupWork.wait()
            let rootfs = try rootfsWork?.wait() ?? -1
            (container.preparedCgroup, container.preparedNetns, container.preparedRootfs) = (cgroup, netns, rootfs)
            return container
        } catch {
            if let (cgroup, netns) = try? cgroupWork.wait() {
                try? cgroup?.remove()
                if netns >= 0 { close(netns) }
            }
            if let fd = try? rootfsWork?.wait() { close(fd) }
            FileTree.removeTree(dir)
            unlink(nameLink)
            if completing { throw error }
            guard var failure = error as? Error else { throw Error(container: name, step: "", detail: "\(error)") }
            if failure.container.isEmpty { failure.container = name }
            throw failure
        }
    }

    static func resolveProcess(spec: ContainerSpec, id: String, name: String) throws -> ResolvedProcess {
        let argv = ProcessResolution.argv(image: spec.imageDefaults, entrypoint: spec.entrypoint, command: spec.command)
        guard !argv.isEmpty else {
            throw Error(container: name, step: "", detail: "no command specified: the image has no Entrypoint or Cmd and none was given")
        }
        let user: ProcessResolution.User
        do {
            user = try ProcessResolution.user(spec.user ?? spec.imageDefaults.user, extraGroups: spec.groupAdd) { path in
                try RootFiles.read(path, layers: spec.layerPaths)
            }
        } catch {
            throw Error(container: name, step: "user", detail: "\(error)")
        }
        let caps: UInt64
        do {
            caps = try Capabilities.effectiveSet(privileged: spec.privileged, add: spec.capAdd, drop: spec.capDrop)
        } catch {
            throw Error(container: name, step: "capabilities", detail: "\(error)")
        }
        for limit in spec.ulimits {
            _ = try makeRlimit(limit, container: name)
        }
        for (key, _) in spec.sysctls {
            do { _ = try MountPlan.sysctlPath(key, hostNetwork: spec.network == .host) } catch var e as Error {
                e.container = name
                throw e
            }
        }
        var stopSignal = SIGTERM
        if let s = spec.stopSignal ?? spec.imageDefaults.stopSignal, !s.isEmpty {
            guard let n = Signals.number(s) else { throw Error(container: name, step: "", detail: "unknown stop signal \(s)") }
            stopSignal = n
        }
        let hostname = spec.hostname ?? (spec.network == .host ? hostHostname() : String(id.prefix(12)))
        let env = ProcessResolution.environment(image: spec.imageDefaults.env, given: spec.env, hostname: hostname,
                                                home: user.home, tty: spec.tty)
        var cwd = spec.workingDir ?? spec.imageDefaults.workingDir ?? "/"
        if cwd.isEmpty { cwd = "/" }
        guard cwd.hasPrefix("/") else { throw Error(container: name, step: "", detail: "working directory \(cwd) is not an absolute path") }
        return ResolvedProcess(argv: argv, env: env, workingDir: cwd, user: user, capabilities: caps,
                               hostname: hostname, stopSignal: stopSignal, stopTimeout: spec.stopTimeout ?? 10)
    }

    static let rlimitNames: [String: Int32] = [
        "core": 4, "cpu": 0, "data": 2, "fsize": 1, "locks": 10, "memlock": 8, "msgqueue": 12, "nice": 13,
        "nofile": 7, "nproc": 6, "rss": 5, "rtprio": 14, "rttime": 15, "sigpending": 11, "stack": 3, "as": 9,
    ]

    /// A ulimit as the child sets it; never above the host's hard limit (raising it would need
    /// CAP_SYS_RESOURCE, which berth may not have, and Docker would fail the same way).
    static func makeRlimit(_ u: Ulimit, container: String) throws -> berth_rlimit {
        guard let resource = rlimitNames[u.name] else {
            throw Error(container: container, step: "ulimit", detail: "unknown ulimit \"\(u.name)\" (known: \(rlimitNames.keys.sorted().joined(separator: ", ")))")
        }
        guard u.soft <= u.hard else {
            throw Error(container: container, step: "ulimit", detail: "ulimit \(u.name): soft limit \(u.soft) is above the hard limit \(u.hard)")
        }
        var host = rlimit()
        getrlimit(__rlimit_resource_t(UInt32(resource)), &host)
        if host.rlim_max != rlim_t.max && u.hard > host.rlim_max {
            throw Error(container: container, step: "ulimit",
                        detail: "ulimit \(u.name): hard limit \(u.hard) is above the host's hard limit \(host.rlim_max)")
        }
        return berth_rlimit(resource: resource, soft: u.soft, hard: u.hard)
    }

    static func hostHostname() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, buf.count)
        return String(cString: buf)
    }

    static func writeEtcFiles(spec: ContainerSpec, hostname: String, dir: String) throws {
        var hosts: String
        if spec.network == .host, let host = readText("/etc/hosts") {
            hosts = host
        } else {
            hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
                + "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
        }
        for entry in spec.extraHosts {
            let parts = entry.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { hosts += "\(parts[1])\t\(parts[0])\n" }
        }
        var resolv = readText("/etc/resolv.conf") ?? ""
        if spec.network != .host {
            // A host-local resolver (127.0.0.53) is unreachable from another network namespace.
            let lines = resolv.split(separator: "\n", omittingEmptySubsequences: false).filter {
                !($0.hasPrefix("nameserver") && ($0.contains(" 127.") || $0.contains(" ::1")))
            }
            resolv = lines.joined(separator: "\n")
            if !resolv.contains("nameserver") { resolv += "\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n" }
        }
        for (file, text) in [("hosts", hosts), ("hostname", hostname + "\n"), ("resolv.conf", resolv)] {
            try FileTree.write(text, to: dir + "/" + file)
        }
    }

    static func randomID() -> String {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return bytes.hexString
    }

    static let adjectives = ["brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
                             "nifty", "proud", "quiet", "sharp", "tender", "vivid", "witty", "zen"]
    static let nouns = ["albatross", "beacon", "cutter", "dinghy", "ferry", "galleon", "harbor", "jetty", "keel",
                        "lighthouse", "mooring", "pier", "quay", "schooner", "tug", "wharf"]

    static func generatedName(_ id: String) -> String {
        let bytes = Array(id.utf8)
        let a = Int(bytes[0]) % adjectives.count, n = Int(bytes[1]) % nouns.count
        return "\(adjectives[a])_\(nouns[n])_\(id.prefix(4))"
    }

    static func isValidName(_ name: String) -> Bool {
        // Docker's [a-zA-Z0-9][a-zA-Z0-9_.-]*.
        func isAlphanumeric(_ c: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
        }
        guard let first = name.unicodeScalars.first, isAlphanumeric(first) else { return false }
        return name.unicodeScalars.allSatisfy { isAlphanumeric($0) || "_.-".unicodeScalars.contains($0) }
    }

    // MARK: lookup

    /// By name, full ID or unique ID prefix.
    public static func lookup(_ reference: String, root: String) throws -> Container {
        if let id = NameLink.read(namesDir(root) + "/" + reference), let c = load(id: id, root: root) {
            return c
        }
        if reference.count == 64, let c = load(id: reference, root: root) { return c }
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: containersDir(root))) ?? []
        let matches = reference.isEmpty ? [] : ids.filter { $0.hasPrefix(reference) }
        if matches.count > 1 { throw Error(container: reference, step: "", detail: "the ID prefix is ambiguous; give more characters") }
        guard let only = matches.first, let c = load(id: only, root: root) else {
            throw Error(container: reference, step: "", detail: "no such container")
        }
        return c
    }

    static func load(id: String, root: String) -> Container? {
        guard let record = JSONFiles.read(ContainerRecord.self, containersDir(root) + "/" + id + "/config.json"),
              record.id == id else { return nil }
        return Container(root: root, record: record)
    }

    /// Every container under the root, newest first.
    public static func list(root: String) -> [Container] {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: containersDir(root))) ?? []
        return ids.compactMap { load(id: $0, root: root) }.sorted { $0.record.created > $1.record.created }
    }

    // MARK: state

    func readRawState() -> ContainerState {
        JSONFiles.read(ContainerState.self, statePath) ?? ContainerState(status: .created)
    }

    func writeState(_ state: ContainerState) {
        try? JSONFiles.write(state, statePath)
    }

    /// The state on disk, corrected by reality: a "running" container whose process is gone
    /// (or whose pid now names another process) is reported as exited.
    public func state() -> ContainerState {
        var s = readRawState()
        if s.status == .running, !isAlive(s) {
            s.status = .exited
            if s.exitCode == nil { s.exitCode = 255 }
        }
        return s
    }

    func isAlive(_ s: ContainerState) -> Bool {
        guard let pid = s.pid, let start = s.pidStartTime else { return false }
        return ProcFS.startTime(pid: pid) == start
    }

    public var isRunning: Bool { state().status == .running }

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

    // MARK: stop, kill, remove

    /// Opens a pidfd for the container's PID 1 and checks it is still the same process.
    func openProcess() -> (pid: Int32, pidfd: Int32)? {
        let s = readRawState()
        guard s.status == .running, let pid = s.pid, let start = s.pidStartTime else { return nil }
        let fd = berth_pidfd_open(pid)
        guard fd >= 0 else { return nil }
        guard ProcFS.startTime(pid: pid) == start else {
            close(fd)
            return nil
        }
        return (pid, fd)
    }

    /// `docker stop`: the stop signal, then SIGKILL after `timeout` seconds. When PID 1 has no
    /// handler for the signal (SigCgt), the kernel drops it for a namespace init: kill at once.
    /// Returns when the process is gone and the exit is recorded.
    public func stop(timeout: Int? = nil) throws {
        guard let (pid, fd) = openProcess() else { return }
        defer { close(fd) }
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
        guard let (_, fd) = openProcess() else {
            throw Error(container: name, step: "kill", detail: "the container is not running")
        }
        defer { close(fd) }
        if berth_pidfd_send_signal(fd, signal) != 0 {
            throw Error(container: name, step: "kill", detail: ProcFS.errnoText(errno))
        }
    }

    /// The waiter (monitor or foreground run) writes the exit code right after the process ends;
    /// give it a moment so `stop` returns with the state already on disk.
    func waitForRecordedExit() {
        for _ in 0..<200 {
            let s = readRawState()
            if s.status != .running { return }
            if let monitor = s.monitorPid, monitor != getpid(), Glibc.kill(monitor, 0) != 0 { return }
            usleep(10_000)
        }
    }

    /// `docker rm [-f]`: nothing of the container is left — process, cgroup, files, name.
    public func remove(force: Bool = false) throws {
        // One read of state.json in the common case (an exited container).
        var s = readRawState()
        if s.status == .running && isAlive(s) {
            guard force else {
                throw Error(container: name, step: "remove", detail: "the container is running; stop it first or use force (-f)")
            }
            if let (_, fd) = openProcess() {
                _ = berth_pidfd_send_signal(fd, SIGKILL)
                _ = waitReadable(fd, milliseconds: 10_000)
                close(fd)
            }
            waitForRecordedExit()
            s = readRawState()
        }
        // The monitor of a detached container may still be finishing; let it go first.
        if let monitor = s.monitorPid, monitor != getpid() {
            let fd = berth_pidfd_open(monitor)
            if fd >= 0 {
                _ = waitReadable(fd, milliseconds: 2000)
                close(fd)
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
                throw Error(container: name, step: "remove", detail: "\(error)")
            }
        }
        let link = Container.namesDir(root) + "/" + name
        if NameLink.read(link) == id { unlink(link) }
    }
}

/// ROOT/container-names/NAME is a symlink whose target is the container's ID, written as 43
/// base64url characters rather than 64 hex digits: ext4 keeps a symlink target shorter than 60
/// bytes inside the inode, a longer one takes a data block, and freeing a block on a host whose
/// ext4 has no journal and mounts with `discard` waits for a synchronous discard (1-4 ms each,
/// measured, on every `rm`). Links holding the 64 hex digits read back as well.
enum NameLink {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func target(forID id: String) -> String {
        guard let bytes = hexBytes(id) else { return id }
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var chunk = UInt32(bytes[i]) << 16
            if n > 1 { chunk |= UInt32(bytes[i + 1]) << 8 }
            if n > 2 { chunk |= UInt32(bytes[i + 2]) }
            for k in 0...n { out.append(alphabet[Int((chunk >> (18 - 6 * UInt32(k))) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func id(fromTarget target: String) -> String? {
        if target.utf8.count == 64 { return hexBytes(target) == nil ? nil : target }
        var bits: UInt32 = 0, count = 0
        var bytes: [UInt8] = []
        for c in target.utf8 {
            guard let v = alphabet.firstIndex(of: c) else { return nil }
            bits = (bits << 6) | UInt32(v)
            count += 6
            if count >= 8 {
                count -= 8
                bytes.append(UInt8((bits >> UInt32(count)) & 0xff))
            }
        }
        guard bytes.count == 32 else { return nil }
        var hex: [UInt8] = []
        for b in bytes { hex.append(hexDigits[Int(b >> 4)]); hex.append(hexDigits[Int(b & 15)]) }
        return String(decoding: hex, as: UTF8.self)
    }

    /// The ID a name link points at, or nil when there is no such (valid) link.
    static func read(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return id(fromTarget: target)
    }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < u.count {
            guard let hi = hexDigits.firstIndex(of: u[i]), let lo = hexDigits.firstIndex(of: u[i + 1]) else { return nil }
            out.append(UInt8(hi << 4 | lo))
            i += 2
        }
        return out
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
