import CRuntime
import Foundation
import TestSupport
import Testing

@testable import Runtime

/// A berth process killed (SIGKILL) while it makes or starts a container loses no name and leaves
/// nothing that `ps -a` cannot show and `rm -f` or `system prune` cannot remove; and what a live
/// berth process is still making is never taken from it. Root; each test has its own BERTH_ROOT.
/// The `berth` binary is stopped where BERTH_TEST_PAUSE_AT says (Container.PausePoint) and
/// killed there.
@Suite(.serialized) struct CrashSafetyTests {
    /// Every place a run can be stopped at, in the order a run passes them.
    static let pausePoints = ["name-reserved", "created", "record-written"]

    @Test(arguments: pausePoints)
    func killedRunLosesNoNameAndLeavesNothing(at point: String) throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let killed = try PausedRun(root: f.root, name: "crashed", at: point, command: ["sleep", "30"])
        killed.kill()
        // Only a complete record is listed: before the record (name-reserved, created) there is
        // nothing to show; after it, the container that never started.
        let listed = try BerthProcess.run(["container", "ps", "-a", "-q"], root: f.root).stdout
        #expect(listed.isEmpty || listed == String(killed.id.prefix(12)) + "\n", "ps -a: \(listed)")
        #expect(point == "record-written" || listed.isEmpty)

        let removed = try BerthProcess.run(["container", "rm", "-f", "crashed"], root: f.root)
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(removed.stdout == "crashed\n")
        expectNothingLeft(of: killed, root: f.root)

