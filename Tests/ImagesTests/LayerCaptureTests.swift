import Foundation
import Support
import Testing

@testable import Images

/// One member of a tar as python3's tarfile reads it.
private struct ListedEntry: Decodable {
    var name: String
    var type: String
    var mode: Int
    var uid: Int
    var gid: Int
    var uname: String
    var gname: String
    var mtime: Double
    var linkname: String
    var size: Int
    var pax: [String: String]
}

extension Scratch {
    /// The members of `tar`, in order, with their pax records.
    fileprivate func listTar(_ tar: String) throws -> [ListedEntry] {
        let script = """
            import json, sys, tarfile
            types = {tarfile.REGTYPE: "file", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink",
                     tarfile.LNKTYPE: "hardlink", tarfile.FIFOTYPE: "fifo", tarfile.CHRTYPE: "chr"}
            out = []
            with tarfile.open(sys.argv[1], "r:", encoding="utf-8", errors="surrogateescape") as t:
                for m in t.getmembers():
                    out.append({"name": m.name, "type": types.get(m.type, repr(m.type)), "mode": m.mode,
                                "uid": m.uid, "gid": m.gid, "uname": m.uname, "gname": m.gname,
                                "mtime": m.mtime, "linkname": m.linkname, "size": m.size,
                                "pax": {k: v.encode("utf-8", "surrogateescape").hex() for k, v in m.pax_headers.items()}})
            print(json.dumps(out))
            """
        let path = dir + "/list-tar.py"
        try Data(script.utf8).write(to: URL(fileURLWithPath: path))
        return try JSONDecoder().decode([ListedEntry].self, from: Data(run("/usr/bin/python3", [path, tar]).utf8))
    }
}

private func setXattr(_ path: String, _ name: String, _ value: String) {
    #expect(XAttr.set(path: path, name, Array(value.utf8)) == 0, "setting \(name) on \(path)")
}

private func hex(_ text: String) -> String {
    text.utf8.map { String(format: "%02x", $0) }.joined()
}

/// Unpacks a stored layer blob into a new directory, as a pull of the layer would.
private func unpackBlob(_ store: ImageStore, _ digest: String, into directory: String) throws {
    mkdir(directory, 0o755)
    let fd = open(directory, O_RDONLY | O_DIRECTORY)
    defer { close(fd) }
    _ = try LayerUnpacker.unpack(blobPath: store.blobPath(digest), into: fd, displayName: digest)
}

