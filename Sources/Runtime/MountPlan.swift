import CRuntime
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// The container's mount namespace as Docker builds it, as a table for the C child:
/// /proc, a tmpfs /dev with the default devices, /dev/pts, /dev/shm, /dev/mqueue, read-only /sys
/// and /sys/fs/cgroup, the user's binds, volumes and tmpfs mounts, and the per-container
/// /etc/hosts, /etc/hostname and /etc/resolv.conf. Plus masked and read-only paths.
struct MountPlan {
    struct Entry {
        var source: String?
        var target: String
        var fstype: String?
        var flags: UInt
        var data: String?
        var options: Int32
    }
    struct Device {
        var path: String
        var mode: UInt32
        var major: UInt32
        var minor: UInt32
    }

    var mounts: [Entry] = []
    var devices: [Device] = []
    var symlinks: [(target: String, path: String)] = []
    var masked: [String] = []
    var readOnly: [String] = []

    static let maskedPaths = [
        "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
        "/sys/firmware", "/sys/devices/virtual/powercap",
    ]
    static let readOnlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    static let defaultDevices: [Device] = [
        Device(path: "/dev/null", mode: S_IFCHR | 0o666, major: 1, minor: 3),
        Device(path: "/dev/zero", mode: S_IFCHR | 0o666, major: 1, minor: 5),
        Device(path: "/dev/full", mode: S_IFCHR | 0o666, major: 1, minor: 7),
        Device(path: "/dev/random", mode: S_IFCHR | 0o666, major: 1, minor: 8),
        Device(path: "/dev/urandom", mode: S_IFCHR | 0o666, major: 1, minor: 9),
        Device(path: "/dev/tty", mode: S_IFCHR | 0o666, major: 5, minor: 0),
    ]

    static let nosuid = UInt(MS_NOSUID), nodev = UInt(MS_NODEV), noexec = UInt(MS_NOEXEC)
    static let rdonly = UInt(MS_RDONLY), bind = UInt(MS_BIND), rec = UInt(MS_REC)
    static let mkdir = Int32(BERTH_MOUNT_MKDIR), mkfile = Int32(BERTH_MOUNT_MKFILE)

    /// `containerDir`: ROOT/containers/ID (holds hosts, hostname, resolv.conf). `volumes`: the
    /// root's volumes, where a volume mount's missing volume is made.
    static func make(spec: ContainerSpec, containerDir: String, volumes: VolumeStore) throws -> MountPlan {
        var plan = MountPlan()
        let privileged = spec.privileged
        let sysFlags = nosuid | noexec | nodev | (privileged ? 0 : rdonly)
        plan.mounts.append(
            Entry(
                source: "proc", target: "/proc", fstype: "proc", flags: nosuid | noexec | nodev, data: nil,
                options: mkdir))
        plan.mounts.append(
            Entry(
                source: "tmpfs", target: "/dev", fstype: "tmpfs", flags: nosuid | UInt(MS_STRICTATIME),
                data: "mode=755,size=65536k", options: mkdir))
        plan.mounts.append(
            Entry(
                source: "devpts", target: "/dev/pts", fstype: "devpts", flags: nosuid | noexec,
                data: "newinstance,ptmxmode=0666,mode=0620,gid=5", options: mkdir))
        let shm = spec.shmSize ?? 64 * 1024 * 1024
        plan.mounts.append(
            Entry(
                source: "shm", target: "/dev/shm", fstype: "tmpfs", flags: nosuid | noexec | nodev,
                data: "mode=1777,size=\(shm)", options: mkdir))
        plan.mounts.append(
            Entry(
                source: "mqueue", target: "/dev/mqueue", fstype: "mqueue", flags: nosuid | noexec | nodev, data: nil,
                options: mkdir))
        plan.mounts.append(
            Entry(source: "sysfs", target: "/sys", fstype: "sysfs", flags: sysFlags, data: nil, options: mkdir))
        plan.mounts += cgroupMounts(readOnly: !privileged)

        // Every mount is checked before the first volume directory is made.
        for m in spec.mounts { try validate(m) }
        for m in spec.mounts {
            plan.mounts.append(try userMount(m, volumes: volumes))
        }
        for file in ["resolv.conf", "hostname", "hosts"] {
            plan.mounts.append(
                Entry(
                    source: containerDir + "/" + file, target: "/etc/" + file, fstype: nil,
                    flags: bind | UInt(MS_PRIVATE), data: nil, options: mkfile))
        }

        plan.devices = privileged ? hostDevices() : defaultDevices
        plan.symlinks = [
            ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"), ("/proc/self/fd/1", "/dev/stdout"),
            ("/proc/self/fd/2", "/dev/stderr"), ("pts/ptmx", "/dev/ptmx"), ("/proc/kcore", "/dev/core"),
        ]
        if !privileged {
            plan.masked = maskedPaths
            plan.readOnly = readOnlyPaths
        }
        return plan
    }

