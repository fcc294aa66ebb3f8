/// # Runtime: one container, from a plain description to a process in its own namespaces
///
/// Files (Swift, module Runtime):
/// - Container.swift: this type, its error and its files on disk; by job: ContainerCreate.swift
///   (validate, resolve, reserve the name, write the record), ContainerStart.swift (the parent side
///   of the spawn protocol), ContainerStop.swift (stop, kill, wait for the exit, remove),
///   ContainerLookup.swift (by name or ID, list, state, rename, and the name links).
/// - ContainerSpec.swift: the description the CLI/orchestrator hands in (layer paths, image
///   defaults, overrides, mounts, security, limits, the network mode). Runtime never imports
///   Images: the one builder of a spec from an image is the ContainerSpecs module's.
/// - ContainerRecord.swift: what lives on disk (config.json, state.json) and atomic JSON writes.
/// - ProcessResolution.swift: Docker's Entrypoint/Cmd rules, environment, user lookup.
/// - RootFiles.swift: the user and group files, read inside the image's layers (overlay rules) or
///   a running container's root, never through a link to the host.
/// - DeviceRules.swift: Docker's default device list, as v1 rules or a v2 BPF program.
/// - Capabilities.swift: names, Docker's 14 defaults, cap_add/cap_drop/privileged.
/// - Seccomp.swift + SeccompDefaultProfile.swift: Docker-format profiles compiled by libseccomp
///   to BPF in the parent, cached by content hash under ROOT/cache/seccomp.
/// - MountPlan.swift: Docker's mounts, devices, masked and read-only paths as a table.
/// - Volumes.swift: named volumes (`VolumeStore`: ROOT/volumes/NAME/volume.json and _data);
///   VolumeCopyUp.swift: the image's content copied into an empty volume at create.
/// - CArena.swift: C memory for the flat structs the child reads.
/// - FileTree.swift: plain-syscall file writes and rm -rf for the hot path (over Support's
///   `Files` and `TreeRemoval`, shared with the image store); the shared init layer
///   (ROOT/cache/init-layer) and overlay mount point (ROOT/cache/rootfs-mount).
/// - ProcFS.swift: /proc/PID/stat start time, SigCgt/SigBlk/SigIgn, timestamps, signal names.
/// - SpawnConfig.swift: fills struct berth_container / berth_process from the above.
/// - ContainerIO.swift: the waiting side — pumps stdout/stderr (pipes or pty) into the json-file
///   log and the terminal, forwards stdin and signals, reaps, records the exit code.
/// - ContainerLog.swift: json-file log writing (with size rotation) and reading (`logs -f`).
/// - Exec.swift: `exec` into a running container.
/// - Cgroup*.swift: cgroup v1/v2 (a colleague's), used through Cgroup.create/joinFiles/killAll/remove.
/// - ContainerPool.swift: removed containers' directories, emptied and reused (ext4 inode costs).
/// - BackgroundWork.swift: one job on a pthread, for the start and removal steps run side by side.
/// - NetworkNamespace.swift: a namespace of the container's own made ahead of the clone, and
///   another container's, for `container:ID`.
///
/// Descriptors (the overlay's mount, network namespaces, pidfds, the creation lock) are each
/// owned by one `FileDescriptor` (Support), a noncopyable value that closes it when it ends:
/// handing one on moves it, so none is closed twice or forgotten on an error path. Docker's rule
/// for names is Support's `DockerNames`, shared with the CLI and Compose.
///
/// C (module CRuntime; only async-signal-safe calls after clone):
/// - spawn.c: clone with new mnt/pid/uts/ipc[/net] namespaces, the handshake, loopback up.
/// - mounts.c: the overlay as a detached mount (parent side), then in the child: attaching it,
///   mount table, devices, sysctls, masked/read-only paths, pivot_root.
/// - inroot.c: every path inside the container's root, resolved with openat2(RESOLVE_IN_ROOT)
///   and used by fd, so an image's or a volume's symlinks never lead to the host.
/// - copyup.c: extended attributes and a node's chmod for a volume's copy-up, by fd.
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
/// Supervision: every container runs under berth-shim (Sources/berth-shim, a small static C
/// program; supervise.c starts it), which reaps it, writes its log and records its exit in
/// exit.json, so whatever started it may exit or be killed (see docs/architecture.md).
import CRuntime
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

