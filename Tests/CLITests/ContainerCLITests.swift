import Foundation
import TestSupport
import Testing

/// The container and image commands end to end, as a user types them (root; own BERTH_ROOT).
@Suite(.serialized) struct ContainerCLITests {
    /// A BERTH_ROOT with busybox imported by `berth image import`, removed with everything in it.
    final class World {
        let dir: TemporaryDirectory
        var root: String { dir.path + "/root" }

        init() throws {
            dir = try TemporaryDirectory("berth-cli-ctr")
            let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent()
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
            // The root's unused networks (its default bridge too), with their bridges on the host.
            _ = try? berth(["system", "prune", "-f"])
        }
    }

    @Test func runPassesOutputAndExitCodeThrough() throws {
        let world = try World()
        let result = try world.berth([
            "container", "run", "--rm", "busybox", "sh", "-c", "echo hi from $(hostname | wc -c); exit 7",
        ])
        #expect(result.status == 7)
        #expect(result.stdout == "hi from 13\n")
        // --rm left nothing behind.
        let ps = try world.berth(["container", "ps", "-a", "-q"])
        #expect(ps.stdout.isEmpty)
    }

    @Test func detachedContainerLogsStopsAndGoes() throws {
        let world = try World()
        let run = try world.berth([
            "container", "run", "-d", "--name", "ticker", "busybox", "sh", "-c", "echo started; exec sleep 600",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        // `logs -f` shows what PID 1 printed once it is up.
        let follower = try RunningBerth(["container", "logs", "-f", "ticker"], world: world)
        #expect(follower.readStdout(until: "started\n", deadline: Date() + 60))
        follower.stop()
        #expect(try world.berth(["container", "logs", "ticker"]).stdout == "started\n")
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

    /// A foreground `run` hands the signals it gets to the container (Docker's --sig-proxy).
    @Test func foregroundRunForwardsSignals() throws {
        let world = try World()
        let run = try RunningBerth(
            [
                "container", "run", "--rm", "--name", "forwarded", "busybox", "sh", "-c",
                "trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.1; done",
            ], world: world)
        defer { run.stop() }
        let deadline = Date() + 60
        #expect(run.readStdout(until: "ready\n", deadline: deadline))
        #expect(kill(run.pid, SIGTERM) == 0)
        #expect(run.readStdout(deadline: deadline))
        #expect(run.waitForExit(deadline: deadline) == 3, "\(run.stderr)")
        #expect(String(decoding: run.stdout, as: UTF8.self) == "ready\ngot-term\n")
        #expect(try world.berth(["container", "ps", "-a", "-q"]).stdout.isEmpty)
    }

    @Test func envFileFlagsAndRootBeforeTheNoun() throws {
        let world = try World()
        // Docker's env files are literal: the quotes stay part of the value.
        try world.dir.write("app.env", "# settings\nA=1\nC='x y'\n")
        let result = try BerthProcess.run([
            "--root", world.root, "container", "run", "--rm", "--env-file", world.dir.path + "/app.env",
            "-e", "B=2", "-w", "/tmp", "-u", "app", "busybox", "sh", "-c", "echo $A$B $C $(pwd) $(id -un)",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "12 'x y' /tmp app\n")

        // Sizes take Docker's units (binary multiples, fractions allowed).
        let shm = try world.berth([
            "container", "run", "--rm", "--shm-size", "1.5m", "busybox", "sh", "-c", "df -k /dev/shm | tail -1",
        ])
        #expect(shm.stdout.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first == "1536")
        #expect(try world.berth(["container", "run", "--rm", "--memory", "12x", "busybox", "true"]).status == 125)

        try world.dir.write("bad.env", "A=1\nexport C=2\n")
        let bad = try world.berth([
            "container", "run", "--rm", "--env-file", world.dir.path + "/bad.env", "busybox", "true",
        ])
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
        let run = try world.berth([
            "container", "run", "--rm", "--tmpfs", "/escape/x", "escape",
            "sh", "-c", "test -d \(hostPath)/x && echo inside",
        ])
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
        let result = try world.berth(["container", "run", "--rm", "--pull", "never", "no-such-image", "true"])
        #expect(result.status == 125)
        #expect(result.stderr.hasPrefix("berth: "))
        #expect(result.stderr.contains("no-such-image"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }
}

// MARK: - networks and ports

extension ContainerCLITests {
    /// `--network` as Docker names the modes: the default (also `bridge`) is a namespace of the
    /// container's own joined to the root's default bridge network (eth0 and a default route),
    /// `none` one with loopback only, `host` is the host's, and `container:NAME` is that
    /// container's, host name and all.
    @Test func networkModesAsDockerNamesThem() throws {
        let world = try World()
        let host = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        func probe(_ flags: [String], _ command: String = "readlink /proc/self/ns/net") throws -> String {
            let run = try world.berth(["container", "run", "--rm"] + flags + ["busybox", "sh", "-c", command])
            #expect(run.status == 0, "\(flags): \(run.stderr)")
            return run.stdout.trimmingCharacters(in: .newlines)
        }
        for flags in [[], ["--network", "default"], ["--network", "bridge"], ["--network", "none"]] {
            let namespace = try probe(flags)
            #expect(namespace.hasPrefix("net:[") && namespace != host, "\(flags)")
            let interfaces = flags == ["--network", "none"] ? "lo" : "eth0\nlo"
            #expect(try probe(flags, "ls /sys/class/net") == interfaces, "\(flags)")
        }
        #expect(try probe([], "ip route | grep default").hasPrefix("default via "))
        #expect(try probe(["--network", "host"]) == host)

        #expect(try world.berth(["container", "run", "-d", "--name", "peer", "busybox", "sleep", "600"]).status == 0)
        let peer = try world.berth(["container", "exec", "peer", "sh", "-c", "readlink /proc/self/ns/net; hostname"])
        let peerLines = peer.stdout.split(separator: "\n").map(String.init)
        try #require(peerLines.count == 2, "\(peer.stderr)")
        #expect(
            try probe(["--network", "container:peer"], "readlink /proc/self/ns/net; hostname")
                == peerLines.joined(separator: "\n"))
        #expect(
            try world.berth([
                "container", "run", "-d", "--name", "guest", "--network", "container:peer",
                "busybox", "sleep", "600",
            ]).status == 0)
        let inspect = try world.berth(["container", "inspect", "guest"])
        let all = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [[String: Any]])
        let mode = (all.first?["HostConfig"] as? [String: Any])?["NetworkMode"] as? String
        #expect(mode?.hasPrefix("container:") == true && mode?.count == "container:".count + 64, "\(mode ?? "")")
        // moby's validateNetContainerMode: what the other container's network decides.
        let hostname = try world.berth([
            "container", "run", "--rm", "--network", "container:peer", "-h", "x",
            "busybox", "true",
        ])
        #expect(hostname.status == 125)
        #expect(hostname.stderr == "berth: conflicting options: hostname and the network mode\n")
        let unknown = try world.berth(["container", "run", "--rm", "--network", "elsewhere", "busybox", "true"])
        #expect(unknown.status == 125 && unknown.stderr == "berth: network elsewhere not found\n")
        // Joined when it starts, so the other container must be running then, as in Docker.
        #expect(try world.berth(["container", "stop", "peer"]).status == 0)
        #expect(try world.berth(["container", "stop", "guest"]).status == 0)
        let restart = try world.berth(["container", "start", "guest"])
        #expect(restart.status != 0)
        #expect(restart.stderr.contains("cannot join network of a non running container"), "\(restart.stderr)")
    }

    /// Docker's PORTS without published ports: the exposed ports (the image's and --expose), in
    /// docker/cli's order and ranges, while the container runs on a network that has them.
    @Test func psShowsExposedPortsAsDockerDoes() throws {
        let world = try World()
        let imported = try world.berth([
            "image", "import", "-c", "EXPOSE 8080 53/udp",
            world.dir.path + "/busybox.tar", "web",
        ])
        try #require(imported.status == 0, "\(imported.stderr)")
        #expect(
            try world.berth([
                "container", "run", "-d", "--name", "web", "--expose", "80", "--expose", "8000-8002",
                "web", "sleep", "600",
            ]).status == 0)
        #expect(
            try world.berth([
                "container", "run", "-d", "--name", "quiet", "--network", "none", "--expose", "80",
                "busybox", "sleep", "600",
            ]).status == 0)
        let ps = try world.berth(["container", "ps"]).stdout.split(separator: "\n")
        let header = try #require(ps.first.map(String.init))
        // The columns are padded to the header's: PORTS is what lies between its start and NAMES.
        let offset = header.distance(from: header.startIndex, to: try #require(header.range(of: "PORTS")).lowerBound)
        func ports(_ name: String) -> String? {
            guard let row = ps.first(where: { $0.hasSuffix(" " + name) }) else { return nil }
            return String(row.dropFirst(offset).dropLast(name.count)).trimmingCharacters(in: .whitespaces)
        }
        #expect(ports("web") == "80/tcp, 8000-8002/tcp, 53/udp, 8080/tcp", "\(ps)")
        #expect(ports("quiet") == "", "\(ps)")
        let inspect = try world.berth(["container", "inspect", "web"])
        let all = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [[String: Any]])
        let exposed = (all.first?["Config"] as? [String: Any])?["ExposedPorts"] as? [String: Any]
        #expect(exposed.map { Set($0.keys) } == ["53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp", "8080/tcp"])
        // Stopped, a container has no ports to show (Docker releases its endpoints).
        #expect(try world.berth(["container", "stop", "web"]).status == 0)
        let stopped = try world.berth(["container", "ps", "-a"]).stdout
        #expect(!stopped.contains("/tcp"), "\(stopped)")
    }
}

