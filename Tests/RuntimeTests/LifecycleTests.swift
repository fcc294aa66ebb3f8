import Foundation
import Testing

@testable import Runtime

/// Start, stop, kill, exec, remove — and the state any berth process can read.
@Suite(.serialized) struct LifecycleTests {
    static func milliseconds(_ body: () throws -> Void) rethrows -> Double {
        let start = Date()
        try body()
        return Date().timeIntervalSince(start) * 1000
    }

    @Test func stopWithoutHandlerIsImmediate() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["sh", "-c", "echo ready; exec sleep 1000"])
        spec.stopTimeout = 10
        let bg = try f.start(spec)
        #expect(f.waitForLog(bg.container, containing: "ready"))
        let state = bg.container.state()
        #expect(state.status == .running)
        #expect(state.pid.map { ProcFS.startTime(pid: $0) } == state.pidStartTime)
        let ms = try Self.milliseconds { try bg.container.stop() }
        #expect(ms < 1000, "stop took \(ms) ms")
        #expect(bg.finish() == 137)
        #expect(bg.container.state().status == .exited)
        #expect(bg.container.state().exitCode == 137)
    }

    @Test func stopWithIgnoringHandlerWaitsForGrace() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let bg = try f.start(
            f.spec(["sh", "-c", "trap 'echo got-term' TERM; echo ready; while true; do sleep 0.1; done"]))
        #expect(f.waitForLog(bg.container, containing: "ready"))
        let ms = try Self.milliseconds { try bg.container.stop(timeout: 1) }
        #expect(ms >= 1000 && ms < 5000, "stop took \(ms) ms")
        #expect(bg.finish() == 137)
        #expect(ContainerLogReader.entries(path: bg.container.logPath).contains { $0.log == "got-term\n" })
    }

    @Test func stopWithHandlerThatExits() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let bg = try f.start(f.spec(["sh", "-c", "trap 'exit 5' TERM; echo ready; while true; do sleep 0.1; done"]))
        #expect(f.waitForLog(bg.container, containing: "ready"))
        let ms = try Self.milliseconds { try bg.container.stop(timeout: 10) }
        #expect(ms < 3000)
        #expect(bg.finish() == 5)
    }

    @Test func killAndInitForwarding() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["sh", "-c", "trap 'echo usr1; exit 3' USR1; echo ready; while true; do sleep 0.1; done"])
        spec.initProcess = true
        let bg = try f.start(spec)
        #expect(f.waitForLog(bg.container, containing: "ready"))
        try bg.container.kill(signal: SIGUSR1)
        #expect(bg.finish() == 3)
        #expect(throws: Container.Error.self) { try bg.container.kill() }
    }

    @Test func execRunsInsideWithItsOwnSettings() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["sh", "-c", "echo ready; exec sleep 1000"])
        spec.env = ["FROM_RUN=1"]
        spec.hostname = "exec-host"
        let bg = try f.start(spec)
        defer { try? bg.container.stop(timeout: 0) }
        #expect(f.waitForLog(bg.container, containing: "ready"))

        let p = try bg.container.exec(
            ExecSpec(
                argv: [
                    "sh", "-c",
                    "id -u; hostname; echo $FROM_RUN $EXTRA; pwd; grep -E 'CapEff|Seccomp:' /proc/self/status; cat /proc/1/cmdline | tr '\\0' ' '; exit 9",
                ],
                env: ["EXTRA=2"], user: "bob", workingDir: "/tmp"))
        // The exec's output goes through its own pipes, to the caller's sink.
        var output: [UInt8] = []
        let code = p.wait { chunk, _ in output += chunk }
        let text = String(decoding: output, as: UTF8.self)
        #expect(code == 9)
        #expect(text.contains("1001\nexec-host\n1 2\n/tmp\n"), "\(text)")
        #expect(text.contains("CapEff:\t0000000000000000"))
        #expect(text.contains("Seccomp:\t2"))
        #expect(text.contains("sleep 1000"))
        // An exec'd process counts against the container, in its cgroup.
        #expect(bg.container.isRunning)
    }

    @Test func removeLeavesNothing() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["sh", "-c", "echo ready; exec sleep 1000"])
        spec.name = "to-remove"
        spec.resources.memory = 64 << 20
        let bg = try f.start(spec)
        #expect(f.waitForLog(bg.container, containing: "ready"))
        let id = bg.container.id
        let pid = try #require(bg.container.state().pid)
        #expect(!RuntimeFixture.leftovers(id: id, root: f.root).isEmpty)
        #expect(throws: Container.Error.self) { try bg.container.remove() }
        try bg.container.remove(force: true)
        _ = bg.finish()
        #expect(RuntimeFixture.leftovers(id: id, root: f.root).isEmpty)
        #expect(kill(pid, 0) != 0)
        #expect(!FileManager.default.fileExists(atPath: f.root + "/container-names/to-remove"))
        #expect(throws: Container.Error.self) { try Container.lookup("to-remove", root: f.root) }
        // The name is free again.
        var again = f.spec(["true"])
        again.name = "to-remove"
        #expect(try f.run(again).code == 0)
    }

    @Test func stateIsVisibleToOtherProcessesAndLookups() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["sh", "-c", "exit 4"])
        spec.name = "lookup-me"
        let code = try f.run(spec, remove: false).code
        #expect(code == 4)
        let c = try Container.lookup("lookup-me", root: f.root)
        #expect(try Container.lookup(String(c.id.prefix(8)), root: f.root).id == c.id)
        let state = c.state()
        #expect(state.status == .exited && state.exitCode == 4 && state.finishedAt != nil)
        #expect(Container.list(root: f.root).map(\.id) == [c.id])
        // An exited container starts again, as Docker's `start` (SupervisionTests has the rest).
        #expect(try c.start(stdio: .pipes(stdin: false)).wait() == 4)
        try c.remove()
        #expect(RuntimeFixture.leftovers(id: c.id, root: f.root).isEmpty)
    }
}
