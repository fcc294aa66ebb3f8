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
    /// CPUs in billionths (`--cpus 1.5` is 1_500_000_000), Docker's NanoCPUs: an integer, so no
    /// floating-point value (NaN, infinity, 1e300) ever reaches an integer conversion or a cgroup
    /// file. Enforced by a CFS quota over a 100 ms period.
    public var nanoCPUs: Int64?
    /// Relative CPU weight (`--cpu-shares`, default 1024).
    public var cpuShares: Int?
    /// Maximum number of processes (`--pids-limit`); 0 or less is unlimited (Docker ≥ 20.10).
    public var pids: Int?

    /// `cpus` (a fraction of CPUs) is converted to `nanoCPUs` (see `nanoCPUs(fromCPUs:)`);
    /// `nanoCPUs`, when given, wins.
    public init(
        memory: Int64? = nil, memorySwap: Int64? = nil, cpus: Double? = nil, nanoCPUs: Int64? = nil,
        cpuShares: Int? = nil, pids: Int? = nil
    ) {
        self.memory = memory
        self.memorySwap = memorySwap
        self.nanoCPUs = nanoCPUs ?? cpus.map(Self.nanoCPUs(fromCPUs:))
        self.cpuShares = cpuShares
        self.pids = pids
    }

    /// CPUs as a fraction, for callers that hold a Double (compose's `cpus: 1.5`). Setting it
    /// stores `nanoCPUs(fromCPUs:)`, which never traps: out-of-range values saturate to ones
    /// `validate()` refuses.
    public var cpus: Double? {
        get { nanoCPUs.map { Double($0) / 1e9 } }
        set { nanoCPUs = newValue.map(Self.nanoCPUs(fromCPUs:)) }
    }

    /// CPUs to billionths, rounded. NaN becomes Int64.min and anything beyond Int64's range
    /// saturates, so the result is always an Int64 and an invalid input stays invalid.
    public static func nanoCPUs(fromCPUs cpus: Double) -> Int64 {
        let nano = (cpus * 1e9).rounded()
        if nano.isNaN { return .min }
        // 2^63 is exactly representable; every Double below it converts without trapping.
        if nano >= 9_223_372_036_854_775_808.0 { return .max }
        if nano < -9_223_372_036_854_775_808.0 { return .min }
        return Int64(nano)
    }

    /// The CFS period berth uses, in microseconds (Docker's default, 100 ms).
    public static let cfsPeriodMicroseconds: Int64 = 100_000
    /// Docker's smallest memory limit (linuxMinMemory in moby's daemon_unix.go), 6 MiB.
    public static let minimumMemory: Int64 = 6 << 20
    /// The smallest positive CPU limit: a 1 ms quota, the kernel's minimum, over the 100 ms period.
    public static let minimumNanoCPUs: Int64 = 10_000_000

    /// The CFS quota for `nanoCPUs` over `cfsPeriodMicroseconds`, as Docker computes it
    /// (NanoCPUs * period / 1e9, which is NanoCPUs / 10_000 exactly and cannot overflow); nil
    /// when there is no CPU limit.
    var cfsQuotaMicroseconds: Int64? {
        guard let nanoCPUs, nanoCPUs > 0 else { return nil }
        return nanoCPUs / (1_000_000_000 / Self.cfsPeriodMicroseconds)
    }

    /// The memory+swap limit Docker would apply: explicit, or twice the memory limit (saturated).
    var effectiveMemorySwap: Int64? {
        if let memorySwap, memorySwap != 0 { return memorySwap }
        if let memory, memory > 0 {
            let (twice, overflow) = memory.multipliedReportingOverflow(by: 2)
            return overflow ? .max : twice
        }
        return nil
    }

    /// A limit Docker's daemon would refuse; `description` is Docker's message.
    public struct ValidationError: Swift.Error, CustomStringConvertible, Equatable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// Refuses what Docker's daemon refuses (verifyPlatformContainerResources in moby's
    /// daemon/daemon_unix.go), with its messages, before anything is made:
    /// - memory: 0 is no limit; anything else below 6 MiB is refused (-1 too, as Docker does);
    /// - memory-swap: -1 is unlimited, 0 unset (twice the memory); a positive value needs
    ///   `memory` and must be at least `memory`. (Docker drops a swap limit with a warning on a
    ///   host without swap accounting; berth refuses it everywhere, so the rule is the same on
    ///   every host.) Below -1 has no meaning and is refused;
    /// - cpus: 0 is no limit; otherwise from 0.01 (a 1 ms quota, the kernel's minimum; Docker
    ///   leaves that bound to the kernel's EINVAL) up to the number of online CPUs;
    /// - pids: 0 or less is unlimited (Docker ≥ 20.10), never an error.
    public func validate() throws {
        try validate(onlineCPUs: Self.onlineCPUs())
    }

    func validate(onlineCPUs: Int) throws {
        let memory = self.memory ?? 0
        let swap = memorySwap ?? 0
        if memory != 0 && memory < Self.minimumMemory {
            throw ValidationError("Minimum memory limit allowed is 6MB")
        }
        if swap < -1 {
            throw ValidationError("Invalid memory swap limit \(swap): use -1 for unlimited swap, or a size")
        }
        if memory > 0 && swap > 0 && swap < memory {
            throw ValidationError("Minimum memoryswap limit should be larger than memory limit, see usage")
        }
        if memory == 0 && swap > 0 {
            throw ValidationError("You should always set the Memory limit when using Memoryswap limit, see usage")
        }
        if let nano = nanoCPUs, nano != 0 {
            let cpus = max(onlineCPUs, 1)
            let (most, overflow) = Int64(cpus).multipliedReportingOverflow(by: 1_000_000_000)
            if nano < Self.minimumNanoCPUs || (!overflow && nano > most) {
                // moby's text since 2025 (ddd885a961); before it began with a capital R.
                throw ValidationError(
                    "range of CPUs is from 0.01 to \(cpus).00, as there are only \(cpus) CPUs available")
            }
        }
    }

    /// CPUs online now (sysconf _SC_NPROCESSORS_ONLN), at least 1.
    public static func onlineCPUs() -> Int {
        max(sysconf(Int32(_SC_NPROCESSORS_ONLN)), 1)
    }

    // Records written before `nanoCPUs` existed stored `cpus` as a Double; they still load.
    private enum CodingKeys: String, CodingKey {
        case memory, memorySwap, nanoCPUs, cpus, cpuShares, pids
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        memory = try c.decodeIfPresent(Int64.self, forKey: .memory)
        memorySwap = try c.decodeIfPresent(Int64.self, forKey: .memorySwap)
        nanoCPUs = try c.decodeIfPresent(Int64.self, forKey: .nanoCPUs)
        if nanoCPUs == nil, let legacy = try? c.decodeIfPresent(Double.self, forKey: .cpus) {
            nanoCPUs = Self.nanoCPUs(fromCPUs: legacy)
        }
        cpuShares = try c.decodeIfPresent(Int.self, forKey: .cpuShares)
        pids = try c.decodeIfPresent(Int.self, forKey: .pids)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(memory, forKey: .memory)
        try c.encodeIfPresent(memorySwap, forKey: .memorySwap)
        try c.encodeIfPresent(nanoCPUs, forKey: .nanoCPUs)
        try c.encodeIfPresent(cpuShares, forKey: .cpuShares)
        try c.encodeIfPresent(pids, forKey: .pids)
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
        return .failure(
            Cgroup.Error("no cgroup file system is mounted (looked for cgroup and cgroup2 in /proc/self/mountinfo)"))
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
                let options = fields[dash + 3].split(separator: ",").map(String.init).filter {
                    $0 != "rw" && $0 != "ro"
                }
                let controllers = Set(
                    options.filter {
                        !$0.hasPrefix("release_agent") && $0 != "clone_children" && $0 != "noprefix" && $0 != "xattr"
                    })
                if !controllers.isEmpty && !hierarchies.contains(where: { $0.mountPoint == mountPoint }) {
                    hierarchies.append(
                        Hierarchy(
                            mountPoint: mountPoint, controllers: controllers,
                            mountOptions: options.joined(separator: ",")))
                }
            }
        }
        if hierarchies.contains(where: { $0.controllers.contains { !$0.hasPrefix("name=") } }) {
            return .v1(hierarchies)
        }
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
                let v = UInt8(String(decoding: u[(i + 1)...(i + 3)], as: UTF8.self), radix: 8)
            {
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
