import Foundation

/// Runs the `berth` binary built next to this test bundle, as a user would. Shared by the test
/// targets (a library of its own: a test target cannot import another).
public struct BerthProcess {
    public struct Result {
        public var status: Int32
        public var stdout: String
        public var stderr: String

        public init(status: Int32, stdout: String, stderr: String) {
            (self.status, self.stdout, self.stderr) = (status, stdout, stderr)
        }
    }

    /// The test runner lives in the build folder beside the `berth` executable.
    public static let executable: String = {
        let runner =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: runner).deletingLastPathComponent()
        // swift-testing may run from inside the .xctest bundle folder on some layouts.
        while !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("berth").path), dir.path != "/" {
            dir.deleteLastPathComponent()
        }
        return dir.appendingPathComponent("berth").path
    }()

    public static func run(
        _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:], stdin: String? = nil
    ) throws -> Result {
        // A compose variable of the test runner's own must not change what a test's berth reads.
        try Command.run(
            executable, arguments, environment: environment, stdin: stdin.map { Data($0.utf8) }, in: directory,
            dropping: ["COMPOSE_"])
    }
}

extension BerthProcess {
    /// With its own state root (BERTH_ROOT) and no test pause point inherited.
    public static func run(_ arguments: [String], root: String, stdin: String? = nil) throws -> Result {
        try run(arguments, environment: ["BERTH_ROOT": root, "BERTH_TEST_PAUSE_AT": ""], stdin: stdin)
    }
}

/// A temporary folder removed when the test ends, pass or fail.
public final class TemporaryDirectory {
    public let path: String

    public init(_ prefix: String = "berth-cli") throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    public func write(_ name: String, _ text: String) throws {
        let url = URL(fileURLWithPath: path).appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Waits, polling every 10 ms and for `seconds` at most, until `condition` holds (what the
/// kernel, berth-shim or a daemon does in the background after a command returns); whether it
/// did.
public func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}
