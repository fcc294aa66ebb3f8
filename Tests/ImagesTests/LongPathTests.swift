import Foundation
import Testing

@testable import Images

/// Layers holding paths longer than PATH_MAX (4096 bytes), which Docker and containerd unpack,
/// and the store's promise that no import, failed or killed, leaves anything in images/tmp.
@Suite struct LongPathTests {
    /// 30 directories of 200-byte names: 6030 bytes before the file's own name.
    let deepParts = longNames(30, length: 200)

    /// A layer with a file, a symlink and a whiteout at the bottom of `deepParts`, a directory
    /// mode to restore there, and a hard link at the top whose target is the deep file.
    func deepLayer(_ s: Scratch, name: String = "deep.tar", extra: [TarEntry] = []) throws -> String {
        var entries: [TarEntry] = []
        var path = ""
        for (i, part) in deepParts.enumerated() {
            path += part + "/"
            entries.append(.dir(path, mode: i == deepParts.count - 1 ? 0o750 : 0o755))
        }
        entries.append(.file(path + "deep.txt", "at the bottom\n", mode: 0o640))
        entries.append(.symlink(path + "link", to: "deep.txt"))
        entries.append(.file(path + ".wh.hidden"))
        entries.append(.hardlink("top-link", to: path + "deep.txt"))
        return try s.makeTar(name, entries + extra)
    }

    @Test func aLayerWithAPathLongerThanPATH_MAXImportsAndIsRemovedCompletely() throws {
        let s = try Scratch()
        let tar = try deepLayer(s)
        #expect(deepParts.joined(separator: "/").utf8.count > Int(PATH_MAX))

        let store = try ImageStore(root: s.root)
        let image = try store.importRootfs(tarPath: tar, reference: "deep")
        let diff = image.layerPaths[0]

        #expect(readDeep(diff, deepParts + ["deep.txt"]) == "at the bottom\n")
        let file = try #require(lstatDeep(diff, deepParts + ["deep.txt"]))
        #expect(file.st_mode & 0o7777 == 0o640)
        #expect(lstatOf(diff + "/top-link")?.st_ino == file.st_ino)
        let link = try #require(lstatDeep(diff, deepParts + ["link"]))
        #expect(link.st_mode & S_IFMT == S_IFLNK)
        let whiteout = try #require(lstatDeep(diff, deepParts + ["hidden"]))
        #expect(whiteout.st_mode & S_IFMT == S_IFCHR && whiteout.st_rdev == 0)
        #expect(lstatDeep(diff, deepParts).map { $0.st_mode & 0o7777 } == 0o750)
        #expect(lstatDeep(diff, deepParts)?.st_mtim.tv_sec == 1_700_000_000)
        #expect(directoryEntries(s.root + "/images/tmp").isEmpty)

        let removal = try store.remove("deep")
        #expect(removal.untagged == ["deep:latest"])
        #expect(removal.deleted == [image.id])
        #expect(directoryEntries(s.root + "/images/layers/sha256").isEmpty)
        #expect(directoryEntries(s.root + "/images/tmp").isEmpty)
        #expect(directoryEntries(s.root + "/images/blobs/sha256").isEmpty)
    }

    /// Deeper than the unpacker keeps descriptors for (64 levels), with entries that jump back up
    /// and down again, so the walk reopens directories instead of reusing cached ones.
    @Test func aChainDeeperThanTheCachedDescriptorsUnpacksAndIsRemoved() throws {
        let s = try Scratch()
        let parts = longNames(150, length: 40)
        var entries: [TarEntry] = []
        for depth in [149, 10, 100, 64, 65, 149] {
            let dir = parts.prefix(depth).joined(separator: "/")
            entries.append(.file(dir + "/file-\(depth)-\(entries.count)", "depth \(depth)"))
        }
        let store = try ImageStore(root: s.root)
        let image = try store.importRootfs(tarPath: try s.makeTar("chain.tar", entries), reference: "chain")
        for (i, depth) in [149, 10, 100, 64, 65, 149].enumerated() {
            let file = Array(parts.prefix(depth)) + ["file-\(depth)-\(i)"]
            #expect(readDeep(image.layerPaths[0], file) == "depth \(depth)")
        }
        try store.remove("chain")
        #expect(directoryEntries(s.root + "/images/layers/sha256").isEmpty)
        #expect(directoryEntries(s.root + "/images/tmp").isEmpty)
    }

