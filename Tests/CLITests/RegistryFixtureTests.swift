import Foundation
import TestSupport
import Testing

/// The registry fixtures of TestSupport checked with other clients (skopeo, curl), so that a
/// failing RegistryCLITests test points at berth, not at its fixtures.
@Suite(.serialized) struct RegistryFixtureTests {
    static func smallImage(_ dir: TemporaryDirectory, tag: String = "v1") throws -> (OCILayoutBuilder, BuiltImage) {
        let layout = try OCILayoutBuilder(at: dir.path + "/layout")
        let image = try layout.image(
            ImageSpec(layers: [.busybox, LayerSpec([LayerSpec.file("hello.txt", "hello\n")])]), tag: tag)
        return (layout, image)
    }

    static func curl(_ arguments: [String]) throws -> BerthProcess.Result {
        try Command.run("curl", ["-s", "--max-time", "20"] + arguments)
    }

    @Test func layoutSeedsARealRegistryAndTheAccessLogCountsBlobs() throws {
        let dir = try TemporaryDirectory("berth-fixture")
        let (layout, image) = try Self.smallImage(dir)
        let whiteouts = try layout.layer(
            LayerSpec([LayerSpec.whiteout("a/deleted"), LayerSpec.opaque("b"), LayerSpec.file("b/new", "n")]))
        let listing = try Command.check("tar", ["-tzf", layout.blobPath(whiteouts.descriptor.digest)]).stdout
        #expect(listing.contains("./a/.wh.deleted\n") && listing.contains("./b/.wh..wh..opq\n"), "\(listing)")

        let registry = try RegistryServer()
        try registry.push(layout, tag: "v1", to: "fixture/small")
        #expect(try registry.catalog() == ["fixture/small"])
        let raw = try registry.skopeo("inspect", ["--raw", "docker://\(registry.host)/fixture/small:v1"])
        #expect(raw.status == 0, "\(raw.stderr)")
        // The registry holds the layout's manifest byte for byte: the same digests.
        #expect(OCILayoutBuilder.sha256(Data(raw.stdout.utf8)) == image.manifest.digest)
        let inspect = try registry.skopeo("inspect", ["--config", "docker://\(registry.host)/fixture/small:v1"])
        let config = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any]
        #expect(config?["architecture"] as? String == OCILayoutBuilder.hostArchitecture)

        let out = dir.path + "/copied"
        let copy = try registry.skopeo("copy", ["docker://\(registry.host)/fixture/small:v1", "oci:\(out):x"])
        #expect(copy.status == 0, "\(copy.stderr)")
        for layer in image.layers { #expect(registry.blobGETs(layer.digest) == 1, "\(registry.log)") }
    }

    @Test func indexKeepsEveryPlatform() throws {
        let dir = try TemporaryDirectory("berth-fixture")
        let layout = try OCILayoutBuilder(at: dir.path + "/layout")
        let host = try layout.image(ImageSpec(layers: [.busybox, LayerSpec([LayerSpec.file("platform", "host\n")])]))
        let other = try layout.image(
            ImageSpec(
                layers: [.busybox, LayerSpec([LayerSpec.file("platform", "other\n")])],
                architecture: OCILayoutBuilder.otherArchitecture))
        try layout.tag("multi", try layout.index([host, other]))
        let registry = try RegistryServer()
        try registry.push(layout, tag: "multi", to: "fixture/multi")
        let raw = try registry.skopeo("inspect", ["--raw", "docker://\(registry.host)/fixture/multi:multi"])
        let index = try JSONSerialization.jsonObject(with: Data(raw.stdout.utf8)) as? [String: Any]
        let digests = (index?["manifests"] as? [[String: Any]])?.compactMap { $0["digest"] as? String }
        #expect(digests == [host.manifest.digest, other.manifest.digest])
        let picked = try registry.skopeo(
            "inspect",
            ["--override-arch", OCILayoutBuilder.otherArchitecture, "docker://\(registry.host)/fixture/multi:multi"])
        let object = try JSONSerialization.jsonObject(with: Data(picked.stdout.utf8)) as? [String: Any]
        #expect(object?["Architecture"] as? String == OCILayoutBuilder.otherArchitecture, "\(picked.stderr)")
        let config = try registry.skopeo(
            "inspect",
            [
                "--config", "--raw", "--override-arch", OCILayoutBuilder.otherArchitecture,
                "docker://\(registry.host)/fixture/multi:multi",
            ])
        #expect(OCILayoutBuilder.sha256(Data(config.stdout.utf8)) == other.configDigest, "\(config.stderr)")
    }