        let again = try BerthProcess.run(
            ["container", "run", "--rm", "--name", "crashed", "busybox-test", "true"],
            root: f.root)
        #expect(again.status == 0, "\(again.stderr)")
        expectEmpty(root: f.root)
    }

    @Test(arguments: ["name-reserved", "created"])
    func aNewRunTakesOverTheNameOfAKilledOne(at point: String) throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let killed = try PausedRun(root: f.root, name: "taken-over", at: point, command: ["sleep", "30"])
        killed.kill()
        // No rm first: the name's link points at a leftover, which create reclaims.
        let again = try BerthProcess.run(
            ["container", "run", "--rm", "--name", "taken-over", "busybox-test", "echo", "mine"], root: f.root)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout == "mine\n")
        expectNothingLeft(of: killed, root: f.root)
        expectEmpty(root: f.root)
    }

    /// Killed once the container runs: the container goes on under its berth-shim (ps shows it
    /// running), and `rm -f` then leaves nothing.
    @Test func aRunKilledAfterTheStartLeavesARunningContainer() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let seen = try Self.killWhenReady(
            ["container", "run", "--name", "started", "busybox-test", "sh", "-c", "echo ready; exec sleep 30"],
            root: f.root)
        #expect(seen == "ready\n")

        let container = try Container.lookup("started", root: f.root)
        #expect(container.isRunning)
        let listed = try BerthProcess.run(["container", "ps", "-q"], root: f.root).stdout
        #expect(listed == String(container.id.prefix(12)) + "\n")
        let pid = try #require(container.state().pid)
        let removed = try BerthProcess.run(["container", "rm", "-f", "started"], root: f.root)
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(PausedRun.isGone(pid))
        #expect(RuntimeFixture.leftovers(id: container.id, root: f.root).isEmpty)
        expectEmpty(root: f.root)
        let again = try BerthProcess.run(
            ["container", "run", "--rm", "--name", "started", "busybox-test", "true"],
            root: f.root)
        #expect(again.status == 0, "\(again.stderr)")
    }

    /// `run --rm` whose berth is killed after the start: the container's reaper, finding nobody
    /// attached when the container ends, removes it (Docker's daemon would too).
    @Test func aForegroundRemovalOutlivesItsKilledBerth() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let sync = f.base + "/sync"
        try FileManager.default.createDirectory(atPath: sync, withIntermediateDirectories: true)
        #expect(mkfifo(sync + "/go", 0o600) == 0)
        let seen = try Self.killWhenReady(
            [
                "container", "run", "--rm", "--name", "removed-later", "-v", sync + ":/sync", "busybox-test",
                "sh", "-c", "echo ready; read go < /sync/go",
            ], root: f.root)
        #expect(seen == "ready\n")
        let container = try Container.lookup("removed-later", root: f.root)
        let shim = try #require(container.state().monitorPid)
        // Let the container end; its reaper then runs the removal, and is gone when it is done.
        // Non-blocking: with no reader (a container that died with berth), ENXIO, not a hang.
        var go: Int32 = -1
        for _ in 0..<1000 {
            go = open(sync + "/go", O_WRONLY | O_NONBLOCK)
            if go >= 0 || errno != ENXIO { break }
            usleep(10_000)
        }
        #expect(go >= 0 && write(go, "go\n", 3) == 3, "the container is not reading its FIFO")
        if go >= 0 { close(go) }
        #expect(PausedRun.isGone(shim))
        expectEmpty(root: f.root)
        #expect(RuntimeFixture.leftovers(id: container.id, root: f.root).isEmpty)
    }

    /// `run -d --rm` of a container that ends at once, often before its berth has exited: the
    /// shim waits for berth to let go, then removes it. None is left behind.
    @Test func detachedRemovalsHappenHoweverFastTheContainerEnds() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        for _ in 0..<10 {
            let run = try BerthProcess.run(["container", "run", "-d", "--rm", "busybox-test", "true"], root: f.root)
            #expect(run.status == 0, "\(run.stderr)")
        }
        // The removals are the shims' (their exit commands), after this test's runs returned:
        // done once the directories and names are gone, which is later than `ps -a` stops
        // listing a container (its record goes first). A removal that never ends fails here.
        _ = eventually(30) {
            let dirs = (try? FileManager.default.contentsOfDirectory(atPath: f.root + "/containers")) ?? []
            let names = (try? FileManager.default.contentsOfDirectory(atPath: f.root + "/container-names")) ?? []
            return dirs.isEmpty && names.isEmpty
        }
        expectEmpty(root: f.root)
    }

    @Test func removeWithoutForceReclaimsAKilledRunToo() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let killed = try PausedRun(root: f.root, name: "plain-rm", at: "created", command: ["true"])
        killed.kill()
        // By the ID's first 12 digits, as the "in use by container ..." message shows it.
        let removed = try BerthProcess.run(["container", "rm", String(killed.id.prefix(12))], root: f.root)
        #expect(removed.status == 0, "\(removed.stderr)")
        expectNothingLeft(of: killed, root: f.root)
        let missing = try BerthProcess.run(["container", "rm", "-f", "plain-rm"], root: f.root)
        #expect(missing.status == 1)
        #expect(missing.stderr == "berth: container plain-rm: no such container\n")
    }

    @Test func aContainerStillBeingMadeIsLeftToItsMaker() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        // Stopped with its creation lock held: alive, only slow.
        let making = try PausedRun(root: f.root, name: "in-the-making", at: "name-reserved", command: ["echo", "made"])
        defer { making.kill() }
        let removed = try BerthProcess.run(["container", "rm", "-f", "in-the-making"], root: f.root)
        #expect(removed.status == 1)
        #expect(removed.stderr.contains("still being made"), "\(removed.stderr)")
        let pruned = try BerthProcess.run(["system", "prune", "-f"], root: f.root)
        #expect(pruned.status == 0, "\(pruned.stderr)")
        #expect(pruned.stdout.isEmpty, "\(pruned.stdout)")
        var spec = f.spec(["true"])
        spec.name = "in-the-making"
        let error = #expect(throws: Container.Error.self) { _ = try Container.create(spec: spec, root: f.root) }
        #expect(error?.stage == .name)
        #expect(FileManager.default.fileExists(atPath: f.root + "/containers/" + making.id))
        #expect(NameLink.read(f.root + "/container-names/in-the-making") == making.id)

        // Let it go on: it finishes its run as if nothing had happened.
        let result = making.resume()
        #expect(result.status == 0)
        #expect(result.stdout == "made\n")
        #expect(try BerthProcess.run(["container", "rm", "in-the-making"], root: f.root).status == 0)
        expectEmpty(root: f.root)
    }

    @Test func pruneRemovesStoppedContainersAndEveryLeftover() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let killed = try PausedRun(root: f.root, name: "pruned", at: "created", command: ["true"])
        killed.kill()
        // What older crashes could leave: a directory with no name and no record, a name whose
        // directory is gone, a name link that names no ID.
        let orphanID = Container.randomID()
        let files = FileManager.default
        for dir in ["/upper", "/work"] {
            try files.createDirectory(
                atPath: f.root + "/containers/" + orphanID + dir,
                withIntermediateDirectories: true)
        }
        try files.createSymbolicLink(
            atPath: f.root + "/container-names/ghost",
            withDestinationPath: NameLink.target(forID: Container.randomID()))
        try files.createSymbolicLink(atPath: f.root + "/container-names/junk", withDestinationPath: "not-an-id")
        // One stopped container, which goes, and one running, which stays.
        var stoppedSpec = f.spec(["true"])
        stoppedSpec.name = "stopped"
        _ = try f.run(stoppedSpec, remove: false)
        let stopped = try Container.lookup("stopped", root: f.root)
        var runningSpec = f.spec(["sleep", "30"])
        runningSpec.name = "running"
        let running = try f.start(runningSpec)

        let pruned = try BerthProcess.run(["system", "prune", "-f"], root: f.root)
        #expect(pruned.status == 0, "\(pruned.stderr)")
        let deleted = Set(pruned.stdout.split(separator: "\n").dropFirst().map(String.init))
        #expect(pruned.stdout.hasPrefix("Deleted Containers:\n"))
        #expect(deleted == [stopped.id, killed.id, orphanID])
        expectNothingLeft(of: killed, root: f.root)
        #expect(RuntimeFixture.leftovers(id: orphanID, root: f.root).isEmpty)
        #expect(try Container.lookup("running", root: f.root).isRunning)
        let names = try FileManager.default.contentsOfDirectory(atPath: f.root + "/container-names")
        #expect(names == ["running"])

        try running.container.remove(force: true)
        _ = running.finish()
        expectEmpty(root: f.root)
    }

    @Test func pruneAsksFirstWithoutForce() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let orphanID = Container.randomID()
        try FileManager.default.createDirectory(
            atPath: f.root + "/containers/" + orphanID,
            withIntermediateDirectories: true)
        let declined = try BerthProcess.run(["system", "prune"], root: f.root, stdin: "n\n")
        #expect(declined.status == 0)
        #expect(declined.stdout.contains("Are you sure you want to continue? [y/N]"))
        #expect(FileManager.default.fileExists(atPath: f.root + "/containers/" + orphanID))
        let accepted = try BerthProcess.run(["system", "prune"], root: f.root, stdin: "y\n")
        #expect(accepted.status == 0)
        #expect(accepted.stdout.contains(orphanID))
        #expect(!FileManager.default.fileExists(atPath: f.root + "/containers/" + orphanID))
    }

    /// The lock alone decides: a directory without a record whose flock another process (here,
    /// this one through another open file) holds is not reclaimed, and is once it is released.
    @Test func theCreationLockKeepsAReclaimerOff() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let id = Container.randomID()
        let dir = f.root + "/containers/" + id
        try FileManager.default.createDirectory(atPath: dir + "/upper", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: f.root + "/container-names", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: f.root + "/container-names/locked",
            withDestinationPath: NameLink.target(forID: id))
        let lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        #expect(flock(lock, LOCK_EX) == 0)
        #expect(throws: Container.Error.self) { _ = try Container.removeLeftover("locked", root: f.root) }
        #expect(try Container.reclaimLeftovers(root: f.root).isEmpty)
        #expect(FileManager.default.fileExists(atPath: dir))
        flock(lock, LOCK_UN)
        close(lock)
        #expect(try Container.removeLeftover("locked", root: f.root))
        #expect(!FileManager.default.fileExists(atPath: dir))
        #expect(NameLink.read(f.root + "/container-names/locked") == nil)
        // Nothing by that reference any more.
        #expect(try !Container.removeLeftover("locked", root: f.root))
        #expect(try !Container.removeLeftover(String(id.prefix(12)), root: f.root))
    }

    // MARK: helpers

    /// Runs berth with `arguments` until its container prints "ready" (its program runs), then
    /// SIGKILLs it; returns what it printed. Bounded: 60 s without "ready" ends the wait.
    static func killWhenReady(_ arguments: [String], root: String) throws -> String {
        let run = Process()
        run.executableURL = URL(fileURLWithPath: BerthProcess.executable)
        run.arguments = arguments
        run.environment = ProcessInfo.processInfo.environment.merging(["BERTH_ROOT": root]) { $1 }
        let output = Pipe()
        (run.standardOutput, run.standardInput, run.standardError) = (
            output, FileHandle.nullDevice, FileHandle.nullDevice
        )
        try run.run()
        var seen: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let fd = output.fileHandleForReading.fileDescriptor
        let deadline = Date() + 60
        while !String(decoding: seen, as: UTF8.self).contains("ready\n"), Date() < deadline {
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 1000) >= 0 || errno == EINTR else { break }
            guard ready.revents != 0 else { continue }
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            seen += buffer[0..<n]
        }
        kill(run.processIdentifier, SIGKILL)
        run.waitUntilExit()
        return String(decoding: seen, as: UTF8.self)
    }

    /// Nothing of `run` is left on the host: directory, name link, cgroups, mounts, processes.
    func expectNothingLeft(of run: PausedRun, root: String) {
        let left = RuntimeFixture.leftovers(id: run.id, root: root)
        #expect(left.isEmpty, "left: \(left)")
        #expect(NameLink.read(root + "/container-names/" + run.name) != run.id)
        for pid in run.children { #expect(PausedRun.isGone(pid), "process \(pid) of the killed run is still there") }
    }

    func expectEmpty(root: String) {
        let dirs = (try? FileManager.default.contentsOfDirectory(atPath: root + "/containers")) ?? []
        #expect(dirs.isEmpty, "containers left: \(dirs)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/container-names")) ?? []
        #expect(names.isEmpty, "names left: \(names)")
    }
}

