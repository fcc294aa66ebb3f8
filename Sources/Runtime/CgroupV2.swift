import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// cgroup v2 (unified): one directory, controllers enabled down the tree through
/// cgroup.subtree_control, limits in the v2 files with runc's conversions.
enum CgroupV2 {
    /// The controllers berth sets limits with or reads usage from.
    static let wanted = ["cpu", "cpuset", "memory", "pids", "io"]

    static func create(name: String, limits: CgroupLimits, mount: String) throws -> Cgroup {
        let parent = mount + "/" + Cgroup.parentName
        let path = parent + "/" + name
        var made = false
        do {
            try enableControllers(in: mount)
            // The parent group is shared by all containers and kept.
            _ = try CgroupFiles.makeDirectory(parent)
            try enableControllers(in: parent)
            made = try CgroupFiles.makeDirectory(path)
            try apply(limits, path: path)
        } catch {
            if made { rmdir(path) }
            throw error
        }
        return Cgroup(name: name, layout: .v2(mount), paths: [path])
    }

    /// Lets children of `dir` use every wanted controller `dir` has.
    private static func enableControllers(in dir: String) throws {
        let available = Set(
            (CgroupFiles.readTrimmed(dir + "/cgroup.controllers") ?? "").split(separator: " ").map(String.init))
        let enabled = Set(
            (CgroupFiles.readTrimmed(dir + "/cgroup.subtree_control") ?? "").split(separator: " ").map(String.init))
        let missing = wanted.filter { available.contains($0) && !enabled.contains($0) }
        guard !missing.isEmpty else { return }
        try CgroupFiles.write(missing.map { "+" + $0 }.joined(separator: " "), to: dir + "/cgroup.subtree_control")
    }

    /// runc's mapping of v1 cpu.shares [2, 262144] onto v2 cpu.weight [1, 10000].
    static func weight(fromShares shares: Int) -> Int {
        let clamped = min(max(shares, 2), 262_144)
        return 1 + ((clamped - 2) * 9999) / 262_142
    }

    static func apply(_ limits: CgroupLimits, path: String) throws {
        func require(_ file: String, _ controller: String) throws -> String {
            let p = path + "/" + file
            guard CgroupFiles.exists(p) else {
                throw Cgroup.Error(
                    "the \(controller) controller is not available in \(path), so the \(controller) limit cannot be applied"
                )
            }
            return p
        }
        if let memory = limits.memory {
            try CgroupFiles.write(memory > 0 ? String(memory) : "max", to: try require("memory.max", "memory"))
        }
        // v2 limits swap alone: memory.swap.max = (memory+swap) - memory.
        if let swapTotal = limits.effectiveMemorySwap, CgroupFiles.exists(path + "/memory.swap.max") {
            let value: String
            if swapTotal < 0 {
                value = "max"
            } else if let memory = limits.memory, memory > 0 {
                guard swapTotal >= memory else {
                    throw Cgroup.Error("memory+swap limit \(swapTotal) is below the memory limit \(memory)")
                }
                value = String(swapTotal - memory)
            } else {
                value = String(swapTotal)
            }
            try CgroupFiles.write(value, to: path + "/memory.swap.max")
        }
        if let quota = limits.cfsQuotaMicroseconds {
            try CgroupFiles.write("\(quota) \(CgroupLimits.cfsPeriodMicroseconds)", to: try require("cpu.max", "cpu"))
        }
        if let shares = limits.cpuShares, shares > 0 {
            try CgroupFiles.write(String(weight(fromShares: shares)), to: try require("cpu.weight", "cpu"))
        }
        if let pids = limits.pids {
            try CgroupFiles.write(pids > 0 ? String(pids) : "max", to: try require("pids.max", "pids"))
        }
    }

    static func usage(path: String) -> CgroupUsage {
        var usage = CgroupUsage()
        if let current = CgroupFiles.readTrimmed(path + "/memory.current").flatMap({ Int64($0) }) {
            // Docker's figure excludes inactive page cache.
            let inactive = Int64(CgroupFiles.keyValues(path + "/memory.stat")["inactive_file"] ?? 0)
            usage.memoryBytes = inactive < current ? current - inactive : current
        }
        usage.memoryLimit = CgroupFiles.readTrimmed(path + "/memory.max").flatMap { Int64($0) }
        if let micros = CgroupFiles.keyValues(path + "/cpu.stat")["usage_usec"] {
            usage.cpuNanoseconds = micros * 1000
        }
        usage.pids = CgroupFiles.readTrimmed(path + "/pids.current").flatMap { Int($0) }
        return usage
    }

    /// cgroup.kill (Linux 5.14+) kills the whole group atomically; before that, freeze, kill, thaw.
    static func killAll(_ group: Cgroup) throws {
        let path = group.paths[0]
        if CgroupFiles.exists(path + "/cgroup.kill") {
            try CgroupFiles.write("1", to: path + "/cgroup.kill")
        } else {
            let canFreeze = CgroupFiles.exists(path + "/cgroup.freeze")
            if canFreeze {
                try CgroupFiles.write("1", to: path + "/cgroup.freeze")
                for _ in 0..<1000 where !(CgroupFiles.read(path + "/cgroup.events") ?? "").contains("frozen 1") {
                    usleep(1_000)
                }
            }
            group.killListed()
            if canFreeze { try CgroupFiles.write("0", to: path + "/cgroup.freeze") }
        }
        for _ in 0..<1000 {
            if group.processes().isEmpty { return }
            group.killListed()
            usleep(5_000)
        }
        try group.waitUntilEmpty()
    }
}