    @Test func basicAuthRegistry() throws {
        let dir = try TemporaryDirectory("berth-fixture")
        let (layout, _) = try Self.smallImage(dir)
        let registry = try RegistryServer(users: [.init("alice", "s3cret")])
        let anonymous = try Self.curl(["-o", "/dev/null", "-w", "%{http_code}", "http://\(registry.host)/v2/"])
        #expect(anonymous.stdout == "401")
        let authorized = try Self.curl([
            "-o", "/dev/null", "-w", "%{http_code}", "-u", "alice:s3cret", "http://\(registry.host)/v2/",
        ])
        #expect(authorized.stdout == "200")
        try registry.push(layout, tag: "v1", to: "private/app")
        let denied = try registry.skopeo(
            "inspect", ["--raw", "docker://\(registry.host)/private/app:v1"], anonymous: true)
        #expect(denied.status != 0)
        #expect(try registry.skopeo("inspect", ["--raw", "docker://\(registry.host)/private/app:v1"]).status == 0)
    }

    @Test func tokenServerFlowByHandAndWithSkopeo() throws {
        let dir = try TemporaryDirectory("berth-fixture")
        let (layout, image) = try Self.smallImage(dir)
        let tokens = try TokenServer(users: ["bob": "hunter2"])
        let registry = try RegistryServer(token: tokens.registryAuth)
        // skopeo pushes through the token server with credentials (push granted to bob only).
        try registry.push(layout, tag: "v1", to: "tok/app", user: .init("bob", "hunter2"))
        #expect(tokens.requests.contains { $0.user == "bob" && $0.scopes.contains { $0.contains("tok/app:") } })
        // An anonymous push is refused (pull only); an anonymous pull goes through.
        let refused = try Command.run(
            "skopeo",
            [
                "copy", "--quiet", "--retry-times", "0", "--dest-tls-verify=false", "oci:\(layout.path):v1",
                "docker://\(registry.host)/tok/other:v1",
            ], environment: ["REGISTRY_AUTH_FILE": dir.path + "/none.json"])
        #expect(refused.status != 0)
        let pulled = try registry.skopeo("inspect", ["--raw", "docker://\(registry.host)/tok/app:v1"], anonymous: true)
        #expect(pulled.status == 0, "\(pulled.stderr)")

        // By hand: 401 with the challenge, a token for the scope, the manifest with it.
        let challenge = try Self.curl(["-i", "http://\(registry.host)/v2/tok/app/manifests/v1"]).stdout.lowercased()
        #expect(challenge.contains("401"))
        #expect(challenge.contains("www-authenticate: bearer realm=\"\(tokens.realm)\"".lowercased()), "\(challenge)")
        let wrong = try Self.curl([
            "-o", "/dev/null", "-w", "%{http_code}", "-u", "bob:nope",
            "\(tokens.realm)?service=\(tokens.service)&scope=repository:tok/app:pull",
        ])
        #expect(wrong.stdout == "401")
        let answer = try Self.curl([
            "-u", "bob:hunter2", "\(tokens.realm)?service=\(tokens.service)&scope=repository%3Atok%2Fapp%3Apull%2Cpush",
        ])
        let object = try JSONSerialization.jsonObject(with: Data(answer.stdout.utf8)) as? [String: Any]
        let token = try #require(object?["token"] as? String)
        #expect(object?["access_token"] as? String == token && object?["expires_in"] as? Int == 300)
        #expect(tokens.requests.last?.granted["repository:tok/app"] == ["pull", "push"])
        let manifest = try Self.curl([
            "-H", "Authorization: Bearer \(token)", "-H", "Accept: \(OCILayoutBuilder.manifestType)",
            "http://\(registry.host)/v2/tok/app/manifests/v1",
        ])
        #expect(OCILayoutBuilder.sha256(Data(manifest.stdout.utf8)) == image.manifest.digest, "\(manifest.stdout)")
    }

    @Test func tlsRegistryWithTheTestCA() throws {
        let dir = try TemporaryDirectory("berth-fixture")
        let (layout, _) = try Self.smallImage(dir)
        let ca = try TestCA()
        let registry = try RegistryServer(tls: ca)
        let trusted = try Self.curl([
            "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca.certificate, "https://\(registry.host)/v2/",
        ])
        #expect(trusted.stdout == "200")
        // Without the CA: curl's "SSL certificate problem" (exit 60).
        #expect(try Self.curl(["-o", "/dev/null", "https://\(registry.host)/v2/"]).status == 60)
        try registry.push(layout, tag: "v1", to: "secure/app")
        #expect(try registry.skopeo("inspect", ["--raw", "docker://\(registry.host)/secure/app:v1"]).status == 0)
        try ca.trust(host: registry.host, root: dir.path + "/root")
        #expect(FileManager.default.fileExists(atPath: dir.path + "/root/certs.d/\(registry.host)/ca.crt"))
    }

