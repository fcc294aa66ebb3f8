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
        #expect(text == "container bad-user: step user: unable to find user mallory: no matching entries in passwd file")
        expectNothingLeft(f)
    }

    @Test func unknownCapability() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["id"])
        spec.name = "bad-cap"
        spec.capAdd = ["CAP_FLY"]
        #expect(message { _ = try Container.create(spec: spec, root: f.root) } == "container bad-cap: step capabilities: unknown capability \"CAP_FLY\"")
        expectNothingLeft(f)
    }

    @Test func missingBindSource() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["true"])
        spec.name = "bad-bind"
        spec.mounts = [MountSpec(kind: .bind, source: f.base + "/missing", target: "/data")]
        let text = message { _ = try Container.create(spec: spec, root: f.root) }
        #expect(text.hasPrefix("container bad-bind: step mount: bind source path \(f.base)/missing for /data: No such file or directory"))
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
        #expect(text == "container bad-ulimit: step ulimit: ulimit nofile: hard limit \(host.rlim_max + 1) is above the host's hard limit \(host.rlim_max)")
        expectNothingLeft(f)
    }

    @Test func execIntoStoppedContainer() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["true"])
        spec.name = "stopped"
        _ = try f.run(spec, remove: false)
        let c = try Container.lookup("stopped", root: f.root)
        #expect(message { _ = try c.exec(ExecSpec(argv: ["id"])) } == "container stopped: step exec: the container is not running")
        try c.remove()
        expectNothingLeft(f)
    }

    @Test func failingStepInTheChild() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["no-such-command"])
        spec.name = "bad-exec"
        let c = try Container.create(spec: spec, root: f.root)
        #expect(message { _ = try c.start(stdio: .pipes(stdin: false)) } == "container bad-exec: step exec no-such-command: No such file or directory")
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
        #expect(message { _ = try Container.create(spec: spec, root: f.root) }.contains("sysctl vm.swappiness is not namespaced"))
        spec.sysctls = [:]
        let first = try Container.create(spec: spec, root: f.root)
        #expect(message { _ = try Container.create(spec: spec, root: f.root) }.contains("the name is already in use"))
        try first.remove()
        expectNothingLeft(f)
    }
}