public final class Container {
    /// "container NAME: step STEP: DETAIL"; a person can act on it, and a program can act on
    /// `stage` and `errno` (the CLI picks Docker's exit statuses from them, never from the text).
    public struct Error: Swift.Error, CustomStringConvertible, Equatable, Codable, Sendable {
        public var container: String
        /// The step as shown, with what it acted on: "exec sh", "mount /dev/shm", "user".
        public var step: String
        /// Which step failed, as data.
        public var stage: Stage
        /// The system's error number, when a call failed with one; its words appear only in
        /// `description`.
        public var errno: Int32?
        /// Words that say more than the errno, or all there is to say when there is none.
        public var explanation: String?

        /// The text after the step: the explanation, else the errno's words.
        public var detail: String {
            get { explanation ?? errno.map { String(cString: strerror($0)) } ?? "" }
            set { explanation = newValue }
        }

        /// `step` defaults to the stage's name; `detail` to the errno's words.
        public init(container: String, stage: Stage, step: String? = nil, errno: Int32? = nil, detail: String? = nil) {
            self.container = container
            self.stage = stage
            self.step = step ?? stage.name
            self.errno = errno
            self.explanation = detail
        }

        /// A failure the container's first process reported on its error pipe before its execve
        /// (spawn.c): `step` as SpawnConfig.describe words it ("exec sh", "mount /data (bind
        /// /srv)"). The child's own checks (a mount target that turned into "/" or into /proc)
        /// get SpawnConfig's sentence; every other stage is its errno.
        init(container: String, childFailure failure: berth_failure, step: String) {
            let stage = Stage(childStage: failure.stage)
            let sentence = stage == .mountTarget ? SpawnConfig.detail(failure) : nil
            self.init(container: container, stage: stage, step: step, errno: failure.err, detail: sentence)
        }

        /// The text-only form, for the callers that have not said which stage and errno yet: the
        /// stage is read from the step's first words, the errno from a detail that is exactly an
        /// errno's words. (That reading goes once every caller uses the initializers above.)
        public init(container: String, step: String, detail: String) {
            self.container = container
            self.step = step
            self.stage = Stage(stepText: step)
            self.errno = Stage.errnoNamed(detail)
            self.explanation = detail
        }

        public var description: String {
            var text = container.isEmpty ? "" : "container \(container): "
            if !step.isEmpty { text += "step \(step): " }
            return text + detail
        }
    }

    public let root: String
    public let id: String
    /// Set once, by create(); rename(to:) gives it the new name.
    public internal(set) var record: ContainerRecord
    /// The cgroup create() made, for start() in the same process.
    var preparedCgroup: Cgroup?
    /// config.json is not written yet (create(startingNow:)); start() writes it.
    var recordPending = false
    /// The detached overlay and network namespace create(startingNow:) made, for start(), which
    /// takes them; whatever is left closes with this object.
    var preparedRootfs: FileDescriptor?
    var preparedNetns: FileDescriptor?

    /// The flock on the container's directory that create() takes before it reserves the name;
    /// while it is held, `rm -f` and `system prune` know the container is being made and leave
    /// its directory and name alone (ContainerLookup.swift, leftovers). nil once released.
    var creationLock: CreationLock?

    /// In place: until this write, a recycled directory's stale record names another ID, which
    /// load() refuses, so no reader sees half of it (ContainerPool). The container is complete
    /// from here: the creation lock goes.
    func writePendingRecord() throws {
        guard recordPending else { return }
        try JSONFiles.overwrite(record, dir + "/config.json")
        recordPending = false
        creationLock = nil
        Container.pauseForTest(at: .recordWritten)
    }

    public var name: String { record.name }
    public var shortID: String { String(id.prefix(12)) }
    var dir: String { Container.containersDir(root) + "/" + id }
    /// ROOT/containers/ID/FILE, for what others write there (hosts, resolv.conf, ports.json).
    public func file(_ name: String) -> String { dir + "/" + name }
    var statePath: String { dir + "/state.json" }
    public var logPath: String { dir + "/container.log" }

