import Foundation
import Testing

@testable import Runtime

/// Bind and tmpfs options as Docker honours them: `:ro` read-only on every submount too (Docker
/// 25+), bind propagation, and tmpfs exec/uid/gid/mode.
@Suite(.serialized) struct MountOptionTests {
    /// A host directory with a tmpfs mounted below it; removed (and unmounted) by `close`.
    final class HostTree {
        let path: String
        init(_ base: String) throws {
            path = base + "/host-tree"
            try FileManager.default.createDirectory(atPath: path + "/sub", withIntermediateDirectories: true)
            guard mount("tmpfs", path + "/sub", "tmpfs", 0, "size=1m") == 0 else {
                throw Container.Error(container: "", step: "test mount", detail: String(cString: strerror(errno)))
            }
        }
        /// Every mount stacked on the tree (a test may bind it onto itself), then the tmpfs.
        func close() {
            while umount2(path, Int32(MNT_DETACH)) == 0 {}
            while umount2(path + "/sub", Int32(MNT_DETACH)) == 0 {}
        }
    }

    /// The mountinfo lines of the container's mounts at or below `prefix`: (mount point, options, optional fields).
    static func mounts(_ mountinfo: String, under prefix: String) -> [(point: String, options: [String], tags: String)]
    {
        mountinfo.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count > 6, fields[4] == prefix || fields[4].hasPrefix(prefix + "/") else { return nil }
            let dash = fields.firstIndex(of: "-") ?? fields.count
            return (
                fields[4], fields[5].split(separator: ",").map(String.init), fields[6..<dash].joined(separator: " ")
            )
        }
    }

    @Test func readOnlyBindsAreReadOnlyOnEverySubmount() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.cleanup() }
        let tree = try HostTree(fixture.base)
        defer { tree.close() }
        var spec = fixture.spec(["sh", "-c", "touch /host/top; touch /host/sub/inner; cat /proc/self/mountinfo"])
        spec.mounts = [MountSpec(kind: .bind, source: tree.path, target: "/host", readOnly: true)]
        let run = try fixture.run(spec)
        #expect(run.stderr.components(separatedBy: "Read-only file system").count == 3, "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: tree.path + "/top"))
        #expect(!FileManager.default.fileExists(atPath: tree.path + "/sub/inner"))
        let mounts = Self.mounts(run.stdout, under: "/host")
        #expect(mounts.count == 2)
        #expect(mounts.allSatisfy { $0.options.contains("ro") }, "\(mounts)")
    }

    /// `-v /:/host:ro`: every host mount under it (proc, sysfs, cgroups, /dev/shm...) is read-only
    /// inside. Only mountinfo is read: nothing on the host is written to find out.
    @Test func hostRootReadOnlyCoversEverySubmount() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.cleanup() }
        var spec = fixture.spec(["cat", "/proc/self/mountinfo"])
        spec.mounts = [MountSpec(kind: .bind, source: "/", target: "/host", readOnly: true)]
        let run = try fixture.run(spec)
        let mounts = Self.mounts(run.stdout, under: "/host")
        #expect(mounts.count > 3, "\(run.stdout)")
        let writable = mounts.filter { !$0.options.contains("ro") }.map(\.point)
        #expect(writable.isEmpty, "writable: \(writable)")
    }

    @Test func bindPropagationIsHonoured() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.cleanup() }
        let tree = try HostTree(fixture.base)
        defer { tree.close() }
        // A shared source, so that each mode shows in the container's mountinfo.
        #expect(mount(tree.path, tree.path, nil, UInt(MS_BIND | MS_REC), nil) == 0)
        #expect(mount(nil, tree.path, nil, UInt(MS_SHARED | MS_REC), nil) == 0)
        let expected: [(MountSpec.Propagation?, String)] = [
            (nil, ""), (.rprivate, ""), (.rslave, "master:"), (.rshared, "shared:"),
        ]
        for (mode, tag) in expected {
            var spec = fixture.spec(["cat", "/proc/self/mountinfo"])
            spec.mounts = [MountSpec(kind: .bind, source: tree.path, target: "/host", propagation: mode)]
            let info = try fixture.run(spec).stdout
            let mounts = Self.mounts(info, under: "/host")
            #expect(mounts.count == 2, "\(String(describing: mode)): \(info)")
            for m in mounts {
                if tag.isEmpty {
                    #expect(
                        !m.tags.contains("shared:") && !m.tags.contains("master:"), "\(String(describing: mode)): \(m)")
                } else {
                    #expect(m.tags.contains(tag), "\(String(describing: mode)): \(m)")
                }
            }
        }
    }

    @Test func tmpfsOptionsAreHonoured() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.cleanup() }
        let script = "cp /bin/busybox /t/true && /t/true && echo ran; stat -c '%u:%g %a' /t"
        var spec = fixture.spec(["sh", "-c", script])
        spec.mounts = [
            MountSpec(kind: .tmpfs, target: "/t", tmpfsMode: 0o750, tmpfsUID: 1000, tmpfsGID: 50, tmpfsExec: true)
        ]
        let allowed = try fixture.run(spec)
        #expect(allowed.stdout == "ran\n1000:50 750\n", "\(allowed.stdout) \(allowed.stderr)")
        spec.mounts = [MountSpec(kind: .tmpfs, target: "/t")]
        let refused = try fixture.run(spec)
        #expect(!refused.stdout.contains("ran"), "Docker's tmpfs is noexec by default")
        #expect(refused.stdout.contains("0:0 1777"))
    }
}
