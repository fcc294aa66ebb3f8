import Foundation
import Testing

@testable import Runtime

/// Named volumes as Docker keeps them (VolumeStore) and fills them (VolumeCopyUp): records,
/// idempotent creation, in-use refusals, prune, and the copy of the image's content into a new
/// or empty volume when a container is created, never through a link out of the image.
@Suite(.serialized) struct VolumeTests {
    /// A root of the test's own, removed by the caller.
    static func temporaryRoot() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("berth-vol-\(UUID().uuidString.prefix(8))").path
    }

    static func lstatOf(_ path: String) -> stat? {
        var st = stat()
        return lstat(path, &st) == 0 ? st : nil
    }

    static func names(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    func volumeMount(_ name: String, _ target: String, noCopy: Bool? = nil) -> MountSpec {
        MountSpec(kind: .volume, source: name, target: target, noCopy: noCopy)
    }

    // MARK: the store

    @Test func createIsIdempotentAndRecordsDockersFields() throws {
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = VolumeStore(root: root)
        let made = try store.create("data", labels: ["tier": "db"])
        #expect(made.name == "data" && made.driver == "local" && made.scope == "local")
        #expect(made.mountpoint == root + "/volumes/data/_data")
        #expect(FileManager.default.fileExists(atPath: made.mountpoint))
        // Docker returns an existing volume as it is: other labels change nothing.
        let again = try store.create("data", labels: ["other": "x"])
        #expect(again == made)
        #expect(try store.volume("data") == made)
        #expect(store.list().map(\.name) == ["data"])

        let json =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: root + "/volumes/data/volume.json"))) as? [String: Any]
        #expect(
            Set(json?.keys.map { $0 } ?? [])
                == ["Name", "Driver", "Mountpoint", "Labels", "CreatedAt", "Scope", "Options"])
        #expect((json?["CreatedAt"] as? String)?.hasSuffix("Z") == true)

        let generated = try store.create()
        #expect(generated.name.count == 64)
        #expect(store.list().count == 2)
    }

    @Test func refusalsSayWhatDockerSays() throws {
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = VolumeStore(root: root)
        #expect(throws: VolumeStore.Error.self) { try store.volume("nope") }
        do {
            _ = try store.volume("nope")
        } catch let error as VolumeStore.Error {
            #expect(error.kind == .notFound)
            #expect(error.description == "get nope: no such volume")
        }
        // A name that would climb out of ROOT/volumes is never a path.
        for bad in ["../x", "a/b", "..", "x", ".hidden"] {
            #expect(throws: VolumeStore.Error.self) { try store.create(bad) }
            #expect(throws: VolumeStore.Error.self) { try store.volume(bad) }
        }
        #expect(throws: VolumeStore.Error.self) { try store.create("opts", driverOptions: ["type": "tmpfs"]) }
        #expect(throws: VolumeStore.Error.self) { try store.remove("nope") }
        try store.remove("nope", force: true)
        try store.create("gone")
        try store.remove("gone")
        #expect(store.list().isEmpty)
        #expect(Self.names(root + "/volumes") == [".lock"])
    }

    @Test func concurrentCreatesMakeOneVolume() throws {
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = VolumeStore(root: root)
        let lock = NSLock()
        nonisolated(unsafe) var stamps: [String] = []
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            if let made = try? store.create("shared") { lock.withLock { stamps.append(made.createdAt) } }
        }
        #expect(stamps.count == 16)
        #expect(Set(stamps).count == 1)
        #expect(store.list().map(\.name) == ["shared"])
    }

    @Test func mountedVolumesAreListedAndRefusedRemoval() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.cleanup() }
        let store = VolumeStore(root: fixture.root)
        try store.create("unused")
        try store.create("anon", labels: [VolumeStore.anonymousLabel: ""])
        var spec = fixture.spec(["true"])
        spec.mounts = [volumeMount("implicit", "/data")]
        let container = try Container.create(spec: spec, root: fixture.root)
        // Made by the mount, with its record: `volume ls` shows it.
        let implicit = try store.volume("implicit")
        #expect(implicit.labels.isEmpty)
        #expect(store.list().map(\.name) == ["anon", "implicit", "unused"])
        #expect(store.users(of: "implicit") == [container.id])
        do {
            try store.remove("implicit", force: true)
            Issue.record("a volume in use was removed")
        } catch let error as VolumeStore.Error {
            #expect(error.kind == .inUse([container.id]))
            #expect(error.description == "remove implicit: volume is in use - [\(container.id)]")
        }
        // Docker 23+: prune takes anonymous volumes only, unless all; never one in use.
        let anonymousOnly = try store.prune()
        #expect(anonymousOnly.removed == ["anon"])
        try Data("12345".utf8).write(to: URL(fileURLWithPath: store.dataPath(of: "unused") + "/f"))
        let all = try store.prune(all: true)
        #expect(all.removed == ["unused"])
        #expect(all.reclaimedBytes == 5)
        #expect(store.list().map(\.name) == ["implicit"])
        try container.remove(force: true)
        try store.remove("implicit")
        #expect(store.list().isEmpty)
    }

    // MARK: copy-up

    @Test func copyUpKeepsModesOwnersLinksAndNodes() throws {
        let fixture = try RuntimeFixture { rootfs in
            let app = rootfs + "/srv/app"
            try FileManager.default.createDirectory(atPath: app + "/sub/deeper", withIntermediateDirectories: true)
            try "alpha".write(toFile: app + "/a.conf", atomically: false, encoding: .utf8)
            try "#!/bin/sh\n".write(toFile: app + "/sub/run.sh", atomically: false, encoding: .utf8)
            try "s".write(toFile: app + "/sub/deeper/suid", atomically: false, encoding: .utf8)
            chown(app + "/a.conf", 1000, 50)
            chmod(app + "/a.conf", 0o640)
            chmod(app + "/sub/run.sh", 0o755)
            chown(app + "/sub/deeper/suid", 0, 0)
            chmod(app + "/sub/deeper/suid", 0o4755)
            chown(app + "/sub", 1001, 1001)
            chmod(app + "/sub", 0o750)
            symlink("../../etc/passwd", app + "/relative")
            symlink("/etc/shadow", app + "/absolute")
            lchown(app + "/absolute", 1000, 1000)
            mkfifo(app + "/pipe", 0o620)
            mknod(app + "/null", S_IFCHR | 0o666, 0x103)
            chmod(app + "/pipe", 0o620)  // past the umask
            chmod(app + "/null", 0o666)
            chown(app, 1000, 1000)
            chmod(app, 0o710)
        }
        defer { fixture.cleanup() }
        var spec = fixture.spec(["true"])
        spec.mounts = [volumeMount("appdata", "/srv/app")]
        let started = Date()
        let container = try Container.create(spec: spec, root: fixture.root)
        print("create with a copy-up: \(Int(Date().timeIntervalSince(started) * 1000)) ms")
        defer { try? container.remove(force: true) }
        let data = VolumeStore(root: fixture.root).dataPath(of: "appdata")
        #expect(Self.names(data) == ["a.conf", "absolute", "null", "pipe", "relative", "sub"])
        let top = try #require(Self.lstatOf(data))
        #expect(top.st_mode & 0o7777 == 0o710 && top.st_uid == 1000 && top.st_gid == 1000)
        let conf = try #require(Self.lstatOf(data + "/a.conf"))
        #expect(conf.st_mode & S_IFMT == S_IFREG && conf.st_mode & 0o7777 == 0o640)
        #expect(conf.st_uid == 1000 && conf.st_gid == 50)
        #expect(try String(contentsOfFile: data + "/a.conf", encoding: .utf8) == "alpha")
        let sub = try #require(Self.lstatOf(data + "/sub"))
        #expect(sub.st_mode & S_IFMT == S_IFDIR && sub.st_mode & 0o7777 == 0o750 && sub.st_uid == 1001)
        #expect(Self.lstatOf(data + "/sub/run.sh").map { $0.st_mode & 0o7777 } == 0o755)
        #expect(Self.lstatOf(data + "/sub/deeper/suid").map { $0.st_mode & 0o7777 } == 0o4755)
        // Links stay links, their targets text (not resolved, not followed).
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: data + "/relative") == "../../etc/passwd")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: data + "/absolute") == "/etc/shadow")
        #expect(Self.lstatOf(data + "/absolute").map { $0.st_uid } == 1000)
        let pipe = try #require(Self.lstatOf(data + "/pipe"))
        #expect(pipe.st_mode & S_IFMT == S_IFIFO && pipe.st_mode & 0o7777 == 0o620)
        let null = try #require(Self.lstatOf(data + "/null"))
        #expect(null.st_mode & S_IFMT == S_IFCHR && null.st_rdev == 0x103 && null.st_mode & 0o7777 == 0o666)

        // The container sees it (started: the mount is the volume).
        let run = try fixture.run(
            {
                var s = fixture.spec(["sh", "-c", "cat /srv/app/a.conf; stat -c %a /srv/app"])
                s.mounts = [volumeMount("appdata", "/srv/app")]
                return s
            }())
        #expect(run.stdout == "alpha710\n")
    }

    @Test func aVolumeWithContentIsNotCopiedIntoAndNocopyIsHonoured() throws {
        let fixture = try RuntimeFixture(extraFiles: ["srv/app/image-file": "from the image"])
        defer { fixture.cleanup() }
        let store = VolumeStore(root: fixture.root)
        try store.create("kept")
        try "mine".write(toFile: store.dataPath(of: "kept") + "/user-file", atomically: false, encoding: .utf8)
        var spec = fixture.spec(["true"])
        spec.mounts = [volumeMount("kept", "/srv/app"), volumeMount("nocopy", "/etc", noCopy: true)]
        let first = try Container.create(spec: spec, root: fixture.root)
        try first.remove(force: true)
        #expect(Self.names(store.dataPath(of: "kept")) == ["user-file"])
        #expect(Self.names(store.dataPath(of: "nocopy")).isEmpty)

        // Emptied by its user, a volume is filled again by the next container made with it, as
        // Docker does (it copies whenever the volume is empty at create).
        try FileManager.default.removeItem(atPath: store.dataPath(of: "kept") + "/user-file")
        spec.mounts = [volumeMount("kept", "/srv/app")]
        let second = try Container.create(spec: spec, root: fixture.root)
        try second.remove(force: true)
        #expect(Self.names(store.dataPath(of: "kept")) == ["image-file"])

        // A target that is missing, or a file, in the image: nothing to copy.
        spec.mounts = [volumeMount("missing", "/no/such/dir"), volumeMount("file", "/etc/passwd")]
        let third = try Container.create(spec: spec, root: fixture.root)
        try third.remove(force: true)
        #expect(Self.names(store.dataPath(of: "missing")).isEmpty)
        #expect(Self.names(store.dataPath(of: "file")).isEmpty)
    }

    @Test func linksAtOrAboveTheTargetResolveInsideTheImage() throws {
        // A host directory the image's links point at, by absolute and relative paths: it must
        // never be read, and nothing may be written outside the volume.
        let host = Self.temporaryRoot() + "-host"
        try FileManager.default.createDirectory(atPath: host + "/etc", withIntermediateDirectories: true)
        try "host secret".write(toFile: host + "/etc/host-only", atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: host) }
        let hostEtc = Self.names("/etc")
        let fixture = try RuntimeFixture(
            extraFiles: ["srv/inner/only-in-image": "image"],
            links: [
                "slash": "/", "up": "../../../../../..", "hostdir": host, "uphost": "../../../../.." + host,
                "srv/loop": "../srv/loop", "srv/inner/escape": "/etc",
            ])
        defer { fixture.cleanup() }
        let imageEtc = ["group", "passwd"]
        var spec = fixture.spec(["true"])
        spec.mounts = [
            volumeMount("viaslash", "/slash/etc"), volumeMount("viaup", "/up/etc"),
            volumeMount("viahost", "/hostdir/etc"), volumeMount("viauphost", "/uphost/etc"),
            volumeMount("whole", "/slash"), volumeMount("looped", "/srv/loop/x"),
            volumeMount("inner", "/up/srv/inner"),
        ]
        let container = try Container.create(spec: spec, root: fixture.root)
        defer { try? container.remove(force: true) }
        let store = VolumeStore(root: fixture.root)
        #expect(Self.names(store.dataPath(of: "viaslash")) == imageEtc)
        #expect(Self.names(store.dataPath(of: "viaup")) == imageEtc)
        #expect(try String(contentsOfFile: store.dataPath(of: "viaup") + "/group", encoding: .utf8).contains("staff"))
        // The host's directory is not the image's: nothing there.
        #expect(Self.names(store.dataPath(of: "viahost")).isEmpty)
        #expect(Self.names(store.dataPath(of: "viauphost")).isEmpty)
        // The image's root as a target (the mount is refused at start) copies nothing.
        #expect(Self.names(store.dataPath(of: "whole")).isEmpty)
        #expect(Self.names(store.dataPath(of: "looped")).isEmpty)
        // A link inside the copied tree is copied as a link, not followed.
        #expect(Self.names(store.dataPath(of: "inner")) == ["escape", "only-in-image"])
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: store.dataPath(of: "inner") + "/escape") == "/etc"
        )
        // Nothing written outside: the host's folders are as they were.
        #expect(Self.names(host) == ["etc"] && Self.names(host + "/etc") == ["host-only"])
        #expect(Self.names("/etc") == hostEtc)
        #expect(
            Self.names(store.directory)
                == [".lock", "inner", "looped", "viahost", "viaslash", "viaup", "viauphost", "whole"])
    }

    /// Layers made by hand: a whiteout (a 0:0 character device) and an opaque directory hide
    /// what lower layers have, as overlayfs shows the image to a container.
    @Test func copyUpSeesTheLayersAsOverlayfsDoes() throws {
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let lower = root + "/layers/1"
        let upper = root + "/layers/2"
        let fm = FileManager.default
        try fm.createDirectory(atPath: lower + "/srv/c", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: upper + "/srv/c", withIntermediateDirectories: true)
        for file in ["srv/a", "srv/b", "srv/c/x"] {
            try file.write(toFile: lower + "/" + file, atomically: false, encoding: .utf8)
        }
        try "new".write(toFile: upper + "/srv/c/y", atomically: false, encoding: .utf8)
        try "changed".write(toFile: upper + "/srv/a", atomically: false, encoding: .utf8)
        #expect(mknod(upper + "/srv/b", S_IFCHR, 0) == 0)
        try RuntimeFixture.capture([
            "/usr/bin/python3", "-c", "import os,sys; os.setxattr(sys.argv[1], 'trusted.overlay.opaque', b'y')",
            upper + "/srv/c",
        ])

        let store = VolumeStore(root: root)
        try store.create("layered")
        var spec = ContainerSpec(image: "layered", layerPaths: [lower, upper])
        spec.mounts = [volumeMount("layered", "/srv")]
        let started = Date()
        try VolumeCopyUp.populate(spec: spec, root: root)
        print("copy-up of a small directory: \(Int(Date().timeIntervalSince(started) * 1_000_000)) µs")
        let data = store.dataPath(of: "layered")
        #expect(Self.names(data) == ["a", "c"])
        #expect(Self.names(data + "/c") == ["y"])
        #expect(try String(contentsOfFile: data + "/a", encoding: .utf8) == "changed")
        // overlayfs's own attributes stay behind.
        let attributes = try RuntimeFixture.capture([
            "/usr/bin/python3", "-c", "import os,sys; print(os.listxattr(sys.argv[1]))", data + "/c",
        ])
        #expect(!attributes.contains("overlay"))
    }
}