    @Test func aCorruptedBlobFailsTheDigestCheck() throws {
        let dir = try TemporaryDirectory("berth-fixture")
        let (layout, image) = try Self.smallImage(dir)
        let registry = try RegistryServer()
        try registry.push(layout, tag: "v1", to: "fixture/corrupt")
        let layer = try #require(image.layers.first)
        try corrupt(registry.blobDataPath(layer.digest))
        let copy = try registry.skopeo(
            "copy", ["docker://\(registry.host)/fixture/corrupt:v1", "oci:\(dir.path)/out:x"])
        #expect(copy.status != 0)
        #expect(copy.stderr.lowercased().contains("digest did not match"), "\(copy.stderr)")
    }

    @Test func fakeRegistryServesStallsAndLogs() throws {
        let dir = try TemporaryDirectory("berth-fixture")
        let layout = try OCILayoutBuilder(at: dir.path + "/layout")
        let image = try layout.image(
            ImageSpec(layers: [.busybox, LayerSpec([.random("big", count: 4 << 20)])]), tag: "v1")
        let fake = try FakeRegistry()
        try fake.serve(layout, image.manifest, as: "fake/app", tag: "v1")
        let copy = try Command.run(
            "skopeo",
            [
                "copy", "--quiet", "--src-tls-verify=false", "docker://\(fake.host)/fake/app:v1",
                "oci:\(dir.path)/out:x",
            ], environment: ["REGISTRY_AUTH_FILE": dir.path + "/none.json"])
        #expect(copy.status == 0, "\(copy.stderr)")
        #expect(fake.blobGETs(image.layers[1].digest) == 1)

        // A stalled blob: the first half comes, the rest only after release().
        let big = image.layers[1]
        fake.stall(big.digest, after: big.size / 2)
        let partial = dir.path + "/partial"
        let started = Date()
        let cut = try Command.run(
            "curl", ["-s", "--max-time", "2", "-o", partial, "http://\(fake.host)/v2/fake/app/blobs/\(big.digest)"])
        #expect(cut.status == 28)  // curl's timeout
        #expect(Date().timeIntervalSince(started) >= 1.9)
        #expect((try? Data(contentsOf: URL(fileURLWithPath: partial)).count) == big.size / 2)
        let waiting = DispatchGroup()
        let result = Collected()
        DispatchQueue.global().async(group: waiting) {
            result.value = try? Command.run(
                "curl",
                [
                    "-s", "--max-time", "30", "-o", dir.path + "/whole",
                    "http://\(fake.host)/v2/fake/app/blobs/\(big.digest)",
                ])
        }
        #expect(waiting.wait(timeout: .now() + 1) == .timedOut)
        fake.release()
        #expect(waiting.wait(timeout: .now() + 30) == .success)
        #expect(result.value?.status == 0)
        let whole = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/whole"))
        #expect(OCILayoutBuilder.sha256(whole) == big.digest)
        // A resumed download: 206 from the offset.
        let resumed = try Self.curl([
            "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "-H", "Range: bytes=100-",
            "http://\(fake.host)/v2/fake/app/blobs/\(big.digest)",
        ])
        #expect(resumed.stdout == "206 \(big.size - 100)")

        // Any media type, as given.
        fake.addManifest(
            Data(#"{"mediaType":"application/x-bogus"}"#.utf8), mediaType: "application/x-bogus",
            repository: "fake/bogus", tag: "v1")
        let head = try Self.curl(["-I", "http://\(fake.host)/v2/fake/bogus/manifests/v1"]).stdout.lowercased()
        #expect(head.contains("content-type: application/x-bogus"), "\(head)")
        #expect(
            try Self.curl(["-o", "/dev/null", "-w", "%{http_code}", "http://\(fake.host)/v2/fake/none/manifests/v1"])
                .stdout == "404")
        #expect(fake.requests.contains { $0.method == "HEAD" && $0.path == "/v2/fake/bogus/manifests/v1" })
    }
}

/// Flips bytes in the middle of a file, keeping its size.
func corrupt(_ path: String) throws {
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    let size = try handle.seekToEnd()
    try handle.seek(toOffset: size / 2)
    let original = try handle.read(upToCount: 16) ?? Data()
    try handle.seek(toOffset: size / 2)
    try handle.write(contentsOf: Data(original.map { $0 ^ 0xff }))
}

private final class Collected: @unchecked Sendable {
    var value: BerthProcess.Result?
}
