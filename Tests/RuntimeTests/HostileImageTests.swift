import Foundation
import Images
import Testing

@testable import Runtime

/// Images written by an attacker: symlinks at every path the runtime touches on a container's
/// behalf, pointing at a sentinel tree of the host's (absolutely, through `..` chains, and at
/// `/`), run with default settings, with volumes and binds, and twice over the same volume after
/// the first run planted links in it. After every run the sentinel tree is exactly as it was.
@Suite(.serialized) struct HostileImageTests {
    /// A tree outside the container's root that no container may change: a file and a directory
    /// owned by someone else, with modes a container would want to change.
    final class Sentinel {
        let path: String

        init(in base: String) throws {
            path = base + "/sentinel"
            let fm = FileManager.default
            try fm.createDirectory(atPath: path + "/dir", withIntermediateDirectories: true)
            try "host secret\n".write(toFile: path + "/secret", atomically: false, encoding: .utf8)
            try "inner\n".write(toFile: path + "/dir/file", atomically: false, encoding: .utf8)
            try fm.createSymbolicLink(atPath: path + "/link", withDestinationPath: "secret")
            for (item, mode) in [("", 0o755), ("/dir", 0o750), ("/secret", 0o640), ("/dir/file", 0o600)] {
                chown(path + item, 4242, 4242)
                chmod(path + item, mode_t(mode))
            }
        }

        /// Every entry with its type, mode, owner, size, content and link target.
        func snapshot() -> [String] {
            var lines: [String] = []
            func walk(_ relative: String) {
                let full = path + relative
                var st = stat()
                guard lstat(full, &st) == 0 else { return }
                var line =
                    "\(relative.isEmpty ? "." : relative) \(String(st.st_mode, radix: 8)) \(st.st_uid):\(st.st_gid) \(st.st_size)"
                switch st.st_mode & S_IFMT {
                case S_IFREG: line += " " + ((try? String(contentsOfFile: full, encoding: .utf8)) ?? "?")
                case S_IFLNK:
                    line += " -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: full)) ?? "?")
                case S_IFDIR:
                    for name in ((try? FileManager.default.contentsOfDirectory(atPath: full)) ?? []).sorted() {
                        walk(relative + "/" + name)
                    }
                default: break
                }
                lines.append(line)
            }
            walk("")
            return lines
        }
    }

    /// What a link planted in an image (or a volume) may point at.
    static func targets(_ sentinel: String) -> [(name: String, target: String)] {
        [("absolute", sentinel), ("dotdot", String(repeating: "../", count: 12) + sentinel.dropFirst()), ("root", "/")]
    }

    /// Links at every path the runtime resolves: mount points of volumes, binds and tmpfs, the
    /// working directory, the user files, /dev, /proc, /sys and the /etc files it mounts.
    static func hostileLinks(to target: String) -> [String: String] {
        let file = target == "/" ? "/secret" : target + "/secret"
        // Apart, so that no mount covers another; all at "/" for the root case.
        func at(_ name: String) -> String { target == "/" ? "/" : target + "/" + name }
        return [
            "data": at("data"), "bindmnt": at("bindmnt"), "tmpmnt": at("tmpmnt"), "work": at("work"),
            "nested": target + "/dir",
            "dev": target, "proc": target, "sys": target,
            "etc/passwd": file, "etc/group": file, "etc/hosts": file, "etc/hostname": file, "etc/resolv.conf": file,
        ]
    }

