import FoundationEssentials
import Support
#if canImport(Glibc)
import Glibc
#endif

/// Resource limits for one container, in Docker's units.
public struct CgroupLimits: Codable, Equatable, Sendable {
    /// Bytes of memory (`--memory`).
    public var memory: Int64?
    /// Bytes of memory plus swap (`--memory-swap`); -1 is unlimited. Unset with `memory` set means
    /// twice `memory`, as Docker does.
    public var memorySwap: Int64?
    /// CPUs as a fraction (`--cpus 1.5`), enforced by CFS quota over a 100 ms period.
    public var cpus: Double?
    /// Relative CPU weight (`--cpu-shares`, default 1024).
    public var cpuShares: Int?
    /// Maximum number of processes (`--pids-limit`); 0 or less is unlimited.
    public var pids: Int?

    public init(memory: Int64? = nil, memorySwap: Int64? = nil, cpus: Double? = nil, cpuShares: Int? = nil, pids: Int? = nil) {
        self.memory = memory
        self.memorySwap = memorySwap
        self.cpus = cpus
        self.cpuShares = cpuShares
        self.pids = pids
    }

    /// The memory+swap limit Docker would apply: explicit, or twice the memory limit.
    var effectiveMemorySwap: Int64? {
        if let memorySwap, memorySwap != 0 { return memorySwap }
        if let memory, memory > 0 { return memory * 2 }
        return nil
    }
}

/// What a container uses right now; nil where the host does not account for it.
public struct CgroupUsage {
    public var memoryBytes: Int64?
    /// nil when unlimited.
    public var memoryLimit: Int64?
    public var cpuNanoseconds: UInt64?
    public var pids: Int?

    public init(memoryBytes: Int64? = nil, memoryLimit: Int64? = nil, cpuNanoseconds: UInt64? = nil, pids: Int? = nil) {
        self.memoryBytes = memoryBytes
        self.memoryLimit = memoryLimit
        self.cpuNanoseconds = cpuNanoseconds
        self.pids = pids
    }
}

/// One container's control group, under a `berth` parent group: `<mount>/berth/<name>` in every
/// v1 hierarchy, or `/sys/fs/cgroup/berth/<name>` on a unified (v2) host.
public final class Cgroup {
    /// The group's directories (one per v1 hierarchy, one on v2).
    public private(set) var paths: [String]
    let layout: CgroupLayout
    let name: String

    init(name: String, layout: CgroupLayout, paths: [String]) {
        self.name = name
        self.layout = layout
        self.paths = paths
    }

    /// A cgroup step that failed, with the file and the kernel's reason.
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public var message: String

        public init(_ message: String) { self.message = message }

        static func io(_ operation: String, _ path: String, _ err: Int32) -> Error {
            Error("cannot \(operation) \(path): \(String(cString: strerror(err)))")
        }

