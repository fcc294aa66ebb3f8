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

    @Test func profilesBringTheDebugServicesFromDotEnv() throws {
        try Self.check("profiles", up: ["up", "-d", "--wait"], ports: ["APP_PORT", "DEBUG_PORT"])
    }
}
