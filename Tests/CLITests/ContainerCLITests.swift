import Foundation
import Testing

/// The container and image commands end to end, as a user types them (root; own BERTH_ROOT).
@Suite(.serialized) struct ContainerCLITests {
    /// A BERTH_ROOT with busybox imported by `berth image import`, removed with everything in it.
    final class World {
        let dir: TemporaryDirectory
        var root: String { dir.path + "/root" }

        init() throws {
            dir = try TemporaryDirectory("berth-cli-ctr")
            let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let make = Process()
            make.executableURL = repo.appendingPathComponent("scripts/busybox-image")
            make.arguments = [dir.path + "/busybox.tar"]
            try make.run()
            make.waitUntilExit()
            guard make.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
            let imported = try berth(["image", "import", dir.path + "/busybox.tar", "busybox"])
            guard imported.status == 0 else { throw CocoaError(.fileReadCorruptFile) }
        }

        func berth(_ arguments: [String], stdin: String? = nil) throws -> BerthProcess.Result {
            try BerthProcess.run(arguments, environment: ["BERTH_ROOT": root], stdin: stdin)
        }

        deinit {
            // Remove any container a failed test left running before the folder goes.
            if let ps = try? berth(["container", "ps", "-a", "-q"]) {
                for id in ps.stdout.split(separator: "\n") { _ = try? berth(["container", "rm", "-f", String(id)]) }
            }
        }
    }

    @Test func runPassesOutputAndExitCodeThrough() throws {
        let world = try World()
        let result = try world.berth(["container", "run", "--rm", "busybox", "sh", "-c", "echo hi from $(hostname | wc -c); exit 7"])
        #expect(result.status == 7)
        #expect(result.stdout == "hi from 13\n")
        // --rm left nothing behind.
        let ps = try world.berth(["container", "ps", "-a", "-q"])
        #expect(ps.stdout.isEmpty)
    }