/// `snapshot` without the root (made by whoever made the directory) and without the times of
/// whiteouts (made when they are unpacked; the tar has a file in their place).
private func comparable(_ directory: String) -> [String: String] {
    var result = snapshot(directory)
    result["."] = nil
    for (key, line) in result where line.hasPrefix("type=\(S_IFCHR) ") && line.contains("size=0 ") {
        result[key] = line.replacing(#/mtime=[0-9.]+ /#, with: "")
    }
    return result
}

@Suite struct LayerCaptureTests {
    /// An upper directory with one of everything a build step leaves.
    private func makeUpper(_ s: Scratch, _ name: String) throws -> String {
        let upper = try s.staging(name)
        try s.write("hello", to: upper + "/b/file", mode: 0o640)
        #expect(chown(upper + "/b/file", 1000, 1001) == 0)
        setXattr(upper + "/b/file", "user.note", "kept")
        setXattr(upper + "/b/file", "trusted.overlay.origin", "overlay bookkeeping")
        #expect(link(upper + "/b/file", upper + "/b/hard") == 0)
        try s.write("inside", to: upper + "/a/inner")
        setXattr(upper + "/a", "trusted.overlay.opaque", "y")
        #expect(symlink("b/file", upper + "/link") == 0)
        #expect(mkfifo(upper + "/fifo", 0o600) == 0)
        #expect(mknod(upper + "/gone", S_IFCHR | 0o000, 0) == 0)
        #expect(mknod(upper + "/null", S_IFCHR | 0o666, UInt((1 << 8) | 3)) == 0)
        return upper
    }

    @Test func captureWritesASortedTarWithWhiteoutsAndMovesTheDirectoryIntoTheStore() throws {
        let s = try Scratch()
        let store = try ImageStore(root: s.root)
        let upper = try makeUpper(s, "upper")

        let layer = try store.captureLayer(directory: upper)

        #expect(!FileManager.default.fileExists(atPath: upper))
        let diff = store.layerPath(layer.diffID)
        #expect(diff == s.root + "/images/layers/sha256/" + layer.diffID.dropFirst(7) + "/diff")
        #expect(try String(contentsOfFile: diff + "/b/file", encoding: .utf8) == "hello")
        #expect(store.layerSize(layer.diffID) == layer.size)
        // The blob is the tar itself, named by the diff ID.
        let blob = store.blobPath(layer.diffID)
        #expect(try sha256(ofFile: blob) == layer.diffID)
        #expect(Int64(lstatOf(blob)!.st_size) == layer.size)
        #expect(directoryEntries(s.root + "/images/tmp").isEmpty)

        let entries = try s.listTar(blob)
        #expect(
            entries.map(\.name) == [
                "a", "a/.wh..wh..opq", "a/inner", "b", "b/file", "b/hard", "fifo", ".wh.gone", "link", "null",
            ])
        let byName = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
        #expect(byName["a"]?.type == "dir")
        #expect(byName["b/file"]?.type == "file" && byName["b/file"]?.size == 5)
        #expect(byName["b/file"]?.mode == 0o640 && byName["b/file"]?.uid == 1000 && byName["b/file"]?.gid == 1001)
        #expect(byName["b/hard"]?.type == "hardlink" && byName["b/hard"]?.linkname == "b/file")
        #expect(byName["link"]?.type == "symlink" && byName["link"]?.linkname == "b/file")
        #expect(byName["fifo"]?.type == "fifo")
        #expect(byName["null"]?.type == "chr")
        #expect(byName[".wh.gone"]?.type == "file" && byName[".wh.gone"]?.size == 0)
        for entry in entries {
            #expect(entry.uname.isEmpty && entry.gname.isEmpty, "\(entry.name) has owner names")
            #expect(entry.pax["atime"] == nil && entry.pax["ctime"] == nil, "\(entry.name) has atime/ctime")
            #expect(!entry.pax.keys.contains { $0.hasPrefix("LIBARCHIVE.") }, "\(entry.name): \(entry.pax.keys)")
            #expect(!entry.pax.keys.contains { $0.contains("trusted.overlay") }, "\(entry.name): \(entry.pax.keys)")
        }
        #expect(byName["b/file"]?.pax["SCHILY.xattr.user.note"] == hex("kept"))

        // The stored directory is what unpacking the tar gives: overlay bookkeeping gone, the
        // opaque mark kept, whole-second times.
        #expect(getXattr(diff + "/b/file", "trusted.overlay.origin") == nil)
        #expect(getXattr(diff + "/b/file", "user.note") == "kept")
        #expect(getXattr(diff + "/a", "trusted.overlay.opaque") == "y")
        let unpacked = s.dir + "/unpacked"
        try unpackBlob(store, layer.diffID, into: unpacked)
        #expect(comparable(diff) == comparable(unpacked))
    }

    @Test func timesAreClampedToTheEpochSoEqualTreesGiveOneLayer() throws {
        let s = try Scratch()
        let store = try ImageStore(root: s.root)
        let epoch: Int64 = 1_600_000_000
        var trees: [String] = []
        for (i, offset) in [100, 5000].enumerated() {
            let upper = try s.staging("upper\(i)")
            try s.write("same", to: upper + "/dir/new")
            try s.write("old", to: upper + "/dir/old")
            var newer = [
                timespec(tv_sec: time_t(epoch) + offset, tv_nsec: 123),
                timespec(tv_sec: time_t(epoch) + offset, tv_nsec: 456),
            ]
            var older = [timespec(tv_sec: 1_500_000_000, tv_nsec: 0), timespec(tv_sec: 1_500_000_000, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, upper + "/dir/new", &newer, 0) == 0)
            #expect(utimensat(AT_FDCWD, upper + "/dir/old", &older, 0) == 0)
            #expect(utimensat(AT_FDCWD, upper + "/dir", &newer, 0) == 0)
            trees.append(upper)
        }

        let first = try store.captureLayer(directory: trees[0], sourceDateEpoch: epoch)
        let inode = lstatOf(store.layerPath(first.diffID))!.st_ino
        let entries = try s.listTar(store.blobPath(first.diffID))
        #expect(entries.map(\.name) == ["dir", "dir/new", "dir/old"])
        #expect(entries.map { Int64($0.mtime) } == [epoch, epoch, 1_500_000_000])
        #expect(lstatOf(store.layerPath(first.diffID) + "/dir/new")!.st_mtim.tv_sec == time_t(epoch))

        // The same tree again (other times, all past the epoch): the same layer, and the new
        // directory goes, the stored one stays.
        let second = try store.captureLayer(directory: trees[1], sourceDateEpoch: epoch)
        #expect(second == first)
        #expect(!FileManager.default.fileExists(atPath: trees[1]))
        #expect(lstatOf(store.layerPath(first.diffID))!.st_ino == inode)
        #expect(directoryEntries(s.root + "/images/layers/sha256").count == 1)
        #expect(directoryEntries(s.root + "/images/tmp").isEmpty)

        // Without the epoch the times are the files' own.
        let third = try store.captureLayer(directory: try makeCopy(s, "upper2", mtime: epoch + 100))
        #expect(third.diffID != first.diffID)
    }

    private func makeCopy(_ s: Scratch, _ name: String, mtime: Int64) throws -> String {
        let upper = try s.staging(name)
        try s.write("same", to: upper + "/dir/new")
        var times = [timespec(tv_sec: time_t(mtime), tv_nsec: 0), timespec(tv_sec: time_t(mtime), tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, upper + "/dir/new", &times, 0) == 0)
        return upper
    }

    /// A real overlay's upper directory (shared whiteouts, origin/impure/uuid attributes), and
    /// the layer it becomes stacked on the same lower layer: the view the overlay had.
    @Test func aRealOverlayUpperDirectoryStacksBackToTheSameView() throws {
        let s = try Scratch()
        let store = try ImageStore(root: s.root)
        let lower = try s.staging("lower")
        try s.write("a", to: lower + "/dir/a")
        try s.write("f", to: lower + "/file")
        try s.write("k\n", to: lower + "/keep/k")
        let upper = try s.staging("upper")
        let work = try s.staging("work")
        let merged = try s.staging("merged")
        do {
            try s.run(
                "/bin/mount",
                [
                    "-t", "overlay", "overlay", "-o",
                    "lowerdir=\(lower),upperdir=\(upper),workdir=\(work),redirect_dir=off,metacopy=off", merged,
                ])
        } catch {
            return  // no overlayfs here: the other tests cover the format
        }
        try s.run(
            "/bin/sh", ["-ec", "cd '\(merged)'; rm file; rm -r dir; mkdir dir; echo n > dir/n; echo x >> keep/k"])
        try s.run("/bin/umount", [merged])

        let layer = try store.captureLayer(directory: upper)
        #expect(
            try s.listTar(store.blobPath(layer.diffID)).map(\.name) == [
                "dir", "dir/.wh..wh..opq", "dir/n", ".wh.file", "keep", "keep/k",
            ])
        try s.run(
            "/bin/mount",
            ["-t", "overlay", "overlay", "-o", "lowerdir=\(store.layerPath(layer.diffID)):\(lower)", merged])
        defer { _ = try? s.run("/bin/umount", [merged]) }
        #expect(directoryEntries(merged) == ["dir", "keep"])
        #expect(directoryEntries(merged + "/dir") == ["n"])
        #expect(try String(contentsOfFile: merged + "/keep/k", encoding: .utf8) == "k\nx\n")
    }

    @Test func anOpaqueRootHidesEverythingBelow() throws {
        let s = try Scratch()
        let store = try ImageStore(root: s.root)
        let upper = try s.staging("upper")
        try s.write("new", to: upper + "/file")
        setXattr(upper, "trusted.overlay.opaque", "y")
        setXattr(upper, "trusted.overlay.impure", "y")
        let layer = try store.captureLayer(directory: upper)
        #expect(try s.listTar(store.blobPath(layer.diffID)).map(\.name) == [".wh..wh..opq", "file"])
        #expect(getXattr(store.layerPath(layer.diffID), "trusted.overlay.opaque") == "y")
        #expect(getXattr(store.layerPath(layer.diffID), "trusted.overlay.impure") == nil)
    }

    @Test func anEmptyDirectoryIsTheEmptyLayer() throws {
        let s = try Scratch()
        let store = try ImageStore(root: s.root)
        let layer = try store.captureLayer(directory: try s.staging("empty"))
        // 1024 zero bytes, the empty layer every tool writes.
        #expect(
            layer
                == BuiltLayer(
                    diffID: "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef", size: 1024))
        #expect(directoryEntries(store.layerPath(layer.diffID)).isEmpty)
    }

    @Test func pathsLongerThanPathMaxAndNamesThatAreNotUTF8AreCaptured() throws {
        let s = try Scratch()
        let store = try ImageStore(root: s.root)
        let upper = try s.staging("upper")
        let parts = longNames(20, length: 250)
        try makeDeepTree(upper, parts, file: "bottom", content: "deep")
        let odd = open(upper + "/caf\u{e9}", O_WRONLY | O_CREAT, 0o644)
        close(odd)
        // "\xff" on its own is no UTF-8.
        let raw = [CChar](Array(upper.utf8).map { CChar(bitPattern: $0) } + [47, 120, -1, 0])
        close(open(raw, O_WRONLY | O_CREAT, 0o644))

        let layer = try store.captureLayer(directory: upper)
        let unpacked = s.dir + "/unpacked"
        try unpackBlob(store, layer.diffID, into: unpacked)
        #expect(readDeep(unpacked, parts + ["bottom"]) == "deep")
        #expect(readDeep(store.layerPath(layer.diffID), parts + ["bottom"]) == "deep")
        #expect(directoryEntries(unpacked).count == 3)
        var st = stat()
        let rawUnpacked = [CChar](Array(unpacked.utf8).map { CChar(bitPattern: $0) } + [47, 120, -1, 0])
        #expect(lstat(rawUnpacked, &st) == 0)
    }

    @Test func aRedirectOrMetacopyIsRefusedAndTheDirectoryStays() throws {
        let s = try Scratch()
        let store = try ImageStore(root: s.root)
        for attribute in ["redirect", "metacopy"] {
            let upper = try s.staging("upper-\(attribute)")
            try s.write("x", to: upper + "/moved/file")
            setXattr(upper + "/moved", "trusted.overlay.\(attribute)", "/elsewhere")
            #expect {
                _ = try store.captureLayer(directory: upper)
            } throws: { error in
                "\(error)".contains("trusted.overlay.\(attribute)") && "\(error)".contains("entry moved")
            }
            #expect(FileManager.default.fileExists(atPath: upper + "/moved/file"))
        }
        #expect(directoryEntries(s.root + "/images/layers/sha256").isEmpty)
        #expect(directoryEntries(s.root + "/images/tmp").isEmpty)
    }

    @Test func commitsChainImagesAndTheBuildCacheKeepsThemUntilPruned() throws {
        let s = try Scratch()
        let store = try ImageStore(root: s.root)
        let created = "2024-01-02T03:04:05Z"

        let upper1 = try s.staging("upper1")
        try s.write("one", to: upper1 + "/one")
        let layer1 = try store.captureLayer(directory: upper1, sourceDateEpoch: 1_700_000_000)
        let base = try store.commitImage(
            parent: nil, layer: layer1, config: ImageConfig(cmd: ["sh"]),
            history: HistoryEntry(createdBy: "COPY one /one # buildkit"), created: created, cacheKey: "step-1",
            tags: ["app:v1"])
        #expect(base.reference == "app:v1")
        #expect(base.diffIDs == [layer1.diffID])
        #expect(base.layerPaths == [store.layerPath(layer1.diffID)])
        #expect(base.created == Timestamp.parse(created))
        let baseConfig = try store.imageConfig(base.id)
        #expect(baseConfig.created == created && baseConfig.history?.first?.created == created)
        #expect(baseConfig.os == "linux" && baseConfig.architecture == ImageStore.hostArchitecture)
        #expect(try store.manifest(base.manifestDigest).layers.map(\.mediaType) == [MediaType.layerTar])

        let child = try store.commitImage(
            parent: base, layer: nil, config: ImageConfig(cmd: ["sh"], env: ["A=b"]),
            history: HistoryEntry(createdBy: "ENV A=b", comment: "buildkit.dockerfile.v0"), created: created,
            cacheKey: "step-2")
        #expect(child.reference == "")
        #expect(child.diffIDs == base.diffIDs)
        #expect(child.config.env == ["A=b"])
        let history = try #require(try store.imageConfig(child.id).history)
        #expect(history.map(\.createdBy) == ["COPY one /one # buildkit", "ENV A=b"])
        #expect(history.map(\.emptyLayer) == [nil, true])
        #expect(history[1].comment == "buildkit.dockerfile.v0")
        // Deterministic: the same commit gives the same image.
        let again = try store.commitImage(
            parent: base, layer: nil, config: ImageConfig(cmd: ["sh"], env: ["A=b"]),
            history: HistoryEntry(createdBy: "ENV A=b", comment: "buildkit.dockerfile.v0"), created: created)
        #expect(again.manifestDigest == child.manifestDigest && again.id == child.id)
        // Named by nothing, it is leased until tagged.
        #expect(directoryEntries(s.root + "/images/leases") == ["image-\(again.manifestDigest.dropFirst(7)).json"])

        // The cache finds it; image ls does not list it.
        #expect(store.cachedImage(key: "step-2")?.manifestDigest == child.manifestDigest)
        #expect(store.cachedImage(key: "step-2")?.layerPaths == base.layerPaths)
        #expect(store.cachedImage(key: "missing") == nil)
        #expect(store.cachedImage(key: "../index") == nil)
        #expect(throws: ImageStore.Error.invalidCacheKey("a/b")) {
            _ = try store.commitImage(
                parent: nil, layer: nil, config: ImageConfig(), history: HistoryEntry(createdBy: "x"),
                created: created, cacheKey: "a/b")
        }
        #expect(try store.list().map(\.reference) == ["app:v1"])

        // Moving the tag to the cached child leaves the base dangling, and its history shows.
        try store.tagImage(child, as: ["app:v1", "app:latest"])
        #expect(directoryEntries(s.root + "/images/leases").isEmpty)
        let listed = try store.list()
        #expect(Set(listed.map(\.reference)) == ["app:v1", "app:latest", ""])
        #expect(listed.first { $0.reference == "" }?.id == base.id)
        #expect(try store.image("app:v1").id == child.id)
        let steps = try store.history("app:latest").steps
        #expect(steps.map(\.createdBy) == ["COPY one /one # buildkit", "ENV A=b"])
        #expect(steps.map(\.emptyLayer) == [false, true])
        #expect(steps[1].size == 0 && steps[0].size == layer1.size)
        #expect(steps[1].comment == "buildkit.dockerfile.v0")

        // A layer only the cache names survives garbage collection and image prune.
        let upper2 = try s.staging("upper2")
        try s.write("two", to: upper2 + "/two")
        let layer2 = try store.captureLayer(directory: upper2)
        let grandchild = try store.commitImage(
            parent: child, layer: layer2, config: child.config, history: HistoryEntry(createdBy: "RUN make"),
            created: created, cacheKey: "step-3")
        #expect(grandchild.diffIDs == [layer1.diffID, layer2.diffID])
        #expect(directoryEntries(s.root + "/images/leases").isEmpty)
        // A cache entry whose manifest is gone goes with the next collection.
        try Data(#"{"manifest":"sha256:\#(String(repeating: "0", count: 64))"}"#.utf8)
            .write(to: URL(fileURLWithPath: s.root + "/images/buildcache/stale.json"))
        try store.collectGarbage()
        #expect(!FileManager.default.fileExists(atPath: s.root + "/images/buildcache/stale.json"))
        #expect(FileManager.default.fileExists(atPath: store.layerPath(layer2.diffID)))
        #expect(store.cachedImage(key: "step-3")?.diffIDs == grandchild.diffIDs)

        let mount = s.root + "/builder/cache-mounts/go-build"
        try s.write(String(repeating: "x", count: 100), to: mount + "/deep/file")
        let usage = try store.buildCacheUsage()
        #expect(usage.entries == 4)
        #expect(usage.size == layer2.size + 100)

        let pruned = try store.prune(all: true, inUse: [])
        #expect(!pruned.untagged.isEmpty)
        #expect(try store.list().isEmpty)
        #expect(store.cachedImage(key: "step-1")?.id == base.id)
        #expect(store.cachedImage(key: "step-3") != nil)
        #expect(FileManager.default.fileExists(atPath: store.layerPath(layer1.diffID)))
        #expect(try store.buildCacheUsage().size == layer1.size + layer2.size + 100)

        let reclaimed = try store.pruneBuildCache()
        #expect(reclaimed == layer1.size + layer2.size + 100)
        #expect(store.cachedImage(key: "step-1") == nil)
        #expect(directoryEntries(s.root + "/images/buildcache").isEmpty)
        #expect(directoryEntries(s.root + "/builder/cache-mounts").isEmpty)
        #expect(directoryEntries(s.root + "/images/layers/sha256").isEmpty)
        #expect(directoryEntries(s.root + "/images/blobs/sha256").isEmpty)
        let empty = try store.buildCacheUsage()
        #expect(empty.entries == 0 && empty.size == 0)
    }

    @Test func pruneWithoutAllKeepsTheEntriesOfNamedImages() throws {
        let s = try Scratch()
        let store = try ImageStore(root: s.root)
        let upper = try s.staging("upper")
        try s.write("one", to: upper + "/one")
        let layer = try store.captureLayer(directory: upper)
        let named = try store.commitImage(
            parent: nil, layer: layer, config: ImageConfig(), history: HistoryEntry(createdBy: "COPY"),
            created: "2024-01-02T03:04:05Z", cacheKey: "named", tags: ["named"])
        _ = try store.commitImage(
            parent: named, layer: nil, config: ImageConfig(env: ["X=1"]), history: HistoryEntry(createdBy: "ENV"),
            created: "2024-01-02T03:04:05Z", cacheKey: "intermediate")
        #expect(try store.pruneBuildCache(all: false) == 0)
        #expect(store.cachedImage(key: "named")?.id == named.id)
        #expect(store.cachedImage(key: "intermediate") == nil)
    }

    @Test func imageConfigKeepsDockersOtherFields() throws {
        let json = """
            {"Cmd":["sh"],"Volumes":{"/data":{},"/cache":{}},"Shell":["/bin/bash","-c"],"OnBuild":["RUN make"],
             "ArgsEscaped":true,"Healthcheck":{"Test":["CMD-SHELL","curl -f localhost"],"Interval":30000000000,
             "Timeout":5000000000,"StartPeriod":1000000000,"StartInterval":2000000000,"Retries":3}}
            """
        let config = try JSONDecoder().decode(ImageConfig.self, from: Data(json.utf8))
        #expect(config.volumes == ["/cache", "/data"])
        #expect(config.shell == ["/bin/bash", "-c"])
        #expect(config.onBuild == ["RUN make"])
        #expect(config.argsEscaped == true)
        #expect(
            config.healthcheck
                == ImageHealthcheck(
                    test: ["CMD-SHELL", "curl -f localhost"], interval: 30_000_000_000, timeout: 5_000_000_000,
                    startPeriod: 1_000_000_000, startInterval: 2_000_000_000, retries: 3))
        let encoded = String(decoding: try JSON.encode(config), as: UTF8.self)
        #expect(
            encoded
                == #"{"ArgsEscaped":true,"Cmd":["sh"],"Healthcheck":{"Interval":30000000000,"Retries":3,"#
                + #""StartInterval":2000000000,"StartPeriod":1000000000,"Test":["CMD-SHELL","curl -f localhost"],"#
                + #""Timeout":5000000000},"OnBuild":["RUN make"],"Shell":["/bin/bash","-c"],"#
                + #""Volumes":{"/cache":{},"/data":{}}}"#)
        #expect(try JSONDecoder().decode(ImageConfig.self, from: JSON.encode(config)) == config)
        // A HEALTHCHECK that only changes timings has no Test.
        let timings = try JSONDecoder().decode(ImageHealthcheck.self, from: Data(#"{"Interval":1}"#.utf8))
        #expect(timings.test.isEmpty && timings.interval == 1)
        #expect(String(decoding: try JSON.encode(timings), as: UTF8.self) == #"{"Interval":1}"#)
    }
}
