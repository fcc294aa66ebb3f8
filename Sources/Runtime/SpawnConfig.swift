import CRuntime
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Fills the flat C structs the child reads (berth_container, berth_process) from a container's
/// record; owns their memory until the spawn call returns.
final class SpawnConfig {
    let arena = CArena()
    var container = berth_container()
    private(set) var plan = MountPlan()
    private var sysctlKeys: [String] = []
    private var rlimitNames: [String] = []

    /// The network namespace the child joins (setns) instead of making one; closed with this
    /// object, once the child has been cloned.
    private var networkNamespace: FileDescriptor?

    /// `rootfs`: the container's overlay from `openOverlay`, kept open by the caller until the
    /// clone. `netns`: a namespace made beforehand for a container with one of its own (with
    /// `lo` up already), or nil for the clone to make it; unused by the other modes.
    init(container c: Container, io: ProcessIO, rootfs: Int32, netns: consuming FileDescriptor?) throws {
        container.netns_fd = -1
        let spec = c.record.spec
        let dir = c.dir
        plan = try MountPlan.make(spec: spec, containerDir: dir, volumes: VolumeStore(root: c.root))
        container.process = try SpawnConfig.process(
            record: c.record, root: c.root, io: io, arena: arena, container: c.name,
            rlimitNames: &rlimitNames)
        container.process.create_cwd = 1
        container.process.use_init = spec.initProcess ? 1 : 0
        if let adj = spec.oomScoreAdj {
            container.process.set_oom_score_adj = 1
            container.process.oom_score_adj = Int32(adj)
        }

        switch spec.network {
        case .none, .default:
            // Joined rather than cloned when made beforehand (lo is up already).
            networkNamespace = netns
        case .host:
            break
        case .container(let id):
            networkNamespace = try NetworkNamespace.ofContainer(id: id, root: c.root, for: c.name)
        case .namespace(let path):
            guard let joined = FileDescriptor(taking: open(path, O_RDONLY | O_CLOEXEC)) else {
                throw Container.Error(
                    container: c.name, stage: .networkNamespace,
                    step: "open network namespace \(path)", errno: errno)
            }
            networkNamespace = consume joined
        }
        container.netns_fd = networkNamespace.rawValue
        container.new_network = spec.network.hasOwnNamespace && container.netns_fd < 0 ? 1 : 0

        container.rootfs = arena.string(try SharedLayers.mountPoint(root: c.root))
        container.rootfs_fd = rootfs
        container.readonly_rootfs = spec.readOnly ? 1 : 0
        // As Docker sets the rootfs propagation: shared when a bind needs it, else slave, else private.
        let asked = plan.mounts.filter { $0.fstype == nil }.map { $0.flags }
        container.root_propagation =
            asked.contains { $0 & UInt(MS_SHARED) != 0 }
            ? UInt(MS_SHARED)
            : asked.contains { $0 & UInt(MS_SLAVE) != 0 } ? UInt(MS_SLAVE) : UInt(MS_PRIVATE)

        let mounts = plan.mounts.map { m in
            berth_mount(
                source: arena.optionalString(m.source), target: arena.string(m.target),
                fstype: arena.optionalString(m.fstype),
                flags: m.flags, data: arena.optionalString(m.data), options: m.options)
        }
        container.mounts = arena.copy(mounts)
        container.nmounts = Int32(mounts.count)
        let devices = plan.devices.map { d in
            berth_device(path: arena.string(d.path), mode: d.mode, major: d.major, minor: d.minor, uid: 0, gid: 0)
        }
        container.devices = arena.copy(devices)
        container.ndevices = Int32(devices.count)
        let links = plan.symlinks.map { berth_symlink(target: arena.string($0.target), path: arena.string($0.path)) }
        container.symlinks = arena.copy(links)
        container.nsymlinks = Int32(links.count)

        var sysctls: [berth_sysctl] = []
        for (key, value) in spec.sysctls.sorted(by: { $0.key < $1.key }) {
            let path = try MountPlan.sysctlPath(key, hostNetwork: spec.network == .host)
            sysctls.append(berth_sysctl(path: arena.string(path), value: arena.string(value)))
            sysctlKeys.append(key)
        }
        container.sysctls = arena.copy(sysctls)
        container.nsysctls = Int32(sysctls.count)
        container.masked_paths = arena.stringArray(plan.masked)
        container.nmasked = Int32(plan.masked.count)
        container.readonly_paths = arena.stringArray(plan.readOnly)
        container.nreadonly = Int32(plan.readOnly.count)
        container.hostname = arena.string(c.record.process.hostname)
        container.domainname = arena.optionalString(spec.domainname)
    }