// MARK: - container logs

extension ContainerCLITests {
    /// The issue's case: `logs -f` started right after the container, which writes 200,000
    /// numbered lines through some 14 rotations; it writes the second half only once the
    /// follower has printed the first, so that the follower is there for rotations too.
    @Test func logsFollowPrintsEveryLineOnceAcrossRotations() throws {
        let world = try World()
        let sync = world.dir.path + "/sync"
        try FileManager.default.createDirectory(atPath: sync, withIntermediateDirectories: true)
        try #require(mkfifo(sync + "/go", 0o600) == 0)
        // Held open for reading and writing: the "go" line waits in the FIFO for the container.
        let go = open(sync + "/go", O_RDWR | O_CLOEXEC)
        try #require(go >= 0)
        defer { close(go) }
        let run = try world.berth([
            "container", "run", "-d", "--name", "counter", "-v", sync + ":/sync",
            "--log-opt", "max-size=1m", "--log-opt", "max-file=100", "busybox",
            "sh", "-c", "seq 1 100000; read go < /sync/go; seq 100001 200000",
        ])
        try #require(run.status == 0, "\(run.stderr)")
        let follower = try RunningBerth(["container", "logs", "-f", "counter"], world: world)
        defer { follower.stop() }
        let deadline = Date() + 60
        try #require(follower.readStdout(until: "\n100000\n", deadline: deadline), "the first half did not come")
        #expect(write(go, "go\n", 3) == 3)
        try #require(follower.readStdout(deadline: deadline), "the follower did not end within 60 s")
        #expect(follower.waitForExit(deadline: deadline) == 0)
        #expect(follower.stderr.isEmpty, "\(follower.stderr)")
        Self.expectNumbers(follower.stdout, 1...200_000)
    }