/// `berth container run --name NAME busybox-test COMMAND` stopped at a pause point (it raised
/// SIGSTOP there), with the ID its name link holds and the processes it had made.
final class PausedRun {
    let process: Process
    let name: String
    let id: String
    /// The berth process's children when it stopped (the container's first process, once cloned).
    let children: [Int32]
    private let output = Pipe()

    init(root: String, name: String, at point: String, command: [String]) throws {
        self.name = name
        process = Process()
        process.executableURL = URL(fileURLWithPath: BerthProcess.executable)
        process.arguments = ["container", "run", "--name", name, "busybox-test"] + command
        var env = ProcessInfo.processInfo.environment
        env["BERTH_ROOT"] = root
        env["BERTH_TEST_PAUSE_AT"] = point
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        // Until it stops itself (or exits): WNOWAIT leaves the status for Process to collect.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WSTOPPED | WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        let stopped = info.si_code == CLD_STOPPED
        guard stopped, let id = NameLink.read(root + "/container-names/" + name) else {
            Glibc.kill(pid, SIGKILL)
            process.waitUntilExit()
            throw Container.Error(container: name, stage: .other, detail: "berth never paused at \(point)")
        }
        self.id = id
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        children = tasks.flatMap { task in
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? "")
                .split(separator: " ").compactMap { Int32($0) }
        }
    }

    /// SIGKILL, as the OOM killer or a crash would end it; waits until it is gone.
    func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Lets it go on from where it stopped, and waits for it.
    func resume() -> (status: Int32, stdout: String) {
        Glibc.kill(process.processIdentifier, SIGCONT)
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Exited (a zombie waiting for a reaper counts: it holds nothing); waits on a pidfd, which
    /// turns readable at the exit, 10 seconds at most.
    static func isGone(_ pid: Int32) -> Bool {
        let fd = berth_pidfd_open(pid)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 10_000) == 1
    }
}