    @Test func linksInTheImageNeverReachTheHost() throws {
        let probe = try RuntimeFixture()
        defer { probe.cleanup() }
        let sentinel = try Sentinel(in: probe.base)
        let before = sentinel.snapshot()
        for (kind, target) in Self.targets(sentinel.path) {
            let fixture = try RuntimeFixture(links: Self.hostileLinks(to: target))
            defer { fixture.cleanup() }
            let hostBind = fixture.base + "/bind-source"
            try FileManager.default.createDirectory(atPath: hostBind, withIntermediateDirectories: true)

            // Default settings.
            let plain = try fixture.run(["sh", "-c", "cat /etc/passwd /etc/hosts; ls /dev /proc/self; echo done"])
            #expect(plain.stdout.contains("done"), "\(kind): \(plain.stderr)")
            #expect(sentinel.snapshot() == before, "\(kind): default run")

            // Mounts whose targets are links, a working directory and a user that go through them.
            var spec = fixture.spec(["sh", "-c", "echo x > /bindmnt/f; echo y > /data/f; echo z > /tmpmnt/f; pwd"])
            spec.mounts = [
                MountSpec(kind: .bind, source: hostBind, target: "/bindmnt"),
                MountSpec(kind: .volume, source: "hostile-\(kind)", target: "/data"),
                MountSpec(kind: .tmpfs, target: "/tmpmnt"),
                MountSpec(kind: .volume, source: "nested-\(kind)", target: "/nested/deeper"),
            ]
            spec.workingDir = "/work/sub"
            spec.user = "0:0"  // by number: the hostile passwd link leaves the image without one
            if kind == "root" {
                // Each of those mounts would land on "/": refused before anything is written.
                let message = Self.failure { _ = try fixture.run(spec) }
                #expect(message.contains("resolves to the container's root"), "\(message)")
                #expect(
                    try FileManager.default.contentsOfDirectory(atPath: hostBind).isEmpty,
                    "root: the bind source stays empty")
            } else {
                let run = try fixture.run(spec)
                #expect(run.code == 0, "\(kind): \(run.stderr)")
                #expect(run.stdout.hasSuffix("/work/sub\n"), "\(kind): \(run.stdout)")
                // The bind went where the link points inside the container, and it is the host folder.
                #expect((try? String(contentsOfFile: hostBind + "/f", encoding: .utf8)) == "x\n")
            }
            #expect(sentinel.snapshot() == before, "\(kind): run with mounts")
            #expect(Container.list(root: fixture.root).isEmpty)
        }
    }

    /// The first run plants links in a volume that the image mounts over /dev (or /etc); the
    /// second run's device setup, masked paths and /etc binds then meet them.
    @Test func linksPlantedInAVolumeNeverReachTheHost() throws {
        let probe = try RuntimeFixture()
        defer { probe.cleanup() }
        let sentinel = try Sentinel(in: probe.base)
        let before = sentinel.snapshot()
        let deep = String(repeating: "../", count: 12) + sentinel.path.dropFirst()
        for over in ["/dev", "/etc"] {
            let fixture = try RuntimeFixture(links: ["data": over])
            defer { fixture.cleanup() }
            let names = [
                "null", "zero", "full", "random", "urandom", "tty", "fd", "stdin", "stdout", "stderr", "ptmx",
                "core", "shm", "pts", "mqueue", "hosts", "hostname", "resolv.conf", "passwd", "group",
            ]
            let plant = names.enumerated().map { i, name in
                "rm -rf /data/\(name); ln -s \(i % 2 == 0 ? sentinel.path + "/secret" : deep) /data/\(name)"
            }.joined(separator: "; ")
            for round in 1...2 {
                var spec = fixture.spec([
                    "sh", "-c", plant + "; cat /proc/keys /proc/timer_list >/dev/null 2>&1; echo round",
                ])
                spec.mounts = [MountSpec(kind: .volume, source: "planted", target: "/data")]
                let run = try fixture.run(spec)
                #expect(run.stdout.contains("round"), "\(over) round \(round): \(run.stderr)")
                #expect(sentinel.snapshot() == before, "\(over) round \(round)")
            }
            // The planted links are still in the volume: they were never followed, nor replaced on the host.
            let planted = fixture.root + "/volumes/planted/_data/null"
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: planted)) == sentinel.path + "/secret")
        }
    }

    @Test func userFilesThatAreNotRegularFilesAreAClearError() throws {
        let fifo = try RuntimeFixture(prepare: { root in
            unlink(root + "/etc/passwd")
            #expect(mkfifo(root + "/etc/passwd", 0o644) == 0)
        })
        defer { fifo.cleanup() }
        var spec = fifo.spec(["true"])
        spec.user = "root"
        #expect(Self.failure { _ = try fifo.run(spec) }.contains("/etc/passwd is not a regular file"))

        let device = try RuntimeFixture(prepare: { root in
            unlink(root + "/etc/group")
            #expect(mknod(root + "/etc/group", S_IFCHR | 0o644, (1 << 8) | 5) == 0)
        })
        defer { device.cleanup() }
        #expect(Self.failure { _ = try device.run(device.spec(["true"])) }.contains("/etc/group is not a regular file"))

        // A link to a file of the host's is resolved inside the image: /etc/shadow is not there.
        let shadow = try RuntimeFixture(
            links: ["etc/passwd": "/etc/shadow", "etc/group": "../../../../etc/shadow"],
            prepare: { root in
                try "mallory:x:0:0::/root:/bin/sh\n".write(
                    toFile: root + "/etc/shadow", atomically: false, encoding: .utf8)
            })
        defer { shadow.cleanup() }
        var named = shadow.spec(["id", "-u"])
        named.user = "mallory"
        let run = try shadow.run(named)
        #expect(run.stdout == "0\n", "the image's own /etc/shadow, as its /etc/passwd says: \(run.stderr)")
        named.user = "root"
        #expect(Self.failure { _ = try shadow.run(named) }.contains("unable to find user root"))
    }

    @Test func userFilesResolveLinksInsideTheImage() throws {
        let fixture = try RuntimeFixture(
            links: ["etc/passwd": "../srv/users"],
            prepare: { root in
                try FileManager.default.createDirectory(atPath: root + "/srv", withIntermediateDirectories: true)
                try "carol:x:1234:1234::/home/carol:/bin/sh\n".write(
                    toFile: root + "/srv/users", atomically: false, encoding: .utf8)
            })
        defer { fixture.cleanup() }
        var spec = fixture.spec(["id", "-u"])
        spec.user = "carol"
        #expect(try fixture.run(spec).stdout == "1234\n")
    }

    /// RootFiles reads an image's files as overlayfs will show them: opaque directories and
    /// whiteouts hide lower layers, a non-directory hides a lower directory, links resolve in the
    /// merged root.
    @Test func imageFilesFollowOverlayRules() throws {
        let base = NSTemporaryDirectory() + "berth-layers-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let fm = FileManager.default
        let layers = (0..<3).map { base + "/l\($0)" }
        func write(_ layer: Int, _ path: String, _ text: String) throws {
            try fm.createDirectory(
                atPath: ((layers[layer] + path) as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true)
            try text.write(toFile: layers[layer] + path, atomically: false, encoding: .utf8)
        }
        try write(0, "/etc/passwd", "low")
        try write(0, "/srv/a", "a0")
        try write(1, "/etc/other", "o1")
        try write(1, "/etc/gone", "g1")
        try RuntimeFixture.capture([
            "/usr/bin/python3", "-c", "import os,sys; os.setxattr(sys.argv[1], 'trusted.overlay.opaque', b'y')",
            layers[1] + "/etc",
        ])
        try fm.createDirectory(atPath: layers[2] + "/etc", withIntermediateDirectories: true)
        #expect(mknod(layers[2] + "/etc/gone", S_IFCHR, 0) == 0)
        try fm.createSymbolicLink(atPath: layers[2] + "/srv", withDestinationPath: "/etc")

        #expect(try RootFiles.read("/etc/passwd", layers: [layers[0]]) == "low")
        #expect(try RootFiles.read("/etc/passwd", layers: layers) == nil, "hidden by the opaque /etc above it")
        #expect(try RootFiles.read("/etc/other", layers: layers) == "o1")
        #expect(try RootFiles.read("/etc/gone", layers: layers) == nil, "whited out")
        #expect(try RootFiles.read("/etc/gone", layers: Array(layers[0...1])) == "g1")
        #expect(try RootFiles.read("/srv/other", layers: layers) == "o1", "through the top layer's link")
        #expect(try RootFiles.read("/srv/a", layers: layers) == nil, "the link hides the lower directory")
        #expect(try RootFiles.read("/srv/a", layers: Array(layers[0...1])) == "a0")
        #expect(try RootFiles.read("/srv/../../../etc/other", layers: layers) == "o1", ".. stops at the root")
    }

    @Test func mountTargetsThatCannotBeAreRefusedBeforeAnythingIsMade() throws {
        let fixture = try RuntimeFixture(links: ["pp": "/proc/sys", "up": "/x/../.."])
        defer { fixture.cleanup() }
        let hostBind = fixture.base + "/bind-source"
        try FileManager.default.createDirectory(atPath: hostBind, withIntermediateDirectories: true)
        let cases: [(MountSpec, String)] = [
            (MountSpec(kind: .bind, source: hostBind, target: "/"), "destination can't be '/'"),
            (MountSpec(kind: .tmpfs, target: "/a/.."), "destination can't be '/'"),
            (MountSpec(kind: .bind, source: hostBind, target: "/up"), "resolves to the container's root"),
            (MountSpec(kind: .bind, source: hostBind, target: "/pp"), "inside /proc"),
            (MountSpec(kind: .volume, source: "vv", target: "/proc/sys/kernel"), "inside /proc"),
            (
                MountSpec(kind: .volume, source: "x/../../../../tmp/somewhere", target: "/m"),
                "invalid characters for a local volume name"
            ),
            (MountSpec(kind: .volume, source: "..", target: "/m"), "invalid characters for a local volume name"),
        ]
        for (mount, expected) in cases {
            var spec = fixture.spec(["true"])
            spec.mounts = [mount]
            let message = Self.failure { _ = try fixture.run(spec) }
            #expect(message.contains(expected), "\(mount.target): \(message)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: hostBind).isEmpty)
        }
        // A sysctl name is a path under /proc/sys that the child writes as the host's root.
        for key in ["net./../../uptime", "net/../../uptime", "net..ipv4"] {
            var spec = fixture.spec(["true"])
            spec.sysctls = [key: "1"]
            #expect(Self.failure { _ = try fixture.run(spec) }.contains("invalid sysctl name"), "\(key)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/somewhere"))
        #expect(!FileManager.default.fileExists(atPath: fixture.root + "/volumes/x"))
        #expect(Container.list(root: fixture.root).allSatisfy { $0.state().status != .running })
    }

    /// A container that builds a tree deeper than any recursive walk (or PATH_MAX) still goes
    /// away with `rm` (it once crashed berth with a stack overflow and stayed).
    @Test func aContainersDeepTreeIsRemoved() throws {
        let deep = #"""
            #include <stdlib.h>
            #include <sys/stat.h>
            #include <unistd.h>
            int main(int argc, char **argv) {
                int n = atoi(argv[1]);
                for (int i = 0; i < n; i++) if (mkdir("d", 0755) != 0 || chdir("d") != 0) return 1;
                return 0;
            }
            """#
        let fixture = try RuntimeFixture(probes: ["deep": deep])
        defer { fixture.cleanup() }
        var spec = fixture.spec(["sh", "-c", "cd /tmp && deep 30000"])
        spec.name = "deep"
        let container = try Container.create(spec: spec, root: fixture.root)
        let code = try container.start(stdio: .pipes(stdin: false)).wait()
        #expect(code == 0)
        try container.remove(force: true)
        #expect(RuntimeFixture.leftovers(id: container.id, root: fixture.root).isEmpty)
        #expect(Container.list(root: fixture.root).isEmpty)
    }

    /// The state root is root's alone: layers and volumes hold images' setuid files and device
    /// nodes, which no other user may reach (CVE-2021-41091).
    @Test func theStateRootIsClosedToOtherUsers() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.cleanup() }
        _ = try fixture.run(["true"])
        var st = stat()
        #expect(
            stat(fixture.root, &st) == 0 && st.st_mode & 0o777 == 0o700, "mode \(String(st.st_mode & 0o777, radix: 8))")
    }

    static func failure(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }
}