    /// max-file=2: rotation may delete a file before the follower reads it; what it prints must
    /// still be in order, never twice, and end with the last line.
    @Test func logsFollowWithFewFilesNeverRepeats() throws {
        let world = try World()
        let run = try world.berth([
            "container", "run", "-d", "--name", "churn", "--log-opt", "max-size=1m",
            "--log-opt", "max-file=2", "busybox", "seq", "1", "200000",
        ])
        try #require(run.status == 0, "\(run.stderr)")
        let follower = try RunningBerth(["container", "logs", "-f", "churn"], world: world)
        defer { follower.stop() }
        let deadline = Date() + 60
        try #require(follower.readStdout(deadline: deadline), "the follower did not end within 60 s")
        #expect(follower.waitForExit(deadline: deadline) == 0)
        let lines = String(decoding: follower.stdout, as: UTF8.self).split(separator: "\n")
        let numbers = lines.compactMap { Int($0) }
        #expect(numbers.count == lines.count, "a line was torn")
        #expect(numbers.last == 200_000)
        if let back = zip(numbers, numbers.dropFirst()).first(where: { $0.0 >= $0.1 }) {
            Issue.record("\(back.1) came after \(back.0)")
        }
    }

    @Test func logsTailSinceUntilAndTimestamps() throws {
        let world = try World()
        #expect(try world.berth(["container", "run", "--name", "written", "busybox", "true"]).status == 0)
        let dir = try Self.containerDirectory(world, "written")
        // 2023-11-14T22:13:20Z is Unix time 1,700,000,000. The third time has Go's short fraction.
        func entry(_ log: String, _ stream: String, _ time: String) -> String {
            #"{"log":"\#(log)\n","stream":"\#(stream)","time":"\#(time)"}"# + "\n"
        }
        try
            (entry("out1", "stdout", "2023-11-14T22:13:20.000000000Z")
            + entry("err1", "stderr", "2023-11-14T22:13:21.000000000Z"))
            .write(toFile: dir + "/container.log.1", atomically: false, encoding: .utf8)
        try
            (entry("out2", "stdout", "2023-11-14T22:13:22.5Z")
            + entry("out3", "stdout", "2023-11-14T22:13:23.000000000Z"))
            .write(toFile: dir + "/container.log", atomically: false, encoding: .utf8)

        let all = try Self.logs(world, ["written"])
        #expect(all.stdout == "out1\nout2\nout3\n")
        #expect(all.stderr == "err1\n")
        let tail = try Self.logs(world, ["-t", "--tail", "2", "written"])
        #expect(tail.stdout == "2023-11-14T22:13:22.500000000Z out2\n2023-11-14T22:13:23.000000000Z out3\n")
        #expect(tail.stderr.isEmpty)
        let tailAcross = try Self.logs(world, ["-n", "3", "written"])
        #expect(tailAcross.stdout == "out2\nout3\n" && tailAcross.stderr == "err1\n")
        #expect(try Self.logs(world, ["--tail", "0", "written"]).stdout.isEmpty)
        let window = try Self.logs(world, ["--since", "2023-11-14T22:13:21Z", "--until", "1700000002.5", "written"])
        #expect(window.stdout == "out2\n" && window.stderr == "err1\n")
        let zoned = try Self.logs(world, ["--since", "2023-11-14T23:13:22+01:00", "-t", "written"])
        #expect(zoned.stdout == "2023-11-14T22:13:22.500000000Z out2\n2023-11-14T22:13:23.000000000Z out3\n")
        // Relative: all of these are long before the last ten minutes.
        let recent = try Self.logs(world, ["--since", "10m", "written"])
        #expect(recent.status == 0 && recent.stdout.isEmpty && recent.stderr.isEmpty)
        // Following an exited container with --tail prints those lines and ends.
        let followed = try Self.logs(world, ["-f", "--tail", "1", "written"])
        #expect(followed.status == 0 && followed.stdout == "out3\n")
    }

