import Foundation
import TestSupport
import Testing

/// berth's runtime on a pure cgroup v2 machine: scripts/vm-test boots Debian's kernel under qemu
/// with this build's berth in an initramfs and runs the isolation, limit, device and cleanup checks
/// there (see the script's header). Each check becomes one expectation named after it.
///
/// No skip: a host without qemu or the kernel fails here, because scripts/setup (which CI runs
/// first) installs them.
@Suite struct CgroupV2MachineTests {
    /// The checks the guest runs (scripts/vm-test-guest's CHECKS) and the host's device-console.
    /// A check missing from the output fails by name even when the machine died early.
    static let expectedChecks = [
        "environment", "modules", "image-import", "run-true", "run-echo", "pid1", "cgroupns", "devices",
        "memory-max", "memory-oom", "pids-limit", "cpu-max", "caps", "seccomp", "rm-cleanup", "device-console",
    ]

    struct Check {
        var name: String
        var ok: Bool
        var detail: String
    }

    /// `VMTEST <name> ok [detail]` / `VMTEST <name> FAIL <detail>`; `VMTEST done` is not a check.
    static func parse(_ output: String) -> (checks: [Check], done: Bool) {
        var checks: [Check] = []
        var done = false
        for line in output.split(separator: "\n") {
            guard line.hasPrefix("VMTEST ") else { continue }
            let fields = line.dropFirst("VMTEST ".count).split(
                separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            if fields == ["done"] {
                done = true
                continue
            }
            guard fields.count >= 2 else { continue }
            checks.append(
                Check(
                    name: String(fields[0]), ok: fields[1] == "ok",
                    detail: fields.count > 2 ? String(fields[2]) : ""))
        }
        return (checks, done)
    }

    @Test func parsesResultLines() {
        let (checks, done) = Self.parse(
            "noise\nVMTEST a ok\nVMTEST b FAIL it broke: x y\nVMTEST c ok fine\nVMTEST done\n")
        #expect(done)
        #expect(checks.map(\.name) == ["a", "b", "c"])
        #expect(checks.map(\.ok) == [true, false, true])
        #expect(checks[1].detail == "it broke: x y")
    }

    @Test(.timeLimit(.minutes(10))) func runtimeChecksPassOnACgroupV2Machine() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let process = Process()
        process.executableURL = repo.appendingPathComponent("scripts/vm-test")
        process.arguments = [BerthProcess.executable]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // The script bounds the machine's run itself (BERTH_VM_TIMEOUT), so this read ends.
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)

        let (checks, done) = Self.parse(output)
        for check in checks {
            #expect(check.ok, "\(check.name): \(check.detail)")
        }
        let seen = Set(checks.map(\.name))
        for name in Self.expectedChecks where !seen.contains(name) {
            Issue.record("\(name): no result line (the machine stopped early or the check was not run)")
        }
        #expect(done, "the guest never printed VMTEST done")
        // Anything else (no qemu, no kernel, a failed initramfs build) shows in the script's own words.
        #expect(
            process.terminationStatus == 0,
            "scripts/vm-test exited \(process.terminationStatus):\n\(output.suffix(4000))")
    }
}
