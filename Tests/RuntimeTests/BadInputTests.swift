import Foundation
import Images
import Testing

@testable import Runtime

/// Every refusal names the container and the problem, and leaves nothing behind.
@Suite(.serialized) struct BadInputTests {
    func expectNothingLeft(_ f: RuntimeFixture) {
        #expect(Container.list(root: f.root).isEmpty)
        let dirs = (try? FileManager.default.contentsOfDirectory(atPath: f.root + "/containers")) ?? []
        #expect(dirs.isEmpty, "left: \(dirs)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: f.root + "/container-names")) ?? []
        #expect(names.isEmpty)
        let hierarchies = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []
        for h in hierarchies {
            let groups = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup/\(h)/berth")) ?? []
            for id in dirs where groups.contains(id) { Issue.record("cgroup left in \(h)") }
        }
    }

    func message(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func missingImage() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        #expect(throws: ImageStore.Error.self) { try ImageStore(root: f.root).image("no-such-image:1") }
        expectNothingLeft(f)
    }

    @Test func unknownUser() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["id"])
        spec.name = "bad-user"
        spec.user = "mallory"
        let text = message { _ = try Container.create(spec: spec, root: f.root) }
        #expect(
            text == "container bad-user: step user: unable to find user mallory: no matching entries in passwd file")
        expectNothingLeft(f)
    }

    @Test func unknownCapability() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["id"])
        spec.name = "bad-cap"
        spec.capAdd = ["CAP_FLY"]
        #expect(
            message { _ = try Container.create(spec: spec, root: f.root) }
                == "container bad-cap: step capabilities: unknown capability \"CAP_FLY\"")
        expectNothingLeft(f)
    }

    @Test func missingBindSource() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["true"])
        spec.name = "bad-bind"
        spec.mounts = [MountSpec(kind: .bind, source: f.base + "/missing", target: "/data")]
        let text = message { _ = try Container.create(spec: spec, root: f.root) }
        // Docker's words: "invalid mount config for type "bind": bind source path does not exist: PATH".
        #expect(text == "container bad-bind: step mount /data: bind source path does not exist: \(f.base)/missing")
        expectNothingLeft(f)
    }

    @Test func ulimitAboveHostHardLimit() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var host = rlimit()
        getrlimit(__rlimit_resource_t(UInt32(RLIMIT_NOFILE.rawValue)), &host)
        var spec = f.spec(["true"])
        spec.name = "bad-ulimit"
        spec.ulimits = [Ulimit(name: "nofile", soft: 1024, hard: UInt64(host.rlim_max) + 1)]
        let text = message { _ = try Container.create(spec: spec, root: f.root) }
        #expect(
            text
                == "container bad-ulimit: step ulimit: ulimit nofile: hard limit \(host.rlim_max + 1) is above the host's hard limit \(host.rlim_max)"
        )
        expectNothingLeft(f)
    }

    @Test func execIntoStoppedContainer() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["true"])
        spec.name = "stopped"
        _ = try f.run(spec, remove: false)
        let c = try Container.lookup("stopped", root: f.root)
        #expect(
            message { _ = try c.exec(ExecSpec(argv: ["id"])) }
                == "container stopped: step exec: the container is not running")
        try c.remove()
        expectNothingLeft(f)
    }

    @Test func failingStepInTheChild() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["no-such-command"])
        spec.name = "bad-exec"
        let c = try Container.create(spec: spec, root: f.root)
        #expect(
            message { _ = try c.start(stdio: .pipes(stdin: false)) }
                == "container bad-exec: step exec no-such-command: No such file or directory")
        #expect(c.state().status == .exited)
        #expect(RuntimeFixture.leftovers(id: c.id, root: f.root) == ["directory"])
        try c.remove()
        expectNothingLeft(f)
    }

    @Test func unknownSysctlAndDuplicateName() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["true"])
        spec.name = "bad-sysctl"
        spec.sysctls = ["vm.swappiness": "10"]
        #expect(
            message { _ = try Container.create(spec: spec, root: f.root) }.contains(
                "sysctl vm.swappiness is not namespaced"))
        spec.sysctls = [:]
        let first = try Container.create(spec: spec, root: f.root)
        #expect(message { _ = try Container.create(spec: spec, root: f.root) }.contains("the name is already in use"))
        try first.remove()
        expectNothingLeft(f)
    }

    /// A seccomp profile must be a regular file of at most 1 MiB of UTF-8; each refusal is one
    /// line naming the file (Docker's "opening seccomp profile (PATH) failed: ...").
    @Test func seccompProfileFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "berth-seccomp-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func load(_ path: String) -> String {
            do { return try Seccomp.loadProfile(path: path) } catch { return "error: \(error)" }
        }
        #expect(
            load("/dev/zero")
                == "error: opening seccomp profile (/dev/zero) failed: it is a character device, not a regular file")
        #expect(load(dir) == "error: opening seccomp profile (\(dir)) failed: it is a directory, not a regular file")
        #expect(
            load(dir + "/missing")
                == "error: opening seccomp profile (\(dir)/missing) failed: No such file or directory")
        #expect(load("") == "error: opening seccomp profile () failed: no file name given")
        #expect(mkfifo(dir + "/fifo", 0o600) == 0)
        #expect(
            load(dir + "/fifo")
                == "error: opening seccomp profile (\(dir)/fifo) failed: it is a FIFO, not a regular file")
        // A link to a regular file is fine; a line break in the name is escaped.
        try Data("{}".utf8).write(to: URL(fileURLWithPath: dir + "/p.json"))
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.json", withDestinationPath: dir + "/p.json")
        #expect(load(dir + "/link.json") == "{}")
        #expect(
            load(dir + "/a\nb") == "error: opening seccomp profile (\(dir)/a\\nb) failed: No such file or directory")
        let limit = Seccomp.maximumProfileSize
        try Data(repeating: 0x20, count: limit).write(to: URL(fileURLWithPath: dir + "/max.json"))
        #expect(load(dir + "/max.json").utf8.count == limit)
        try Data(repeating: 0x20, count: limit + 1).write(to: URL(fileURLWithPath: dir + "/big.json"))
        #expect(load(dir + "/big.json") == "error: opening seccomp profile (\(dir)/big.json) failed: larger than 1 MiB")
        try Data([0x7b, 0xff, 0x7d]).write(to: URL(fileURLWithPath: dir + "/latin1.json"))
        #expect(
            load(dir + "/latin1.json")
                == "error: opening seccomp profile (\(dir)/latin1.json) failed: the file is not UTF-8 text")
        #expect(chmod(dir + "/p.json", 0) == 0)
        // (root reads it anyway; as another user the open would say Permission denied.)
        #expect(
            load(dir + "/p.json")
                == (getuid() == 0 ? "{}" : "error: opening seccomp profile (\(dir)/p.json) failed: Permission denied"))
    }
}
