import Foundation
import TestSupport
import Testing

/// `berth build` as a user runs it: Dockerfiles built on a root of the test's own from the
/// busybox image, RUN steps in real containers, the cache checked through the steps the plain
/// progress marks CACHED and the layers' digests.
@Suite(.serialized) struct BuildCLITests {
    typealias World = ContainerCLITests.World

    /// A build context in the world's folder.
    final class Context {
        let path: String
        init(_ world: World, _ name: String, _ files: [String: String]) throws {
            path = world.dir.path + "/" + name
            for (file, text) in files { try write(file, text) }
        }
        func write(_ file: String, _ text: String) throws {
            let url = URL(fileURLWithPath: path + "/" + file)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
    }

    static func build(_ world: World, _ arguments: [String]) throws -> BerthProcess.Result {
        try world.berth(["build", "--progress", "plain"] + arguments)
    }

    /// The step lines of a plain build: "[name i/n] TEXT" -> "CACHED" or "DONE".
    static func steps(_ output: String) -> [(name: String, cached: Bool)] {
        var steps: [(name: String, cached: Bool)] = []
        var latest: [String: Int] = [:]  // a step number's entry (numbers start again in each build)
        for line in output.split(separator: "\n") {
            guard line.hasPrefix("#"), let space = line.firstIndex(of: " ") else { continue }
            let number = String(line[..<space])
            let rest = String(line[line.index(after: space)...])
            if rest.hasPrefix("[") {
                latest[number] = steps.count
                steps.append((rest, false))
            } else if rest == "CACHED", let index = latest[number] {
                steps[index].cached = true
            }
        }
        return steps
    }

    static func layers(_ world: World, _ image: String) throws -> [String] {
        let inspect = try world.berth(["image", "inspect", image])
        let all = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [[String: Any]]
        return (all?.first?["RootFS"] as? [String: Any])?["Layers"] as? [String] ?? []
    }

