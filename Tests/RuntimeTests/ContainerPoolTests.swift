import Foundation
import Testing

@testable import Runtime

/// Removed containers' directories are kept and reused (ContainerPool): nothing of one container
/// may reach the next, and a directory the container changed is not kept.
@Suite(.serialized) struct ContainerPoolTests {
    func poolEntries(_ f: RuntimeFixture) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: ContainerPool.directory(root: f.root))) ?? []
    }

    @Test func recycledDirectoriesCarryNothingOver() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        // Fill the pool (it hands out directories only once full), each run leaving traces.
        for i in 0..<ContainerPool.capacity + 2 {
            let run = try f.run(["sh", "-c", "echo trace > /leak-\(i); echo noise; echo 10.9.9.9 other >> /etc/hosts"])
            #expect(run.code == 0)
        }
        let entries = poolEntries(f)
        #expect(entries.count == ContainerPool.capacity)
        for entry in entries {
            let dir = ContainerPool.directory(root: f.root) + "/" + entry
            #expect(
                Set(try FileManager.default.contentsOfDirectory(atPath: dir))
                    .isSubset(of: ["upper", "work", "hosts", "hostname", "resolv.conf", "config.json"]))
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/upper").isEmpty)
        }
        // Started the way `container run` starts (record and overlay made around the clone).
        var spec = f.spec(["sh", "-c", "ls / | grep -c leak; grep -c other /etc/hosts; cat /etc/hostname"])
        spec.name = "after-the-pool"
        let container = try Container.create(spec: spec, root: f.root, startingNow: true)
        let process = try container.start(stdio: .pipes(stdin: false))
        #expect(process.wait() == 0)
        let out = ContainerLogReader.entries(path: container.logPath).map(\.log).joined()
        #expect(out == "0\n0\n\(container.shortID)\n")
        #expect(try Container.lookup("after-the-pool", root: f.root).id == container.id)
        #expect(container.state().status == .exited)
        try container.remove()
        #expect(RuntimeFixture.leftovers(id: container.id, root: f.root).isEmpty)
        #expect(Container.list(root: f.root).isEmpty)
    }

    @Test func aDirectoryWhoseRootTheContainerChangedIsNotKept() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        #expect(try f.run(["true"]).code == 0)
        let before = poolEntries(f).count
        #expect(before == 1)
        // chmod of / is copied up onto the upper dir itself.
        #expect(try f.run(["chmod", "700", "/"]).code == 0)
        #expect(poolEntries(f).count == before)
        #expect(try f.run(["sh", "-c", "stat -c %a /"]).stdout == "755\n")
    }

    @Test func aBrokenLayerIsAnOverlayErrorAndLeavesNothing() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["true"])
        spec.layerPaths = [f.base + "/no-such-layer"]
        spec.name = "broken-layer"
        #expect {
            _ = try Container.create(spec: spec, root: f.root, startingNow: true)
        } throws: { error in
            let e = error as? Container.Error
            return e?.step == "mount overlay rootfs" && e?.container == "broken-layer"
        }
        #expect(Container.list(root: f.root).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: f.root + "/container-names/broken-layer"))
    }
}