    /// A mount of the user's, checked as Docker checks it before anything is made: an absolute
    /// target other than "/", a volume name that stays inside ROOT/volumes, an existing (or, for
    /// `-v`, creatable) bind source. Its target is resolved inside the container's root later,
    /// by the child (inroot.c), which also refuses a target that a link turns into "/" or /proc.
    static func validate(_ m: MountSpec) throws {
        guard m.target.hasPrefix("/") else { throw mountError(m, "the target \(m.target) is not an absolute path") }
        // Cleaned as Docker cleans it (filepath.Clean): "/a/.." is "/" too.
        var cleaned: [Substring] = []
        for part in m.target.split(separator: "/") where part != "." {
            if part == ".." { _ = cleaned.popLast() } else { cleaned.append(part) }
        }
        guard !cleaned.isEmpty else {
            throw mountError(m, "invalid mount target \(m.target): destination can't be '/'")
        }
        if m.kind == .volume && !DockerNames.isValid(m.source) {
            throw mountError(
                m,
                "\"\(m.source)\" includes invalid characters for a local volume name, only "
                    + "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )
        }
    }

    static func userMount(_ m: MountSpec, volumes: VolumeStore) throws -> Entry {
        let user = Int32(BERTH_MOUNT_USER)
        switch m.kind {
        case .tmpfs:
            var data: [String] = []
            if let size = m.tmpfsSize { data.append("size=\(size)") }
            data.append("mode=" + String(m.tmpfsMode ?? 0o1777, radix: 8))
            if let uid = m.tmpfsUID { data.append("uid=\(uid)") }
            if let gid = m.tmpfsGID { data.append("gid=\(gid)") }
            // Docker's tmpfs mounts are noexec unless `exec` is asked for.
            let exec = m.tmpfsExec == true ? 0 : noexec
            return Entry(
                source: "tmpfs", target: m.target, fstype: "tmpfs",
                flags: nosuid | nodev | exec | (m.readOnly ? rdonly : 0), data: data.joined(separator: ","),
                options: mkdir | user)
        case .bind, .volume:
            var source = m.source
            if m.kind == .volume {
                // Made as `docker run -v NAME:/dst` makes it, with its record (`volume ls` shows it).
                do { try volumes.ensure(m.source) } catch let error as VolumeStore.Error {
                    throw mountError(m, error.description)
                }
                source = volumes.dataPath(of: m.source)
            }
            var st = stat()
            if stat(source, &st) != 0 {
                let err = errno
                var link = stat()
                if lstat(source, &link) == 0 {
                    throw mountError(m, "bind source path \(source) is a symbolic link whose target does not exist")
                }
                guard m.kind == .bind && m.createHostPath && err == ENOENT else {
                    throw mountError(m, "bind source path does not exist: \(source)")
                }
                try FileTree.mkdirs(source)
                st.st_mode = S_IFDIR
            }
            let isDir = (st.st_mode & S_IFMT) == S_IFDIR
            return Entry(
                source: source, target: m.target, fstype: nil, flags: propagationFlags(m.propagation ?? .rprivate),
                data: nil, options: (isDir ? mkdir : mkfile) | (m.readOnly ? Int32(BERTH_MOUNT_BIND_RO) : 0) | user)
        }
    }

    /// The child's encoding of a bind's propagation (see struct berth_mount).
    static func propagationFlags(_ p: MountSpec.Propagation) -> UInt {
        switch p {
        case .rprivate: return UInt(MS_PRIVATE) | rec
        case .private: return UInt(MS_PRIVATE)
        case .rslave: return UInt(MS_SLAVE) | rec
        case .slave: return UInt(MS_SLAVE)
        case .rshared: return UInt(MS_SHARED) | rec
        case .shared: return UInt(MS_SHARED)
        }
    }

    static func mountError(_ m: MountSpec, _ detail: String) -> Container.Error {
        Container.Error(container: "", step: "mount \(m.target)", detail: detail)
    }

    /// cgroup v2: one cgroup2 mount. v1 (and hybrid): a tmpfs with one mount per hierarchy the
    /// host has, each seen from the container's cgroup namespace.
    static func cgroupMounts(readOnly: Bool) -> [Entry] {
        let ro = readOnly ? rdonly : 0
        let base = nosuid | noexec | nodev
        guard case .v1(let hierarchies)? = try? CgroupLayout.host() else {
            return [
                Entry(
                    source: "cgroup", target: "/sys/fs/cgroup", fstype: "cgroup2", flags: base | ro, data: nil,
                    options: 0)
            ]
        }
        var entries = [
            Entry(
                source: "tmpfs", target: "/sys/fs/cgroup", fstype: "tmpfs", flags: base,
                data: "mode=755", options: readOnly ? Int32(BERTH_MOUNT_RO_LATER) : 0)
        ]
        for h in hierarchies where h.mountPoint.hasPrefix("/sys/fs/cgroup/") {
            entries.append(
                Entry(
                    source: "cgroup", target: h.mountPoint, fstype: "cgroup", flags: base | ro,
                    data: h.mountOptions, options: mkdir))
        }
        return entries
    }

    /// Privileged containers see every device node of the host, as Docker gives them.
    static func hostDevices() -> [Device] {
        var result: [Device] = []
        func walk(_ dir: String) {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
            for name in names {
                let path = dir + "/" + name
                if ["/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/hugepages"].contains(path) || path == "/dev/ptmx"
                    || path == "/dev/console"
                {
                    continue
                }
                var st = stat()
                guard lstat(path, &st) == 0 else { continue }
                let type = st.st_mode & S_IFMT
                if type == S_IFDIR {
                    walk(path)
                    continue
                }
                guard type == S_IFCHR || type == S_IFBLK else { continue }
                let dev = UInt64(st.st_rdev)
                let major = UInt32(truncatingIfNeeded: ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff)))
                let minor = UInt32(truncatingIfNeeded: (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff)))
                result.append(Device(path: path, mode: st.st_mode, major: major, minor: minor))
            }
        }
        walk("/dev")
        return result
    }

    /// The file under /proc/sys for a namespaced sysctl, "net.ipv4.ip_forward" or (for names
    /// holding dots, such as a VLAN's interface) "net/ipv4/conf/eth0.100/rp_filter". Every
    /// component is a plain name: the child writes this file as the host's root before the
    /// container runs, and "net./../../sysrq-trigger" must not lead it out of /proc/sys.
    static func sysctlPath(_ key: String, hostNetwork: Bool) throws -> String {
        let path = key.contains("/") ? key : key.replacing(".", with: "/")
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw Container.Error(container: "", step: "sysctl", detail: "invalid sysctl name \"\(key)\"")
        }
        let dotted = parts.joined(separator: ".")
        let namespaced =
            dotted.hasPrefix("net.") || dotted.hasPrefix("kernel.shm") || dotted.hasPrefix("kernel.msg")
            || dotted == "kernel.sem" || dotted.hasPrefix("fs.mqueue.")
        guard namespaced else {
            throw Container.Error(
                container: "", step: "sysctl",
                detail: "sysctl \(key) is not namespaced and cannot be set in a container")
        }
        if hostNetwork && dotted.hasPrefix("net.") {
            throw Container.Error(
                container: "", step: "sysctl", detail: "sysctl \(key) cannot be set with the host's network")
        }
        return path
    }
}