    /// Nothing of a build is left: no container, no step directory, no mount under the root.
    static func expectNothingLeft(_ world: World) throws {
        #expect(try world.berth(["container", "ps", "-a", "-q"]).stdout.isEmpty)
        let tmp = world.root + "/builder/tmp"
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []).isEmpty)
        let mounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        #expect(!mounts.contains(world.root))
    }

    static let sixSteps = """
        FROM busybox
        WORKDIR /app
        COPY base.txt ./
        RUN cp base.txt copied.txt
        COPY src/ /app/src/
        ARG VERSION=1
        RUN echo "v$VERSION $(cat src/main.txt)" > out.txt
        CMD ["cat", "/app/out.txt"]
        """

    @Test func aChangedSourceRebuildsFromItsCopyAndNothingBefore() throws {
        let world = try World()
        let context = try Context(
            world, "six",
            [
                "Dockerfile": Self.sixSteps, "base.txt": "base\n", "src/main.txt": "one",
                ".dockerignore": "notes.md\n", "notes.md": "ignored",
            ])
        let first = try Self.build(world, ["-t", "six", context.path])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try world.berth(["container", "run", "--rm", "six"]).stdout == "v1 one\n")
        let before = try Self.layers(world, "six")

        // The same inputs: every step from the cache, the same image.
        let again = try Self.build(world, ["-t", "six", context.path])
        #expect(Self.steps(again.stderr).dropFirst().allSatisfy { $0.cached || $0.name.contains("ARG") })

        // One source changed: its COPY and what follows rebuild; the layers before keep their digests.
        try context.write("src/main.txt", "two")
        let changed = try Self.build(world, ["-t", "six", context.path])
        #expect(changed.status == 0, "\(changed.stderr)")
        let steps = Self.steps(changed.stderr)
        let copyIndex = try #require(steps.firstIndex { $0.name.contains("COPY src/") })
        #expect(steps[1..<copyIndex].allSatisfy { $0.cached }, "\(changed.stderr)")
        #expect(steps[copyIndex...].allSatisfy { !$0.cached }, "\(changed.stderr)")
        let after = try Self.layers(world, "six")
        #expect(Array(after.prefix(before.count - 2)) == Array(before.prefix(before.count - 2)))
        #expect(after.last != before.last)
        #expect(try world.berth(["container", "run", "--rm", "six"]).stdout == "v1 two\n")

        // A file .dockerignore leaves out changes nothing.
        try context.write("notes.md", "changed")
        let ignored = try Self.build(world, ["-t", "six", context.path])
        #expect(Self.steps(ignored.stderr).dropFirst().allSatisfy { $0.cached || $0.name.contains("ARG") })
        #expect(try Self.layers(world, "six") == after)

        // A build arg: from the first step that uses it (the RUN after its ARG) on; as in Docker,
        // a RUN sees every build arg declared before it.
        let arg = try Self.build(world, ["-t", "six", "--build-arg", "VERSION=2", context.path])
        let argSteps = Self.steps(arg.stderr)
        let firstRebuilt = argSteps.firstIndex { !$0.cached && !$0.name.contains("ARG") && !$0.name.contains("FROM") }
        #expect(firstRebuilt.map { argSteps[$0].name.contains("RUN echo") } == true, "\(arg.stderr)")
        #expect(try world.berth(["container", "run", "--rm", "six"]).stdout == "v2 two\n")
        try Self.expectNothingLeft(world)
    }

    @Test func stagesHeredocsUsersAndCacheMounts() throws {
        let world = try World()
        let dockerfile = """
            # syntax=docker/dockerfile:1
            ARG BASE=busybox
            FROM ${BASE} AS builder
            ENV GREETING=hello
            ARG NAME=world
            RUN <<EOF
            mkdir -p /out
            echo "$GREETING $NAME" > /out/greeting
            EOF

            FROM busybox AS unused
            RUN exit 3

            FROM busybox AS final
            RUN echo temporary > /tmp/gone
            RUN rm /tmp/gone
            USER app
            WORKDIR /home/app/work
            RUN id -u > uid && pwd > pwd
            COPY --from=builder /out/greeting ./
            RUN --mount=type=cache,target=/cache,uid=1000 echo x >> /cache/count && wc -l < /cache/count > runs
            CMD ["sh", "-c", "cat greeting uid pwd runs; test ! -e /tmp/gone && echo gone"]
            """
        let context = try Context(world, "stages", ["Dockerfile": dockerfile])
        let built = try Self.build(world, ["-t", "stages", context.path])
        #expect(built.status == 0, "\(built.stderr)")
        // The unused stage never ran (its RUN fails).
        #expect(!built.stderr.contains("[unused"))
        let run = try world.berth(["container", "run", "--rm", "stages"])
        #expect(run.stdout == "hello world\n1000\n/home/app/work\n1\ngone\n", "\(run.stderr)")

        // The cache mount keeps its content between builds, even with --no-cache.
        let rebuilt = try Self.build(world, ["--no-cache", "-t", "stages", context.path])
        #expect(rebuilt.status == 0, "\(rebuilt.stderr)")
        #expect(try world.berth(["container", "run", "--rm", "stages", "cat", "runs"]).stdout == "2\n")

        // --target: the builder alone.
        let target = try Self.build(world, ["--target", "builder", "-t", "only-builder", context.path])
        #expect(target.status == 0, "\(target.stderr)")
        #expect(!target.stderr.contains("[final") && !target.stderr.contains("[unused"))
        #expect(
            try world.berth(["container", "run", "--rm", "only-builder", "cat", "/out/greeting"]).stdout
                == "hello world\n")
        try Self.expectNothingLeft(world)
    }

    @Test func equalInputsWithSourceDateEpochGiveEqualLayers() throws {
        let world = try World()
        let context = try Context(
            world, "epoch",
            ["Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN echo made > /made\n", "a.txt": "a\n"])
        var digests: [[String]] = []
        for _ in 0..<2 {
            let result = try BerthProcess.run(
                ["build", "--no-cache", "-t", "epoch", context.path],
                environment: ["BERTH_ROOT": world.root, "SOURCE_DATE_EPOCH": "1700000000"])
            #expect(result.status == 0, "\(result.stderr)")
            digests.append(try Self.layers(world, "epoch"))
        }
        #expect(digests[0] == digests[1])
        #expect(digests[0].count == 3)
    }

    @Test func copyAndAddFlagsArchivesAndHostileLinks() throws {
        let world = try World()
        let context = try Context(
            world, "copy",
            [
                "app/a.txt": "a\n", "app/b.log": "b\n", "app/sub/c.txt": "c\n", "docs/x.md": "x\n",
                "docs/y.md": "y\n", "Dockerfile.dockerignore": "secret.txt\n", "secret.txt": "no\n",
                "nested/deep/file.txt": "deep\n",
            ])
        // A link in the context that points out of it is resolved inside the context.
        try FileManager.default.createSymbolicLink(atPath: context.path + "/passwd", withDestinationPath: "/etc/passwd")
        try context.write("etc/passwd", "the context's own\n")
        // A tar to unpack: ADD makes its tree, COPY copies the file.
        let tarDir = world.dir.path + "/tar-src"
        try FileManager.default.createDirectory(atPath: tarDir + "/pkg", withIntermediateDirectories: true)
        try "packed\n".write(toFile: tarDir + "/pkg/inside.txt", atomically: true, encoding: .utf8)
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/bin/tar")
        tar.arguments = ["-C", tarDir, "-czf", context.path + "/bundle.tar.gz", "pkg"]
        try tar.run()
        tar.waitUntilExit()
        let dockerfile = """
            FROM busybox
            RUN mkdir -p /target && ln -s /etc /target/link
            COPY --chown=app:staff --chmod=640 app/a.txt /owned/
            COPY --exclude=*.log app /app/
            COPY docs/*.md /docs/
            COPY --parents nested/deep/file.txt /parents/
            COPY passwd /from-link
            ADD bundle.tar.gz /unpacked/
            COPY bundle.tar.gz /packed/
            COPY app/a.txt /target/link/written-through-link
            """
        try context.write("Dockerfile", dockerfile)
        let built = try Self.build(world, ["-t", "copy", "-f", context.path + "/Dockerfile", context.path])
        #expect(built.status == 0, "\(built.stderr)")
        let script = [
            "stat -c '%U:%G %a' /owned/a.txt", "stat -c '%U:%G' /owned /", "ls /app /app/sub", "ls /docs",
            "cat /parents/nested/deep/file.txt",
            "cat /from-link", "cat /unpacked/pkg/inside.txt", "ls /packed", "ls -l /target/link | cut -c1",
            "ls /etc/written-through-link", "test ! -e /secret.txt && echo no-secret",
        ].joined(separator: "; ")
        let run = try world.berth(["container", "run", "--rm", "copy", "sh", "-c", script])
        #expect(
            run.stdout
                == """
                app:staff 640
                app:staff
                root:root
                /app:
                a.txt
                sub

                /app/sub:
                c.txt
                x.md
                y.md
                deep
                the context's own
                packed
                bundle.tar.gz
                l
                /etc/written-through-link
                no-secret

                """, "\(run.stderr)")
        // Dockerfile.dockerignore excluded secret.txt: naming it is "not found".
        try context.write("Dockerfile", "FROM busybox\nCOPY secret.txt /\n")
        let excluded = try Self.build(world, ["-f", context.path + "/Dockerfile", context.path])
        #expect(excluded.status != 0 && excluded.stderr.contains("secret.txt"), "\(excluded.stderr)")
        try Self.expectNothingLeft(world)
    }

    @Test func theTerminalViewShowsStepsTimesAndCachedOnes() throws {
        let world = try World()
        let context = try Context(
            world, "tty", ["Dockerfile": "FROM busybox\nRUN echo built > /f\nCMD [\"cat\", \"/f\"]\n"])
        for _ in 0..<2 {
            let result = try world.berth(["build", "--progress", "tty", "--ansi", "never", "-t", "tty", context.path])
            #expect(result.status == 0, "\(result.stderr)")
        }
        let last = try world.berth(["build", "--progress", "tty", "-t", "tty", context.path])
        #expect(last.stderr.contains("[+] Building"))
        #expect(last.stderr.contains("\u{1B}[2K => CACHED [stage-0 2/3] RUN echo built > /f"))
        #expect(last.stderr.contains("\u{1B}["))  // drawn in place
        let quiet = try world.berth(["image", "build", "-q", context.path])
        #expect(quiet.stdout.hasPrefix("sha256:") && quiet.stderr.isEmpty)
    }

    @Test func composeBuildsServicesNamesThemAndRemovesThemWithRmiLocal() throws {
        let world = try World()
        let project = "bld\(UUID().uuidString.prefix(6).lowercased())"
        let dir = world.dir.path + "/" + project
        let context = try Context(
            world, project,
            [
                "web/Dockerfile": """
                FROM busybox
                ARG GREETING
                RUN echo $GREETING > /greeting
                HEALTHCHECK --interval=1s --start-interval=1s CMD test -f /greeting
                CMD ["sleep", "600"]
                """,
                "tool/Dockerfile": "FROM busybox\nRUN echo tool > /tool\n",
                "compose.yaml": """
                services:
                  web:
                    build:
                      context: web
                      args:
                        GREETING: hello
                    init: true
                  tool:
                    image: custom-tool:1
                    build:
                      context: ./tool
                      tags: ["custom-tool:extra"]
                    pull_policy: build
                    command: ["sleep", "600"]
                    init: true
                """,
            ])
        _ = context
        func compose(_ arguments: [String]) throws -> BerthProcess.Result {
            try world.berth(["-f", dir + "/compose.yaml", "-p", project, "--progress", "plain"] + arguments)
        }
        defer { _ = try? compose(["down", "-v", "-t", "0"]) }
        // `build SERVICE`: that one only, named PROJECT-SERVICE.
        let one = try compose(["build", "web"])
        #expect(one.status == 0, "\(one.stderr)")
        var images = try world.berth(["image", "ls"]).stdout
        #expect(images.contains("\(project)-web") && !images.contains("custom-tool"))
        // `up`: tool's image is missing (and pull_policy build): built, with its tags. web's
        // health check is its image's HEALTHCHECK, which --wait waits for.
        let up = try compose(["up", "-d", "--wait"])
        #expect(up.status == 0, "\(up.stderr)")
        #expect(try compose(["ps"]).stdout.contains("(healthy)"))
        images = try world.berth(["image", "ls"]).stdout
        #expect(images.contains("custom-tool") && images.contains("extra"))
        let greeting = try world.berth(["container", "exec", "\(project)-web-1", "cat", "/greeting"])
        #expect(greeting.stdout == "hello\n")
        // A second `up --build` with nothing changed: every step from the cache, nothing recreated.
        let again = try compose(["up", "-d", "--build"])
        #expect(again.status == 0, "\(again.stderr)")
        let runs = Self.steps(again.stderr).filter { $0.name.contains("] RUN") }
        #expect(!again.stderr.contains("Recreated"), "\(again.stderr)")
        #expect(runs.count == 2 && runs.allSatisfy { $0.cached }, "\(again.stderr)")
        #expect(!again.stderr.contains("Recreate"), "\(again.stderr)")
        // `down --rmi local`: the PROJECT-SERVICE image goes, the one named in image: stays.
        let down = try compose(["down", "--rmi", "local", "-t", "0"])
        #expect(down.status == 0, "\(down.stdout) \(down.stderr)")
        images = try world.berth(["image", "ls"]).stdout
        #expect(!images.contains("\(project)-web") && images.contains("custom-tool"))
    }

    /// Two stages that depend on neither each other run at once: each RUN marks its start in a
    /// cache mount both share and waits (5 s at most) for the other's mark. Built one after the
    /// other, the first would wait in vain and write "alone".
    @Test func independentStagesBuildAtOnce() throws {
        let world = try World()
        func stage(_ me: String, _ other: String) -> String {
            """
            FROM busybox AS \(me)
            RUN --mount=type=cache,target=/meet,id=meet touch /meet/\(me); i=0; \\
                while [ ! -e /meet/\(other) ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; \\
                if [ -e /meet/\(other) ]; then echo together; else echo alone; fi > /\(me)
            """
        }
        let dockerfile =
            stage("left", "right") + "\n" + stage("right", "left") + """

                FROM busybox
                COPY --from=left /left /
                COPY --from=right /right /
                CMD ["cat", "/left", "/right"]
                """
        let context = try Context(world, "parallel", ["Dockerfile": dockerfile])
        let built = try Self.build(world, ["-t", "parallel", context.path])
        #expect(built.status == 0, "\(built.stderr)")
        #expect(try world.berth(["container", "run", "--rm", "parallel"]).stdout == "together\ntogether\n")
    }

    /// What the metadata instructions set reaches the image's config (`image inspect`), and an
    /// ONBUILD trigger runs in the image built FROM it.
    @Test func metadataInstructionsAndOnbuild() throws {
        let world = try World()
        let base = try Context(
            world, "meta",
            [
                "Dockerfile": """
                FROM busybox
                LABEL org.example.name="meta image" version=1
                ENV A=1 B="two words"
                EXPOSE 8080 53/udp
                VOLUME ["/data"]
                STOPSIGNAL SIGINT
                HEALTHCHECK --interval=5s --retries=2 CMD ["true"]
                SHELL ["/bin/sh", "-ec"]
                ENTRYPOINT ["/bin/echo"]
                CMD ["hello"]
                USER app
                ONBUILD RUN echo triggered > /tmp/onbuild
                """
            ])
        #expect(try Self.build(world, ["-t", "meta", base.path]).status == 0)
        let inspect = try world.berth(["image", "inspect", "meta"])
        let all = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [[String: Any]]
        let config = try #require(all?.first?["Config"] as? [String: Any])
        #expect((config["Labels"] as? [String: String]) == ["org.example.name": "meta image", "version": "1"])
        #expect((config["Env"] as? [String])?.suffix(2) == ["A=1", "B=two words"])
        #expect(((config["ExposedPorts"] as? [String: Any]) ?? [:]).keys.sorted() == ["53/udp", "8080/tcp"])
        #expect(((config["Volumes"] as? [String: Any]) ?? [:]).keys.sorted() == ["/data"])
        #expect(config["StopSignal"] as? String == "SIGINT")
        let health = config["Healthcheck"] as? [String: Any]
        #expect(health?["Test"] as? [String] == ["CMD", "true"] && health?["Retries"] as? Int == 2)
        #expect(health?["Interval"] as? Int == 5_000_000_000)
        #expect(config["Shell"] as? [String] == ["/bin/sh", "-ec"])
        #expect(config["Entrypoint"] as? [String] == ["/bin/echo"] && config["Cmd"] as? [String] == ["hello"])
        #expect(config["User"] as? String == "app")
        #expect(config["OnBuild"] as? [String] == ["RUN echo triggered > /tmp/onbuild"])
        #expect(try world.berth(["container", "run", "--rm", "meta"]).stdout == "hello\n")

        let child = try Context(world, "child", ["Dockerfile": "FROM meta\nCMD [\"/tmp/onbuild\"]\n"])
        #expect(try Self.build(world, ["-t", "child", child.path]).status == 0)
        let run = try world.berth(["container", "run", "--rm", "--entrypoint", "cat", "child", "/tmp/onbuild"])
        #expect(run.stdout == "triggered\n", "\(run.stderr)")
        // The triggers are not passed on.
        let childInspect = try world.berth(["image", "inspect", "child"])
        #expect(!childInspect.stdout.contains("OnBuild"))
    }

    @Test func badInputIsAClearErrorAndLeavesNothing() throws {
        let world = try World()
        func fails(_ dockerfile: String, _ expected: [String], arguments: [String] = [], files: [String: String] = [:])
            throws
        {
            let context = try Context(
                world, "bad-\(UUID().uuidString.prefix(6))", files.merging(["Dockerfile": dockerfile]) { a, _ in a })
            let result = try Self.build(world, arguments + [context.path])
            #expect(result.status != 0)
            for text in expected { #expect(result.stderr.contains(text), "\(text) not in \(result.stderr)") }
        }
        try fails("FROM busybox\nRUNN echo\n", ["Dockerfile:2:1", "unknown instruction", "RUNN"])
        try fails("FROM busybox\nCOPY missing.txt /\n", ["Dockerfile:2:1", "missing.txt", "not found"])
        try fails("FROM busybox\nCOPY ../outside /\n", ["outside the build context"])
        try fails("FROM busybox AS a\nRUN true\n", ["target stage", "nope"], arguments: ["--target", "nope"])
        try fails("FROM busybox\nENV =x\n", ["Dockerfile:2:1"])
        try fails("FROM busybox\nARG\n", ["Dockerfile:2:1"])
        try fails(
            "FROM busybox\nRUN echo one; echo two >&2; echo three; exit 4\n",
            ["Dockerfile:2:1", "[stage-0 2/2] RUN echo one", "exit code 4", "two", "three"])
        try Self.expectNothingLeft(world)
    }
}
