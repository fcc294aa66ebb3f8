import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// berth's registry client end to end, as a user types it (Docker's CLI: pull, push, login,
/// logout, search), against Debian's docker-registry, a token server, a TLS registry with a test
/// CA and a fake registry, all on 127.0.0.1 (root; every test its own BERTH_ROOT and DOCKER_CONFIG).
@Suite(.serialized) struct RegistryCLITests {
    /// A user of berth: a BERTH_ROOT and a DOCKER_CONFIG of its own in one temporary folder,
    /// removed with everything in it (containers a failed test left first).
    final class Client {
        let dir: TemporaryDirectory
        var root: String { dir.path + "/root" }
        var dockerConfig: String { dir.path + "/docker-config" }

        init() throws {
            dir = try TemporaryDirectory("berth-cli-reg")
            try FileManager.default.createDirectory(atPath: dockerConfig, withIntermediateDirectories: true)
        }

        var environment: [String: String] {
            [
                "BERTH_ROOT": root, "DOCKER_CONFIG": dockerConfig, "BERTH_TEST_PAUSE_AT": "",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
            ]
        }

        func berth(_ arguments: [String], stdin: String? = nil) throws -> BerthProcess.Result {
            try BerthProcess.run(arguments, environment: environment, stdin: stdin)
        }

        /// `berth ARGUMENTS` started in the background, its output in files of the folder.
        func start(_ arguments: [String]) throws -> Background {
            try Background(arguments, environment: environment, directory: dir.path)
        }

        /// The names (hex digests) in ROOT/images/blobs/sha256; empty before the store exists.
        var blobs: Set<String> {
            Set((try? FileManager.default.contentsOfDirectory(atPath: root + "/images/blobs/sha256")) ?? [])
        }

        /// `image ls -q`, a line each.
        func imageIDs() throws -> [String] {
            try berth(["image", "ls", "-q"]).stdout.split(separator: "\n").map(String.init)
        }

