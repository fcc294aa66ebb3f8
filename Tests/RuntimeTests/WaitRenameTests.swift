import Foundation
import Testing

@testable import Runtime

/// Container.waitForExit (`docker wait`) and Container.rename(to:) (`docker rename`) through the
/// API; LifecycleCLITests drives both from the command line.
@Suite(.serialized) struct WaitRenameTests {
    /// Exit codes collected from several threads.
    final class Codes: @unchecked Sendable {
        private let lock = NSLock()
        private var codes: [Int32] = []
        func append(_ code: Int32) { lock.withLock { codes.append(code) } }
        var all: [Int32] { lock.withLock { codes } }
    }

    @Test func waitersOfOneContainerAllGetItsExitCode() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        // Created, never started: not running, so at once, with 0 (Docker's "not-running").
        var created = f.spec(["true"])
        created.name = "never-started"
        #expect(try Container.create(spec: created, root: f.root).waitForExit() == 0)

        let sync = f.base + "/sync"
        try FileManager.default.createDirectory(atPath: sync, withIntermediateDirectories: true)
        try #require(mkfifo(sync + "/go", 0o600) == 0)
        let go = open(sync + "/go", O_RDWR | O_CLOEXEC)
        try #require(go >= 0)
        defer { close(go) }
        var spec = f.spec(["sh", "-c", "read go < /sync/go; exit 9"])
        spec.name = "awaited"
        spec.mounts = [MountSpec(kind: .bind, source: sync, target: "/sync")]
        let container = try Container.create(spec: spec, root: f.root, startingNow: true)
        _ = try container.start(stdio: .detached(stdin: false, tty: false))
        // Each waiter looks the container up itself, as separate berth processes would.
        let codes = Codes()
        let group = DispatchGroup()
        let root = f.root
        for _ in 0..<4 {
            DispatchQueue.global().async(group: group) {
                codes.append((try? Container.lookup("awaited", root: root).waitForExit()) ?? -2)
            }
        }
        #expect(write(go, "go\n", 3) == 3)
        #expect(group.wait(timeout: .now() + 60) == .success, "a waiter did not return")
        #expect(codes.all == [9, 9, 9, 9])
        #expect(try container.waitForExit() == 9)
    }

    @Test func renameMovesTheNameAndRefusesAsDockerDoes() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var first = f.spec(["true"])
        first.name = "first"
        _ = try f.run(first, remove: false)
        var second = f.spec(["true"])
        second.name = "second"
        _ = try f.run(second, remove: false)
        let container = try Container.lookup("first", root: f.root)
        let other = try Container.lookup("second", root: f.root)

        for (name, message) in [
            (
                "second",
                "Conflict. The container name \"/second\" is already in use by container \"\(other.id)\". "
                    + "You have to remove (or rename) that container to be able to reuse that name."
            ),
            ("first", "Renaming a container with the same name as its current name"),
            ("-first", "Invalid container name (-first), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
            ("f", "Invalid container name (f), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
        ] {
            let error = #expect(throws: Container.Error.self) { try container.rename(to: name) }
            #expect(error?.stage == .name)
            #expect(error?.description == message)
        }
        #expect(try Container.lookup("first", root: f.root).id == container.id)

        // Docker's form with a leading slash names the same.
        try container.rename(to: "/renamed")
        #expect(container.name == "renamed")
        #expect(try Container.lookup("renamed", root: f.root).id == container.id)
        #expect(throws: Container.Error.self) { try Container.lookup("first", root: f.root) }
        let names = try FileManager.default.contentsOfDirectory(atPath: f.root + "/container-names").sorted()
        #expect(names == ["renamed", "second"])

        // A link a killed rename left (the container's record has another name) is not a
        // holder of the name: a rename that wants it takes it over.
        #expect(symlink(NameLink.target(forID: container.id), f.root + "/container-names/stale") == 0)
        #expect(throws: Container.Error.self) { try Container.lookup("stale", root: f.root) }
        try other.rename(to: "stale")
        #expect(try Container.lookup("stale", root: f.root).id == other.id)
        #expect(try Container.lookup("renamed", root: f.root).id == container.id)
    }
}
