import Foundation
import TestSupport
import Testing

/// Every sample in samples/ brought up for real with berth, checked from the outside by
/// scripts/sample-check (services talk by name; .env and environment settings reach them), and
/// taken down with nothing left. Each on its own root, with its published ports moved to free
/// ones (the shell's environment wins over .env, as with docker compose).
@Suite(.serialized) struct SamplesRunTests {
    typealias World = ContainerCLITests.World

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Runs `berth ARGS` (or sample-check) in the sample's directory, with the world's root,
    /// the sample's ports and berth on PATH.
    static func run(
        _ program: String, _ arguments: [String], sample: String, world: World, ports: [String: String]
    ) throws -> BerthProcess.Result {
        let berthDirectory = URL(fileURLWithPath: BerthProcess.executable).deletingLastPathComponent().path
        var environment = ports
        environment["BERTH_ROOT"] = world.root
        environment["PATH"] = berthDirectory + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        environment["BERTH_TEST_PAUSE_AT"] = ""
        return try Command.run(
            program, arguments, environment: environment, in: repository + "/samples/" + sample,
            dropping: ["COMPOSE_"])
    }

    static func check(_ sample: String, up: [String], ports: [String]) throws {
        let world = try World()
        let settings = Dictionary(uniqueKeysWithValues: try ports.map { ($0, String(try freeLoopbackPort())) })
        defer {
            _ = try? run(
                BerthProcess.executable, ["down", "-v", "-t", "0"], sample: sample, world: world, ports: settings)
        }
        let started = try run(BerthProcess.executable, up, sample: sample, world: world, ports: settings)
        #expect(started.status == 0, "\(sample): \(started.stderr)")
        let checked = try run(
            repository + "/scripts/sample-check", ["."], sample: sample, world: world, ports: settings)
        #expect(checked.status == 0, "\(sample): \(checked.stdout)\(checked.stderr)")
        let down = try run(BerthProcess.executable, ["down", "-v"], sample: sample, world: world, ports: settings)
        #expect(down.status == 0, "\(down.stderr)")
        ComposeCLITests.expectNothingLeft(world)
    }

    @Test func webstackServesItsPageAndCountsVisitsThroughApiAndDb() throws {
        try Self.check("webstack", up: ["up", "-d", "--wait"], ports: ["WEB_PORT", "API_DEBUG_PORT"])
    }

    /// The test runner's status is `up`'s; sample-check then runs `run --rm tests` too.
    @Test func testenvRunsItsTestsAgainstTheApp() throws {
        try Self.check("testenv", up: ["up", "--exit-code-from", "tests", "--abort-on-container-failure"], ports: [])
    }

    /// The steps of every build in a compose command's plain progress (each service's build
    /// numbers its steps from #1).
    static func buildSteps(_ output: String) -> [(name: String, cached: Bool)] {
        var builds: [String] = []
        for line in output.split(separator: "\n") {
            if line.hasPrefix("#1 [") || builds.isEmpty { builds.append("") }
            builds[builds.count - 1] += line + "\n"
        }
        return builds.flatMap { BuildCLITests.steps($0) }
    }

    /// Built from its Dockerfiles by `up --build`, checked, then `up --build` again with nothing
    /// changed: no step runs (every one that makes an image is CACHED in the plain progress) and
    /// the containers stay (same IDs). Then down, and the built images removed.
    @Test func buildstackBuildsItsImagesAndASecondUpBuildChangesNothing() throws {
        let sample = "buildstack"
        let world = try World()
        let settings = ["WEB_PORT": String(try freeLoopbackPort())]
        func berth(_ arguments: [String]) throws -> BerthProcess.Result {
            try Self.run(BerthProcess.executable, arguments, sample: sample, world: world, ports: settings)
        }
        defer { _ = try? berth(["down", "-v", "-t", "0"]) }
        let upBuild = ["--progress", "plain", "up", "--build", "-d", "--wait"]

        let started = try berth(upBuild)
        #expect(started.status == 0, "\(started.stderr)")
        let built = Self.buildSteps(started.stderr)
        #expect(built.contains { $0.name.contains("RUN sh build.sh /out") && !$0.cached }, "\(started.stderr)")
        #expect(built.contains { $0.name.contains("COPY --from=build") && !$0.cached }, "\(started.stderr)")
        #expect(built.contains { $0.name.contains("RUN sed -i") && !$0.cached }, "\(started.stderr)")
        let images = try world.berth(["image", "ls"]).stdout
        #expect(images.contains("buildstack-api") && images.contains("buildstack-web"), "\(images)")
        let checked = try Self.run(
            Self.repository + "/scripts/sample-check", ["."], sample: sample, world: world, ports: settings)
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        let containers = try berth(["ps", "-q"]).stdout.split(separator: "\n").sorted()
        #expect(containers.count == 2)

        // Nothing changed: every step but FROM and ARG (which make no image) from the cache.
        let again = try berth(upBuild)
        #expect(again.status == 0, "\(again.stderr)")
        let steps = Self.buildSteps(again.stderr)
        #expect(steps.count == built.count, "\(again.stderr)")
        let rebuilt = steps.filter { !$0.cached && !$0.name.contains("] FROM ") && !$0.name.contains("] ARG ") }
        #expect(rebuilt.isEmpty, "rebuilt: \(rebuilt.map(\.name))\n\(again.stderr)")
        #expect(try berth(["ps", "-q"]).stdout.split(separator: "\n").sorted() == containers, "\(again.stderr)")
        let checkedAgain = try Self.run(
            Self.repository + "/scripts/sample-check", ["."], sample: sample, world: world, ports: settings)
        #expect(checkedAgain.status == 0, "\(checkedAgain.stdout)\(checkedAgain.stderr)")

        let down = try berth(["down", "-v"])
        #expect(down.status == 0, "\(down.stderr)")
        #expect(try world.berth(["container", "ps", "-a", "-q"]).stdout.isEmpty)
        // The builds' RUN steps ran on berth's default bridge network (made as `container run`
        // makes it), which only system prune removes.
        #expect(try world.berth(["system", "prune", "-f"]).status == 0)
        ComposeCLITests.expectNothingLeft(world)
        let removed = try world.berth(["image", "rm", "buildstack-api", "buildstack-web"])
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(!(try world.berth(["image", "ls"]).stdout.contains("buildstack-")))
    }

    @Test func profilesBringTheDebugServicesFromDotEnv() throws {
        try Self.check("profiles", up: ["up", "-d", "--wait"], ports: ["APP_PORT", "DEBUG_PORT"])
    }
}
