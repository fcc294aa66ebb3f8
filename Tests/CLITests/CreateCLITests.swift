import Foundation
import Testing

/// `container create` as `docker create`: the flags of `run`, checked the same way before
/// anything is made; the full ID printed; the container "created" until `container start` runs
/// it, detached. (Root; each test has its own BERTH_ROOT with busybox.)
@Suite(.serialized) struct CreateCLITests {
    typealias World = ContainerCLITests.World

    @Test func createdContainerStartsLaterAsSpecified() throws {
        let world = try World()
        let create = try world.berth([
            "container", "create", "--name", "later", "-e", "GREETING=hello",
            "-l", "tier=web", "--label", "bare",
            "busybox", "sh", "-c", "echo $GREETING from $(hostname); exit 3",
        ])
        #expect(create.status == 0, "\(create.stderr)")
        // The full ID, as Docker prints it.
        let id = create.stdout.trimmingCharacters(in: .newlines)
        #expect(id.count == 64 && id.allSatisfy(\.isHexDigit), "\(create.stdout)")

        var inspected = try Self.inspect(world, "later")
        #expect(inspected["Id"] as? String == id)
        #expect((inspected["State"] as? [String: Any])?["Status"] as? String == "created")
        let config = try #require(inspected["Config"] as? [String: Any])
        #expect((config["Env"] as? [String])?.contains("GREETING=hello") == true, "\(config)")
        #expect(config["Cmd"] as? [String] == ["sh", "-c", "echo $GREETING from $(hostname); exit 3"])
        #expect(config["Labels"] as? [String: String] == ["tier": "web", "bare": ""])
        #expect((inspected["HostConfig"] as? [String: Any])?["NetworkMode"] as? String == "default")
        // Nothing ran: no log, and `ps -a` lists it as Docker does.
        #expect(try world.berth(["container", "logs", "later"]).stdout.isEmpty)
        #expect(try world.berth(["container", "ps", "-a"]).stdout.contains("Created"))
        #expect(try world.berth(["container", "ps", "-q"]).stdout.isEmpty)

        let start = try world.berth(["container", "start", "later"])
        #expect(start.status == 0, "\(start.stderr)")
        #expect(start.stdout == "later\n")
        // `logs -f` ends once the exit is on disk: no waiting on a clock.
        let logs = try ContainerCLITests.logs(world, ["-f", "later"])
        #expect(logs.stdout == "hello from \(id.prefix(12))\n", "\(logs.stderr)")
        inspected = try Self.inspect(world, "later")
        let state = try #require(inspected["State"] as? [String: Any])
        #expect(state["Status"] as? String == "exited")
        #expect(state["ExitCode"] as? Int == 3)
    }

    @Test func badFlagsAreRefusedWith125AndLeaveNothing() throws {
        let world = try World()
        let refusals: [([String], String?)] = [
            (["--memory", "12x"], "invalid argument \"12x\" for \"-m, --memory\" flag: invalid size: '12x'"),
            (["--network", "nosuch"], "network nosuch not found"),
            (["--network", "container:ghost"], "No such container: ghost"),
            (
                ["--expose", "80-x"],
                "invalid range format for --expose: 80-x, error: strconv.ParseUint: parsing \"x\": invalid syntax"
            ),
            (
                ["-v", "data:/"],
                "invalid volume specification: 'data:/': invalid mount config for type \"volume\": "
                    + "invalid specification: destination can't be '/'"
            ),
            (["--name", "bad/name"], "Invalid container name (bad/name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
            // A flag Docker's parser does not know: its status too (the message is the parser's).
            (["--no-such-flag"], nil),
        ]
        for (flags, message) in refusals {
            let result = try world.berth(["container", "create"] + flags + ["busybox", "true"])
            #expect(result.status == 125, "\(flags): status \(result.status), \(result.stderr)")
            #expect(result.stdout.isEmpty, "\(flags)")
            if let message { #expect(result.stderr == "berth: \(message)\n", "\(flags)") }
            for sub in ["containers", "container-names", "volumes"] {
                let entries = (try? FileManager.default.contentsOfDirectory(atPath: world.root + "/" + sub)) ?? []
                #expect(entries.isEmpty, "\(flags): left in ROOT/\(sub): \(entries)")
            }
        }
        #expect(try world.berth(["container", "ps", "-a", "-q"]).stdout.isEmpty)
        // A missing image is the same status, found before the container is kept.
        let missing = try world.berth(["container", "create", "--pull", "never", "no-such-image"])
        #expect(missing.status == 125 && missing.stderr.contains("no-such-image"))
        #expect(try world.berth(["container", "ps", "-a", "-q"]).stdout.isEmpty)
    }

    @Test func aTakenNameIsRefused() throws {
        let world = try World()
        let first = try world.berth(["container", "create", "--name", "taken", "busybox", "true"])
        #expect(first.status == 0, "\(first.stderr)")
        let second = try world.berth(["container", "create", "--name", "taken", "busybox", "echo", "second"])
        #expect(second.status == 125)
        #expect(second.stdout.isEmpty)
        #expect(second.stderr.hasPrefix("berth: ") && second.stderr.contains("already in use"), "\(second.stderr)")
        // Still the first one, and only it.
        let ids = try world.berth(["container", "ps", "-a", "-q", "--no-trunc"]).stdout
        #expect(ids == first.stdout)
        #expect((try Self.inspect(world, "taken"))["Args"] as? [String] == [])
    }

    static func inspect(_ world: World, _ name: String) throws -> [String: Any] {
        let result = try world.berth(["container", "inspect", name])
        try #require(result.status == 0, "\(result.stderr)")
        let all = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        return try #require(all.first)
    }
}
