import Foundation
import TestSupport
import Testing

/// A container's life from the command line, as a user or a script drives it: many at once, a
/// killed reaper, start again and restart, `wait`, `rename` (also killed half-way), a removal
/// that fails half-way, and bad input that changes nothing. Root; each test has its own
/// BERTH_ROOT (ContainerCLITests.World, which removes every container it made) and its own names.
@Suite(.serialized) struct LifecycleCLITests {
    typealias World = ContainerCLITests.World

    /// Whether `pid` holds a flock (in /proc/locks), checked until `deadline`.
    static func holdsAFlock(_ pid: Int32, deadline: Date) -> Bool {
        while Date() < deadline {
            let locks = (try? String(contentsOfFile: "/proc/locks", encoding: .utf8)) ?? ""
            let held = locks.split(separator: "\n").contains { line in
                let fields = line.split(separator: " ")
                return fields.contains("FLOCK") && fields.contains(Substring(String(pid)))
            }
            if held { return true }
            usleep(1000)
        }
        return false
    }

    @Test func twentyDetachedRunsAndRemovalsInParallelLeaveNothing() throws {
        let world = try World()
        let count = 20
        // Each from its own berth process, all at once, as a script would: the statuses are
        // collected one by one, and any output of a failed one is kept for the message.
        let runs = try Self.shell(
            """
            pids=""
            for i in $(seq 1 \(count)); do
                "$BERTH" container run -d --name lc-par-$i busybox sleep 600 > "$OUT/run-$i.out" 2> "$OUT/run-$i.err" &
                pids="$pids $!"
            done
            failed=0
            for p in $pids; do wait $p || failed=$((failed + 1)); done
            echo $failed
            cat "$OUT"/run-*.err
            """, world: world)
        #expect(runs.stdout == "0\n", "\(runs.stdout)\(runs.stderr)")
        let ps = try world.berth(["container", "ps", "-q", "--no-trunc"])
        let ids = ps.stdout.split(separator: "\n").map(String.init)
        #expect(ids.count == count, "running: \(ids)")
        #expect(Set(ids).count == ids.count)

        let removals = try Self.shell(
            """
            pids=""
            for i in $(seq 1 \(count)); do
                "$BERTH" container rm -f lc-par-$i > "$OUT/rm-$i.out" 2> "$OUT/rm-$i.err" &
                pids="$pids $!"
            done
            failed=0
            for p in $pids; do wait $p || failed=$((failed + 1)); done
            echo $failed
            cat "$OUT"/rm-*.err
            """, world: world)
        #expect(removals.stdout == "0\n", "\(removals.stdout)\(removals.stderr)")
        #expect(try world.berth(["container", "ps", "-a", "-q"]).stdout.isEmpty)
        let left = Self.leftovers(ids: ids, root: world.root)
        #expect(left.isEmpty, "left: \(left)")
    }

