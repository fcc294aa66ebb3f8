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
        var names: [String: String] = [:]
        var order: [String] = []
        var cached: Set<String> = []
        for line in output.split(separator: "\n") {
            guard line.hasPrefix("#"), let space = line.firstIndex(of: " ") else { continue }
            let number = String(line[..<space])
            let rest = String(line[line.index(after: space)...])
            if rest.hasPrefix("[") {
                names[number] = rest
                order.append(number)
            } else if rest == "CACHED" {
                cached.insert(number)
            }
        }
        return order.map { (names[$0]!, cached.contains($0)) }
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
