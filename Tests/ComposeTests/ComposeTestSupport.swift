import Foundation
import Testing

@testable import Compose

/// A throwaway project directory: files are written on creation and removed by `cleanup()`
/// (call it with `defer`).
struct TempProject {
    let root: String

    init(_ files: [String: String]) throws {
        root =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("berth-compose-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for (name, text) in files { try write(name, text) }
    }

    func path(_ name: String) -> String { root + "/" + name }

    func write(_ name: String, _ text: String) throws {
        let full = path(name)
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: false, encoding: .utf8)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: root) }

    /// Options as `berth` run in `dir` (relative to the root) would build them, with `environment`
    /// as the whole shell environment.
    func options(
        dir: String = "", files: [String] = [], projectName: String? = "test",
        profiles: [String] = [], environment: [String: String] = [:]
    ) -> ProjectOptions {
        var o = ProjectOptions()
        o.workingDirectory = dir.isEmpty ? root : path(dir)
        o.files = files
        o.projectName = projectName
        o.profiles = profiles
        o.environment = environment
        o.warn = { _ in }
        return o
    }

    func load(
        dir: String = "", files: [String] = [], projectName: String? = "test", profiles: [String] = [],
        environment: [String: String] = [:]
    ) throws -> Project {
        try ComposeLoader.load(
            options(dir: dir, files: files, projectName: projectName, profiles: profiles, environment: environment))
    }

    /// The error loading throws (nil, and a test failure, when it loads).
    func error(
        dir: String = "", files: [String] = [], projectName: String? = "test", profiles: [String] = [],
        environment: [String: String] = [:]
    ) -> ComposeError? {
        do {
            _ = try load(dir: dir, files: files, projectName: projectName, profiles: profiles, environment: environment)
            Issue.record("expected the project to be rejected")
            return nil
        } catch let e as ComposeError {
            return e
        } catch {
            Issue.record("not a ComposeError: \(error)")
            return nil
        }
    }
}

/// Loads a one-file project and returns it (the file is compose.yaml in a fresh directory).
func loadCompose(
    _ yaml: String, files extra: [String: String] = [:], environment: [String: String] = [:],
    profiles: [String] = []
) throws -> Project {
    var files = extra
    files["compose.yaml"] = yaml
    let p = try TempProject(files)
    defer { p.cleanup() }
    return try p.load(profiles: profiles, environment: environment)
}