    static func containersDir(_ root: String) -> String { root + "/containers" }
    static func namesDir(_ root: String) -> String { root + "/container-names" }

    init(root: String, record: ContainerRecord) {
        self.root = root
        self.id = record.id
        self.record = record
    }
}

extension Container.Error {
    /// Which step of making, starting or removing a container failed. The child's stages are
    /// spawn.c's BERTH_STAGE_*, reported on its error pipe; the rest are the parent's.
    public enum Stage: String, Codable, Sendable, CaseIterable {
        // In the child, between clone() and execve(), in BERTH_STAGE_* order.
        case childProtocol, waitForParent, stdio, setsid, cgroupNamespace, joinNetworkNamespace, loopback
        case mountPropagation, rootfs, mount, device, symlink, sysctl, maskPath, readOnlyPath, remountReadOnly
        case pivotRoot, hostname, domainname, rlimit, oomScoreAdj, boundingSet, setgroups, setgid, setuid
        case capset, noNewPrivileges, seccomp, workingDirectory, exec, initProcess, cgroupJoin, setns, fork
        case mountTarget
        // In berth's own process.
        /// The spec was refused before anything was made (a bad name, limit or command).
        case create
        /// The name could not be reserved (in use, or its link could not be made).
        case name
        case lookup, user, capabilities, ulimit, cgroup, networkNamespace, files, clone, start, stop, kill, remove
        /// A step this list does not know (text from a caller that gave none).
        case other

        /// The child's BERTH_STAGE_* number as a stage.
        public init(childStage: Int32) {
            self = Self.childStages[UInt32(bitPattern: childStage)] ?? .childProtocol
        }

        /// cruntime.h's numbers, by name so that a stage added there cannot shift the others
        /// (BERTH_STAGE_NONE, which a short report on the error pipe becomes, is the protocol's).
        private static let childStages: [UInt32: Stage] = [
            BERTH_STAGE_NONE.rawValue: .childProtocol, BERTH_STAGE_WAIT_PARENT.rawValue: .waitForParent,
            BERTH_STAGE_STDIO.rawValue: .stdio, BERTH_STAGE_SETSID.rawValue: .setsid,
            BERTH_STAGE_CGROUP_NS.rawValue: .cgroupNamespace, BERTH_STAGE_JOIN_NETNS.rawValue: .joinNetworkNamespace,
            BERTH_STAGE_LOOPBACK.rawValue: .loopback, BERTH_STAGE_PROPAGATION.rawValue: .mountPropagation,
            BERTH_STAGE_ROOTFS.rawValue: .rootfs, BERTH_STAGE_MOUNT.rawValue: .mount,
            BERTH_STAGE_DEVICE.rawValue: .device, BERTH_STAGE_SYMLINK.rawValue: .symlink,
            BERTH_STAGE_SYSCTL.rawValue: .sysctl, BERTH_STAGE_MASK.rawValue: .maskPath,
            BERTH_STAGE_READONLY_PATH.rawValue: .readOnlyPath, BERTH_STAGE_REMOUNT_RO.rawValue: .remountReadOnly,
            BERTH_STAGE_PIVOT_ROOT.rawValue: .pivotRoot, BERTH_STAGE_HOSTNAME.rawValue: .hostname,
            BERTH_STAGE_DOMAINNAME.rawValue: .domainname, BERTH_STAGE_RLIMIT.rawValue: .rlimit,
            BERTH_STAGE_OOM_SCORE.rawValue: .oomScoreAdj, BERTH_STAGE_BOUNDING.rawValue: .boundingSet,
            BERTH_STAGE_SETGROUPS.rawValue: .setgroups, BERTH_STAGE_SETGID.rawValue: .setgid,
            BERTH_STAGE_SETUID.rawValue: .setuid, BERTH_STAGE_CAPSET.rawValue: .capset,
            BERTH_STAGE_NO_NEW_PRIVS.rawValue: .noNewPrivileges, BERTH_STAGE_SECCOMP.rawValue: .seccomp,
            BERTH_STAGE_CWD.rawValue: .workingDirectory, BERTH_STAGE_EXEC.rawValue: .exec,
            BERTH_STAGE_INIT.rawValue: .initProcess, BERTH_STAGE_CGROUP_JOIN.rawValue: .cgroupJoin,
            BERTH_STAGE_SETNS.rawValue: .setns, BERTH_STAGE_FORK.rawValue: .fork,
            BERTH_STAGE_MOUNT_TARGET.rawValue: .mountTarget,
        ]