    /// The container's root filesystem as a detached overlay mount (see berth_overlay_open):
    /// the image's layers under the shared init layer, the container's upper and work dirs on top.
    static func openOverlay(
        root: String, containerDir dir: String, layerPaths: [String],
        container name: String
    ) throws -> FileDescriptor {
        guard !layerPaths.isEmpty else {
            throw Container.Error(container: name, step: "rootfs", detail: "the image has no layers")
        }
        // A volatile overlay leaves work/work/incompat/volatile/dirty behind, which must go
        // before the next mount of the same work dir (a recycled one: ContainerPool).
        clearVolatileMarker(workdir: dir + "/work")
        // overlayfs lists lowerdirs topmost first; the image gives them lowest first.
        let lower = ([try SharedLayers.initLayer(root: root)] + layerPaths.reversed()).joined(separator: ":")
        var message = [CChar](repeating: 0, count: 512)
        let fd = berth_overlay_open(lower, dir + "/upper", dir + "/work", &message, message.count)
        guard let overlay = FileDescriptor(taking: fd) else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw Container.Error(
                container: name, step: "mount overlay rootfs",
                detail: ProcFS.errnoText(-fd) + (reason.isEmpty ? "" : " (\(reason))"))
        }
        return overlay
    }

    static func clearVolatileMarker(workdir: String) {
        unlink(workdir + "/work/incompat/volatile/dirty")
        rmdir(workdir + "/work/incompat/volatile")
        rmdir(workdir + "/work/incompat")
    }

    /// The part shared with exec: identity, capabilities, seccomp, stdio, argv/env.
    static func process(
        record: ContainerRecord, root: String, io: ProcessIO, arena: CArena, container: String,
        rlimitNames: inout [String], argv: [String]? = nil, env: [String]? = nil,
        user: ProcessResolution.User? = nil, cwd: String? = nil
    ) throws -> berth_process {
        let spec = record.spec
        let resolved = record.process
        var p = berth_process()
        let finalEnv = env ?? resolved.env
        p.argv = arena.stringArray(argv ?? resolved.argv)
        p.envp = arena.stringArray(finalEnv)
        if let path = finalEnv.last(where: { $0.hasPrefix("PATH=") }) {
            p.path_env = arena.string(String(path.dropFirst(5)))
        }
        p.cwd = arena.string(cwd ?? resolved.workingDir)
        let u = user ?? resolved.user
        p.uid = u.uid
        p.gid = u.gid
        p.groups = arena.copy(u.groups.map { gid_t($0) })
        p.ngroups = Int32(u.groups.count)
        let caps = resolved.capabilities
        p.cap_bounding = caps
        p.cap_effective = caps
        p.cap_permitted = caps
        p.cap_inheritable = 0
        p.last_cap = Int32(Capabilities.lastCap)
        p.no_new_privs = spec.noNewPrivileges ? 1 : 0
        if !spec.privileged, let json = try seccompProfileJSON(spec.seccomp, container: container) {
            let program: [UInt8]
            do {
                program = try Seccomp.filter(profileJSON: json, capabilities: caps, root: root)
            } catch {
                throw Container.Error(container: container, step: "seccomp", detail: "\(error)")
            }
            p.seccomp_filter = arena.bytes(program)
            p.seccomp_len = UInt16(program.count / 8)
        }
        p.trampoline_fd = berth_trampoline_fd()
        p.stdin_fd = io.childStdin
        p.stdout_fd = io.childStdout
        p.stderr_fd = io.childStderr
        p.tty = io.tty ? 1 : 0
        var limits: [berth_rlimit] = []
        for u in spec.ulimits {
            limits.append(try Container.makeRlimit(u, container: container))
            rlimitNames.append(u.name)
        }
        p.rlimits = arena.copy(limits)
        p.nrlimits = Int32(limits.count)
        return p
    }

    static func seccompProfileJSON(_ mode: SeccompMode, container: String) throws -> String? {
        switch mode {
        case .default: return SeccompDefaultProfile.json
        case .unconfined: return nil
        case .profile(let path):
            do { return try Seccomp.loadProfile(path: path) } catch {
                throw Container.Error(container: container, step: "seccomp", detail: "\(error)")
            }
        }
    }

    static let stageNames: [Int32: String] = [
        Int32(BERTH_STAGE_WAIT_PARENT.rawValue): "wait for parent", Int32(BERTH_STAGE_STDIO.rawValue): "stdio",
        Int32(BERTH_STAGE_SETSID.rawValue): "setsid", Int32(BERTH_STAGE_CGROUP_NS.rawValue): "cgroup namespace",
        Int32(BERTH_STAGE_JOIN_NETNS.rawValue): "join network namespace",
        Int32(BERTH_STAGE_LOOPBACK.rawValue): "loopback up",
        Int32(BERTH_STAGE_PROPAGATION.rawValue): "make mounts private",
        Int32(BERTH_STAGE_ROOTFS.rawValue): "mount overlay rootfs",
        Int32(BERTH_STAGE_MOUNT.rawValue): "mount", Int32(BERTH_STAGE_DEVICE.rawValue): "mknod",
        Int32(BERTH_STAGE_SYMLINK.rawValue): "symlink", Int32(BERTH_STAGE_SYSCTL.rawValue): "sysctl",
        Int32(BERTH_STAGE_MASK.rawValue): "mask path", Int32(BERTH_STAGE_READONLY_PATH.rawValue): "read-only path",
        Int32(BERTH_STAGE_REMOUNT_RO.rawValue): "remount read-only",
        Int32(BERTH_STAGE_PIVOT_ROOT.rawValue): "pivot_root",
        Int32(BERTH_STAGE_HOSTNAME.rawValue): "sethostname", Int32(BERTH_STAGE_DOMAINNAME.rawValue): "setdomainname",
        Int32(BERTH_STAGE_RLIMIT.rawValue): "setrlimit", Int32(BERTH_STAGE_OOM_SCORE.rawValue): "oom_score_adj",
        Int32(BERTH_STAGE_BOUNDING.rawValue): "drop bounding capability",
        Int32(BERTH_STAGE_SETGROUPS.rawValue): "setgroups",
        Int32(BERTH_STAGE_SETGID.rawValue): "setgid", Int32(BERTH_STAGE_SETUID.rawValue): "setuid",
        Int32(BERTH_STAGE_CAPSET.rawValue): "capset", Int32(BERTH_STAGE_NO_NEW_PRIVS.rawValue): "no_new_privs",
        Int32(BERTH_STAGE_SECCOMP.rawValue): "seccomp", Int32(BERTH_STAGE_CWD.rawValue): "working directory",
        Int32(BERTH_STAGE_EXEC.rawValue): "exec", Int32(BERTH_STAGE_INIT.rawValue): "init",
        Int32(BERTH_STAGE_CGROUP_JOIN.rawValue): "join cgroup", Int32(BERTH_STAGE_SETNS.rawValue): "setns",
        Int32(BERTH_STAGE_FORK.rawValue): "fork", Int32(BERTH_STAGE_MOUNT_TARGET.rawValue): "mount",
    ]

    /// "mount /dev/shm", "exec sh", "sysctl net.ipv4.ip_forward", ...
    func describe(_ f: berth_failure) -> String {
        SpawnConfig.describe(f, plan: plan, sysctls: sysctlKeys, rlimits: rlimitNames, argv0: argv0, cwd: cwd)
    }

    /// What went wrong at that step: the errno's text, or for the checks of the child's own
    /// (a mount target that a link turned into the root or into /proc) what it found.
    func detail(_ f: berth_failure) -> String {
        SpawnConfig.detail(f)
    }

    static func detail(_ f: berth_failure) -> String {
        guard UInt32(f.stage) == BERTH_STAGE_MOUNT_TARGET.rawValue else { return ProcFS.errnoText(f.err) }
        return f.err == EBUSY
            ? "the target resolves to the container's root (\"/\"), which a mount cannot replace"
            : "the target resolves to a path inside /proc, which a mount may not cover"
    }

    private var argv0: String { container.process.argv.pointee.map { String(cString: $0) } ?? "" }
    private var cwd: String { container.process.cwd.map { String(cString: $0) } ?? "/" }

    static func describe(
        _ f: berth_failure, plan: MountPlan, sysctls: [String], rlimits: [String], argv0: String, cwd: String
    ) -> String {
        let base = stageNames[f.stage] ?? "stage \(f.stage)"
        let i = Int(f.index)
        switch UInt32(f.stage) {
        case BERTH_STAGE_MOUNT.rawValue, BERTH_STAGE_REMOUNT_RO.rawValue, BERTH_STAGE_MOUNT_TARGET.rawValue:
            if i >= 0 && i < plan.mounts.count {
                let m = plan.mounts[i]
                return "\(base) \(m.target)" + (m.fstype == nil ? " (bind \(m.source ?? ""))" : " (\(m.fstype!))")
            }
            return base + " /"
        case BERTH_STAGE_DEVICE.rawValue:
            return i >= 0 && i < plan.devices.count ? "\(base) \(plan.devices[i].path)" : base
        case BERTH_STAGE_MASK.rawValue: return i >= 0 && i < plan.masked.count ? "\(base) \(plan.masked[i])" : base
        case BERTH_STAGE_READONLY_PATH.rawValue:
            return i >= 0 && i < plan.readOnly.count ? "\(base) \(plan.readOnly[i])" : base
        case BERTH_STAGE_SYSCTL.rawValue: return i >= 0 && i < sysctls.count ? "\(base) \(sysctls[i])" : base
        case BERTH_STAGE_RLIMIT.rawValue: return i >= 0 && i < rlimits.count ? "\(base) \(rlimits[i])" : base
        case BERTH_STAGE_EXEC.rawValue: return "\(base) \(argv0)"
        case BERTH_STAGE_CWD.rawValue: return "\(base) \(cwd)"
        default: return base
        }
    }
}