    @Test func aKilledReaperLeavesTheContainerRunningAndStoppable() throws {
        let world = try World()
        let run = try world.berth([
            "container", "run", "-d", "--name", "lc-orphan", "busybox", "sh", "-c",
            "echo up; exec sleep 600",
        ])
        try #require(run.status == 0, "\(run.stderr)")
        let id = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // Its first line is in the log before its reaper goes.
        try Self.expectLog(world, "lc-orphan", toReach: "up\n")
        let recorded = try Self.stateFile(world, id: id)
        let shim = try #require((recorded["monitorPid"] as? Int).map(Int32.init))
        let pid = try #require(recorded["pid"] as? Int)
        #expect(kill(shim, SIGKILL) == 0)
        #expect(Self.isGone(shim), "berth-shim \(shim) did not go")

        // The container goes on without its reaper.
        let ps = try world.berth(["container", "ps"])
        #expect(ps.stdout.contains("lc-orphan") && ps.stdout.contains(" Up "), "\(ps.stdout)")
        let state = try Self.state(world, "lc-orphan")
        #expect(state["Status"] as? String == "running")
        #expect(state["Pid"] as? Int == pid)
        let exec = try world.berth(["container", "exec", "lc-orphan", "echo", "still here"])
        #expect(exec.status == 0, "\(exec.stderr)")
        #expect(exec.stdout == "still here\n")
        #expect(try world.berth(["container", "logs", "lc-orphan"]).stdout == "up\n")

        // Nobody saw how it ended: 255, and inspect says why, as Docker records a lost status.
        let stop = try world.berth(["container", "stop", "lc-orphan"])
        #expect(stop.status == 0, "\(stop.stderr)")
        let stopped = try Self.state(world, "lc-orphan")
        #expect(stopped["Status"] as? String == "exited")
        #expect(stopped["Running"] as? Bool == false)
        #expect(stopped["Pid"] as? Int == 0)
        #expect(stopped["ExitCode"] as? Int == 255)
        #expect((stopped["Error"] as? String)?.contains("exit status unknown") == true, "\(stopped)")
        #expect(stopped["FinishedAt"] as? String != Self.zeroTime)
        #expect(try world.berth(["container", "wait", "lc-orphan"]).stdout == "255\n")
        #expect(try world.berth(["container", "rm", "lc-orphan"]).status == 0)
        let left = Self.leftovers(ids: [id], root: world.root)
        #expect(left.isEmpty, "left: \(left)")
    }

    @Test func startAgainKeepsFilesAndLogAndRestartGivesANewProcess() throws {
        let world = try World()
        let run = try world.berth([
            "container", "run", "-d", "--name", "lc-again", "busybox", "sh", "-c",
            "cat /mark 2>/dev/null; echo run >> /mark; echo done",
        ])
        try #require(run.status == 0, "\(run.stderr)")
        let id = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try world.berth(["container", "wait", "lc-again"]).stdout == "0\n")
        let first = try Self.stateFile(world, id: id)
        let exited = try Self.state(world, "lc-again")
        #expect(exited["Status"] as? String == "exited")
        #expect(exited["StartedAt"] as? String != Self.zeroTime && exited["FinishedAt"] as? String != Self.zeroTime)

        let start = try world.berth(["container", "start", "lc-again"])
        #expect(start.status == 0, "\(start.stderr)")
        #expect(start.stdout == "lc-again\n")
        #expect(try world.berth(["container", "wait", "lc-again"]).stdout == "0\n")
        // The second run saw the first one's file, and the log holds both runs.
        #expect(try world.berth(["container", "logs", "lc-again"]).stdout == "done\nrun\ndone\n")
        let second = try Self.stateFile(world, id: id)
        #expect(second["pid"] as? Int != first["pid"] as? Int, "the same process ran twice")
        #expect(second["startedAt"] as? String != first["startedAt"] as? String)

