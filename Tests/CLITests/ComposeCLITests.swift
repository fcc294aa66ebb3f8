import Foundation
import TestSupport
import Testing

/// `berth up`, `down` and the everyday compose commands, as a user runs them: real containers,
/// bridges, namespaces and a supervisor process, each test on its own root with its own project
/// names; whatever a test leaves (a failure half-way) is taken down by its world.
@Suite(.serialized) struct ComposeCLITests {
    typealias World = ContainerCLITests.World

    /// A project directory with a compose file, on a world's root; `down -v` and the supervisor's
    /// end when the test is over, pass or fail.
    final class Project {
        let world: World
        let name: String
        let directory: String
        var file: String { directory + "/compose.yaml" }

        init(_ world: World, _ name: String, _ yaml: String) throws {
            self.world = world
            self.name = name
            directory = world.dir.path + "/" + name
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try write(yaml)
        }

        func write(_ yaml: String) throws { try yaml.write(toFile: file, atomically: true, encoding: .utf8) }

        func berth(_ arguments: [String]) throws -> BerthProcess.Result {
            try world.berth(["-f", file, "-p", name] + arguments)
        }

        /// The supervisor's pid, from its file.
        var supervisorPID: Int32? {
            (try? String(contentsOfFile: world.root + "/projects/\(name)/supervisor.pid", encoding: .utf8))
                .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }

        /// `docker inspect`'s State of a container.
        func state(_ container: String) throws -> [String: Any] {
            let inspect = try world.berth(["container", "inspect", container])
            let all = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [[String: Any]]
            return all?.first?["State"] as? [String: Any] ?? [:]
        }

        func pid(_ container: String) throws -> Int { try state(container)["Pid"] as? Int ?? 0 }

        func id(_ container: String) throws -> String {
            let inspect = try world.berth(["container", "inspect", container])
            let all = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [[String: Any]]
            return all?.first?["Id"] as? String ?? ""
        }

        deinit {
            _ = try? world.berth(["-p", name, "down", "-v", "-t", "0"])
            if let pid = supervisorPID { kill(pid, SIGKILL) }
        }
    }

    /// Nothing of any project is left under the root or on the host: containers, networks, kept
    /// namespaces, project records, supervisors, mounts.
    static func expectNothingLeft(_ world: World, sourceLocation: SourceLocation = #_sourceLocation) {
        for folder in ["containers", "networks", "netns", "projects", "container-names"] {
            let left = (try? FileManager.default.contentsOfDirectory(atPath: world.root + "/" + folder)) ?? []
            #expect(left.isEmpty, "\(folder) left: \(left)", sourceLocation: sourceLocation)
        }
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        #expect(!mounts.contains(world.root + "/"), "mounts left under the root", sourceLocation: sourceLocation)
        #expect(supervisors(world).isEmpty, "supervisors left", sourceLocation: sourceLocation)
    }