        /// True for the stages the container's first process reports itself.
        public var isInChild: Bool { Self.childStages.values.contains(self) }

        /// How the step reads in a message (the child's as SpawnConfig.stageNames has them).
        public var name: String {
            switch self {
            case .childProtocol: return "start"
            case .waitForParent: return "wait for parent"
            case .cgroupNamespace: return "cgroup namespace"
            case .joinNetworkNamespace: return "join network namespace"
            case .loopback: return "loopback up"
            case .mountPropagation: return "make mounts private"
            case .rootfs: return "mount overlay rootfs"
            case .mount, .mountTarget: return "mount"
            case .device: return "mknod"
            case .maskPath: return "mask path"
            case .readOnlyPath: return "read-only path"
            case .remountReadOnly: return "remount read-only"
            case .pivotRoot: return "pivot_root"
            case .hostname: return "sethostname"
            case .domainname: return "setdomainname"
            case .rlimit: return "setrlimit"
            case .oomScoreAdj: return "oom_score_adj"
            case .boundingSet: return "drop bounding capability"
            case .noNewPrivileges: return "no_new_privs"
            case .workingDirectory: return "working directory"
            case .initProcess: return "init"
            case .cgroupJoin: return "join cgroup"
            case .create, .lookup, .other: return ""
            case .name: return "reserve name"
            case .networkNamespace: return "network namespace"
            default: return rawValue
            }
        }

        /// The stage a step's text names: the longest stage name (or one of the file steps'
        /// verbs) that is the text or starts it as whole words. "" is create's refusals.
        init(stepText: String) {
            guard !stepText.isEmpty else {
                self = .create
                return
            }
            var best: (length: Int, stage: Stage)?
            for (words, stage) in Self.namedSteps where words.utf8.count > best?.length ?? 0 {
                if stepText == words || stepText.hasPrefix(words + " ") { best = (words.utf8.count, stage) }
            }
            self = best?.stage ?? .other
        }

        private static let namedSteps: [(String, Stage)] = {
            var steps = allCases.filter { !$0.name.isEmpty && $0 != .mountTarget }.map { ($0.name, $0) }
            steps += [
                ("write", .files), ("mkdir", .files), ("create network namespace", .networkNamespace),
                ("open network namespace", .networkNamespace), ("open namespace", .setns),
            ]
            return steps
        }()

        /// The errno whose words are exactly `text`, for the text-only initializer.
        static func errnoNamed(_ text: String) -> Int32? { errnoByWords[text] }

        private static let errnoByWords: [String: Int32] = {
            var table: [String: Int32] = [:]
            // Linux's numbers end below 134 (EHWPOISON is 133); strerror names the rest "Unknown".
            for number in Int32(1)..<134 where table[String(cString: strerror(number))] == nil {
                table[String(cString: strerror(number))] = number
            }
            return table
        }()
    }
}

extension Container.Error {
    /// `docker run`'s exit status for a container whose command never ran, as docker/cli picks
    /// it: 127 when the command was not found, 126 when it was found but cannot be executed,
    /// 125 for every other problem that prevented the start (image, flags, mounts, limits).
    public var startFailureStatus: Int32 {
        guard stage == .exec, let errno else { return 125 }
        if errno == ENOENT { return 127 }
        return Self.cannotExecute.contains(errno) ? 126 : 125
    }

    /// execve's "the file is there but cannot run": not permitted (mode, noexec, a seccomp or
    /// security module refusal), not a program, a directory, busy being written, a broken
    /// ELF interpreter.
    private static let cannotExecute: Set<Int32> = [EACCES, EPERM, ENOEXEC, EISDIR, ETXTBSY, ELIBBAD]
}