        let long = try world.berth(["container", "run", "-d", "--name", "lc-restart", "busybox", "sleep", "600"])
        try #require(long.status == 0, "\(long.stderr)")
        let before = try Self.state(world, "lc-restart")
        let restart = try world.berth(["container", "restart", "lc-restart"])
        #expect(restart.status == 0, "\(restart.stderr)")
        #expect(restart.stdout == "lc-restart\n")
        let after = try Self.state(world, "lc-restart")
        #expect(after["Status"] as? String == "running" && after["Running"] as? Bool == true)
        #expect(after["Pid"] as? Int != before["Pid"] as? Int && after["Pid"] as? Int != 0, "\(before) \(after)")
        // As Docker keeps it: when the last run ended, while this one runs.
        #expect(after["FinishedAt"] as? String != Self.zeroTime)
        #expect(try world.berth(["container", "rm", "-f", "lc-again", "lc-restart"]).status == 0)
    }

    @Test func badInputIsOneLineErrorAndChangesNothing() throws {
        let world = try World()
        #expect(
            try world.berth(["container", "run", "-d", "--name", "lc-busy", "busybox", "sleep", "600"]).status == 0)
        #expect(try world.berth(["container", "run", "--name", "lc-other", "busybox", "true"]).status == 0)
        #expect(try world.berth(["container", "run", "--name", "lc-gone", "busybox", "true"]).status == 0)
        #expect(try world.berth(["container", "rm", "lc-gone"]).status == 0)
        let other = try #require(try Self.inspect(world, "lc-other")["Id"] as? String)
        let before = try Self.snapshot(world)

        let cases: [(arguments: [String], status: Int32, message: String)] = [
            (["container", "start", "lc-busy"], 1, "container lc-busy: step start: the container is already running"),
            (["container", "start", "lc-gone"], 1, "container lc-gone: no such container"),
            (["container", "restart", "lc-gone"], 1, "container lc-gone: no such container"),
            (
                ["container", "rename", "lc-busy", "lc-other"], 1,
                "Conflict. The container name \"/lc-other\" is already in use by container \"\(other)\". "
                    + "You have to remove (or rename) that container to be able to reuse that name."
            ),
            (
                ["container", "rename", "lc-busy", "bad name"], 1,
                "Invalid container name (bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            ),
            (
                ["container", "rename", "lc-busy", "lc-busy"], 1,
                "Renaming a container with the same name as its current name"
            ),
            (["container", "rename", "lc-gone", "lc-new"], 1, "No such container: lc-gone"),
            (
                ["container", "run", "-d", "--name", "lc-log", "--log-opt", "max-size=junk", "busybox", "true"], 125,
                "invalid size: 'junk'"
            ),
            (
                ["container", "run", "-d", "--name", "lc-log", "--log-opt", "nosuch=1", "busybox", "true"], 125,
                "unknown log opt 'nosuch' for json-file log driver"
            ),
            (
                ["container", "run", "-d", "--name", "lc-log", "--log-opt", "max-file=x", "busybox", "true"], 125,
                "strconv.Atoi: parsing \"x\": invalid syntax"
            ),
        ]
        for (arguments, status, message) in cases {
            let result = try world.berth(arguments)
            #expect(result.status == status, "\(arguments): \(result.status)")
            #expect(result.stdout.isEmpty, "\(arguments): \(result.stdout)")
            #expect(result.stderr == "berth: \(message)\n", "\(arguments)")
            #expect(try Self.snapshot(world) == before, "\(arguments) changed something")
        }
        #expect(try world.berth(["container", "rm", "-f", "lc-busy", "lc-other"]).status == 0)
    }

    @Test func waitPrintsEachExitCodeInTheOrderGiven() throws {
        let world = try World()
        let sync = world.dir.path + "/sync"
        try FileManager.default.createDirectory(atPath: sync, withIntermediateDirectories: true)
        for fifo in ["later", "removed"] { try #require(mkfifo(sync + "/" + fifo, 0o600) == 0) }
        // Held open for reading and writing: each container's read waits for its line.
        let later = open(sync + "/later", O_RDWR | O_CLOEXEC)
        let removed = open(sync + "/removed", O_RDWR | O_CLOEXEC)
        defer {
            close(later)
            close(removed)
        }
        try #require(later >= 0 && removed >= 0)

        let exits3 = ["container", "run", "-d", "--name", "lc-three", "busybox", "sh", "-c", "exit 3"]
        #expect(try world.berth(exits3).status == 0)
        let three = try world.berth(["container", "wait", "lc-three"])
        #expect(three.status == 0, "\(three.stderr)")
        #expect(three.stdout == "3\n")

        // Two at once, printed in the order given, whichever ends first.
        #expect(
            try world.berth([
                "container", "run", "-d", "--name", "lc-later", "-v", sync + ":/sync", "busybox",
                "sh", "-c", "read go < /sync/later; exit 5",
            ]).status == 0)
        let exits4 = ["container", "run", "-d", "--name", "lc-four", "busybox", "sh", "-c", "exit 4"]
        #expect(try world.berth(exits4).status == 0)
        let waiter = try ContainerCLITests.RunningBerth(["container", "wait", "lc-later", "lc-four"], world: world)
        defer { waiter.stop() }
        #expect(write(later, "go\n", 3) == 3)
        let deadline = Date() + 60
        #expect(waiter.readStdout(deadline: deadline), "wait did not end within 60 s")
        #expect(waiter.waitForExit(deadline: deadline) == 0, "\(waiter.stderr)")
        #expect(String(decoding: waiter.stdout, as: UTF8.self) == "5\n4\n")

        // A `-d --rm` container: its reaper removes it once the exit is recorded, and the waiter
        // still gets the code, as `docker wait` does.
        #expect(
            try world.berth([
                "container", "run", "-d", "--rm", "--name", "lc-removed", "-v", sync + ":/sync",
                "busybox", "sh", "-c", "read go < /sync/removed; exit 6",
            ]).status == 0)
        let removalWaiter = try ContainerCLITests.RunningBerth(["container", "wait", "lc-removed"], world: world)
        defer { removalWaiter.stop() }
        // Only a wait that is under way when the container ends is owed its code (Docker's too):
        // go on once the waiter holds its lock, which the removal then waits for.
        #expect(Self.holdsAFlock(removalWaiter.pid, deadline: deadline), "the waiter never took its lock")
        #expect(write(removed, "go\n", 3) == 3)
        #expect(removalWaiter.readStdout(deadline: deadline), "wait did not end within 60 s")
        #expect(removalWaiter.waitForExit(deadline: deadline) == 0, "\(removalWaiter.stderr)")
        #expect(String(decoding: removalWaiter.stdout, as: UTF8.self) == "6\n")

        let unknown = try world.berth(["container", "wait", "lc-nosuch"])
        #expect(unknown.status == 1)
        #expect(unknown.stdout.isEmpty)
        #expect(unknown.stderr == "berth: No such container: lc-nosuch\n")
        let mixed = try world.berth(["container", "wait", "lc-three", "lc-nosuch", "lc-four"])
        #expect(mixed.status == 1)
        #expect(mixed.stdout == "3\n4\n")
        #expect(mixed.stderr == "berth: No such container: lc-nosuch\n")
    }

    @Test func aRunningContainerRenamedAnswersToItsNewNameOnly() throws {
        let world = try World()
        let run = try world.berth([
            "container", "run", "-d", "--name", "lc-before", "busybox", "sh", "-c",
            "echo hello; exec sleep 600",
        ])
        try #require(run.status == 0, "\(run.stderr)")
        let id = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try Self.expectLog(world, "lc-before", toReach: "hello\n")
        let rename = try world.berth(["container", "rename", "lc-before", "lc-after"])
        #expect(rename.status == 0, "\(rename.stderr)")
        #expect(rename.stdout.isEmpty && rename.stderr.isEmpty)
        #expect(try Self.names(world) == ["lc-after"])

        let ps = try world.berth(["container", "ps"]).stdout
        #expect(ps.contains("lc-after") && !ps.contains("lc-before"), "\(ps)")
        let inspect = try Self.inspect(world, "lc-after")
        #expect(inspect["Id"] as? String == id && inspect["Name"] as? String == "/lc-after")
        #expect((inspect["State"] as? [String: Any])?["Running"] as? Bool == true)
        let old = try world.berth(["container", "inspect", "lc-before"])
        #expect(old.status != 0 && old.stderr.contains("lc-before"))
        #expect(try world.berth(["container", "logs", "lc-after"]).stdout == "hello\n")
        let exec = try world.berth(["container", "exec", "lc-after", "echo", "inside"])
        #expect(exec.status == 0 && exec.stdout == "inside\n", "\(exec.stderr)")

        // The old name is free for another container.
        let reuse = try world.berth(["container", "run", "-d", "--name", "lc-before", "busybox", "sleep", "600"])
        #expect(reuse.status == 0, "\(reuse.stderr)")
        #expect(reuse.stdout.trimmingCharacters(in: .whitespacesAndNewlines) != id)

        let stop = try world.berth(["container", "stop", "lc-after"])
        #expect(stop.status == 0 && stop.stdout == "lc-after\n", "\(stop.stderr)")
        #expect(try Self.state(world, "lc-after")["ExitCode"] as? Int == 137)
        let rm = try world.berth(["container", "rm", "lc-after"])
        #expect(rm.status == 0 && rm.stdout == "lc-after\n", "\(rm.stderr)")
        #expect(try world.berth(["container", "rm", "-f", "lc-before"]).status == 0)
        #expect(try Self.names(world).isEmpty)
        let left = Self.leftovers(ids: [id], root: world.root)
        #expect(left.isEmpty, "left: \(left)")
    }

    /// A rename killed between its steps (BERTH_TEST_PAUSE_AT stops it there): both names link
    /// to the container, its record says which is its own, and the other is free to take.
    @Test(arguments: ["rename-reserved", "rename-recorded"])
    func aRenameKilledHalfWayLosesNoName(at point: String) throws {
        let world = try World()
        let run = try world.berth(["container", "run", "-d", "--name", "lc-first", "busybox", "sleep", "600"])
        try #require(run.status == 0, "\(run.stderr)")
        let id = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try Self.killed(at: point, ["container", "rename", "lc-first", "lc-second"], world: world)
        #expect(try Self.names(world) == ["lc-first", "lc-second"])
        // Before the record was rewritten the old name holds; after, the new one.
        let (current, stale) = point == "rename-reserved" ? ("lc-first", "lc-second") : ("lc-second", "lc-first")
        #expect(try Self.inspect(world, current)["Id"] as? String == id)
        let byStale = try world.berth(["container", "inspect", stale])
        #expect(byStale.status != 0, "the stale name \(stale) still answers")
        let ps = try world.berth(["container", "ps"]).stdout
        #expect(ps.contains(current) && !ps.contains(stale), "\(ps)")

        // The stale name goes to the first container that asks for it.
        let taker = try world.berth(["container", "run", "-d", "--name", stale, "busybox", "sleep", "600"])
        #expect(taker.status == 0, "\(taker.stderr)")
        let takerID = taker.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try Self.inspect(world, stale)["Id"] as? String == takerID)
        #expect(try Self.inspect(world, current)["Id"] as? String == id)
        #expect(try world.berth(["container", "rm", "-f", current, stale]).status == 0)
        #expect(try Self.names(world).isEmpty)
        #expect(try world.berth(["container", "ps", "-a", "-q"]).stdout.isEmpty)
        let left = Self.leftovers(ids: [id, takerID], root: world.root)
        #expect(left.isEmpty, "left: \(left)")
    }

    /// Docker's "dead": a removal that failed half-way (here a mount in the upper dir that
    /// cannot be removed) leaves a container that cannot start, only be removed.
    @Test func aRemovalThatFailsHalfWayLeavesADeadContainer() throws {
        let world = try World()
        let run = try world.berth([
            "container", "run", "--name", "lc-dead", "busybox", "sh", "-c",
            "mkdir /busy; echo 2 > /file; exit 2",
        ])
        #expect(run.status == 2, "\(run.stderr)")
        let id = try #require(try Self.inspect(world, "lc-dead")["Id"] as? String)
        let busy = world.root + "/containers/" + id + "/upper/busy"
        try #require(mount("none", busy, "tmpfs", 0, nil) == 0, "mount: \(String(cString: strerror(errno)))")
        var mounted = true
        defer { if mounted { umount2(busy, Int32(MNT_DETACH)) } }

        let rm = try world.berth(["container", "rm", "lc-dead"])
        #expect(rm.status == 1)
        #expect(rm.stderr.hasPrefix("berth: container lc-dead: "), "\(rm.stderr)")
        #expect(rm.stderr.split(separator: "\n").count == 1, "\(rm.stderr)")
        #expect(rm.stderr.contains("Device or resource busy"), "\(rm.stderr)")
        let state = try Self.state(world, "lc-dead")
        #expect(state["Status"] as? String == "dead" && state["Dead"] as? Bool == true, "\(state)")
        #expect(state["ExitCode"] as? Int == 2)
        #expect((state["Error"] as? String)?.contains("Device or resource busy") == true)
        #expect(try world.berth(["container", "ps", "-a"]).stdout.contains(" Dead "))
        let start = try world.berth(["container", "start", "lc-dead"])
        #expect(start.status == 1)
        #expect(
            start.stderr
                == "berth: container lc-dead: step start: container is marked for removal and cannot be started\n")
        #expect(try world.berth(["container", "wait", "lc-dead"]).stdout == "2\n")

        #expect(umount2(busy, 0) == 0)
        mounted = false
        let again = try world.berth(["container", "rm", "lc-dead"])
        #expect(again.status == 0, "\(again.stderr)")
        let left = Self.leftovers(ids: [id], root: world.root)
        #expect(left.isEmpty, "left: \(left)")
    }
}

