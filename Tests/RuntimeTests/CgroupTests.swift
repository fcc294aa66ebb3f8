import Foundation
import Testing

@testable import Runtime

/// A real cgroup for one test, killed and removed on deinit even when the test fails.
private final class TestGroup {
    let name = "berth-test-\(UUID().uuidString.prefix(8).lowercased())"
    var group: Cgroup?
    var children: [Process] = []

    deinit {
        for child in children where child.isRunning { kill(child.processIdentifier, SIGKILL) }
        if let group {
            try? group.killAll()
            try? group.remove()
        }
    }

    /// `/bin/sleep 1000`, to be moved into the group.
    func sleeper() throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sleep")
        p.arguments = ["1000"]
        try p.run()
        children.append(p)
        return p
    }
}

private func contents(_ path: String) -> String? {
    CgroupFiles.readTrimmed(path)
}

@Suite struct CgroupTests {
    @Test func limitsLandInTheControlFilesAndKillAllEmptiesTheGroup() throws {
        let t = TestGroup()
        let limits = CgroupLimits(memory: 64 << 20, cpus: 0.5, cpuShares: 512, pids: 50)
        let group = try Cgroup.create(name: t.name, limits: limits)
        t.group = group
        #expect(!group.paths.isEmpty)
        for path in group.paths { #expect(path.hasSuffix("/berth/" + t.name)) }

        switch try CgroupLayout.host() {
        case .v1(let hierarchies):
            #expect(group.paths.count == hierarchies.count)
            func dir(_ controller: String) throws -> String {
                try #require(
                    group.paths.first {
                        $0.hasPrefix(
                            (hierarchies.first { $0.controllers.contains(controller) }?.mountPoint ?? "?") + "/")
                    })
            }
            let memory = try dir("memory")
            #expect(contents(memory + "/memory.limit_in_bytes") == String(64 << 20))
            if CgroupFiles.exists(memory + "/memory.memsw.limit_in_bytes") {
                // Docker's default: memory+swap is twice the memory limit.
                #expect(contents(memory + "/memory.memsw.limit_in_bytes") == String(128 << 20))
            }
            let cpu = try dir("cpu")
            #expect(contents(cpu + "/cpu.cfs_period_us") == "100000")
            #expect(contents(cpu + "/cpu.cfs_quota_us") == "50000")
            #expect(contents(cpu + "/cpu.shares") == "512")
            #expect(contents(try dir("pids") + "/pids.max") == "50")
            #expect(!(contents(try dir("cpuset") + "/cpuset.cpus") ?? "").isEmpty)
        case .v2:
            let path = group.paths[0]
            #expect(contents(path + "/memory.max") == String(64 << 20))
            #expect(contents(path + "/cpu.max") == "50000 100000")
            #expect(contents(path + "/cpu.weight") == String(CgroupV2.weight(fromShares: 512)))
            #expect(contents(path + "/pids.max") == "50")
        }

        let child = try t.sleeper()
        try group.add(pid: child.processIdentifier)
        #expect(group.processes() == [child.processIdentifier])
        let usage = group.usage()
        #expect(usage.pids == 1)
        #expect(usage.memoryLimit == 64 << 20)
        #expect(usage.memoryBytes != nil)
        #expect(usage.cpuNanoseconds != nil)
        #expect(Cgroup.open(name: t.name)?.paths == group.paths)

        try group.killAll()
        #expect(group.processes().isEmpty)
        child.waitUntilExit()
        #expect(child.terminationReason == .uncaughtSignal && child.terminationStatus == SIGKILL)

        try group.remove()
        for path in group.paths { #expect(!CgroupFiles.exists(path)) }
        #expect(Cgroup.open(name: t.name) == nil)
        t.group = nil
    }

    @Test func killAllCatchesEveryProcessAndCreateIsIdempotent() throws {
        let t = TestGroup()
        let group = try Cgroup.create(name: t.name, limits: CgroupLimits())
        t.group = group
        // Creating again reuses the group rather than failing.
        let again = try Cgroup.create(name: t.name, limits: CgroupLimits(pids: 10))
        #expect(again.paths == group.paths)
        let children = try (0..<3).map { _ in try t.sleeper() }
        for child in children { try group.add(pid: child.processIdentifier) }
        #expect(group.processes() == children.map(\.processIdentifier).sorted())
        try group.killAll()
        for child in children {
            child.waitUntilExit()
            #expect(child.terminationStatus == SIGKILL)
        }
        try group.remove()
        t.group = nil
        for path in group.paths { #expect(!CgroupFiles.exists(path)) }
    }

    @Test func aFailedCreateLeavesNothingBehind() throws {
        let t = TestGroup()
        // memory+swap below memory is refused (by the kernel on v1, by berth on v2).
        let bad = CgroupLimits(memory: 64 << 20, memorySwap: 32 << 20)
        let layout = try CgroupLayout.host()
        let canCheck: Bool
        switch layout {
        case .v1(let hierarchies):
            // Without swap accounting the swap limit is ignored, as Docker ignores it.
            canCheck = hierarchies.contains {
                $0.controllers.contains("memory") && CgroupFiles.exists($0.mountPoint + "/memory.memsw.limit_in_bytes")
            }
        case .v2: canCheck = true
        }
        if canCheck {
            #expect(throws: Cgroup.Error.self) { try Cgroup.create(name: t.name, limits: bad) }
            for path in layout.groupPaths(t.name) { #expect(!CgroupFiles.exists(path)) }
            #expect(Cgroup.open(name: t.name) == nil)
        }
        #expect(throws: Cgroup.Error.self) { try Cgroup.create(name: "../escape", limits: CgroupLimits()) }
    }

    @Test func mountinfoDecidesBetweenV1AndV2() {
        let hybrid = """
            31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
            32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
            40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
            """
        #expect(
            CgroupLayout.parse(mountinfo: hybrid)
                == .v1([
                    .init(
                        mountPoint: "/sys/fs/cgroup/cpu,cpuacct", controllers: ["cpu", "cpuacct"],
                        mountOptions: "cpu,cpuacct"),
                    .init(mountPoint: "/sys/fs/cgroup/memory", controllers: ["memory"], mountOptions: "memory"),
                    .init(
                        mountPoint: "/sys/fs/cgroup/systemd", controllers: ["name=systemd"],
                        mountOptions: "xattr,name=systemd"),
                ]))
        let unified = """
            25 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
            """
        #expect(CgroupLayout.parse(mountinfo: unified) == .v2("/sys/fs/cgroup"))
        // Only a named v1 hierarchy (systemd's) plus cgroup2: the controllers are on v2.
        let namedOnly = """
            40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
            """
        #expect(CgroupLayout.parse(mountinfo: namedOnly) == .v2("/sys/fs/cgroup/unified"))
        #expect(CgroupLayout.parse(mountinfo: "22 1 0:21 / /proc rw - proc proc rw") == nil)
    }

    @Test func v2LimitFilesFollowRunc() throws {
        // A directory standing in for a v2 group: the files exist, so apply() writes them.
        let dir = NSTemporaryDirectory() + "berth-cgroup-v2-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for file in ["memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max"] {
            #expect(FileManager.default.createFile(atPath: dir + "/" + file, contents: nil))
        }
        try CgroupV2.apply(CgroupLimits(memory: 100 << 20, cpus: 1.5, cpuShares: 1024, pids: 0), path: dir)
        #expect(contents(dir + "/memory.max") == String(100 << 20))
        #expect(contents(dir + "/memory.swap.max") == String(100 << 20))
        #expect(contents(dir + "/cpu.max") == "150000 100000")
        #expect(contents(dir + "/cpu.weight") == "39")
        #expect(contents(dir + "/pids.max") == "max")

        try CgroupV2.apply(CgroupLimits(memory: 100 << 20, memorySwap: -1), path: dir)
        #expect(contents(dir + "/memory.swap.max") == "max")
        #expect(CgroupV2.weight(fromShares: 2) == 1 && CgroupV2.weight(fromShares: 262_144) == 10000)
        #expect(throws: Cgroup.Error.self) {
            try CgroupV2.apply(CgroupLimits(memory: 100 << 20, memorySwap: 50 << 20), path: dir)
        }
    }
}
