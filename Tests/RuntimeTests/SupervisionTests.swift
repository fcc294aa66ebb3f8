import Foundation
import Testing

@testable import Runtime

/// Many containers from one process, each under its own berth-shim: own output sink, own exit
/// code, and a record of the exit that does not depend on the process that started it.
@Suite(.serialized) struct SupervisionTests {
    /// Collects one container's output; the sink is called on that container's waiting thread.
    final class Sink: @unchecked Sendable {
        private let lock = NSLock()
        private var bytes: [UInt8] = []
        func append(_ chunk: UnsafeRawBufferPointer) { lock.withLock { bytes += chunk } }
        func append(_ text: String) { lock.withLock { bytes += Array(text.utf8) } }
        var text: String { lock.withLock { String(decoding: bytes, as: UTF8.self) } }
    }

    @Test func fiftyContainersAtOnceEachWithItsOwnSink() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.cleanup() }
        let count = 50
        let sinks = (0..<count).map { _ in Sink() }
        let codes = UnsafeMutableBufferPointer<Int32>.allocate(capacity: count)
        defer { codes.deallocate() }
        codes.initialize(repeating: -1)
        let failures = Sink()
        DispatchQueue.concurrentPerform(iterations: count) { i in
            do {
                var spec = fixture.spec(["sh", "-c", "echo container \(i); echo to stderr \(i) >&2; exit \(i % 7)"])
                spec.name = "many-\(i)"
                let container = try Container.create(spec: spec, root: fixture.root, startingNow: true)
                let process = try container.start(stdio: .pipes(stdin: false))
                codes[i] = process.wait { chunk, _ in sinks[i].append(chunk) }
            } catch {
                failures.append("\(i): \(error)\n")
            }
        }
        #expect(failures.text.isEmpty, "\(failures.text)")
        for i in 0..<count {
            #expect(codes[i] == Int32(i % 7), "container \(i)")
            let lines = Set(sinks[i].text.split(separator: "\n").map(String.init))
            #expect(lines == ["container \(i)", "to stderr \(i)"], "container \(i): \(sinks[i].text)")
        }
        // The exit codes are on disk too, as berth-shim recorded them.
        let recorded = Container.list(root: fixture.root).map { ($0.name, $0.state().exitCode) }
        #expect(recorded.count == count)
        for (name, code) in recorded {
            #expect(code == Int32(Int(name.dropFirst(5))! % 7), "\(name)")
        }
    }

    @Test func aContainerOutlivesAKilledShimAndStopsWithAnUnknownStatus() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.cleanup() }
        var spec = fixture.spec(["sleep", "1000"])
        spec.name = "orphan"
        let container = try Container.create(spec: spec, root: fixture.root, startingNow: true)
        _ = try container.start(stdio: .detached(stdin: false, tty: false))
        let state = container.state()
        let shim = try #require(state.monitorPid)
        #expect(kill(shim, SIGKILL) == 0)
        // The container goes on without its reaper (reparented, not killed).
        #expect(container.isRunning)
        try container.stop(timeout: 0)
        let after = container.state()
        #expect(after.status == .exited)
        #expect(after.exitCode == 255, "unknown, as Docker records it")
        #expect(after.error == Container.unknownExit, "inspect says why")
    }

    @Test func anExitedContainerStartsAgainWithItsFilesAndItsLog() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.cleanup() }
        var spec = fixture.spec(["sh", "-c", "cat /tmp/mark 2>/dev/null; echo run >> /tmp/mark; echo done"])
        spec.name = "again"
        let container = try Container.create(spec: spec, root: fixture.root, startingNow: true)
        #expect(try container.start(stdio: .pipes(stdin: false)).wait() == 0)
        let first = try #require(container.state().pid)
        let sink = Sink()
        #expect(try container.start(stdio: .pipes(stdin: false)).wait { chunk, _ in sink.append(chunk) } == 0)
        #expect(sink.text == "run\ndone\n", "the first run's file is still there")
        #expect(container.state().pid != first, "a new process")
        let log = ContainerLogReader.entries(path: container.logPath).map(\.log).joined()
        #expect(log == "done\nrun\ndone\n", "both runs in the log")
        // Starting a running container is an error that changes nothing.
        var long = fixture.spec(["sleep", "1000"])
        long.name = "busy"
        let busy = try Container.create(spec: long, root: fixture.root, startingNow: true)
        _ = try busy.start(stdio: .detached(stdin: false, tty: false))
        #expect(
            HostileImageTests.failure { _ = try busy.start(stdio: .detached(stdin: false, tty: false)) }
                == "container busy: step start: the container is already running")
        try busy.remove(force: true)
    }
}