// MARK: - Helpers

extension LifecycleCLITests {
    /// How Docker shows a time that never was (Go's zero time).
    static let zeroTime = "0001-01-01T00:00:00Z"

    static func inspect(_ world: World, _ name: String) throws -> [String: Any] {
        let result = try world.berth(["container", "inspect", name])
        try #require(result.status == 0, "inspect \(name): \(result.stderr)")
        let all = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        return try #require(all.first)
    }

    static func state(_ world: World, _ name: String) throws -> [String: Any] {
        try #require(try inspect(world, name)["State"] as? [String: Any])
    }

    /// ROOT/containers/ID/state.json as berth wrote it (host pids, the reaper's pid).
    static func stateFile(_ world: World, id: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: world.root + "/containers/" + id + "/state.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func names(_ world: World) throws -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: world.root + "/container-names")) ?? []).sorted()
    }

    /// What `world` holds, for a before-and-after comparison: each container's ID, name and
    /// state, the name links and the container directories.
    struct Snapshot: Equatable {
        var containers: [String]
        var names: [String]
        var directories: [String]
    }

    static func snapshot(_ world: World) throws -> Snapshot {
        var containers: [String] = []
        for id in try world.berth(["container", "ps", "-a", "-q", "--no-trunc"]).stdout.split(separator: "\n") {
            let object = try inspect(world, String(id))
            let state = try #require(object["State"] as? [String: Any])
            let fields: [Any?] = [
                object["Id"], object["Name"], state["Status"], state["Pid"], state["ExitCode"],
                state["StartedAt"], state["FinishedAt"], state["Error"],
            ]
            containers.append(fields.map { "\($0 ?? "nil")" }.joined(separator: " "))
        }
        let directories = (try? FileManager.default.contentsOfDirectory(atPath: world.root + "/containers")) ?? []
        return Snapshot(containers: containers, names: try names(world), directories: directories.sorted())
    }

