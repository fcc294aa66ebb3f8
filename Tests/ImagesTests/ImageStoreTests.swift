import Crypto
import Foundation
import Support
import Testing

@testable import Images

/// A fresh state root and staging area for one test, removed on deinit even when the test fails.
final class Scratch {
    let dir: String
    var root: String { dir + "/root" }

    init() throws {
        dir = NSTemporaryDirectory() + "berth-images-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/root", withIntermediateDirectories: true)
    }

    // FileManager cannot remove trees deeper than PATH_MAX, which some tests make.
    deinit { try? TreeRemoval.remove(path: dir) }

    /// A staging directory `name` to fill and tar up.
    func staging(_ name: String) throws -> String {
        let path = dir + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func write(_ text: String, to path: String, mode: Int = 0o644) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode_t(mode))
    }

    /// Tars `directory`'s contents with GNU tar (numeric owners, xattrs), optionally gzipped.
    func tar(_ directory: String, name: String, gzip: Bool = false) throws -> String {
        let out = dir + "/" + name
        try run(
            "/bin/tar",
            ["--numeric-owner", "--xattrs", "--xattrs-include=*", gzip ? "-czf" : "-cf", out, "-C", directory, "."])
        return out
    }

    @discardableResult
    func run(_ tool: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: output, as: UTF8.self)
        if p.terminationStatus != 0 { throw ToolFailed(command: ([tool] + args).joined(separator: " "), output: text) }
        return text
    }

    struct ToolFailed: Error, CustomStringConvertible {
        var command: String
        var output: String
        var description: String { "\(command) failed: \(output)" }
    }
}

func sha256(ofFile path: String) throws -> String {
    "sha256:"
        + SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).map { String(format: "%02x", $0) }
        .joined()
}

func lstatOf(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}

func directoryEntries(_ path: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
}

/// getxattr(2), looked up at run time because Glibc does not export <sys/xattr.h>.
func getXattr(_ path: String, _ name: String) -> String? {
    typealias Fn = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "lgetxattr") else { return nil }
    let fn = unsafeBitCast(sym, to: Fn.self)
    var buffer = [UInt8](repeating: 0, count: 256)
    let n = buffer.withUnsafeMutableBytes { fn(path, name, $0.baseAddress, $0.count) }
    return n < 0 ? nil : String(decoding: buffer.prefix(n), as: UTF8.self)
}

