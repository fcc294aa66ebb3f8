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
        var spec = f.spec([
            "sh", "-c",
            "( while true; do sleep 5 & done ) 2>/dev/null; read cur < /sys/fs/cgroup/pids/pids.current; read max < /sys/fs/cgroup/pids/pids.max; echo $cur $max",
        ])
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
        var spec = f.spec([
            "sh", "-c",
            "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max",
        ])
        spec.resources.cpus = 0.5
        let r = try f.run(spec)
        #expect(r.stdout == "50000\n100000\n" || r.stdout == "50000 100000\n", "\(r.stdout)")
    }

    // MARK: validate(), Docker's daemon rules (moby's verifyPlatformContainerResources)

    func refusal(_ limits: CgroupLimits, cpus: Int = 2) -> String? {
        do {
            try limits.validate(onlineCPUs: cpus)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func memoryRulesAsDockerHasThem() {
        let minimum = "Minimum memory limit allowed is 6MB"
        #expect(refusal(CgroupLimits(memory: 1024)) == minimum)
        #expect(refusal(CgroupLimits(memory: (6 << 20) - 1)) == minimum)
        #expect(refusal(CgroupLimits(memory: -1)) == minimum)  // Docker: anything but 0 below 6 MiB
        #expect(refusal(CgroupLimits(memory: 6 << 20)) == nil)
        #expect(refusal(CgroupLimits(memory: 0)) == nil)  // 0 is no limit
        #expect(refusal(CgroupLimits(memory: .max)) == nil)
        #expect(
            refusal(CgroupLimits(memory: 64 << 20, memorySwap: 32 << 20))
                == "Minimum memoryswap limit should be larger than memory limit, see usage")
        #expect(
            refusal(CgroupLimits(memorySwap: 64 << 20))
                == "You should always set the Memory limit when using Memoryswap limit, see usage")
        #expect(refusal(CgroupLimits(memory: 64 << 20, memorySwap: 64 << 20)) == nil)
        #expect(refusal(CgroupLimits(memory: 64 << 20, memorySwap: -1)) == nil)
        #expect(refusal(CgroupLimits(memorySwap: -1)) == nil)
        #expect(refusal(CgroupLimits(memory: 64 << 20, memorySwap: 0)) == nil)
        #expect(refusal(CgroupLimits(memory: 64 << 20, memorySwap: -2)) != nil)
        // Twice a huge memory limit saturates instead of trapping.
        #expect(CgroupLimits(memory: .max).effectiveMemorySwap == .max)
    }

    @Test func cpuRangeAsDockerHasIt() {
        let range = "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        #expect(refusal(CgroupLimits(nanoCPUs: 0)) == nil)
        #expect(refusal(CgroupLimits()) == nil)
        #expect(refusal(CgroupLimits(nanoCPUs: 10_000_000)) == nil)
        #expect(refusal(CgroupLimits(nanoCPUs: 2_000_000_000)) == nil)
        for nano: Int64 in [-1, -1_000_000_000, 1, 9_999_999, 2_000_000_001, .max, .min] {
            #expect(refusal(CgroupLimits(nanoCPUs: nano)) == range, "\(nano)")
        }
        #expect(refusal(CgroupLimits(nanoCPUs: 3_000_000_000), cpus: 4) == nil)
        #expect(
            refusal(CgroupLimits(nanoCPUs: 5_000_000_000), cpus: 4)
                == "range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available")
        // The public entry point uses the host's count.
        let host = CgroupLimits.onlineCPUs()
        #expect(host == max(sysconf(Int32(_SC_NPROCESSORS_ONLN)), 1))
        #expect(throws: CgroupLimits.ValidationError.self) {
            try CgroupLimits(nanoCPUs: Int64(host) * 1_000_000_000 + 1).validate()
        }
        #expect(throws: Never.self) { try CgroupLimits(memory: 6 << 20, cpus: 0.5, pids: -1).validate() }
    }

    @Test func doublesNeverTrapAndStayInvalid() {
        // The inputs that once reached Int64(cpus * 100_000) and killed berth with SIGILL.
        for cpus in [Double.infinity, -.infinity, .nan, 1e300, -1e300, 9.3e9] {
            let limits = CgroupLimits(cpus: cpus)
            #expect(refusal(limits) != nil, "\(cpus)")
            _ = limits.cfsQuotaMicroseconds
        }
        #expect(CgroupLimits.nanoCPUs(fromCPUs: 0.5) == 500_000_000)
        #expect(CgroupLimits.nanoCPUs(fromCPUs: 1.5) == 1_500_000_000)
        #expect(CgroupLimits.nanoCPUs(fromCPUs: .infinity) == .max)
        #expect(CgroupLimits.nanoCPUs(fromCPUs: .nan) == .min)
        var limits = CgroupLimits()
        limits.cpus = 0.25
        #expect(limits.nanoCPUs == 250_000_000 && limits.cpus == 0.25)
        // Docker's quota: NanoCPUs * 100000 / 1e9, in integers.
        #expect(limits.cfsQuotaMicroseconds == 25_000)
        #expect(CgroupLimits(nanoCPUs: .max).cfsQuotaMicroseconds == Int64.max / 10_000)
        #expect(CgroupLimits(nanoCPUs: -5).cfsQuotaMicroseconds == nil)
    }

    @Test func pidsLimitZeroOrLessIsUnlimited() {
        for pids in [-1, 0, Int.min, 1, Int.max] { #expect(refusal(CgroupLimits(pids: pids)) == nil) }
    }

    @Test func recordsKeepNanoCPUsAndReadTheOldCpusField() throws {
        let limits = CgroupLimits(memory: 64 << 20, memorySwap: -1, nanoCPUs: 1_500_000_000, cpuShares: 512, pids: -1)
        let data = try JSONEncoder().encode(limits)
        #expect(try JSONDecoder().decode(CgroupLimits.self, from: data) == limits)
        #expect(String(decoding: data, as: UTF8.self).contains("\"nanoCPUs\":1500000000"))
        let old = try JSONDecoder().decode(
            CgroupLimits.self, from: Data(#"{"memory":67108864,"cpus":0.5,"pids":20}"#.utf8))
        #expect(old == CgroupLimits(memory: 64 << 20, nanoCPUs: 500_000_000, pids: 20))
    }
}