    @Test func logsFollowOnExitedContainerEndsAtOnce() throws {
        let world = try World()
        let run = try world.berth([
            "container", "run", "--name", "done", "busybox",
            "sh", "-c", "echo out; echo err >&2; printf partial",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let started = Date()
        let result = try Self.logs(world, ["-f", "done"])
        #expect(Date().timeIntervalSince(started) < 10, "the follower waited on an exited container")
        #expect(result.status == 0)
        #expect(result.stdout == "out\npartial")
        #expect(result.stderr == "err\n")
    }

    @Test func logsBadInputIsOneLineError() throws {
        let world = try World()
        #expect(try world.berth(["container", "run", "--name", "box", "busybox", "true"]).status == 0)
        for arguments in [
            ["--tail", "x", "box"], ["--since", "junk", "box"], ["--until", "2023-13-01", "box"],
            ["-f", "nosuch"],
        ] {
            let result = try Self.logs(world, arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stdout.isEmpty, "\(arguments)")
            #expect(
                result.stderr.hasPrefix("berth: ") && result.stderr.split(separator: "\n").count == 1,
                "\(arguments): \(result.stderr)")
        }
        #expect(try Self.logs(world, ["--tail", "x", "box"]).stderr.contains("\"x\""))
        #expect(try Self.logs(world, ["--since", "junk", "box"]).stderr.contains("\"junk\""))
        #expect(try Self.logs(world, ["nosuch"]).stderr.contains("nosuch"))
    }

    // MARK: Helpers for the log tests

    /// `berth container logs ARGUMENTS`, bounded: a follower that does not end within 60 s fails.
    static func logs(_ world: World, _ arguments: [String]) throws -> BerthProcess.Result {
        let process = try RunningBerth(["container", "logs"] + arguments, world: world)
        defer { process.stop() }
        let deadline = Date() + 60
        let ended = process.readStdout(deadline: deadline)
        #expect(ended, "logs \(arguments) did not end within 60 s")
        let status = process.waitForExit(deadline: deadline)
        return BerthProcess.Result(
            status: status ?? -1, stdout: String(decoding: process.stdout, as: UTF8.self),
            stderr: process.stderr)
    }

    static func containerDirectory(_ world: World, _ name: String) throws -> String {
        let inspect = try world.berth(["container", "inspect", name])
        let all = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [[String: Any]])
        let id = try #require(all.first?["Id"] as? String)
        return world.root + "/containers/" + id
    }