@Suite struct ImageStoreTests {
    @Test func importPlainTarWritesAnOCILayoutAndPreservesFileMetadata() throws {
        let s = try Scratch()
        let rootfs = try s.staging("rootfs")
        try s.write("#!/bin/sh\necho hi\n", to: rootfs + "/bin/hello", mode: 0o755)
        try s.write("secret", to: rootfs + "/etc/shadow", mode: 0o640)
        #expect(chown(rootfs + "/etc/shadow", 1234, 5678) == 0)
        #expect(symlink("bin/hello", rootfs + "/hello-link") == 0)
        #expect(link(rootfs + "/bin/hello", rootfs + "/bin/hello-hard") == 0)
        #expect(mknod(rootfs + "/etc/null-dev", S_IFCHR | 0o666, UInt((1 << 8) | 3)) == 0)
        mkdir(rootfs + "/tmp", 0o777)
        chmod(rootfs + "/tmp", 0o1777)
        let tarPath = try s.tar(rootfs, name: "rootfs.tar")

        let store = try ImageStore(root: s.root)
        let image = try store.importRootfs(tarPath: tarPath, reference: "plain-test:v1")

        #expect(image.reference == "plain-test:v1")
        #expect(image.id.hasPrefix("sha256:") && image.id.count == 71)
        #expect(image.layerPaths.count == 1)
        #expect(image.size == Int64(try FileManager.default.attributesOfItem(atPath: tarPath)[.size] as! UInt64))
        #expect(abs(image.created!.timeIntervalSinceNow) < 600)

        let images = s.root + "/images"
        let layout =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: images + "/oci-layout")))
            as! [String: Any]
        #expect(layout["imageLayoutVersion"] as? String == "1.0.0")
        let index = try JSONDecoder().decode(
            OCIIndex.self, from: Data(contentsOf: URL(fileURLWithPath: images + "/index.json")))
        #expect(index.manifests.count == 1)
        #expect(index.manifests[0].refName == "docker.io/library/plain-test:v1")
        #expect(index.manifests[0].mediaType == MediaType.manifest)

        // Every blob is named by its own digest.
        let blobs = directoryEntries(images + "/blobs/sha256")
        #expect(blobs.count == 3)
        for blob in blobs { #expect(try sha256(ofFile: images + "/blobs/sha256/" + blob) == "sha256:" + blob) }
        let manifest = try store.manifest(index.manifests[0].digest)
        #expect(manifest.layers[0].mediaType == MediaType.layerTar)
        #expect(manifest.layers[0].digest == (try sha256(ofFile: tarPath)))
        #expect(manifest.config.digest == image.id)
        let config = try store.imageConfig(image.id)
        #expect(config.os == "linux" && config.architecture == "amd64")
        #expect(config.rootfs.diffIDs == [try sha256(ofFile: tarPath)])

        // The unpacked layer keeps owners, modes, links and devices.
        let diff = image.layerPaths[0]
        #expect(diff == images + "/layers/sha256/" + String(config.rootfs.diffIDs[0].dropFirst(7)) + "/diff")
        #expect(try String(contentsOfFile: diff + "/bin/hello", encoding: .utf8) == "#!/bin/sh\necho hi\n")
        #expect(lstatOf(diff + "/bin/hello")!.st_mode & 0o7777 == 0o755)
        let shadow = try #require(lstatOf(diff + "/etc/shadow"))
        #expect(shadow.st_uid == 1234 && shadow.st_gid == 5678 && shadow.st_mode & 0o7777 == 0o640)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: diff + "/hello-link") == "bin/hello")
        #expect(lstatOf(diff + "/bin/hello-hard")!.st_ino == lstatOf(diff + "/bin/hello")!.st_ino)
        let dev = try #require(lstatOf(diff + "/etc/null-dev"))
        #expect(dev.st_mode & S_IFMT == S_IFCHR && dev.st_rdev == UInt((1 << 8) | 3))
        #expect(lstatOf(diff + "/tmp")!.st_mode & 0o7777 == 0o1777)
        #expect(directoryEntries(images + "/tmp").isEmpty)
    }

    @Test func importGzipTarStoresTheCompressedBlobAndTheUncompressedDiffID() throws {
        let s = try Scratch()
        let rootfs = try s.staging("rootfs")
        try s.write("hello", to: rootfs + "/greeting")
        let plain = try s.tar(rootfs, name: "rootfs.tar")
        let gzipped = s.dir + "/rootfs.tar.gz"
        try s.run("/bin/sh", ["-c", "gzip -c '\(plain)' > '\(gzipped)'"])

        let store = try ImageStore(root: s.root)
        let image = try store.importRootfs(tarPath: gzipped, reference: "gz-test")
        let manifest = try store.manifest(image.manifestDigest)
        #expect(manifest.layers[0].mediaType == MediaType.layerTarGzip)
        #expect(manifest.layers[0].digest == (try sha256(ofFile: gzipped)))
        #expect(image.diffIDs == [try sha256(ofFile: plain)])
        #expect(try String(contentsOfFile: image.layerPaths[0] + "/greeting", encoding: .utf8) == "hello")
    }

    @Test func reimportingTheSameFileReusesTheLayer() throws {
        let s = try Scratch()
        let rootfs = try s.staging("rootfs")
        try s.write("same", to: rootfs + "/file")
        let tarPath = try s.tar(rootfs, name: "rootfs.tar", gzip: true)
        let store = try ImageStore(root: s.root)

        let first = try store.importRootfs(tarPath: tarPath, reference: "one")
        let layerBlob = try store.manifest(first.manifestDigest).layers[0].digest
        // The store knows the blob's diff ID, so a second import does not unpack it again.
        #expect(try store.knownLayer(layerBlob)?.diffID == first.diffIDs[0])
        let inode = lstatOf(first.layerPaths[0])!.st_ino

        let second = try store.importRootfs(tarPath: tarPath, reference: "two")
        #expect(second.layerPaths == first.layerPaths)
        #expect(lstatOf(second.layerPaths[0])!.st_ino == inode)
        #expect(directoryEntries(s.root + "/images/layers/sha256").count == 1)
        #expect(try store.list().map(\.reference).sorted() == ["one:latest", "two:latest"])
        // Each import has its own creation time, hence its own config and ID, as with docker import.
        #expect(directoryEntries(s.root + "/images/blobs/sha256").count == 5)
    }

    @Test func whiteoutsBecomeOverlayWhiteoutsAndOpaqueDirectories() throws {
        let s = try Scratch()
        let rootfs = try s.staging("rootfs")
        try s.write("", to: rootfs + "/etc/.wh.passwd")
        try s.write("", to: rootfs + "/var/lib/.wh..wh..opq")
        try s.write("kept", to: rootfs + "/var/lib/keep")
        try s.write("", to: rootfs + "/.wh..wh.plnk")
        let tarPath = try s.tar(rootfs, name: "layer.tar")

        let image = try ImageStore(root: s.root).importRootfs(tarPath: tarPath, reference: "whiteout-test")
        let diff = image.layerPaths[0]
        let whiteout = try #require(lstatOf(diff + "/etc/passwd"))
        #expect(whiteout.st_mode & S_IFMT == S_IFCHR && whiteout.st_rdev == 0)
        #expect(lstatOf(diff + "/etc/.wh.passwd") == nil)
        #expect(getXattr(diff + "/var/lib", "trusted.overlay.opaque") == "y")
        #expect(getXattr(diff + "/var", "trusted.overlay.opaque") == nil)
        #expect(lstatOf(diff + "/var/lib/.wh..wh..opq") == nil)
        #expect(try String(contentsOfFile: diff + "/var/lib/keep", encoding: .utf8) == "kept")
        #expect(lstatOf(diff + "/.wh..wh.plnk") == nil)
    }

    @Test func referencesAreNormalizedAndFoundByNameOrID() throws {
        let s = try Scratch()
        let rootfs = try s.staging("rootfs")
        try s.write("x", to: rootfs + "/x")
        let tarPath = try s.tar(rootfs, name: "x.tar")
        let store = try ImageStore(root: s.root)
        let image = try store.importRootfs(tarPath: tarPath, reference: "busybox")

        #expect(image.reference == "busybox:latest")
        for name in [
            "busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox:latest",
            "index.docker.io/library/busybox", image.id, String(image.id.dropFirst(7).prefix(12)),
            "sha256:" + image.id.dropFirst(7).prefix(5),
        ] {
            #expect(try store.image(name).id == image.id, "lookup by \(name)")
        }
        #expect(throws: ImageStore.Error.notFound("busybox:1.36")) { try store.image("busybox:1.36") }
        #expect(ImageStore.Error.notFound("busybox").description == "image not found: busybox")
    }

    @Test func referenceGrammar() throws {
        let cases: [(String, String, String)] = [
            ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("user/app:1.0", "docker.io/user/app:1.0", "user/app:1.0"),
            ("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"),
            (
                "ghcr.io/org/a.b_c__d-e/f:v1.2-rc", "ghcr.io/org/a.b_c__d-e/f:v1.2-rc",
                "ghcr.io/org/a.b_c__d-e/f:v1.2-rc"
            ),
            (
                "alpine@sha256:" + String(repeating: "a", count: 64),
                "docker.io/library/alpine@sha256:" + String(repeating: "a", count: 64),
                "alpine@sha256:" + String(repeating: "a", count: 64)
            ),
        ]
        for (text, normalized, familiar) in cases {
            let ref = try ImageReference(parsing: text)
            #expect(ref.normalized == normalized)
            #expect(ref.familiar == familiar)
        }
        for bad in [
            "", "Busybox", "busybox:", "busybox:-x", "a//b", "-a", "a@sha256:12",
            String(repeating: "f", count: 64), "host:port/app",
        ] {
            #expect(throws: ImageStore.Error.self, "\(bad) should be refused") { try ImageReference(parsing: bad) }
        }
    }

    @Test func removingGarbageCollectsWhatNoReferenceUses() throws {
        let s = try Scratch()
        let a = try s.staging("a")
        try s.write("a", to: a + "/a")
        let b = try s.staging("b")
        try s.write("b", to: b + "/b")
        let store = try ImageStore(root: s.root)
        let imageA = try store.importRootfs(tarPath: try s.tar(a, name: "a.tar"), reference: "app")
        let imageB = try store.importRootfs(tarPath: try s.tar(b, name: "b.tar"), reference: "bin")
        try store.tag("app", "c:v2")
        #expect(try store.image("c:v2").id == imageA.id)

        // By ID, an image with two references needs force.
        #expect(throws: ImageStore.Error.self) { try store.remove(imageA.id) }

        try store.remove("app")
        // (Names that are not hex: "a" could also match an image ID that starts with a.)
        #expect(throws: ImageStore.Error.notFound("app")) { try store.image("app") }
        #expect(Files.exists(imageA.layerPaths[0]))

        try store.remove("c:v2")
        let blobs = s.root + "/images/blobs/sha256"
        #expect(!Files.exists(imageA.layerPaths[0]))
        #expect(!Files.exists(blobs + "/" + imageA.id.dropFirst(7)))
        #expect(!Files.exists(blobs + "/" + imageA.manifestDigest.dropFirst(7)))
        #expect(directoryEntries(blobs).count == 3)
        #expect(try store.image("bin").layerPaths == imageB.layerPaths)
        #expect(Files.exists(imageB.layerPaths[0]))

        try store.remove(String(imageB.id.dropFirst(7).prefix(12)))
        #expect(try store.list().isEmpty)
        #expect(directoryEntries(blobs).isEmpty)
        #expect(directoryEntries(s.root + "/images/layers/sha256").isEmpty)
    }

    @Test func badInputGivesAClearErrorAndLeavesNothingBehind() throws {
        let s = try Scratch()
        let store = try ImageStore(root: s.root)
        let notATar = s.dir + "/notes.txt"
        try s.write(String(repeating: "this is not a tar archive\n", count: 100), to: notATar)
        let empty = s.dir + "/empty.tar"
        try s.write("", to: empty)
        let rootfs = try s.staging("rootfs")
        try s.write("x", to: rootfs + "/x")
        let good = try s.tar(rootfs, name: "good.tar")

        let missing = s.dir + "/missing.tar"
        #expect(throws: ImageStore.Error.system("open", missing, ENOENT)) {
            try store.importRootfs(tarPath: missing, reference: "x")
        }
        #expect(
            "\(ImageStore.Error.system("open", missing, ENOENT))" == "cannot open \(missing): No such file or directory"
        )
        for path in [notATar, empty] {
            do {
                _ = try store.importRootfs(tarPath: path, reference: "x")
                Issue.record("importing \(path) should fail")
            } catch let error as ImageStore.Error {
                guard case .notATar(let name, _) = error else {
                    Issue.record("unexpected \(error)")
                    continue
                }
                #expect(name == path)
            }
        }
        #expect(throws: ImageStore.Error.invalidReference("Bad/Name", "the repository name must be lowercase")) {
            try store.importRootfs(tarPath: good, reference: "Bad/Name")
        }
        let images = s.root + "/images"
        #expect(try store.readIndex().manifests.isEmpty)
        #expect(directoryEntries(images + "/blobs/sha256").isEmpty)
        #expect(directoryEntries(images + "/layers/sha256").isEmpty)
        #expect(directoryEntries(images + "/tmp").isEmpty)
    }

    @Test func entriesThatEscapeTheLayerAreRefused() throws {
        let s = try Scratch()
        let outside = try s.staging("outside")
        // First a symlink pointing outside, then a file "through" it, appended from another tree.
        let first = try s.staging("first")
        #expect(symlink(outside, first + "/escape") == 0)
        let second = try s.staging("second")
        try s.write("owned", to: second + "/escape/pwned")
        let tarPath = s.dir + "/evil.tar"
        try s.run("/bin/tar", ["-cf", tarPath, "-C", first, "escape"])
        try s.run("/bin/tar", ["-rf", tarPath, "-C", second, "escape/pwned"])

        let store = try ImageStore(root: s.root)
        #expect(throws: ImageStore.Error.self) { try store.importRootfs(tarPath: tarPath, reference: "evil") }
        #expect(directoryEntries(outside).isEmpty)
        #expect(directoryEntries(s.root + "/images/layers/sha256").isEmpty)
        #expect(directoryEntries(s.root + "/images/tmp").isEmpty)

        // A ".." member (GNU tar keeps it with -P).
        let dots = try s.staging("dots/inner")
        try s.write("up", to: s.dir + "/dots/up")
        let dotsTar = s.dir + "/dots.tar"
        try s.run("/bin/tar", ["-P", "-cf", dotsTar, "-C", dots, "../up"])
        #expect(throws: ImageStore.Error.unpack(dotsTar, "../up", "the path leaves the layer with '..'")) {
            try store.importRootfs(tarPath: dotsTar, reference: "dots")
        }
        #expect(directoryEntries(s.root + "/images/tmp").isEmpty)
    }

    @Test func configIsStoredWithDockersKeys() throws {
        let s = try Scratch()
        let rootfs = try s.staging("rootfs")
        try s.write("x", to: rootfs + "/x")
        var config = ImageConfig()
        for change in [
            #"CMD ["nginx", "-g", "daemon off;"]"#, "ENTRYPOINT /docker-entrypoint.sh",
            "ENV PATH=/usr/bin A=\"two words\"", "ENV LEGACY some value", "EXPOSE 80 53/udp",
            "LABEL maintainer=me", "USER nginx", "WORKDIR /srv", "STOPSIGNAL SIGQUIT",
        ] {
            try config.apply(change: change)
        }
        #expect(
            config
                == ImageConfig(
                    entrypoint: ["/bin/sh", "-c", "/docker-entrypoint.sh"], cmd: ["nginx", "-g", "daemon off;"],
                    env: ["PATH=/usr/bin", "A=two words", "LEGACY=some value"], workingDir: "/srv", user: "nginx",
                    stopSignal: "SIGQUIT", exposedPorts: ["80/tcp", "53/udp"], labels: ["maintainer": "me"]))
        #expect(throws: ImageConfig.ChangeError.self) { try config.apply(change: "VOLUME /data") }
        #expect(throws: ImageConfig.ChangeError.self) { try config.apply(change: "EXPOSE http") }

        let store = try ImageStore(root: s.root)
        let image = try store.importRootfs(tarPath: try s.tar(rootfs, name: "x.tar"), reference: "cfg", config: config)
        var expected = config
        expected.exposedPorts = ["53/udp", "80/tcp"]
        #expect(image.config == expected)
        let raw = try JSONSerialization.jsonObject(with: store.readBlob(image.id)) as! [String: Any]
        let inner = raw["config"] as! [String: Any]
        #expect(inner["Cmd"] as? [String] == ["nginx", "-g", "daemon off;"])
        #expect((inner["ExposedPorts"] as? [String: Any])?.keys.sorted() == ["53/udp", "80/tcp"])
        #expect(inner["StopSignal"] as? String == "SIGQUIT")
        #expect(((raw["rootfs"] as? [String: Any])?["diff_ids"] as? [String])?.count == 1)
    }

    @Test func concurrentImportsIntoOneStoreKeepEveryReference() throws {
        let s = try Scratch()
        var tars: [String] = []
        for i in 0..<4 {
            let dir = try s.staging("rootfs\(i)")
            try s.write("content \(i)", to: dir + "/file")
            tars.append(try s.tar(dir, name: "r\(i).tar"))
        }
        // Separate stores, as separate berth processes would open them; flock excludes across them.
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            do {
                let store = try ImageStore(root: s.root)
                _ = try store.importRootfs(tarPath: tars[i % 4], reference: "concurrent\(i)")
            } catch {
                errors.append(error)
            }
        }
        #expect(errors.all.isEmpty, "\(errors.all)")
        let store = try ImageStore(root: s.root)
        #expect(try store.list().map(\.reference).sorted() == (0..<8).map { "concurrent\($0):latest" })
        #expect(directoryEntries(s.root + "/images/layers/sha256").count == 4)
        #expect(directoryEntries(s.root + "/images/tmp").isEmpty)
    }
}

final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error] = []
    func append(_ error: Error) {
        lock.lock()
        errors.append(error)
        lock.unlock()
    }
    var all: [Error] {
        lock.lock()
        defer { lock.unlock() }
        return errors
    }
}