    /// The pids of `berth supervise` processes of this world's root. A health probe's exec is
    /// forked from the supervisor (same command line, same environment until it execs): a match
    /// whose parent is a match is that, not a second supervisor.
    static func supervisors(_ world: World) -> [Int32] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        let matches = pids.compactMap { Int32($0) }.filter { pid in
            guard let argv = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
                argv.contains("supervise"),
                let environ = try? String(contentsOfFile: "/proc/\(pid)/environ", encoding: .utf8)
            else { return false }
            return environ.split(separator: "\0").contains { $0 == "BERTH_ROOT=\(world.root)" }
        }
        func parent(_ pid: Int32) -> Int32? {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("PPid:") }
            return line.flatMap { Int32($0.dropFirst(5).trimmingCharacters(in: .whitespaces)) }
        }
        return matches.filter { pid in parent(pid).map { !matches.contains($0) } ?? true }
    }

    /// A timestamp of inspect's State (RFC 3339 with nanoseconds) as seconds.
    static func seconds(_ text: Any?) -> Double {
        guard let text = text as? String else { return 0 }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let trimmed = text.replacingOccurrences(of: #"\.(\d{6})\d*Z"#, with: ".$1Z", options: .regularExpression)
        return formatter.date(from: trimmed)?.timeIntervalSince1970 ?? 0
    }

    // MARK: start order

    /// db turns healthy after a second; a one-shot migration waits for it, and web waits for the
    /// migration to complete successfully: they start in that order, and `down` leaves nothing.
    @Test func healthGatesAndAOneShotJobOrderTheStart() throws {
        let world = try World()
        let project = try Project(
            world, "order",
            """
            services:
              db:
                image: busybox
                command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 600"]
                healthcheck:
                  test: ["CMD", "test", "-f", "/tmp/ready"]
                  interval: 1s
                  start_period: 30s
                  start_interval: 100ms
              migrate:
                image: busybox
                command: ["sh", "-c", "echo migrated"]
                depends_on:
                  db: {condition: service_healthy}
              web:
                image: busybox
                command: ["sleep", "600"]
                depends_on:
                  migrate: {condition: service_completed_successfully}
                  db: {condition: service_healthy}
            """)
        let up = try project.berth(["up", "-d"])
        #expect(up.status == 0, "\(up.stderr)")
        let db = try project.state("order-db-1")
        let migrate = try project.state("order-migrate-1")
        let web = try project.state("order-web-1")
        #expect(migrate["ExitCode"] as? Int == 0)
        // The migration started after db's first second (its health), web after the migration ended.
        #expect(Self.seconds(migrate["StartedAt"]) >= Self.seconds(db["StartedAt"]) + 1)
        #expect(Self.seconds(web["StartedAt"]) >= Self.seconds(migrate["FinishedAt"]))
        let ps = try project.berth(["ps"])
        #expect(ps.stdout.contains("(healthy)"), "\(ps.stdout)")
        #expect(!ps.stdout.contains("order-migrate-1"), "ps lists only running containers without -a")
        #expect(try project.berth(["ps", "-a", "--services"]).stdout == "db\nmigrate\nweb\n")
        #expect(try project.berth(["logs", "migrate"]).stdout.contains("order-migrate-1  | migrated"))
        let down = try project.berth(["down"])
        #expect(down.status == 0, "\(down.stderr)")
        Self.expectNothingLeft(world)
    }

    /// A dependency that turns unhealthy fails `up` with its name, and so does a job that fails;
    /// `down` cleans up what was made.
    @Test func unhealthyDependenciesAndFailedJobsFailUp() throws {
        let world = try World()
        let unhealthy = try Project(
            world, "sick",
            """
            services:
              db:
                image: busybox
                command: ["sleep", "600"]
                healthcheck:
                  test: ["CMD", "false"]
                  interval: 100ms
                  retries: 2
              web:
                image: busybox
                command: ["sleep", "600"]
                depends_on:
                  db: {condition: service_healthy}
            """)
        let up = try unhealthy.berth(["up", "-d"])
        #expect(up.status == 1)
        #expect(up.stderr.contains("dependency failed to start: container sick-db-1 is unhealthy"), "\(up.stderr)")
        #expect(try unhealthy.berth(["ps", "-a", "-q"]).stdout.split(separator: "\n").count == 1, "web was not made")

        let job = try Project(
            world, "job",
            """
            services:
              migrate:
                image: busybox
                command: ["sh", "-c", "exit 3"]
              web:
                image: busybox
                command: ["sleep", "600"]
                depends_on:
                  migrate: {condition: service_completed_successfully}
            """)
        let failed = try job.berth(["up", "-d"])
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("service \"migrate\" didn't complete successfully: exit 3"), "\(failed.stderr)")
        #expect(try unhealthy.berth(["down"]).status == 0)
        #expect(try job.berth(["down"]).status == 0)
        Self.expectNothingLeft(world)
    }

    // MARK: the supervisor

    /// `always` restarts a crashing container again and again (Docker's growing backoff, read from
    /// the supervisor's log); `on-failure:3` gives up after three restarts; a container a person
    /// stopped stays stopped.
    @Test func restartPoliciesBackOffAndGiveUp() throws {
        let world = try World()
        let project = try Project(
            world, "crash",
            """
            services:
              loop:
                image: busybox
                restart: always
                command: ["sh", "-c", "echo crashing; exit 1"]
              thrice:
                image: busybox
                restart: on-failure:3
                command: ["sh", "-c", "exit 2"]
              steady:
                image: busybox
                restart: always
                command: ["sleep", "600"]
            """)
        #expect(try project.berth(["up", "-d"]).status == 0)
        let log = world.root + "/projects/crash/supervisor.log"
        func restarts(_ container: String) -> [Double] {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").filter { $0.contains("\(container) restarted") }.map {
                Self.seconds(String($0.split(separator: " ")[0]))
            }
        }
        #expect(eventually(60) { restarts("crash-loop-1").count >= 4 }, "always: restarted again and again")
        let times = restarts("crash-loop-1")
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        // 100 ms, 200 ms, 400 ms, ...: each wait longer than the one before.
        #expect(gaps.count >= 3 && gaps[2] > gaps[0], "backoff grows: \(gaps)")
        #expect(try project.berth(["logs", "loop"]).stdout.contains("crash-loop-1  | crashing"))
        // Stopped while it waits out a backoff: it stays stopped.
        let loopID = try project.id("crash-loop-1")
        #expect(try project.berth(["stop", "loop"]).status == 0)
        #expect(
            eventually(30) { !((try? world.berth(["supervise", "--status", "crash"]).stdout) ?? "").contains(loopID) },
            "the stopped crash loop is not followed any more")
        let stoppedAt = restarts("crash-loop-1").count
        #expect(try project.state("crash-loop-1")["Status"] as? String == "exited")
        #expect(restarts("crash-loop-1").count == stoppedAt)

        // on-failure:3: three restarts, then the supervisor stops following it.
        let id = try project.id("crash-thrice-1")
        #expect(
            eventually(60) {
                let followed = (try? world.berth(["supervise", "--status", "crash"]).stdout) ?? ""
                return restarts("crash-thrice-1").count == 3 && !followed.contains(id)
            }, "on-failure:3 gave up after three restarts")
        #expect(restarts("crash-thrice-1").count == 3)
        #expect(try project.state("crash-thrice-1")["Status"] as? String == "exited")

        // A stopped container is not restarted, whatever its policy.
        #expect(try project.berth(["stop", "steady"]).status == 0)
        let steadyID = try project.id("crash-steady-1")
        #expect(
            eventually(10) {
                !((try? world.berth(["supervise", "--status", "crash"]).stdout) ?? "").contains(steadyID)
            })
        #expect(try project.state("crash-steady-1")["Status"] as? String == "exited")
        #expect(try project.berth(["down"]).status == 0)
        Self.expectNothingLeft(world)
    }

    /// kill -9 of the supervisor stops no container: ps and logs still work, `up` adopts the
    /// running containers without restarting them (same PIDs, still healthy), and `down` leaves
    /// nothing.
    @Test func aKilledSupervisorIsReplacedAndAdoptsTheContainers() throws {
        let world = try World()
        let project = try Project(
            world, "adopt",
            """
            services:
              db:
                image: busybox
                command: ["sh", "-c", "echo db ready; exec sleep 600"]
                healthcheck:
                  test: ["CMD", "true"]
                  interval: 100ms
              web:
                image: busybox
                command: ["sh", "-c", "echo web ready; exec sleep 600"]
                depends_on:
                  db: {condition: service_healthy}
            """)
        #expect(try project.berth(["up", "-d"]).status == 0)
        let supervisor = try #require(project.supervisorPID)
        #expect(Self.supervisors(world) == [supervisor])
        let argv = try String(contentsOfFile: "/proc/\(supervisor)/cmdline", encoding: .utf8)
        #expect(argv.split(separator: "\0").dropFirst().joined(separator: " ") == "supervise adopt")
        let pids = (try project.pid("adopt-db-1"), try project.pid("adopt-web-1"))
        kill(supervisor, SIGKILL)
        #expect(eventually { Self.supervisors(world).isEmpty })
        let ps = try project.berth(["ps"])
        #expect(ps.stdout.contains("adopt-db-1") && ps.stdout.contains("adopt-web-1"), "\(ps.stdout)")
        #expect(try project.berth(["logs"]).stdout.contains("adopt-web-1  | web ready"))
        let up = try project.berth(["up", "-d"])
        #expect(up.status == 0, "\(up.stderr)")
        #expect((try project.pid("adopt-db-1"), try project.pid("adopt-web-1")) == pids, "adopted, not restarted")
        #expect(try project.berth(["ps"]).stdout.contains("(healthy)"))
        #expect(Self.supervisors(world).count == 1)
        #expect(try project.berth(["down"]).status == 0)
        Self.expectNothingLeft(world)
    }

    // MARK: converging

    /// Scale up and down; an edit recreates only the service it changed; a service removed from
    /// the file leaves an orphan that `--remove-orphans` takes away.
    @Test func scaleRecreateAndOrphans() throws {
        let world = try World()
        let yaml = """
            services:
              web:
                image: busybox
                command: ["sleep", "600"]
              api:
                image: busybox
                command: ["sleep", "600"]
                environment:
                  LEVEL: one
            """
        let project = try Project(world, "conv", yaml)
        #expect(try project.berth(["up", "-d", "--scale", "web=3"]).status == 0)
        #expect(try project.berth(["ps", "-q", "web"]).stdout.split(separator: "\n").count == 3)
        #expect(try project.berth(["up", "-d", "--scale", "web=1"]).status == 0)
        #expect(try project.berth(["ps", "--format", "json", "web"]).stdout.contains("\"Name\":\"conv-web-1\""))
        #expect(try project.berth(["ps", "-q", "web"]).stdout.split(separator: "\n").count == 1)

        let before = (web: try project.pid("conv-web-1"), api: try project.pid("conv-api-1"))
        try project.write(yaml.replacingOccurrences(of: "LEVEL: one", with: "LEVEL: two"))
        let up = try project.berth(["up", "-d"])
        #expect(up.status == 0, "\(up.stderr)")
        #expect(try project.pid("conv-web-1") == before.web, "web kept")
        #expect(try project.pid("conv-api-1") != before.api, "api recreated")
        #expect(try project.berth(["exec", "-T", "api", "sh", "-c", "echo $LEVEL"]).stdout == "two\n")

        try project.write(
            """
            services:
              web:
                image: busybox
                command: ["sleep", "600"]
            """)
        let warned = try project.berth(["up", "-d"])
        #expect(warned.stderr.contains("Found orphan containers (conv-api-1)"), "\(warned.stderr)")
        #expect(try project.berth(["up", "-d", "--remove-orphans"]).status == 0)
        #expect(try project.berth(["ps", "-a", "-q"]).stdout.split(separator: "\n").count == 1)
        #expect(try project.berth(["down"]).status == 0)
        Self.expectNothingLeft(world)
    }

    /// A named volume keeps its data across down and up, and is gone after `down -v`; a new one
    /// mounted over an image directory holds the image's files (Docker's copy-up); an anonymous
    /// volume is kept across a recreate and goes with `down -v` too.
    @Test func namedVolumesOutliveDownUntilDashV() throws {
        let world = try World()
        let yaml = """
            services:
              db:
                image: busybox
                command: ["sh", "-c", "date +%s%N >> /data/starts; exec sleep 600"]
                volumes: ["dbdata:/data", "etcdata:/etc", "/cache"]
                environment:
                  RUN: one
            volumes:
              dbdata:
              etcdata:
            """
        let project = try Project(world, "vol", yaml)
        #expect(try project.berth(["up", "-d"]).status == 0)
        let volumes = world.root + "/volumes/"
        #expect(try project.berth(["exec", "-T", "db", "grep", "-c", "^app:", "/etc/passwd"]).stdout == "1\n")
        #expect(FileManager.default.fileExists(atPath: volumes + "vol_etcdata/_data/passwd"), "copied up")
        _ = try project.berth(["exec", "-T", "db", "touch", "/cache/kept"])
        try project.write(yaml.replacingOccurrences(of: "RUN: one", with: "RUN: two"))
        #expect(try project.berth(["up", "-d"]).status == 0)
        #expect(try project.berth(["exec", "-T", "db", "ls", "/cache"]).stdout == "kept\n", "anonymous volume kept")
        #expect(try project.berth(["down"]).status == 0)
        #expect(FileManager.default.fileExists(atPath: volumes + "vol_dbdata/_data/starts"))
        #expect(try project.berth(["up", "-d"]).status == 0)
        #expect(
            eventually {
                ((try? project.berth(["exec", "-T", "db", "cat", "/data/starts"]).stdout) ?? "")
                    .split(separator: "\n").count == 3
            }, "the third run found the first two runs' lines")
        #expect(try project.berth(["down", "-v"]).status == 0)
        // The first run's anonymous volume stayed at the plain `down`, as Docker's does; `volume
        // prune` takes it (it carries Docker's anonymous label).
        func left() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: volumes)) ?? []).filter { !$0.hasPrefix(".") }
        }
        #expect(left().count == 1, "volumes left: \(left())")
        #expect(try world.berth(["volume", "prune", "-f"]).status == 0)
        #expect(left().isEmpty, "volumes left: \(left())")
        Self.expectNothingLeft(world)
    }

    // MARK: foreground, projects side by side, failures

    /// A foreground `up` streams the logs with prefixes; SIGINT stops the services in reverse
    /// dependency order (web before db), and the command ends.
    @Test func foregroundUpStopsInReverseOrderOnSIGINT() throws {
        let world = try World()
        let project = try Project(
            world, "fg",
            """
            services:
              db:
                image: busybox
                command: ["sh", "-c", "trap 'sleep 0.3; exit 0' TERM; echo db up; while true; do sleep 0.05; done"]
              web:
                image: busybox
                command: ["sh", "-c", "trap 'exit 0' TERM; echo web up; while true; do sleep 0.05; done"]
                depends_on: [db]
            """)
        let up = try ContainerCLITests.RunningBerth(["-f", project.file, "-p", "fg", "up"], world: world)
        defer { up.stop() }
        #expect(up.readStdout(until: "fg-web-1  | web up", deadline: Date() + 60), "\(up.stderr)")
        kill(up.pid, SIGINT)
        #expect(up.readStdout(deadline: Date() + 60), "up ended")
        #expect(up.stderr.contains("Gracefully stopping..."))
        let db = try project.state("fg-db-1")
        let web = try project.state("fg-web-1")
        #expect(db["Status"] as? String == "exited" && web["Status"] as? String == "exited")
        // db's handler takes 0.3 s: it got its signal only once web had gone.
        #expect(Self.seconds(db["FinishedAt"]) >= Self.seconds(web["FinishedAt"]) + 0.3)
        #expect(try project.berth(["down"]).status == 0)
        Self.expectNothingLeft(world)
    }

    /// Two projects of one file on one root: each has its own containers and network, and `down`
    /// of one leaves the other running.
    @Test func twoProjectsOnOneRootDoNotTouchEachOther() throws {
        let world = try World()
        // Both name one volume: it is alpha's (made by alpha's `up`, labelled so), and `down -v`
        // of beta leaves it.
        let yaml = """
            services:
              app:
                image: busybox
                command: ["sleep", "600"]
                volumes: ["data:/data"]
            volumes:
              data:
                name: shared-data
            """
        let a = try Project(world, "alpha", yaml)
        let b = try Project(world, "beta", yaml)
        #expect(try a.berth(["up", "-d"]).status == 0)
        let shared = try b.berth(["up", "-d"])
        #expect(shared.status == 0 && shared.stderr.contains("created for project \"alpha\""), "\(shared.stderr)")
        let ls = try world.berth(["ls"]).stdout
        #expect(ls.contains("alpha") && ls.contains("beta"), "\(ls)")
        #expect(try a.berth(["down"]).status == 0)
        #expect(try b.berth(["ps", "-q"]).stdout.split(separator: "\n").count == 1)
        #expect(try world.berth(["network", "ls"]).stdout.contains("beta_default"))
        #expect(try b.berth(["down", "-v"]).status == 0)
        #expect(
            FileManager.default.fileExists(atPath: world.root + "/volumes/shared-data"),
            "beta's down -v left alpha's volume")
        #expect(try a.berth(["up", "-d"]).status == 0)
        #expect(try a.berth(["down", "-v"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: world.root + "/volumes/shared-data"))
        Self.expectNothingLeft(world)
    }

    /// An image missing for the third service fails `up` with a clear error; what the first two
    /// made is left for `down`, which removes all of it.
    @Test func aFailedUpLeavesWhatDownRemoves() throws {
        let world = try World()
        let project = try Project(
            world, "broken",
            """
            services:
              one:
                image: busybox
                command: ["sleep", "600"]
              two:
                image: busybox
                command: ["sleep", "600"]
                depends_on: [one]
              three:
                image: nosuch-image
                pull_policy: never
                command: ["sleep", "600"]
                depends_on: [two]
            """)
        let up = try project.berth(["up", "-d"])
        #expect(up.status == 1)
        #expect(up.stderr.contains("image nosuch-image is not in the store"), "\(up.stderr)")
        #expect(try project.berth(["down"]).status == 0)
        Self.expectNothingLeft(world)
    }

    /// `run --rm` starts the service's dependencies, returns the one-off container's exit code,
    /// and leaves no one-off container.
    @Test func runRemovesItsOneOffAndReturnsItsStatus() throws {
        let world = try World()
        let project = try Project(
            world, "oneoff",
            """
            services:
              app:
                image: busybox
                command: ["sh", "-c", "echo unlogged; exec sleep 600"]
                logging:
                  driver: none
              tests:
                image: busybox
                environment:
                  TARGET: app
                depends_on: [app]
                command: ["sh", "-c", "exit 0"]
            """)
        let run = try project.berth(["run", "--rm", "-T", "tests", "sh", "-c", "echo testing $TARGET; exit 5"])
        #expect(run.status == 5, "\(run.stderr)")
        #expect(run.stdout == "testing app\n")
        let ps = try project.berth(["ps", "-a", "--format", "json"]).stdout
        #expect(ps.contains("oneoff-app-1") && !ps.contains("run-"), "\(ps)")
        // logging: none keeps no log, as Docker's driver (and `docker logs` says it cannot read).
        #expect(try project.berth(["logs", "app"]).stdout.isEmpty)
        #expect(try world.berth(["container", "logs", "oneoff-app-1"]).stderr.contains("does not support reading"))
        #expect(try project.berth(["down"]).status == 0)
        Self.expectNothingLeft(world)
    }

    /// Clear errors for what a person gets wrong; none of them leaves a half-made project.
    @Test func badInputGetsClearErrors() throws {
        let world = try World()
        let project = try Project(
            world, "bad",
            """
            services:
              app:
                image: busybox
                command: ["sleep", "600"]
            """)
        // A project name the loader would refuse names nothing here either (an empty one would
        // have been the folder of every project).
        let invalid = try world.berth(["-p", "_", "down"])
        #expect(invalid.status == 1 && invalid.stderr.contains("invalid project name"), "\(invalid.stderr)")
        let unknown = try project.berth(["up", "-d", "nosuch"])
        #expect(unknown.status == 1 && unknown.stderr.contains("no such service: nosuch"), "\(unknown.stderr)")
        #expect(try project.berth(["logs", "nosuch"]).stderr.contains("no such service: nosuch"))

        // A port already taken: the run that would bind it fails before the container runs.
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, length) }
        }
        listen(holder, 1)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(holder, $0, &length) }
        }
        let port = UInt16(bigEndian: address.sin_port)
        try project.write(
            """
            services:
              app:
                image: busybox
                command: ["sleep", "600"]
                ports: ["127.0.0.1:\(port):80"]
            """)
        let taken = try project.berth(["up", "-d"])
        #expect(taken.status == 1 && taken.stderr.contains("port is already allocated"), "\(taken.stderr)")
        #expect(try project.berth(["down"]).status == 0)

        try project.write(
            """
            services:
              app:
                image: busybox
                command: ["sleep", "600"]
                networks: [outside]
            networks:
              outside:
                external: true
            """)
        let network = try project.berth(["up", "-d"])
        #expect(
            network.stderr.contains("network outside declared as external, but could not be found"), "\(network.stderr)"
        )
        // Once it exists, the project joins it, and `down` leaves it (it is not the project's).
        #expect(try world.berth(["network", "create", "outside"]).status == 0)
        #expect(try project.berth(["up", "-d"]).status == 0)
        #expect(try project.berth(["down"]).status == 0)
        #expect(try world.berth(["network", "rm", "outside"]).status == 0, "down left the external network")
        try project.write(
            """
            services:
              app:
                image: busybox
                command: ["sleep", "600"]
                volumes: ["kept:/data"]
            volumes:
              kept:
                external: true
            """)
        let volume = try project.berth(["up", "-d"])
        #expect(volume.stderr.contains("external volume \"kept\" not found"), "\(volume.stderr)")

        // exec into a stopped service; then a file made invalid between up and down.
        try project.write(
            """
            services:
              app:
                image: busybox
                command: ["sleep", "600"]
            """)
        #expect(try project.berth(["up", "-d"]).status == 0)
        #expect(try project.berth(["stop", "app"]).status == 0)
        let exec = try project.berth(["exec", "-T", "app", "true"])
        #expect(exec.status == 1 && exec.stderr.contains("service \"app\" is not running"), "\(exec.stderr)")
        #expect(try project.berth(["start", "app"]).status == 0)
        try project.write("services:\n  app: [this is not a service\n")
        #expect(try project.berth(["config", "-q"]).status != 0)
        let down = try project.berth(["down"])
        #expect(down.status == 0, "\(down.stderr)")
        Self.expectNothingLeft(world)
    }

    /// `--wait` returns once the services are healthy (and fails at `--wait-timeout` when one never
    /// is); `restart` of a service restarts those that depend on it with `restart: true`; `logs`
    /// merges the services' lines in time order; `--progress json` prints one object a step.
    @Test func waitRestartDependentsAndMergedLogs() throws {
        let world = try World()
        let project = try Project(
            world, "waits",
            """
            services:
              db:
                image: busybox
                command: ["sh", "-c", "echo one; sleep 0.5; touch /tmp/ready; sleep 0.5; echo three; exec sleep 600"]
                healthcheck:
                  test: ["CMD", "test", "-f", "/tmp/ready"]
                  interval: 100ms
                  start_period: 30s
                  start_interval: 100ms
              api:
                image: busybox
                command: ["sh", "-c", "sleep 0.2; echo two; exec sleep 600"]
                depends_on:
                  db: {condition: service_started, restart: true}
              never:
                image: busybox
                profiles: [slow]
                command: ["sleep", "600"]
                healthcheck:
                  test: ["CMD", "false"]
                  interval: 10s
            """)
        let up = try project.berth(["--progress", "json", "up", "--wait"])
        #expect(up.status == 0, "\(up.stderr)")
        #expect(up.stderr.contains(#"{"id":"Container waits-db-1","status":"Started","text":""}"#), "\(up.stderr)")
        #expect(try project.berth(["ps"]).stdout.contains("(healthy)"), "--wait returned before db was healthy")
        #expect(eventually { ((try? project.berth(["logs"]).stdout) ?? "").contains("three") })
        let merged = try project.berth(["logs", "--no-log-prefix"]).stdout
        #expect(merged == "one\ntwo\nthree\n", "\(merged)")

        let api = try project.pid("waits-api-1")
        #expect(try project.berth(["restart", "db"]).status == 0)
        #expect(try project.pid("waits-api-1") != api, "api restarted after db")

        let slow = try world.berth([
            "-f", project.file, "-p", "waits", "--profile", "slow", "up", "--wait", "--wait-timeout", "1",
        ])
        #expect(slow.status == 1 && slow.stderr.contains("timeout waiting for service never"), "\(slow.stderr)")
        #expect(try world.berth(["-f", project.file, "-p", "waits", "--profile", "slow", "down"]).status == 0)
        Self.expectNothingLeft(world)
    }

    /// `--abort-on-container-exit` ends with the status of the container whose exit aborted;
    /// a Ctrl-C while `up` still waits for a dependency stops what it started; `up`s of one
    /// project at once take turns (one lock a project), and `down` then leaves nothing.
    @Test func abortStatusInterruptedWaitsAndConcurrentUps() throws {
        let world = try World()
        let project = try Project(
            world, "abort",
            """
            services:
              server:
                image: busybox
                command: ["sleep", "600"]
              check:
                image: busybox
                command: ["sh", "-c", "sleep 0.3; exit 42"]
                depends_on: [server]
            """)
        let aborted = try project.berth(["up", "--abort-on-container-exit"])
        #expect(aborted.status == 42, "\(aborted.stderr)")
        #expect(aborted.stdout.contains("abort-check-1 exited with code 42"), "\(aborted.stdout)")
        #expect(try project.state("abort-server-1")["Status"] as? String == "exited", "the rest was stopped")
        #expect(try project.berth(["down"]).status == 0)

        let waiting = try Project(
            world, "waiting",
            """
            services:
              db:
                image: busybox
                command: ["sleep", "600"]
                healthcheck:
                  test: ["CMD", "false"]
                  interval: 1h
              web:
                image: busybox
                command: ["sleep", "600"]
                depends_on:
                  db: {condition: service_healthy}
            """)
        let up = try ContainerCLITests.RunningBerth(["-f", waiting.file, "-p", "waiting", "up"], world: world)
        defer { up.stop() }
        #expect(eventually(30) { (try? waiting.state("waiting-db-1")["Status"] as? String) == "running" })
        kill(up.pid, SIGINT)
        #expect(up.readStdout(deadline: Date() + 60), "up ended")
        #expect(up.stderr.contains("Gracefully stopping"), "\(up.stderr)")
        #expect(try waiting.state("waiting-db-1")["Status"] as? String == "exited", "what it started was stopped")
        #expect(try waiting.berth(["down"]).status == 0)

        let many = try Project(
            world, "many",
            """
            services:
              one:
                image: busybox
                command: ["sleep", "600"]
              two:
                image: busybox
                command: ["sleep", "600"]
            """)
        let ups = try (0..<3).map { _ in
            try ContainerCLITests.RunningBerth(["-f", many.file, "-p", "many", "up", "-d"], world: world)
        }
        for up in ups {
            #expect(up.readStdout(deadline: Date() + 60))
            up.stop()
        }
        #expect(try many.berth(["ps", "-q"]).stdout.split(separator: "\n").count == 2)
        #expect(try many.berth(["down"]).status == 0)
        Self.expectNothingLeft(world)
    }

    /// `init: true`'s PID 1 forwards the stop signal (it waits in sigwaitinfo, which /proc shows
    /// as neither caught nor blocked: the stop must not take that for "no handler" and kill), and
    /// shows the container no berth command line.
    @Test func anInitForwardsTheStopSignal() throws {
        let world = try World()
        let run = try world.berth([
            "container", "run", "-d", "--init", "--name", "inited", "busybox", "sh", "-c",
            "trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(eventually { ((try? world.berth(["container", "logs", "inited"]).stdout) ?? "").contains("ready") })
        #expect(try world.berth(["container", "stop", "inited"]).status == 0)
        #expect(try world.berth(["container", "logs", "inited"]).stdout == "ready\ngot TERM\n")
        #expect(try world.berth(["container", "rm", "inited"]).status == 0)
        // That PID 1 is a fork of berth: its command line is blanked, not berth's for all to read.
        let cmdline = try world.berth(["container", "run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline"])
        #expect(cmdline.stdout.hasPrefix("init\0") && !cmdline.stdout.contains("berth"), "\(cmdline.stdout)")
    }

    /// The commands around a container's life, as docker compose's: create, start, port, exec
    /// with its flags, kill -s, wait (the status), ps (truncated command, --no-trunc), rm -v, ls;
    /// a terminal's progress block; and names from the compose file or the command line that
    /// would become paths are refused.
    @Test func everydayCommandsAndHostileNames() throws {
        let world = try World()
        let yaml = """
            services:
              app:
                image: busybox
                command: ["sh", "-c", "trap 'exit 3' TERM; echo ready; while true; do sleep 0.1; done"]
                ports: ["127.0.0.1::80"]
            """
        let project = try Project(world, "daily", yaml)
        #expect(try project.berth(["create"]).status == 0)
        #expect(try project.berth(["ps", "-a"]).stdout.contains("Created"))
        #expect(try project.berth(["start"]).status == 0)
        let port = try project.berth(["port", "app", "80"])
        #expect(port.status == 0 && port.stdout.hasPrefix("127.0.0.1:"), "\(port.stdout)\(port.stderr)")
        let exec = try project.berth(["exec", "-T", "-e", "X=1", "-w", "/tmp", "app", "sh", "-c", "echo $X $(pwd)"])
        #expect(exec.stdout == "1 /tmp\n", "\(exec.stderr)")
        let table = try project.berth(["ps"]).stdout
        #expect(table.contains("\"sh -c trap 'exit 3'…\""), "\(table)")
        #expect(try project.berth(["ps", "--no-trunc"]).stdout.contains("while true; do sleep 0.1; done"))
        let ls = try world.berth(["ls", "--format", "json"]).stdout
        #expect(ls.contains(#""Name":"daily""#) && ls.contains("running(1)"), "\(ls)")
        #expect(try project.berth(["kill", "-s", "TERM", "app"]).status == 0)
        #expect(try project.berth(["wait", "app"]).status == 3)
        #expect(try project.berth(["rm", "-f", "-v"]).status == 0)
        #expect(try project.berth(["ps", "-a", "-q"]).stdout.isEmpty)
        // --progress tty draws its block in place even into a pipe, as asked.
        let drawn = try project.berth(["--progress", "tty", "up", "-d"])
        #expect(drawn.stderr.contains("[+] Running") && drawn.stderr.contains("\u{1B}[2K"), "\(drawn.stderr)")
        #expect(try project.berth(["down"]).status == 0)

        // A config's name becomes a file name under the project's folder: ".." is refused.
        try project.write(
            """
            services:
              app:
                image: busybox
                command: ["sleep", "600"]
                configs: [".."]
            configs:
              "..":
                content: "x"
            """)
        let config = try project.berth(["up", "-d"])
        #expect(
            config.status == 1 && config.stderr.contains("config name \"..\" is not a valid file name"),
            "\(config.stderr)")
        #expect(try project.berth(["down"]).status == 0)
        let supervise = try world.berth(["supervise", "../daily"])
        #expect(supervise.status == 1 && supervise.stderr.contains("invalid project name"), "\(supervise.stderr)")
        Self.expectNothingLeft(world)
    }
}
