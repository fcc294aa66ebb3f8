import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// cgroup v1: one directory per hierarchy, limits written where each controller lives, with the
/// files and defaults Docker (runc) uses.
enum CgroupV1 {
    static func create(name: String, limits: CgroupLimits, hierarchies: [CgroupLayout.Hierarchy]) throws -> Cgroup {
        var made: [String] = []
        var paths: [String] = []
        do {
            for h in hierarchies {
                let parent = h.mountPoint + "/" + Cgroup.parentName
                // The parent group is shared by all containers and kept.
                _ = try CgroupFiles.makeDirectory(parent)
                if h.controllers.contains("cpuset") { try inheritCpuset(into: parent, from: h.mountPoint) }
                let path = parent + "/" + name
                if try CgroupFiles.makeDirectory(path) { made.append(path) }
                paths.append(path)
                // A new cpuset group has no CPUs or memory nodes, and a task cannot join it until it has.
                if h.controllers.contains("cpuset") { try inheritCpuset(into: path, from: parent) }
            }
            try apply(limits, hierarchies: hierarchies, paths: paths)
        } catch {
            for path in made.reversed() { rmdir(path) }
            throw error
        }
        return Cgroup(name: name, layout: .v1(hierarchies), paths: paths)
    }

    private static func inheritCpuset(into dir: String, from parent: String) throws {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let current = CgroupFiles.readTrimmed(dir + "/" + file) ?? ""
            guard current.isEmpty else { continue }
            let value = CgroupFiles.readTrimmed(parent + "/" + file) ?? ""
            try CgroupFiles.write(value.isEmpty ? "\n" : value, to: dir + "/" + file)
        }
    }

    private static func path(of controller: String, _ hierarchies: [CgroupLayout.Hierarchy], _ paths: [String])
        -> String?
    {
        zip(hierarchies, paths).first { $0.0.controllers.contains(controller) }?.1
    }

    static func apply(_ limits: CgroupLimits, hierarchies: [CgroupLayout.Hierarchy], paths: [String]) throws {
        func require(_ controller: String) throws -> String {
            guard let p = path(of: controller, hierarchies, paths) else {
                throw Cgroup.Error(
                    "the \(controller) controller is not mounted, so the \(controller) limit cannot be applied")
            }
            return p
        }
        if limits.memory != nil || limits.memorySwap != nil {
            let dir = try require("memory")
            // memsw must never be below the memory limit: raise memsw first when it grows, the
            // memory limit first when it shrinks. Writing both orders covers either case.
            let memory = limits.memory.map { $0 > 0 ? String($0) : "-1" }
            let swap = limits.effectiveMemorySwap.map { $0 > 0 ? String($0) : "-1" }
            let swapFile = dir + "/memory.memsw.limit_in_bytes"
            // Without swap accounting (no memsw file) Docker ignores the swap limit too.
            let hasSwap = swap != nil && CgroupFiles.exists(swapFile)
            if let memory {
                if hasSwap, (try? CgroupFiles.write(swap!, to: swapFile)) != nil {
                    try CgroupFiles.write(memory, to: dir + "/memory.limit_in_bytes")
                } else {
                    try CgroupFiles.write(memory, to: dir + "/memory.limit_in_bytes")
                    if hasSwap { try CgroupFiles.write(swap!, to: swapFile) }
                }
            } else if hasSwap {
                try CgroupFiles.write(swap!, to: swapFile)
            }
        }
        if let quota = limits.cfsQuotaMicroseconds {
            let dir = try require("cpu")
            try CgroupFiles.write(String(CgroupLimits.cfsPeriodMicroseconds), to: dir + "/cpu.cfs_period_us")
            try CgroupFiles.write(String(quota), to: dir + "/cpu.cfs_quota_us")
        }
        if let shares = limits.cpuShares, shares > 0 {
            try CgroupFiles.write(String(shares), to: try require("cpu") + "/cpu.shares")
        }
        if let pids = limits.pids {
            try CgroupFiles.write(pids > 0 ? String(pids) : "max", to: try require("pids") + "/pids.max")
        }
    }

    static func usage(paths: [String]) -> CgroupUsage {
        var usage = CgroupUsage()
        for path in paths {
            if CgroupFiles.exists(path + "/memory.usage_in_bytes") {
                // Docker's figure excludes the page cache (total_inactive_file) from usage.
                if let raw = CgroupFiles.readTrimmed(path + "/memory.usage_in_bytes").flatMap({ Int64($0) }) {
                    let inactive = Int64(CgroupFiles.keyValues(path + "/memory.stat")["total_inactive_file"] ?? 0)
                    usage.memoryBytes = inactive < raw ? raw - inactive : raw
                }
                if let limit = CgroupFiles.readTrimmed(path + "/memory.limit_in_bytes").flatMap({ Int64($0) }),
                    limit < Int64(1) << 62
                {
                    usage.memoryLimit = limit
                }
            }
            if let ns = CgroupFiles.readTrimmed(path + "/cpuacct.usage").flatMap({ UInt64($0) }) {
                usage.cpuNanoseconds = ns
            }
            if let n = CgroupFiles.readTrimmed(path + "/pids.current").flatMap({ Int($0) }) {
                usage.pids = n
            }
        }
        return usage
    }

    /// Freeze, SIGKILL everything, thaw (a frozen process cannot die), wait until empty.
    static func killAll(_ group: Cgroup) throws {
        guard case .v1(let hierarchies) = group.layout else { return }
        let freezer = path(of: "freezer", hierarchies, group.paths)
        if let freezer {
            try CgroupFiles.write("FROZEN", to: freezer + "/freezer.state")
            // Freezing is asynchronous; FREEZING means some task has not stopped yet.
            for _ in 0..<1000 {
                if CgroupFiles.readTrimmed(freezer + "/freezer.state") == "FROZEN" { break }
                usleep(1_000)
            }
        }
        group.killListed()
        if let freezer { try CgroupFiles.write("THAWED", to: freezer + "/freezer.state") }
        for _ in 0..<1000 {
            if group.processes().isEmpty { return }
            // Without a freezer a process may have forked after the listing; kill the newcomers.
            group.killListed()
            usleep(5_000)
        }
        try group.waitUntilEmpty()
    }
}