        public var description: String { "cgroup: " + message }
    }

    /// The parent group every berth container lives under.
    public static let parentName = "berth"

    /// Creates (or reuses) the group `name` and applies `limits`. If anything fails, the
    /// directories this call created are removed again.
    public static func create(name: String, limits: CgroupLimits) throws -> Cgroup {
        try validate(name)
        switch try CgroupLayout.host() {
        case .v1(let hierarchies):
            return try CgroupV1.create(name: name, limits: limits, hierarchies: hierarchies)
        case .v2(let mount):
            return try CgroupV2.create(name: name, limits: limits, mount: mount)
        }
    }

    /// The existing group `name`, or nil if there is none.
    public static func open(name: String) -> Cgroup? {
        guard (try? validate(name)) != nil, let layout = try? CgroupLayout.host() else { return nil }
        let paths = layout.groupPaths(name).filter { CgroupFiles.isDirectory($0) }
        return paths.isEmpty ? nil : Cgroup(name: name, layout: layout, paths: paths)
    }

    /// Files a single-threaded process writes "0" to in order to move itself into the group.
    /// v1: each hierarchy's `tasks`, because moving one thread (the caller) skips the global
    /// threadgroup lock whose RCU grace period makes a cgroup.procs write cost 10-20 ms; for a
    /// process with one thread that moves the whole process. v2 cannot move a lone thread across
    /// domain groups, so there it is `cgroup.procs`.
    public var joinFiles: [String] {
        switch layout {
        case .v1: return paths.map { $0 + "/tasks" }
        case .v2: return paths.map { $0 + "/cgroup.procs" }
        }
    }

    /// Moves process `pid` (and its threads) into the group.
    public func add(pid: Int32) throws {
        for path in paths { try CgroupFiles.write(String(pid), to: path + "/cgroup.procs") }
    }

    public func usage() -> CgroupUsage {
        switch layout {
        case .v1: return CgroupV1.usage(paths: paths)
        case .v2: return CgroupV2.usage(path: paths[0])
        }
    }

    /// Process IDs in the group (in any hierarchy), sorted.
    public func processes() -> [Int32] {
        var pids = Set<Int32>()
        for path in paths {
            for line in CgroupFiles.read(path + "/cgroup.procs")?.split(separator: "\n") ?? [] {
                if let pid = Int32(line) { pids.insert(pid) }
            }
        }
        return pids.sorted()
    }

    /// SIGKILLs every process in the group and returns once the group is empty. Frozen first
    /// (where the host can), so nothing forks a new process between the listing and the kill.
    public func killAll() throws {
        switch layout {
        case .v1: try CgroupV1.killAll(self)
        case .v2: try CgroupV2.killAll(self)
        }
    }

    /// Removes group `name` wherever it exists. After PID 1's death the kernel has killed the
    /// namespace, so the group is normally empty: rmdir comes first (an occupied group refuses
    /// with EBUSY), one call per hierarchy, and only strays pay for listing and killAll.
    public static func destroy(name: String) throws {
        try validate(name)
        var occupied = false
        for path in try CgroupLayout.host().groupPaths(name) where rmdir(path) != 0 && errno != ENOENT {
            occupied = true
        }
        guard occupied, let group = open(name: name) else { return }
        if !group.processes().isEmpty { try? group.killAll() }
        try group.remove()
    }

    /// Removes the group's directories. The kernel may report a group busy for a moment after its
    /// last process exited, so retry briefly.
    public func remove() throws {
        for path in paths {
            var attempt = 0
            while rmdir(path) != 0 {
                let err = errno
                if err == ENOENT { break }
                attempt += 1
                guard err == EBUSY || err == EAGAIN || err == EINTR, attempt < 200 else {
                    throw Error.io("remove", path, err)
                }
                usleep(5_000)
            }
        }
    }

    /// Kill, then wait up to about 5 s until no process is listed.
    func waitUntilEmpty() throws {
        for _ in 0..<1000 {
            if processes().isEmpty { return }
            usleep(5_000)
        }
        throw Error("processes \(processes().map(String.init).joined(separator: " ")) in \(paths[0]) survived SIGKILL")
    }

    /// SIGKILLs every listed process until none is left or the bound is reached.
    func killListed() {
        for pid in processes() { kill(pid, SIGKILL) }
    }

    private static func validate(_ name: String) throws {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\0") else {
            throw Error("\"\(name)\" is not a valid cgroup name (no '/', not empty)")
        }
    }
}

/// How the host mounts cgroups, read from /proc/self/mountinfo.
enum CgroupLayout: Equatable {
    /// Each v1 hierarchy: where it is mounted and which controllers it carries.
    case v1([Hierarchy])
    /// A pure cgroup2 host: the unified mount point.
    case v2(String)

    struct Hierarchy: Equatable {
        var mountPoint: String
        /// `memory`, `cpu`, `cpuacct`, ... and `name=systemd` for named hierarchies.
        var controllers: Set<String>
        /// The super options without rw/ro, to mount the same hierarchy inside a container.
        var mountOptions: String
    }