    /// `output` is exactly "N\n" for each N of `range`; else the first line that differs.
    static func expectNumbers(
        _ output: [UInt8], _ range: ClosedRange<Int>,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let expected = range.map(String.init) + [""]
        guard lines.count != expected.count || !lines.elementsEqual(expected, by: { $0 == $1 }) else { return }
        let at =
            zip(lines, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            ?? min(lines.count, expected.count)
        let got = at < lines.count ? String(lines[at]).debugDescription : "the end"
        let wanted = at < expected.count ? expected[at].debugDescription : "the end"
        Issue.record(
            "\(lines.count - 1) lines; line \(at + 1) is \(got), expected \(wanted)",
            sourceLocation: sourceLocation)
    }

    /// A `berth` command whose stdout is read as it comes, every wait bounded; `stop()` kills it
    /// if it is still there.
    final class RunningBerth {
        private let process = Process()
        private let output = Pipe()
        private let errorFile: String
        private let exited = DispatchSemaphore(value: 0)
        private(set) var stdout: [UInt8] = []
        private var atEnd = false

        init(_ arguments: [String], world: World) throws {
            process.executableURL = URL(fileURLWithPath: BerthProcess.executable)
            process.arguments = arguments
            var environment = ProcessInfo.processInfo.environment
            environment["BERTH_ROOT"] = world.root
            process.environment = environment
            errorFile = world.dir.path + "/stderr-\(UUID().uuidString.prefix(8))"
            _ = FileManager.default.createFile(atPath: errorFile, contents: nil)
            process.standardOutput = output
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorFile))
            process.standardInput = FileHandle.nullDevice
            process.terminationHandler = { [exited] _ in exited.signal() }
            try process.run()
        }

        var stderr: String { (try? String(contentsOfFile: errorFile, encoding: .utf8)) ?? "" }

        var pid: Int32 { process.processIdentifier }

        /// Reads stdout until it holds `marker`, or to its end when there is none; false when
        /// `deadline` came first (or the output ended without the marker).
        func readStdout(until marker: String? = nil, deadline: Date) -> Bool {
            let fd = output.fileHandleForReading.fileDescriptor
            let wanted = marker.map { Array($0.utf8) }
            var searched = 0
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                if let wanted {
                    if Self.find(wanted, in: stdout, from: searched) { return true }
                    searched = max(0, stdout.count - wanted.count + 1)
                }
                if atEnd { return wanted == nil }
                var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let milliseconds = Int32(max(0, min(deadline.timeIntervalSinceNow * 1000, 60_000)))
                let rc = poll(&ready, 1, milliseconds)
                if rc < 0 && errno == EINTR { continue }
                if rc <= 0 { return false }
                let n = read(fd, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    atEnd = true
                } else {
                    stdout += buffer[0..<n]
                }
            }
        }

        private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Bool {
            guard haystack.count >= needle.count else { return false }
            var i = start
            while i + needle.count <= haystack.count {
                if haystack[i] == needle[0], haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
                i += 1
            }
            return false
        }

        /// The exit status once it exited by itself; nil when it had not by `deadline`.
        func waitForExit(deadline: Date) -> Int32? {
            guard exited.wait(timeout: .now() + max(0, deadline.timeIntervalSinceNow)) == .success else { return nil }
            exited.signal()
            return process.terminationStatus
        }

        /// SIGKILL: the test's threads block SIGTERM, and a child inherits that, so a follower
        /// would ignore `terminate()` until its container ended.
        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            _ = exited.wait(timeout: .now() + 10)
        }
    }
}
