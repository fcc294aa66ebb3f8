import Foundation
import Testing
@testable import Runtime

/// Limits land in the container's cgroup and hold.
@Suite(.serialized) struct CgroupLimitTests {
    @Test func memoryHogIsKilled() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"])
        spec.resources.memory = 32 << 20
        #expect(try f.run(spec).code == 137)
    }

    @Test func forkBombIsContained() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        // A subshell forks until the kernel refuses; the outer shell then reports with builtins
        // only (it cannot fork either while the sleepers hold every slot).
        var spec = f.spec(["sh", "-c", "( while true; do sleep 5 & done ) 2>/dev/null; read cur < /sys/fs/cgroup/pids/pids.current; read max < /sys/fs/cgroup/pids/pids.max; echo $cur $max"])
        spec.resources.pids = 20
        let r = try f.run(spec)
        let numbers = r.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
        #expect(numbers.count == 2, "\(r.stdout) \(r.stderr)")
        #expect(numbers.last == 20)
        #expect((numbers.first ?? 99) <= 20 && (numbers.first ?? 0) >= 15)
        // The host still forks.
        #expect(try RuntimeFixture.capture(["/bin/sh", "-c", "echo alive"]) == "alive\n")
    }

    @Test func cpusShowInCgroupFiles() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max"])
        spec.resources.cpus = 0.5
        let r = try f.run(spec)
        #expect(r.stdout == "50000\n100000\n" || r.stdout == "50000 100000\n", "\(r.stdout)")
    }
}
