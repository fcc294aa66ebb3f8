/// # Runtime: one container, from a plain description to a process in its own namespaces
///
/// Files (Swift, module Runtime):
/// - Container.swift: this type, its error and its files on disk; by job: ContainerCreate.swift
///   (validate, resolve, reserve the name, write the record), ContainerStart.swift (the parent side
///   of the spawn protocol), ContainerStop.swift (stop, kill, remove), ContainerLookup.swift (by
///   name or ID, list, state, and the name links).
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
}