        /// The first object of `image inspect REF`'s array; nil when it failed.
        func inspect(_ reference: String) throws -> [String: Any]? {
            let result = try berth(["image", "inspect", reference])
            guard result.status == 0 else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])?.first
        }

        /// DOCKER_CONFIG/config.json's `auths` (empty when there is no file).
        func auths() throws -> [String: Any] {
            guard let data = FileManager.default.contents(atPath: dockerConfig + "/config.json") else { return [:] }
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            return object?["auths"] as? [String: Any] ?? [:]
        }

        deinit {
            if let ps = try? berth(["container", "ps", "-a", "-q"]) {
                for id in ps.stdout.split(separator: "\n") { _ = try? berth(["container", "rm", "-f", String(id)]) }
            }
            _ = try? berth(["system", "prune", "-f"])
        }
    }

    /// A berth process running in the background (concurrent pulls, a pull killed halfway);
    /// SIGKILLed when it goes if it still runs.
    final class Background {
        let process = Process()
        let outputPath: String
        let errorPath: String

        init(_ arguments: [String], environment: [String: String], directory: String) throws {
            let name = UUID().uuidString.prefix(8)
            (outputPath, errorPath) = (directory + "/bg-\(name).out", directory + "/bg-\(name).err")
            _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
            _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: BerthProcess.executable)
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        /// Waits for the exit, 120 s at most (then kills it); the result.
        func wait() -> BerthProcess.Result {
            let deadline = Date() + 120
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { kill() }
            process.waitUntilExit()
            return BerthProcess.Result(
                status: process.terminationStatus,
                stdout: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "",
                stderr: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "")
        }

        func kill() {
            if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }

        deinit { kill() }
    }

    // MARK: Images for the registries

    /// busybox, and a layer with /hello.txt: a small image that runs.
    @discardableResult
    static func smallImage(_ layout: OCILayoutBuilder, tag: String, text: String = "hello\n") throws -> BuiltImage {
        try layout.image(ImageSpec(layers: [.busybox, LayerSpec([LayerSpec.file("hello.txt", text)])]), tag: tag)
    }

    static func layout(_ client: Client) throws -> OCILayoutBuilder {
        try OCILayoutBuilder(at: client.dir.path + "/layout-\(UUID().uuidString.prefix(8))")
    }

    /// What `pull` stored: the ID is the config's digest, the tag and digest are the reference's.
    static func expectPulled(
        _ client: Client, _ reference: String, _ image: BuiltImage, digest: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let inspect = try #require(
            try client.inspect(reference), "image inspect \(reference)", sourceLocation: sourceLocation)
        #expect(inspect["Id"] as? String == image.configDigest, sourceLocation: sourceLocation)
        #expect(inspect["RepoTags"] as? [String] == [reference], sourceLocation: sourceLocation)
        let repository = String(reference[..<reference.lastIndex(of: ":")!])
        #expect(
            inspect["RepoDigests"] as? [String] == ["\(repository)@\(digest ?? image.manifest.digest)"],
            sourceLocation: sourceLocation)
        let platform = image.platform.split(separator: "/").map(String.init)
        #expect(inspect["Os"] as? String == platform[0], sourceLocation: sourceLocation)
        #expect(inspect["Architecture"] as? String == platform[1], sourceLocation: sourceLocation)
        let rootfs = inspect["RootFS"] as? [String: Any]
        #expect(rootfs?["Layers"] as? [String] == image.diffIDs, sourceLocation: sourceLocation)
    }

    /// A failure as the CLI must report it: non-zero, one line on stderr starting `berth:` that
    /// names one of `mentions` (any case), and nothing of the failed pull left in the store.
    static func expectCleanFailure(
        _ result: BerthProcess.Result, _ client: Client, mentions: [String], blobsBefore: Set<String> = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        #expect(result.status != 0, "exit 0; stdout: \(result.stdout)", sourceLocation: sourceLocation)
        let lines = result.stderr.split(separator: "\n")
        #expect(
            result.stderr.hasPrefix("berth: ") && lines.count == 1, "stderr: \(result.stderr)",
            sourceLocation: sourceLocation)
        let lowered = result.stderr.lowercased()
        #expect(
            mentions.contains { lowered.contains($0.lowercased()) },
            "stderr names none of \(mentions): \(result.stderr)", sourceLocation: sourceLocation)
        #expect(try client.imageIDs().isEmpty, "image ls -q after a failed pull", sourceLocation: sourceLocation)
        let brought = client.blobs.subtracting(blobsBefore)
        #expect(brought.isEmpty, "the failed pull left blobs: \(brought)", sourceLocation: sourceLocation)
    }

    static let unauthorized = ["unauthorized", "authentication required", "no basic auth credentials"]

    // MARK: Pull

    @Test func pullsASinglePlatformImage() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        let image = try Self.smallImage(layout, tag: "v1")
        let registry = try RegistryServer()
        try registry.push(layout, tag: "v1", to: "app/single")
        let reference = "\(registry.host)/app/single:v1"

        let pull = try client.berth(["image", "pull", reference])
        try #require(pull.status == 0, "\(pull.stderr)")
        try Self.expectPulled(client, reference, image)
        #expect(try client.imageIDs().count == 1)
        let run = try client.berth(["container", "run", "--rm", "--network", "none", reference, "cat", "/hello.txt"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "hello\n")

        // Quiet: only the reference (Docker's `pull -q`).
        let other = try Client()
        let quiet = try other.berth(["image", "pull", "-q", reference])
        #expect(quiet.status == 0, "\(quiet.stderr)")
        #expect(quiet.stdout == reference + "\n")
        try Self.expectPulled(other, reference, image)
    }

    /// Compose pulls through the same client: `up` pulls a service's image the store lacks
    /// (pull_policy missing, docker compose's default), `pull` pulls every service's image, and
    /// `never` refuses a missing one.
    @Test func composePullsWhatItsServicesNeed() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        let image = try Self.smallImage(layout, tag: "v1")
        let registry = try RegistryServer()
        try registry.push(layout, tag: "v1", to: "app/compose")
        let reference = "\(registry.host)/app/compose:v1"
        let file = client.dir.path + "/compose.yaml"
        func write(policy: String) throws {
            try """
            services:
              app:
                image: \(reference)
                pull_policy: \(policy)
                command: ["sh", "-c", "cat /hello.txt; exec sleep 600"]
            """.write(toFile: file, atomically: true, encoding: .utf8)
        }
        let project = ["-f", file, "-p", "pulled"]
        defer { _ = try? client.berth(project + ["down", "-t", "0"]) }
        try write(policy: "missing")
        let up = try client.berth(project + ["up", "-d"])
        #expect(up.status == 0, "\(up.stderr)")
        try Self.expectPulled(client, reference, image)
        #expect(eventually { ((try? client.berth(project + ["logs", "app"]).stdout) ?? "").contains("hello") })
        #expect(try client.berth(project + ["down"]).status == 0)

        #expect(try client.berth(["image", "rm", reference]).status == 0)
        try write(policy: "never")
        let refused = try client.berth(project + ["up", "-d"])
        #expect(refused.status == 1 && refused.stderr.contains("pull_policy is never"), "\(refused.stderr)")
        let pull = try client.berth(project + ["pull"])
        #expect(pull.status == 0, "\(pull.stderr)")
        try Self.expectPulled(client, reference, image)
        #expect(try client.berth(project + ["down"]).status == 0)
    }

    /// A FROM image the store lacks is pulled; `--pull` pulls it again and a moved tag rebuilds
    /// from the new base; without `--pull` the stored one is used.
    @Test func buildPullsItsBaseImage() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        _ = try Self.smallImage(layout, tag: "v1", text: "first\n")
        let registry = try RegistryServer()
        try registry.push(layout, tag: "v1", to: "app/base")
        let reference = "\(registry.host)/app/base:v1"
        let context = client.dir.path + "/ctx"
        try FileManager.default.createDirectory(atPath: context, withIntermediateDirectories: true)
        try "FROM \(reference)\nRUN cp /hello.txt /copied\nCMD [\"cat\", \"/copied\"]\n".write(
            toFile: context + "/Dockerfile", atomically: true, encoding: .utf8)
        let first = try client.berth(["build", "-q", "-t", "derived", context])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try client.berth(["container", "run", "--rm", "derived"]).stdout == "first\n")

        // The tag moves in the registry: only --pull sees it.
        let newer = try Self.layout(client)
        _ = try Self.smallImage(newer, tag: "v1", text: "second\n")
        try registry.push(newer, tag: "v1", to: "app/base")
        #expect(try client.berth(["build", "-q", "-t", "derived", context]).status == 0)
        #expect(try client.berth(["container", "run", "--rm", "derived"]).stdout == "first\n")
        let pulled = try client.berth(["build", "-q", "--pull", "-t", "derived", context])
        #expect(pulled.status == 0, "\(pulled.stderr)")
        #expect(try client.berth(["container", "run", "--rm", "derived"]).stdout == "second\n")
    }

    /// On a terminal, the layers' lines are drawn again in place (cursor up, line cleared) with a
    /// bar while downloading; in a pipe, one plain line per step and no escape sequence (Docker's
    /// two forms). The terminal is a pseudo-terminal from util-linux's `script`.
    @Test func progressIsDrawnOnATerminalAndPlainInAPipe() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        _ = try Self.smallImage(layout, tag: "v1")
        let registry = try RegistryServer()
        try registry.push(layout, tag: "v1", to: "app/progress")
        let reference = "\(registry.host)/app/progress:v1"

        let piped = try client.berth(["image", "pull", reference])
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(!piped.stdout.contains("\u{1B}["), "\(piped.stdout)")
        #expect(piped.stdout.contains(": Pulling fs layer\n") && piped.stdout.contains(": Pull complete\n"))
        #expect(try client.berth(["image", "rm", reference]).status == 0)

        let command = ([BerthProcess.executable, "image", "pull", reference]).joined(separator: " ")
        let terminal = try Command.run(
            "script", ["-qec", command, "/dev/null"], environment: client.environment)
        #expect(terminal.status == 0, "\(terminal.stdout)")
        #expect(terminal.stdout.contains("\u{1B}[2K"), "\(terminal.stdout)")
        #expect(terminal.stdout.contains("A\r\u{1B}[2K"), "lines drawn again in place: \(terminal.stdout)")
        #expect(terminal.stdout.contains(": Pull complete"))
    }

    /// A push to another repository of the same registry mounts the blobs a stored image came
    /// with from there (cross-repository mount) instead of sending them again.
    @Test func pushMountsBlobsFromAnotherRepository() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        let image = try Self.smallImage(layout, tag: "v1")
        let registry = try RegistryServer()
        try registry.push(layout, tag: "v1", to: "app/top")
        let reference = "\(registry.host)/app/top:v1"
        let pull = try client.berth(["image", "pull", "-q", reference])
        #expect(pull.status == 0, "\(pull.stderr)")
        #expect(pull.stdout == reference + "\n")
        try Self.expectPulled(client, reference, image)
        let copy = "\(registry.host)/app/top-copy:v1"
        #expect(try client.berth(["image", "tag", reference, copy]).status == 0)
        let push = try client.berth(["image", "push", copy])
        #expect(push.status == 0, "\(push.stderr)")
        #expect(push.stdout.contains("Mounted from app/top"), "\(push.stdout)")
        #expect(!push.stdout.contains(": Pushed"), "\(push.stdout)")
        #expect(try registry.skopeo("inspect", ["--raw", "docker://\(copy)"]).status == 0)
    }

    @Test func pullsTheHostPlatformOfAnIndexAndAnotherWithPlatform() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        let host = try layout.image(ImageSpec(layers: [.busybox, LayerSpec([LayerSpec.file("platform", "host\n")])]))
        let other = try layout.image(
            ImageSpec(
                layers: [.busybox, LayerSpec([LayerSpec.file("platform", "other\n")])],
                architecture: OCILayoutBuilder.otherArchitecture))
        let index = try layout.index([other, host])
        try layout.tag("v1", index)
        let registry = try RegistryServer()
        try registry.push(layout, tag: "v1", to: "app/multi")
        let reference = "\(registry.host)/app/multi:v1"

        let pull = try client.berth(["image", "pull", reference])
        try #require(pull.status == 0, "\(pull.stderr)")
        // Docker's RepoDigests name the digest pulled by: the index's.
        try Self.expectPulled(client, reference, host, digest: index.digest)
        let run = try client.berth(["container", "run", "--rm", "--network", "none", reference, "cat", "/platform"])
        #expect(run.stdout == "host\n", "\(run.stderr)")

        let armed = try Client()
        let picked = try armed.berth([
            "image", "pull", "--platform", "linux/\(OCILayoutBuilder.otherArchitecture)", reference,
        ])
        try #require(picked.status == 0, "\(picked.stderr)")
        try Self.expectPulled(armed, reference, other, digest: index.digest)
        // Only that platform's layers came.
        #expect(!armed.blobs.contains(String(host.layers[1].digest.dropFirst(7))))
    }

    @Test func layerWhiteoutsAndOpaqueDirectoriesApplyFromGzipAndZstdLayers() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        try layout.image(
            ImageSpec(layers: [
                .busybox,
                LayerSpec([
                    LayerSpec.file("a/deleted", "gone"), LayerSpec.file("a/kept", "kept"),
                    LayerSpec.file("b/old", "old"), LayerSpec.file("b/sub/older", "older"),
                ]),
                // The top layer zstd-compressed (OCI's tar+zstd), the others gzip.
                LayerSpec(
                    [LayerSpec.whiteout("a/deleted"), LayerSpec.opaque("b"), LayerSpec.file("b/new", "new")],
                    compression: .zstd),
            ]), tag: "v1")
        let registry = try RegistryServer()
        try registry.push(layout, tag: "v1", to: "app/layers")
        let reference = "\(registry.host)/app/layers:v1"
        let pull = try client.berth(["image", "pull", reference])
        try #require(pull.status == 0, "\(pull.stderr)")
        let run = try client.berth([
            "container", "run", "--rm", "--network", "none", reference, "sh", "-c",
            "test ! -e /a/deleted && test -f /a/kept && test ! -e /b/old && test ! -e /b/sub && test -f /b/new"
                + " && echo $(ls -A /a) $(ls -A /b)",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "kept new\n")
    }

    @Test func imageEnvCmdAndWorkingDirReachTheContainer() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        try layout.image(
            ImageSpec(
                layers: [.busybox, LayerSpec([.directory("srv/app")])],
                env: ["PATH=/usr/bin:/bin", "GREETING=hello from the image"],
                cmd: ["sh", "-c", "echo \"$GREETING\"; pwd"], workingDir: "/srv/app"), tag: "v1")
        let registry = try RegistryServer()
        try registry.push(layout, tag: "v1", to: "app/config")
        let reference = "\(registry.host)/app/config:v1"
        let pull = try client.berth(["image", "pull", reference])
        try #require(pull.status == 0, "\(pull.stderr)")
        let config = try #require(try client.inspect(reference)?["Config"] as? [String: Any])
        #expect(config["Env"] as? [String] == ["PATH=/usr/bin:/bin", "GREETING=hello from the image"])
        #expect(config["Cmd"] as? [String] == ["sh", "-c", "echo \"$GREETING\"; pwd"])
        #expect(config["WorkingDir"] as? String == "/srv/app")
        let run = try client.berth(["container", "run", "--rm", "--network", "none", reference])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "hello from the image\n/srv/app\n")
    }

    @Test func pullAllTagsPullsEveryTagOfTheRepository() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        let one = try Self.smallImage(layout, tag: "v1", text: "one\n")
        let two = try Self.smallImage(layout, tag: "v2", text: "two\n")
        try layout.tag("latest", one.manifest)
        let registry = try RegistryServer()
        for tag in ["v1", "v2", "latest"] { try registry.push(layout, tag: tag, to: "app/tags") }
        try registry.push(layout, tag: "v1", to: "app/elsewhere")
        let pull = try client.berth(["image", "pull", "--all-tags", "\(registry.host)/app/tags"])
        try #require(pull.status == 0, "\(pull.stderr)")
        for (tag, image) in [("v1", one), ("v2", two), ("latest", one)] {
            #expect(
                try client.inspect("\(registry.host)/app/tags:\(tag)")?["Id"] as? String == image.configDigest, "\(tag)"
            )
        }
        #expect(try client.inspect("\(registry.host)/app/elsewhere:v1") == nil)
        #expect(Set(try client.imageIDs()).count == 2)

        let short = try Client()
        #expect(try short.berth(["image", "pull", "-a", "\(registry.host)/app/tags"]).status == 0)
        #expect(try short.inspect("\(registry.host)/app/tags:v2")?["Id"] as? String == two.configDigest)
    }

    // MARK: Basic auth

    @Test func basicAuthLoginPullPushLogout() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        let image = try Self.smallImage(layout, tag: "v1")
        let registry = try RegistryServer(users: [.init("alice", "s3cret pass")])
        try registry.push(layout, tag: "v1", to: "private/app")
        let reference = "\(registry.host)/private/app:v1"

        try Self.expectCleanFailure(
            try client.berth(["image", "pull", reference]), client, mentions: Self.unauthorized)

        let wrong = try client.berth(["login", "-u", "alice", "-p", "wrong", registry.host])
        #expect(wrong.status != 0)
        #expect(wrong.stderr.split(separator: "\n").last?.hasPrefix("berth: ") == true, "\(wrong.stderr)")
        #expect(!wrong.stdout.contains("Login Succeeded"))
        #expect(try client.auths()[registry.host] == nil)

        let login = try client.berth(["login", "-u", "alice", "-p", "s3cret pass", registry.host])
        #expect(login.status == 0, "\(login.stderr)")
        #expect(login.stdout.contains("Login Succeeded"))
        let entry = try client.auths()[registry.host] as? [String: Any]
        #expect(entry?["auth"] as? String == Data("alice:s3cret pass".utf8).base64EncodedString())

        let pull = try client.berth(["image", "pull", reference])
        try #require(pull.status == 0, "\(pull.stderr)")
        try Self.expectPulled(client, reference, image)
        let pushed = "\(registry.host)/private/pushed:v2"
        #expect(try client.berth(["image", "tag", reference, pushed]).status == 0)
        let push = try client.berth(["image", "push", pushed])
        #expect(push.status == 0, "\(push.stderr)")
        // Another client (skopeo) sees the same image there.
        let raw = try registry.skopeo("inspect", ["--raw", "docker://\(pushed)"])
        let manifest = try JSONSerialization.jsonObject(with: Data(raw.stdout.utf8)) as? [String: Any]
        #expect((manifest?["config"] as? [String: Any])?["digest"] as? String == image.configDigest, "\(raw.stderr)")

        let logout = try client.berth(["logout", registry.host])
        #expect(logout.status == 0, "\(logout.stderr)")
        #expect(try client.auths()[registry.host] == nil)
        // Logged out, the registry refuses again.
        for ref in [reference, pushed] { #expect(try client.berth(["image", "rm", ref]).status == 0) }
        let again = try client.berth(["image", "pull", reference])
        #expect(again.status != 0)
        #expect(Self.unauthorized.contains { again.stderr.lowercased().contains($0) }, "\(again.stderr)")

        // --password-stdin, as a script logs in.
        let scripted = try Client()
        let stdinLogin = try scripted.berth(
            ["login", "-u", "alice", "--password-stdin", registry.host], stdin: "s3cret pass\n")
        #expect(stdinLogin.status == 0, "\(stdinLogin.stderr)")
        #expect(stdinLogin.stdout.contains("Login Succeeded"))
        let stored = try scripted.auths()[registry.host] as? [String: Any]
        #expect(stored?["auth"] as? String == Data("alice:s3cret pass".utf8).base64EncodedString())
        #expect(try scripted.berth(["image", "pull", reference]).status == 0)
    }

    // MARK: Token auth

    @Test func bearerTokenAnonymousPullAndPushWithCredentials() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        let image = try Self.smallImage(layout, tag: "v1")
        let tokens = try TokenServer(users: ["bob": "hunter2"])
        let registry = try RegistryServer(token: tokens.registryAuth)
        try registry.push(layout, tag: "v1", to: "tok/app", user: .init("bob", "hunter2"))
        let reference = "\(registry.host)/tok/app:v1"
        let seen = tokens.requests.count

        // Anonymous: the token server grants pull.
        let pull = try client.berth(["image", "pull", reference])
        try #require(pull.status == 0, "\(pull.stderr)")
        try Self.expectPulled(client, reference, image)
        let anonymous = tokens.requests.dropFirst(seen)
        #expect(
            anonymous.contains { $0.user == nil && $0.granted["repository:tok/app"]?.contains("pull") == true },
            "\(anonymous)")
        #expect(anonymous.allSatisfy { $0.service == tokens.service })

        // Anonymous push: pull only, refused.
        let mine = "\(registry.host)/tok/mine:v1"
        #expect(try client.berth(["image", "tag", reference, mine]).status == 0)
        let refused = try client.berth(["image", "push", mine])
        #expect(refused.status != 0)
        #expect(
            refused.stderr.hasPrefix("berth: ") && refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)"
        )
        #expect(
            (Self.unauthorized + ["denied"]).contains { refused.stderr.lowercased().contains($0) }, "\(refused.stderr)")

        let wrong = try client.berth(["login", "-u", "bob", "-p", "nope", registry.host])
        #expect(wrong.status != 0)
        #expect(tokens.requests.contains { $0.rejected })
        #expect(try client.auths()[registry.host] == nil)

        let login = try client.berth(["login", "-u", "bob", "-p", "hunter2", registry.host])
        #expect(login.status == 0, "\(login.stderr)")
        #expect(login.stdout.contains("Login Succeeded"))
        let beforePush = tokens.requests.count
        let push = try client.berth(["image", "push", mine])
        #expect(push.status == 0, "\(push.stderr)")
        let pushing = tokens.requests.dropFirst(beforePush)
        #expect(
            pushing.contains { $0.user == "bob" && $0.granted["repository:tok/mine"]?.contains("push") == true },
            "\(pushing)")
        let raw = try registry.skopeo("inspect", ["--raw", "docker://\(mine)"], anonymous: true)
        #expect(raw.status == 0, "\(raw.stderr)")
    }

    // MARK: TLS

    @Test func httpsRegistryIsTrustedThroughCertsD() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        let image = try Self.smallImage(layout, tag: "v1")
        let ca = try TestCA()
        let registry = try RegistryServer(tls: ca)
        try registry.push(layout, tag: "v1", to: "secure/app")
        let reference = "\(registry.host)/secure/app:v1"

        // An unknown CA: refused, never plain HTTP instead.
        let untrusted = try client.berth(["image", "pull", reference])
        try Self.expectCleanFailure(untrusted, client, mentions: ["certificate"])

        try ca.trust(host: registry.host, root: client.root)
        let pull = try client.berth(["image", "pull", reference])
        #expect(pull.status == 0, "\(pull.stderr)")
        try Self.expectPulled(client, reference, image)
    }

    // MARK: Integrity, resumption, concurrency, round trip

    @Test func aCorruptedBlobFailsWithADigestErrorAndStoresNothing() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        let image = try Self.smallImage(layout, tag: "v1")
        let registry = try RegistryServer()
        try registry.push(layout, tag: "v1", to: "app/corrupt")
        // The busybox layer, the biggest: same size, other bytes.
        try corrupt(registry.blobDataPath(image.layers[0].digest))
        let pull = try client.berth(["image", "pull", "\(registry.host)/app/corrupt:v1"])
        try Self.expectCleanFailure(pull, client, mentions: ["digest"])
    }

    @Test func aKilledPullResumesWithoutFetchingVerifiedLayersAgain() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        let image = try layout.image(
            ImageSpec(layers: [
                .busybox, LayerSpec([LayerSpec.file("small.txt", "small\n")]),
                LayerSpec([LayerSpec.file("smaller.txt", "smaller\n")]), LayerSpec([.random("big", count: 16 << 20)]),
            ]), tag: "v1")
        let fake = try FakeRegistry()
        try fake.serve(layout, image.manifest, as: "app/resume", tag: "v1")
        let big = try #require(image.layers.last)
        let small = image.layers.dropLast()
        fake.stall(big.digest, after: big.size / 2)
        defer { fake.release() }
        let reference = "\(fake.host)/app/resume:v1"

        let first = try client.start(["image", "pull", reference])
        // (Not waiting on when the pull ended early: its error tells more.)
        let stored = eventually(60) {
            small.allSatisfy { client.blobs.contains(String($0.digest.dropFirst(7))) } || !first.process.isRunning
        }
        let held = eventually(30) {
            fake.requests.contains { $0.method == "GET" && $0.path.hasSuffix(big.digest) } || !first.process.isRunning
        }
        let running = first.process.isRunning
        first.kill()
        let killed = first.wait()
        try #require(running, "the pull ended while a layer was held: \(killed.stderr)")
        try #require(stored && held, "the small layers were not stored while the big one was held: \(killed.stderr)")
        #expect(!client.blobs.contains(String(big.digest.dropFirst(7))), "a half-fetched blob was stored")
        fake.release()

        let again = try client.berth(["image", "pull", reference])
        try #require(again.status == 0, "\(again.stderr)")
        for layer in small { #expect(fake.blobGETs(layer.digest) == 1, "\(layer.digest) fetched again") }
        #expect(fake.blobGETs(big.digest) >= 2)
        try Self.expectPulled(client, reference, image)
        let run = try client.berth([
            "container", "run", "--rm", "--network", "none", reference, "sh", "-c", "cat /small.txt; wc -c < /big",
        ])
        #expect(run.stdout == "small\n\(16 << 20)\n", "\(run.stderr)")
    }

    @Test func twoConcurrentPullsOfOneImageBothSucceed() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        let image = try layout.image(
            ImageSpec(layers: [
                .busybox, LayerSpec([.random("one", count: 4 << 20)]), LayerSpec([.random("two", count: 4 << 20)]),
            ]), tag: "v1")
        let registry = try RegistryServer()
        try registry.push(layout, tag: "v1", to: "app/concurrent")
        let reference = "\(registry.host)/app/concurrent:v1"
        let pulls = try (0..<2).map { _ in try client.start(["image", "pull", reference]) }
        for result in pulls.map({ $0.wait() }) { #expect(result.status == 0, "\(result.stderr)") }
        try Self.expectPulled(client, reference, image)
        #expect(try client.imageIDs() == [String(image.configDigest.dropFirst(7).prefix(12))])
        // The store holds exactly the image's blobs, whole.
        let expected = Set(
            ([image.manifest.digest, image.configDigest] + image.layers.map(\.digest)).map { String($0.dropFirst(7)) })
        #expect(client.blobs == expected)
        for hex in client.blobs {
            let data = try Data(contentsOf: URL(fileURLWithPath: client.root + "/images/blobs/sha256/" + hex))
            #expect(OCILayoutBuilder.sha256(data) == "sha256:" + hex)
        }
        let run = try client.berth([
            "container", "run", "--rm", "--network", "none", reference, "sh", "-c", "wc -c < /one",
        ])
        #expect(run.stdout == "\(4 << 20)\n", "\(run.stderr)")
    }

    @Test func pushThenPullIntoAFreshRootKeepsTheImageID() throws {
        let client = try Client()
        let registry = try RegistryServer()
        let tar = client.dir.path + "/busybox.tar"
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        try Command.check(repo.appendingPathComponent("scripts/busybox-image").path, [tar])
        let reference = "\(registry.host)/roundtrip/busybox:1"
        #expect(try client.berth(["image", "import", tar, "roundtrip"]).status == 0)
        #expect(try client.berth(["image", "tag", "roundtrip", reference]).status == 0)
        let push = try client.berth(["image", "push", reference])
        try #require(push.status == 0, "\(push.stderr)")
        let id = try #require(try client.inspect(reference)?["Id"] as? String)
        // What another client reads there: a manifest whose config is the image.
        let raw = try registry.skopeo("inspect", ["--raw", "docker://\(reference)"])
        let manifest = try JSONSerialization.jsonObject(with: Data(raw.stdout.utf8)) as? [String: Any]
        #expect((manifest?["config"] as? [String: Any])?["digest"] as? String == id, "\(raw.stderr)")

        let fresh = try Client()
        let pull = try fresh.berth(["image", "pull", reference])
        try #require(pull.status == 0, "\(pull.stderr)")
        #expect(try fresh.inspect(reference)?["Id"] as? String == id)
        let run = try fresh.berth(["container", "run", "--rm", "--network", "none", reference, "echo", "round trip"])
        #expect(run.stdout == "round trip\n", "\(run.stderr)")
        // Pushing again uploads nothing: the registry has every blob (HEAD, then no upload).
        let uploads = registry.requests("POST", containing: "/blobs/uploads/").count
        let again = try client.berth(["image", "push", reference])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(registry.requests("POST", containing: "/blobs/uploads/").count == uploads)
    }

    // MARK: Bad input: a one-line error, a non-zero exit, nothing stored

    @Test func unknownRepositoryAndUnknownTag() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        try Self.smallImage(layout, tag: "v1")
        let registry = try RegistryServer()
        try registry.push(layout, tag: "v1", to: "app/exists")
        try Self.expectCleanFailure(
            try client.berth(["image", "pull", "\(registry.host)/app/nothere:v1"]), client, mentions: ["app/nothere"])
        try Self.expectCleanFailure(
            try client.berth(["image", "pull", "\(registry.host)/app/exists:nope"]), client, mentions: ["nope"])
    }

    /// The message names the registry it could not reach.
    @Test func nothingListeningOnThePort() throws {
        let client = try Client()
        let port = try freeLoopbackPort()
        try Self.expectCleanFailure(
            try client.berth(["image", "pull", "127.0.0.1:\(port)/app/x:v1"]), client, mentions: ["127.0.0.1:\(port)"])
    }

    @Test func wrongStoredCredentials() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        try Self.smallImage(layout, tag: "v1")
        let registry = try RegistryServer(users: [.init("alice", "right")])
        try registry.push(layout, tag: "v1", to: "private/app")
        let auth = Data("alice:wrong".utf8).base64EncodedString()
        try client.dir.write("docker-config/config.json", #"{"auths":{"\#(registry.host)":{"auth":"\#(auth)"}}}"#)
        try Self.expectCleanFailure(
            try client.berth(["image", "pull", "\(registry.host)/private/app:v1"]), client, mentions: Self.unauthorized)
    }

    @Test func unsupportedManifestMediaType() throws {
        let client = try Client()
        let fake = try FakeRegistry()
        let bogus = "application/vnd.example.bogus.manifest.v1+json"
        fake.addManifest(
            Data(#"{"schemaVersion":2,"mediaType":"\#(bogus)"}"#.utf8), mediaType: bogus, repository: "app/bogus",
            tag: "v1")
        try Self.expectCleanFailure(
            try client.berth(["image", "pull", "\(fake.host)/app/bogus:v1"]), client, mentions: [bogus])
    }

    /// Digests become URLs and file names: a manifest naming "../" paths as digests is refused
    /// before anything is fetched or made, and nothing appears where the paths point.
    @Test func aManifestWithPathsForDigestsIsRefused() throws {
        let client = try Client()
        let fake = try FakeRegistry()
        let config = fake.addBlob(
            Data(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8))
        let target = "/tmp/berth-hostile-digest-\(getpid())"
        let manifest = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config)","size":10},
             "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest":"sha256:../../../../../../..\(target)","size":10}]}
            """
        fake.addManifest(
            Data(manifest.utf8), mediaType: "application/vnd.oci.image.manifest.v1+json", repository: "app/hostile",
            tag: "v1")
        try Self.expectCleanFailure(
            try client.berth(["image", "pull", "\(fake.host)/app/hostile:v1"]), client,
            mentions: ["not a sha256 digest"])
        #expect(!FileManager.default.fileExists(atPath: target))
        #expect(!FileManager.default.fileExists(atPath: target + ".lock"))
        #expect(fake.requests.allSatisfy { !$0.path.contains("/blobs/") })
    }

    /// What a hostile registry says is not followed for ever, nor printed raw: a catalog whose
    /// pages link back to themselves ends in an error, and names with escape sequences reach the
    /// terminal as `?`.
    /// A server name that is no host[:port] is refused before any request or file: `..` would
    /// otherwise name a certs.d folder above the registry's.
    @Test func loginRefusesANameThatIsNoHost() throws {
        let client = try Client()
        for server in ["..", "host:99999"] {
            let login = try client.berth(["login", "-u", "a", "-p", "b", server])
            #expect(login.status != 0 && login.stderr.contains("invalid registry name"), "\(login.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: client.dockerConfig + "/config.json"))
    }

    @Test func hostileCatalogsEndAndPrintNoControlCharacters() throws {
        let client = try Client()
        let looping = try LoopbackHTTPServer { request in
            if request.path == "/v2/" { return HTTPResponse(status: 200) }
            return .json(200, ["repositories": ["app/one"]], headers: [("Link", #"</v2/_catalog?n=1>; rel="next""#)])
        }
        let loop = try client.berth(["search", "\(looping.host)/app"])
        #expect(loop.status != 0 && loop.stderr.contains("its pages do not end"), "\(loop.stderr)")

        let escaping = try LoopbackHTTPServer { request in
            if request.path == "/v2/" { return HTTPResponse(status: 200) }
            return .json(200, ["repositories": ["app/a\u{1B}[2J\u{07}b"]])
        }
        let search = try client.berth(["search", "\(escaping.host)/app"])
        #expect(search.status == 0, "\(search.stderr)")
        #expect(!search.stdout.contains("\u{1B}") && search.stdout.contains("app/a?[2J?b"), "\(search.stdout)")
    }

    /// A blob redirected to file:// is not followed, not retried, and leaves nothing behind (no
    /// lease either: that is kept only when the network failed mid-pull).
    @Test func aRedirectToAFileIsRefusedAndLeavesNothing() throws {
        let client = try Client()
        let config = Data(
            #"{"architecture":"\#(OCILayoutBuilder.hostArchitecture)","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:\#(String(repeating: "a", count: 64))"]}}"#
                .utf8)
        let configDigest = OCILayoutBuilder.sha256(config)
        let layerDigest = OCILayoutBuilder.sha256(Data("layer".utf8))
        let manifest = Data(
            """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":\(config.count)},
             "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(layerDigest)","size":5}]}
            """.utf8)
        let server = try LoopbackHTTPServer { request in
            switch request.path {
            case "/v2/": return HTTPResponse(status: 200)
            case "/v2/app/redirect/manifests/v1":
                return HTTPResponse(
                    status: 200, headers: [("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                    body: manifest)
            case "/v2/app/redirect/blobs/\(configDigest)": return HTTPResponse(status: 200, body: config)
            default: return HTTPResponse(status: 307, headers: [("Location", "file:///etc/passwd")])
            }
        }
        let pull = try client.berth(["image", "pull", "\(server.host)/app/redirect:v1"])
        try Self.expectCleanFailure(pull, client, mentions: ["file"])
        let leases = (try? FileManager.default.contentsOfDirectory(atPath: client.root + "/images/leases")) ?? []
        #expect(leases.isEmpty, "\(leases)")
    }

    @Test func anIndexWithOnlyAnotherPlatform() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        let other = try layout.image(
            ImageSpec(layers: [.busybox], architecture: OCILayoutBuilder.otherArchitecture))
        let index = try layout.index([other])
        let fake = try FakeRegistry()
        try fake.serve(layout, index, as: "app/foreign", tag: "v1")
        try Self.expectCleanFailure(
            try client.berth(["image", "pull", "\(fake.host)/app/foreign:v1"]), client,
            mentions: ["linux/\(OCILayoutBuilder.hostArchitecture)"])
        // Nothing fetched beyond the index: no layer.
        #expect(fake.blobGETs(other.layers[0].digest) == 0)
    }

    /// References that Docker's grammar refuses, all naming a loopback registry where nothing
    /// listens (so that a reference taken as valid fails otherwise, and nothing leaves the host).
    /// (`UPPER/case` itself is valid to Docker: an upper-case first component is a registry host.)
    @Test func invalidReferences() throws {
        let client = try Client()
        let host = "127.0.0.1:\(try freeLoopbackPort())"
        for reference in ["\(host)/UPPER/case", "\(host)/app//double", "\(host)/app:bad tag", "\(host)/app:v1:v2"] {
            let pull = try client.berth(["image", "pull", reference])
            // Docker says "invalid reference format"; any words will do that say so and name it.
            try Self.expectCleanFailure(pull, client, mentions: [reference])
            #expect(pull.stderr.lowercased().contains("invalid"), "\(pull.stderr)")
        }
    }

    // MARK: Search

    @Test func searchListsMatchingRepositoriesOfAPrivateRegistry() throws {
        let client = try Client()
        let layout = try Self.layout(client)
        try Self.smallImage(layout, tag: "v1")
        let registry = try RegistryServer()
        for name in ["search/alpha-web", "search/alpha-db", "other/beta"] {
            try registry.push(layout, tag: "v1", to: name)
        }
        let search = try client.berth(["search", "\(registry.host)/alpha"])
        #expect(search.status == 0, "\(search.stderr)")
        let lines = search.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("NAME") == true, "\(search.stdout)")
        // The NAME column, with or without the registry's host before the repository.
        let names = Set(
            lines.dropFirst().compactMap { $0.split(separator: " ").first.map(String.init) }.map {
                $0.hasPrefix(registry.host + "/") ? String($0.dropFirst(registry.host.count + 1)) : $0
            })
        #expect(names == ["search/alpha-db", "search/alpha-web"], "\(search.stdout)")
    }
}