    @Test func detachedContainerLogsStopsAndGoes() throws {
        let world = try World()
        let run = try world.berth(["container", "run", "-d", "--name", "ticker", "busybox", "sh", "-c", "echo started; exec sleep 600"])
        #expect(run.status == 0, "\(run.stderr)")
        // `logs` shows what PID 1 printed once it is up; poll a bounded number of times.
        var logs = ""
        for _ in 0..<100 {
            logs = try world.berth(["container", "logs", "ticker"]).stdout
            if logs.contains("started") { break }
            usleep(20_000)
        }
        #expect(logs == "started\n")
        let ps = try world.berth(["container", "ps"])
        #expect(ps.stdout.contains("ticker"))
        // sleep has no TERM handler as PID 1: the stop must not wait the 10 s grace period.
        let started = Date()
        #expect(try world.berth(["container", "stop", "ticker"]).status == 0)
        #expect(Date().timeIntervalSince(started) < 5, "stop waited for the grace period")
        // As docker: no TERM handler, so SIGKILL at once and exit code 137.
        let inspect = try world.berth(["container", "inspect", "ticker"])
        let all = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [[String: Any]])
        let state = try #require(all.first?["State"] as? [String: Any])
        #expect(state["Status"] as? String == "exited")
        #expect(state["ExitCode"] as? Int == 137)
        #expect(try world.berth(["container", "rm", "ticker"]).status == 0)
        #expect(try world.berth(["container", "ps", "-a", "-q"]).stdout.isEmpty)
    }

    @Test func envFileFlagsAndRootBeforeTheNoun() throws {
        let world = try World()
        // Docker's env files are literal: the quotes stay part of the value.
        try world.dir.write("app.env", "# settings\nA=1\nC='x y'\n")
        let result = try BerthProcess.run(["--root", world.root, "container", "run", "--rm", "--env-file", world.dir.path + "/app.env",
                                           "-e", "B=2", "-w", "/tmp", "-u", "app", "busybox", "sh", "-c", "echo $A$B $C $(pwd) $(id -un)"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "12 'x y' /tmp app\n")

        // Sizes take Docker's units (binary multiples, fractions allowed).
        let shm = try world.berth(["container", "run", "--rm", "--shm-size", "1.5m", "busybox", "sh", "-c", "df -k /dev/shm | tail -1"])
        #expect(shm.stdout.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first == "1536")
        #expect(try world.berth(["container", "run", "--rm", "--memory", "12x", "busybox", "true"]).status == 125)

        try world.dir.write("bad.env", "A=1\nexport C=2\n")
        let bad = try world.berth(["container", "run", "--rm", "--env-file", world.dir.path + "/bad.env", "busybox", "true"])
        #expect(bad.status == 125)
        #expect(bad.stderr == "berth: \(world.dir.path)/bad.env:2: variable 'export C' contains whitespaces\n")
    }

    @Test func initHoldsOnlyStdio() throws {
        let world = try World()
        // PID 1 is berth's init: it must hold nothing of berth's but stdio (never execs, so
        // close-on-exec does not help it), or stdin's writer and the caller's pipes stay open.
        let fds = try world.berth(["container", "run", "--rm", "--init", "busybox", "ls", "/proc/1/fd"])
        #expect(fds.status == 0, "\(fds.stderr)")
        // (#require: with a leaked stdin writer the `cat` below would never see EOF.)
        try #require(fds.stdout == "0\n1\n2\n")
        let echo = try world.berth(["container", "run", "--rm", "-i", "--init", "busybox", "cat"], stdin: "hi\n")
        #expect(echo.stdout == "hi\n")
    }

    @Test func importChangeWithoutValueIsAnError() throws {
        let world = try World()
        let result = try world.berth(["image", "import", "-c", "ENV A=1 B", world.dir.path + "/busybox.tar", "other"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("berth: "))
        #expect(result.stderr.contains("B needs a value"), "\(result.stderr)")
        #expect(try world.berth(["image", "ls", "-q"]).stdout.split(separator: "\n").count == 1)
    }

    @Test func detachedInteractiveShellStaysUpForExec() throws {
        let world = try World()
        // `docker run -dit IMAGE sh` then `exec`: the shell must wait on its open stdin.
        #expect(try world.berth(["container", "run", "-d", "-i", "-t", "--name", "box", "busybox", "sh"]).status == 0)
        let exec = try world.berth(["container", "exec", "box", "sh", "-c", "echo inside; exit 3"])
        #expect(exec.stdout == "inside\n")
        #expect(exec.status == 3)
        #expect(try world.berth(["container", "rm", "-f", "box"]).status == 0)
    }

    @Test func imageSymlinksCannotPointMountsAtTheHost() throws {
        let world = try World()
        // An image whose /escape links to an absolute host path: a mount under /escape must land
        // inside the container's root, as runc's securejoin makes it, never on the host.
        let hostPath = "/tmp/berth-escape-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: hostPath) }
        let rootfs = world.dir.path + "/escape-rootfs"
        try FileManager.default.createDirectory(atPath: rootfs, withIntermediateDirectories: true)
        try Self.tar(["-xf", world.dir.path + "/busybox.tar", "-C", rootfs])
        try FileManager.default.createSymbolicLink(atPath: rootfs + "/escape", withDestinationPath: hostPath)
        try Self.tar(["-C", rootfs, "-cf", world.dir.path + "/escape.tar", "."])
        #expect(try world.berth(["image", "import", world.dir.path + "/escape.tar", "escape"]).status == 0)
        let run = try world.berth(["container", "run", "--rm", "--tmpfs", "/escape/x", "escape",
                                   "sh", "-c", "test -d \(hostPath)/x && echo inside"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "inside\n")
        #expect(!FileManager.default.fileExists(atPath: hostPath), "the mount target was created on the host")
    }

    static func tar(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/tar")
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    @Test func removeGoesOnPastAMissingName() throws {
        let world = try World()
        #expect(try world.berth(["container", "run", "--name", "one", "busybox", "true"]).status == 0)
        let rm = try world.berth(["container", "rm", "missing", "one"])
        #expect(rm.status == 1)
        #expect(rm.stdout == "one\n")
        #expect(rm.stderr.hasPrefix("berth: ") && rm.stderr.contains("missing"))
        #expect(try world.berth(["container", "ps", "-a", "-q"]).stdout.isEmpty)
    }

    @Test func missingCommandExitsWith127AsDockerDoes() throws {
        let world = try World()
        let result = try world.berth(["container", "run", "--rm", "busybox", "no-such-command"])
        #expect(result.status == 127)
        #expect(result.stderr.hasPrefix("berth: container "))
        #expect(result.stderr.contains("no-such-command"))
        #expect(try world.berth(["container", "ps", "-a", "-q"]).stdout.isEmpty)
    }

    @Test func badImageIsOneLineError() throws {
        let world = try World()
        // Docker's status for a run that never started: 125.
        let result = try world.berth(["container", "run", "--rm", "no-such-image", "true"])
        #expect(result.status == 125)
        #expect(result.stderr.hasPrefix("berth: "))
        #expect(result.stderr.contains("no-such-image"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }
}