    /// Follows the container's log (`logs -f`, which wakes on inotify) until it holds `text`.
    static func expectLog(
        _ world: World, _ name: String, toReach text: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let follower = try ContainerCLITests.RunningBerth(["container", "logs", "-f", name], world: world)
        defer { follower.stop() }
        try #require(
            follower.readStdout(until: text, deadline: Date() + 60),
            "the log of \(name) never held \(text.debugDescription)", sourceLocation: sourceLocation)
    }

    /// `sh -c SCRIPT` with BERTH (the binary), BERTH_ROOT and OUT (the test's folder) set.
    /// Spawned with no signal blocked and default handlers: the test's threads block SIGCHLD
    /// (dispatch workers block most signals, and a child inherits that), and a shell that
    /// cannot get SIGCHLD waits for its `&` jobs for ever.
    static func shell(_ script: String, world: World) throws -> BerthProcess.Result {
        var environment = ProcessInfo.processInfo.environment
        environment["BERTH"] = BerthProcess.executable
        environment["BERTH_ROOT"] = world.root
        environment["OUT"] = world.dir.path
        let outPath = world.dir.path + "/shell-\(UUID().uuidString.prefix(8))"
        let errPath = outPath + ".err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        var handled = sigset_t()
        sigemptyset(&none)
        sigemptyset(&handled)
        for signal in [SIGCHLD, SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT] { sigaddset(&handled, signal) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &handled)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let words: [String] = ["/bin/sh", "-c", script]
        let arguments: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        let variables: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in arguments + variables { free(pointer) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, &attributes, arguments, variables)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7f == 0
        return BerthProcess.Result(
            status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f),
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    /// Runs `berth ARGUMENTS` with BERTH_TEST_PAUSE_AT=`point`, waits (waitid, no polling) until
    /// it has stopped itself there, and SIGKILLs it, as a crash would end it.
    static func killed(at point: String, _ arguments: [String], world: World) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BerthProcess.executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["BERTH_ROOT"] = world.root
        environment["BERTH_TEST_PAUSE_AT"] = point
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        defer {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        var info = siginfo_t()
        // WNOWAIT: the process stays Foundation's to reap.
        while waitid(P_PID, id_t(pid), &info, WSTOPPED | WEXITED | WNOWAIT) != 0 && errno == EINTR {}
        try #require(info.si_code == Int32(CLD_STOPPED), "berth \(arguments) never paused at \(point)")
    }

    /// The process has exited (a zombie waiting for a reaper holds nothing); bounded: 10 s.
    static func isGone(_ pid: Int32) -> Bool {
        for _ in 0..<1000 {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return true }
            let state = stat[stat.index(after: close)...].split(separator: " ").first
            if state == "Z" || state == "X" { return true }
            usleep(10_000)
        }
        return false
    }

    /// Everything of containers `ids` under or about `root` that could outlive them: live
    /// processes (a berth-shim whose command line names the root, anything in one of their
    /// cgroups), mounts, cgroups, files under ROOT/containers and name links.
    static func leftovers(ids: [String], root: String) -> [String] {
        var found: [String] = []
        let files = FileManager.default
        for entry in (try? files.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != getpid(),
                let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let state = stat[stat.index(after: close)...].split(separator: " ").first
            if state == "Z" || state == "X" { continue }
            let commandLine = ((try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data())
                .split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
            let cgroups = (try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? ""
            if commandLine.contains(root) || ids.contains(where: { cgroups.contains("/berth/" + $0) }) {
                found.append("process \(pid): \(commandLine)")
            }
        }
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        for line in mounts.split(separator: "\n")
        where line.contains(root) || ids.contains(where: { line.contains($0) }) {
            found.append("mount: \(line)")
        }
        for id in ids {
            for hierarchy in (try? files.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []
            where files.fileExists(atPath: "/sys/fs/cgroup/\(hierarchy)/berth/\(id)") {
                found.append("cgroup \(hierarchy)/berth/\(id.prefix(12))")
            }
            if files.fileExists(atPath: "/sys/fs/cgroup/berth/\(id)") { found.append("cgroup berth/\(id.prefix(12))") }
        }
        for entry in (try? files.contentsOfDirectory(atPath: root + "/containers")) ?? [] {
            found.append("containers/\(entry)")
        }
        for name in (try? files.contentsOfDirectory(atPath: root + "/container-names")) ?? [] {
            found.append("name link \(name)")
        }
        return found
    }
}