    @Test func aFailedImportLeavesNothingInTmp() throws {
        let s = try Scratch()
        let store = try ImageStore(root: s.root)
        func expectNothingLeft(_ what: String) throws {
            #expect(directoryEntries(s.root + "/images/tmp").isEmpty, "\(what) left work in tmp/")
            #expect(directoryEntries(s.root + "/images/layers/sha256").isEmpty, "\(what) left a layer")
            #expect(directoryEntries(s.root + "/images/blobs/sha256").isEmpty, "\(what) left a blob")
            #expect(try store.readIndex().manifests.isEmpty)
        }

        // Cut in the middle of a file's data, after the deep tree was made.
        let big = TarEntry.file(deepParts.joined(separator: "/") + "/big", String(repeating: "z", count: 200_000))
        let truncated = try deepLayer(s, name: "truncated.tar", extra: [big])
        let size = try FileManager.default.attributesOfItem(atPath: truncated)[.size] as! Int
        #expect(truncate(truncated, off_t(size - 150_000)) == 0)
        #expect(throws: ImageStore.Error.self) { try store.importRootfs(tarPath: truncated, reference: "cut") }
        try expectNothingLeft("a truncated tar")

        // Compressed data that ends early, once the deep tree is on disk. (Incompressible content,
        // so that cutting the file in half cuts into it.)
        var seed: UInt64 = 42
        let noise = String(
            (0..<200_000).map { _ -> Character in
                seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Character(UnicodeScalar(UInt8(33 + (seed >> 33) % 90)))
            })
        let whole = try deepLayer(s, name: "whole.tar", extra: [.file("noise", noise)])
        let gzipped = s.dir + "/cut.tar.gz"
        try s.run("/bin/sh", ["-c", "gzip -c '\(whole)' > '\(gzipped)'"])
        let gzipSize = try FileManager.default.attributesOfItem(atPath: gzipped)[.size] as! Int
        #expect(truncate(gzipped, off_t(gzipSize / 2)) == 0)
        #expect(throws: ImageStore.Error.self) { try store.importRootfs(tarPath: gzipped, reference: "gz") }
        try expectNothingLeft("a truncated gzip")

        // An entry refused after the deep tree was made.
        let refused = try deepLayer(s, name: "refused.tar", extra: [.file("../escape", "x")])
        do {
            _ = try store.importRootfs(tarPath: refused, reference: "refused")
            Issue.record("the import should fail")
        } catch {
            #expect("\(error)" == "cannot unpack \(refused): entry ../escape: the path leaves the layer with '..'")
        }
        try expectNothingLeft("a refused entry")
    }

    @Test func garbageCollectionRemovesWhatAKilledImportLeftInTmp() throws {
        let s = try Scratch()
        let store = try ImageStore(root: s.root)
        let tmp = s.root + "/images/tmp"
        // What an import killed mid-unpack leaves: its layer work directory, deep, and its blob.
        #expect(mkdir(tmp + "/layer-999999-killed", 0o755) == 0)
        try makeDeepTree(tmp + "/layer-999999-killed", ["diff"] + deepParts, file: "half", content: "written")
        try s.write("partial blob", to: tmp + "/blob-999999-killed")

        // A live import holds gc.lock shared: the collection waits for it to finish.
        let importer = try FileLock(path: s.root + "/images/gc.lock", exclusive: false)
        let collected = DispatchSemaphore(value: 0)
        let errors = ErrorBox()
        Thread.detachNewThread {
            do { try store.collectGarbage() } catch { errors.append(error) }
            collected.signal()
        }
        #expect(collected.wait(timeout: .now() + 0.3) == .timedOut)
        #expect(directoryEntries(tmp) == ["blob-999999-killed", "layer-999999-killed"])

        importer.unlock()
        #expect(collected.wait(timeout: .now() + 30) == .success)
        #expect(errors.all.isEmpty, "\(errors.all)")
        #expect(directoryEntries(tmp).isEmpty)
    }

    /// A layer directory that cannot be deleted is reported, not counted as deleted; the next
    /// collection finishes the job once it can.
    @Test func aLayerThatCannotBeRemovedIsAnError() throws {
        let s = try Scratch()
        let store = try ImageStore(root: s.root)
        let image = try store.importRootfs(tarPath: try deepLayer(s), reference: "stuck")
        // An immutable file (chattr +i) refuses unlink even to root.
        let stuck = image.layerPaths[0] + "/top-link"
        guard (try? s.run("/usr/bin/chattr", ["+i", stuck])) != nil else { return }  // no chattr support here
        var leftovers: [String] = []
        defer { for path in leftovers { _ = try? s.run("/usr/bin/chattr", ["-i", path]) } }
        leftovers.append(stuck)

        do {
            try store.remove("stuck")
            Issue.record("removing an image whose layer stays must fail")
        } catch let error as ImageStore.Error {
            guard case .contentKept(let name, let reason) = error else { throw error }
            #expect(name == "stuck")
            #expect(reason.contains("top-link") && reason.contains("Operation not permitted"), "\(reason)")
        }
        // The layer left layers/ whole (an import never finds half of it there); what stays is in tmp/.
        #expect(directoryEntries(s.root + "/images/layers/sha256").isEmpty)
        let tmp = s.root + "/images/tmp"
        let moved = directoryEntries(tmp)
        #expect(moved.count == 1 && moved[0].hasPrefix("removing-layer-"))
        leftovers = moved.map { tmp + "/" + $0 + "/diff/top-link" }

        #expect(try store.collectGarbage().kept.count == 1)
        for path in leftovers { try s.run("/usr/bin/chattr", ["-i", path]) }
        leftovers = []
        let report = try store.collectGarbage()
        #expect(report.kept.isEmpty)
        #expect(directoryEntries(tmp).isEmpty)
    }
}
