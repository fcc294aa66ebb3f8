import Foundation
import Testing

@testable import Images

/// Archives that try to write outside the layer directory. Each runs against a sentinel
/// directory in the test's own temp dir (standing in for /etc: a regression must not be able to
/// damage the host), which must come out exactly as it went in: names, types, modes, owners,
/// sizes, link counts, times, content.
@Suite struct HostileLayerTests {
    /// A scratch area with a sentinel directory holding `passwd`, and the store's path depth, so
    /// `..` chains can be aimed at the sentinel from inside the layer's work directory.
    final class Setup {
        let scratch: Scratch
        let store: ImageStore
        let sentinel: String
        /// From ROOT/images/tmp/layer-*/diff back up to the scratch directory.
        let upToScratch = "../../../../../"

        init() throws {
            scratch = try Scratch()
            store = try ImageStore(root: scratch.root)
            sentinel = scratch.dir + "/sentinel"
            try scratch.write("root:x:0:0:root:/root:/bin/sh\n", to: sentinel + "/passwd")
            mkdir(sentinel + "/sub", 0o755)
        }

        /// Imports `entries`; checks that the sentinel did not change and, when the import fails,
        /// that nothing is left in the store. Returns the error, or nil and the layer's path.
        @discardableResult
        func importHostile(
            _ name: String, _ entries: [TarEntry],
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws -> (Error?, String?) {
            let before = snapshot(sentinel)
            let tar = try scratch.makeTar(name + ".tar", entries)
            var result: (Error?, String?)
            do {
                result = (nil, try store.importRootfs(tarPath: tar, reference: name).layerPaths[0])
            } catch {
                result = (error, nil)
                let layers = directoryEntries(scratch.root + "/images/layers/sha256")
                #expect(layers.isEmpty, sourceLocation: sourceLocation)
            }
            #expect(snapshot(sentinel) == before, "\(name) changed the sentinel", sourceLocation: sourceLocation)
            #expect(directoryEntries(scratch.root + "/images/tmp").isEmpty, sourceLocation: sourceLocation)
            return result
        }
    }

    func reason(_ error: Error?) -> String? {
        guard case .unpack(_, _, let reason)? = error as? ImageStore.Error else { return nil }
        return reason
    }

    @Test func dotDotEntriesAreRefused() throws {
        let t = try Setup()
        let up = try t.importHostile("dots", [.file("../../x", "x")])
        #expect(reason(up.0) == "the path leaves the layer with '..'")
        let aimed = try t.importHostile("aimed", [.file(t.upToScratch + "sentinel/passwd", "pwned")])
        #expect(reason(aimed.0) == "the path leaves the layer with '..'")
        let hidden = try t.importHostile("hidden", [.file("a/./../../" + t.upToScratch + "sentinel/new", "x")])
        #expect(reason(hidden.0) == "the path leaves the layer with '..'")
        #expect(lstatOf(t.scratch.root + "/images/x") == nil && lstatOf(t.scratch.root + "/x") == nil)
    }

    @Test func anAbsoluteEntryLandsInsideTheLayer() throws {
        let t = try Setup()
        let (error, layer) = try t.importHostile(
            "absolute",
            [
                .file(t.sentinel + "/passwd", "pwned"),
                .file(t.sentinel + "/new", "new"),
            ])
        #expect(error == nil)
        let diff = try #require(layer)
        #expect(try String(contentsOfFile: diff + t.sentinel + "/passwd", encoding: .utf8) == "pwned")
        #expect(try String(contentsOfFile: diff + t.sentinel + "/new", encoding: .utf8) == "new")
    }

    @Test func entriesThroughASymlinkAreRefused() throws {
        let t = try Setup()
        let absolute = try t.importHostile("abs-link", [.symlink("a", to: t.sentinel), .file("a/passwd", "pwned")])
        #expect(reason(absolute.0) == "its parent a is a symlink or a file, not a directory")
        let relative = try t.importHostile(
            "rel-link",
            [
                .symlink("b", to: t.upToScratch + "sentinel"),
                .file("b/sub/new", "x"),
            ])
        #expect(reason(relative.0) == "its parent b is a symlink or a file, not a directory")
        let nested = try t.importHostile("nested", [.dir("d/"), .symlink("d/e", to: t.sentinel), .dir("d/e/sub/")])
        #expect(reason(nested.0) == "its parent e is a symlink or a file, not a directory")
        let whiteout = try t.importHostile("wh-link", [.symlink("a", to: t.sentinel), .file("a/.wh.passwd")])
        #expect(reason(whiteout.0) == "its parent a is a symlink or a file, not a directory")
        let opaque = try t.importHostile("opq-link", [.symlink("a", to: t.sentinel), .file("a/.wh..wh..opq")])
        #expect(reason(opaque.0) == "its parent a is a symlink or a file, not a directory")
        let linkInto = try t.importHostile(
            "link-into",
            [
                .file("f", "x"), .symlink("a", to: t.sentinel),
                .hardlink("a/new", to: "f"),
            ])
        #expect(reason(linkInto.0) == "its parent a is a symlink or a file, not a directory")
    }

    @Test func hardLinksOutOfTheLayerAreRefused() throws {
        let t = try Setup()
        // An absolute target names a file inside the layer, which this one does not have.
        let absolute = try t.importHostile("hard-abs", [.hardlink("x", to: t.sentinel + "/passwd")])
        #expect(reason(absolute.0) == "the hard link's target \(t.sentinel.dropFirst())/passwd is not in the layer")
        let dots = try t.importHostile("hard-dots", [.hardlink("x", to: t.upToScratch + "sentinel/passwd")])
        #expect(reason(dots.0) == "the path leaves the layer with '..'")
        let throughLink = try t.importHostile(
            "hard-through",
            [
                .symlink("d", to: t.sentinel),
                .hardlink("x", to: "d/passwd"),
            ])
        #expect(
            reason(throughLink.0)
                == "the hard link's target d/passwd: its parent d is a symlink or a file, not a directory")
    }

    /// What is allowed must still not reach out: a later entry replaces a symlink instead of
    /// writing through it, and a hard link to a symlink links the symlink itself.
    @Test func replacingOrLinkingASymlinkNeverFollowsIt() throws {
        let t = try Setup()
        let (error, layer) = try t.importHostile(
            "replace",
            [
                .symlink("file", to: t.sentinel + "/passwd"), .file("file", "mine"),
                .symlink("dir", to: t.sentinel), .dir("dir/"), .file("dir/passwd", "mine too"),
                .symlink("s", to: t.sentinel + "/passwd"), .hardlink("h", to: "s"),
            ])
        #expect(error == nil)
        let diff = try #require(layer)
        #expect(try String(contentsOfFile: diff + "/file", encoding: .utf8) == "mine")
        #expect(lstatOf(diff + "/dir").map { $0.st_mode & S_IFMT } == S_IFDIR)
        #expect(try String(contentsOfFile: diff + "/dir/passwd", encoding: .utf8) == "mine too")
        #expect(lstatOf(diff + "/h").map { $0.st_mode & S_IFMT } == S_IFLNK)
        #expect(lstatOf(diff + "/h")?.st_ino == lstatOf(diff + "/s")?.st_ino)
    }
}