    func groupPaths(_ name: String) -> [String] {
        switch self {
        case .v1(let hierarchies): return hierarchies.map { $0.mountPoint + "/" + Cgroup.parentName + "/" + name }
        case .v2(let mount): return [mount + "/" + Cgroup.parentName + "/" + name]
        }
    }

    private static let detected: Result<CgroupLayout, Cgroup.Error> = {
        guard let text = CgroupFiles.read("/proc/self/mountinfo") else {
            return .failure(Cgroup.Error("cannot read /proc/self/mountinfo; is /proc mounted?"))
        }
        if let layout = parse(mountinfo: text) { return .success(layout) }
        return .failure(Cgroup.Error("no cgroup file system is mounted (looked for cgroup and cgroup2 in /proc/self/mountinfo)"))
    }()

    static func host() throws -> CgroupLayout { try detected.get() }

    /// A host with v1 controllers uses them (a hybrid host's unified tree carries no controllers);
    /// otherwise the cgroup2 mount.
    static func parse(mountinfo: String) -> CgroupLayout? {
        var hierarchies: [Hierarchy] = []
        var unified: String?
        for line in mountinfo.split(separator: "\n") {
            // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
            let fields = line.split(separator: " ").map(String.init)
            guard let dash = fields.firstIndex(of: "-"), dash >= 5, fields.count > dash + 3 else { continue }
            let mountPoint = unescape(fields[4])
            let fsType = fields[dash + 1]
            if fsType == "cgroup2" {
                if unified == nil { unified = mountPoint }
            } else if fsType == "cgroup" {
                let options = fields[dash + 3].split(separator: ",").map(String.init).filter { $0 != "rw" && $0 != "ro" }
                let controllers = Set(options.filter { !$0.hasPrefix("release_agent") && $0 != "clone_children" && $0 != "noprefix" && $0 != "xattr" })
                if !controllers.isEmpty && !hierarchies.contains(where: { $0.mountPoint == mountPoint }) {
                    hierarchies.append(Hierarchy(mountPoint: mountPoint, controllers: controllers,
                                                 mountOptions: options.joined(separator: ",")))
                }
            }
        }
        if hierarchies.contains(where: { $0.controllers.contains { !$0.hasPrefix("name=") } }) { return .v1(hierarchies) }
        if let unified { return .v2(unified) }
        return nil
    }

    /// mountinfo writes space, tab, newline and backslash as octal escapes.
    private static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var bytes: [UInt8] = []
        let u = Array(s.utf8)
        var i = 0
        while i < u.count {
            if u[i] == UInt8(ascii: "\\"), i + 3 < u.count,
               let v = UInt8(String(decoding: u[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                bytes.append(v)
                i += 4
            } else {
                bytes.append(u[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Reading and writing cgroup control files: one write(2) per value, errno kept for the message.
enum CgroupFiles {
    static func read(_ path: String) -> String? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func readTrimmed(_ path: String) -> String? {
        read(path)?.trimmingWhitespaceAndNewlines()
    }

    static func write(_ value: String, to path: String) throws {
        // O_TRUNC as runc does: cgroupfs ignores it, and a plain file (tests) needs it.
        let fd = Glibc.open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw Cgroup.Error.io("open", path, errno) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        var n: Int
        repeat {
            n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        } while n < 0 && errno == EINTR
        guard n == bytes.count else { throw Cgroup.Error.io("write \(value) to", path, n < 0 ? errno : EIO) }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir that reports whether this call made the directory.
    static func makeDirectory(_ path: String) throws -> Bool {
        if mkdir(path, 0o755) == 0 { return true }
        if errno == EEXIST { return false }
        throw Cgroup.Error.io("create", path, errno)
    }

    /// `key value` lines (memory.stat, cpu.stat) as a dictionary.
    static func keyValues(_ path: String) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for line in read(path)?.split(separator: "\n") ?? [] {
            let parts = line.split(separator: " ")
            if parts.count == 2, let v = UInt64(parts[1]) { out[String(parts[0])] = v }
        }
        return out
    }
}
