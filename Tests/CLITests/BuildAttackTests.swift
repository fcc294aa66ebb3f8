import Foundation
import TestSupport
import Testing

/// `berth build` against a hostile Dockerfile, context or environment: what must not reach the
/// host, stale cache results, crashes and hangs of the parser. Each test on a root of its own;
/// whatever a test makes on the host is in its world's temporary folder.
@Suite(.serialized) struct BuildAttackTests {
    typealias World = ContainerCLITests.World
    typealias Context = BuildCLITests.Context

    static func build(_ world: World, _ arguments: [String]) throws -> BerthProcess.Result {
        try BuildCLITests.build(world, arguments)
    }

    /// Runs a python3 program; whether it exited with 0.
    static func python(_ code: String) throws -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", code]
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    /// A RUN mount target climbing out with "..": the runtime mounts it inside the root, but the
    /// removal of the mount's stub directory joined it to the upper dir's host path, so that
    /// `rmdir` took an empty directory of the host (here one in the test's folder).
    @Test func aMountTargetWithDotDotRemovesNoHostDirectory() throws {
        let world = try World()
        let victim = world.dir.path + "/victim"
        try FileManager.default.createDirectory(atPath: victim, withIntermediateDirectories: true)
        let climb = String(repeating: "../", count: 40)
        let context = try Context(
            world, "stub",
            [
                "Dockerfile": """
                FROM busybox
                RUN --mount=type=tmpfs,target=/a/\(climb)\(victim.dropFirst()) mkdir -p /a && echo ran
                """
            ])
        let result = try Self.build(world, [context.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: victim), "the build removed \(victim) on the host")
        try BuildCLITests.expectNothingLeft(world)
    }

    /// The same through a link the command plants where the mount's parent was.
    @Test func aLinkPlantedByRunLeadsNoStubRemovalOut() throws {
        let world = try World()
        let victim = world.dir.path + "/victim2"
        try FileManager.default.createDirectory(atPath: victim + "/m", withIntermediateDirectories: true)
        let context = try Context(
            world, "stub2",
            [
                "Dockerfile": """
                FROM busybox
                RUN --mount=type=tmpfs,target=/p/m mv /p /q && ln -s \(victim) /p
                """
            ])
        let result = try Self.build(world, [context.path])
        // Moving a directory holding a mount may be refused; what matters is the host's tree.
        _ = result
        #expect(FileManager.default.fileExists(atPath: victim + "/m"), "the build removed \(victim)/m on the host")
    }

    /// `RUN <<EOF` with a #! line runs from a file: its text must be part of the step's key.
    @Test func aShebangHeredocIsRebuiltWhenItsTextChanges() throws {
        let world = try World()
        func dockerfile(_ word: String) -> String {
            "FROM busybox\nRUN <<EOF\n#!/bin/sh\necho \(word) > /out\nEOF\nCMD [\"cat\", \"/out\"]\n"
        }
        let context = try Context(world, "shebang", ["Dockerfile": dockerfile("one")])
        #expect(try Self.build(world, ["-t", "sb", context.path]).status == 0)
        #expect(try world.berth(["container", "run", "--rm", "sb"]).stdout == "one\n")
        try context.write("Dockerfile", dockerfile("two"))
        let second = try Self.build(world, ["-t", "sb", context.path])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try world.berth(["container", "run", "--rm", "sb"]).stdout == "two\n", "\(second.stderr)")
    }

    /// A Dockerfile asking for the host's network (its loopback services) needs the user's grant,
    /// as BuildKit's network.host entitlement.
    @Test func runNetworkHostNeedsTheEntitlement() throws {
        let world = try World()
        let context = try Context(world, "hostnet", ["Dockerfile": "FROM busybox\nRUN --network=host true\n"])
        let refused = try Self.build(world, [context.path])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("--allow network.host"), "\(refused.stderr)")
        let granted = try Self.build(world, ["--allow", "network.host", context.path])
        #expect(granted.status == 0, "\(granted.stderr)")
        let unknown = try Self.build(world, ["--allow", "security.insecure", context.path])
        #expect(unknown.status != 0)
        try BuildCLITests.expectNothingLeft(world)
    }

    /// Thousands of nested `${...}` or JSON brackets: an error (or the shell form), never a crash
    /// of the stage's thread.
    @Test func deepNestingIsNoCrash() throws {
        let world = try World()
        let depth = 5000
        let variables =
            "FROM busybox\nENV A=" + String(repeating: "${x:-", count: depth) + "v"
            + String(repeating: "}", count: depth) + "\n"
        let vars = try Context(world, "vars", ["Dockerfile": variables])
        let first = try Self.build(world, [vars.path])
        #expect(first.status == 1, "\(first.stderr.suffix(300))")
        #expect(first.stderr.contains("nested"), "\(first.stderr.suffix(300))")
        let json =
            "FROM busybox\nCMD " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
            + "\n"
        let brackets = try Context(world, "json", ["Dockerfile": json])
        let second = try Self.build(world, [brackets.path])
        #expect(second.status == 0 || second.status == 1, "\(second.stderr.suffix(300))")
        // Moderate nesting still works.
        let fine = try Context(
            world, "fine", ["Dockerfile": "FROM busybox\nARG X\nENV A=${X:-${Y:-${Z:-deep}}}\nRUN test \"$A\" = deep\n"]
        )
        let third = try Self.build(world, [fine.path])
        #expect(third.status == 0, "\(third.stderr)")
    }

    /// `${A#pattern}` with many stars ran for hours (every split tried for every star), and a
    /// SIGTERM could not stop it. Matching is now linear per start: it finishes, right.
    @Test func shellPatternRemovalIsNotExponential() throws {
        let world = try World()
        let a = String(repeating: "a", count: 60)
        let stars = String(repeating: "*a", count: 12)
        let context = try Context(
            world, "pattern",
            [
                "Dockerfile": """
                FROM busybox
                ENV A=\(a)x
                ENV B=${A#\(stars)*b} C=${A##\(stars)} D=${A%%a*} E=${A#*a?a} F=${A%a*x}
                RUN test "$B" = "$A" && test "$C" = x && test "$D" = "" && test "$E" = "\(a.dropFirst(3))x" && test "$F" = "\(a.dropLast())"
                """
            ])
        let started = Date()
        let result = try Self.build(world, [context.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 60)
    }

    /// The same for `.dockerignore` and `COPY --exclude` patterns against a long name.
    @Test func ignorePatternsWithManyStarsAreNotExponential() throws {
        let world = try World()
        let long = String(repeating: "a", count: 200)
        let stars = String(repeating: "*a", count: 12)
        let context = try Context(
            world, "ignore",
            [
                ".dockerignore": "\(stars)*b\n**/\(stars)*c\n",
                "\(long)": "kept\n", "\(long)b": "ignored\n", "d/\(long)c": "ignored\n",
                "Dockerfile": """
                FROM busybox
                COPY . /ctx/
                COPY --exclude=\(stars)x . /ex/
                RUN test -f /ctx/\(long) && test ! -e /ctx/\(long)b && test ! -e /ctx/d/\(long)c && test -f /ex/\(long)
                """,
            ])
        let started = Date()
        let result = try Self.build(world, [context.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 60)
    }

    /// `builder prune` while a build runs removed the cache entries that alone name its steps'
    /// images, and the collection deleted the layers under its running step: it now refuses.
    @Test func builderPruneWaitsForNoBuild() throws {
        let world = try World()
        let context = try Context(
            world, "prune",
            [
                "f": "data\n",
                "Dockerfile":
                    "FROM busybox\nCOPY f /f1\nRUN echo two > /l2\nRUN sleep 4; echo three > /l3\nRUN cat /f1 /l2 /l3\n",
            ])
        let building = try ContainerCLITests.RunningBerth(
            ["build", "--progress", "plain", "-t", "pr", context.path], world: world)
        Thread.sleep(forTimeInterval: 2)
        let prune = try world.berth(["builder", "prune", "-a", "-f"])
        #expect(prune.status != 0)
        #expect(prune.stderr.contains("build is running"), "\(prune.stderr)")
        _ = building.readStdout(deadline: Date() + 120)
        #expect(building.waitForExit(deadline: Date() + 120) == 0, "\(building.stderr)")
        #expect(
            try world.berth(["container", "run", "--rm", "pr", "cat", "/f1", "/l2", "/l3"]).stdout
                == "data\ntwo\nthree\n")
        #expect(try world.berth(["builder", "prune", "-a", "-f"]).status == 0)
    }

    /// `--secret id=X` without src= takes the variable X's value as the secret, as docker does;
    /// it was taken for a path, and the error message printed the token.
    @Test func aSecretFromTheEnvironmentIsItsValue() throws {
        let world = try World()
        let context = try Context(
            world, "secret",
            [
                "Dockerfile":
                    "FROM busybox\nRUN --mount=type=secret,id=BERTH_TEST_TOKEN cat /run/secrets/BERTH_TEST_TOKEN\n"
            ])
        let result = try BerthProcess.run(
            ["build", "--progress", "plain", "--no-cache", "--secret", "id=BERTH_TEST_TOKEN", context.path],
            environment: ["BERTH_ROOT": world.root, "BERTH_TEST_TOKEN": "tok-123-secret"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("#2 tok-123-secret"), "\(result.stderr)")
        #expect(!result.stderr.contains("bind source"), "\(result.stderr)")
        let missing = try Self.build(world, ["--secret", "id=BERTH_TEST_NO_SUCH_VARIABLE", context.path])
        #expect(missing.status != 0)
        try BuildCLITests.expectNothingLeft(world)
    }

    /// ADD of a tar's FIFO and device: made with the archive's permissions.
    @Test func addKeepsTheModesOfSpecialFiles() throws {
        let world = try World()
        let context = try Context(
            world, "special", ["Dockerfile": "FROM busybox\nADD special.tar /s/\nRUN stat -c '%n %a' /s/fifo /s/null\n"]
        )
        let made = try Self.python(
            """
            import tarfile
            with tarfile.open('\(context.path)/special.tar', 'w') as t:
                f = tarfile.TarInfo('fifo'); f.type = tarfile.FIFOTYPE; f.mode = 0o644; t.addfile(f)
                d = tarfile.TarInfo('null'); d.type = tarfile.CHRTYPE; d.devmajor = 1; d.devminor = 3; d.mode = 0o666; t.addfile(d)
            """)
        #expect(made)
        let result = try Self.build(world, [context.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("/s/fifo 644"), "\(result.stderr)")
        #expect(result.stderr.contains("/s/null 666"), "\(result.stderr)")
    }

    /// A context file's extended attributes are copied, so they are in the source digest:
    /// changing one rebuilds the COPY.
    @Test func anXattrChangeRebuildsTheCopy() throws {
        let world = try World()
        let context = try Context(world, "xattr", ["f": "x\n", "Dockerfile": "FROM busybox\nCOPY f /f\n"])
        let file = context.path + "/f"
        // A file system without user xattrs has nothing to test.
        guard try Self.python("import os; os.setxattr('\(file)', 'user.berth', b'one')") else { return }
        #expect(try Self.build(world, ["-t", "xa", context.path]).status == 0)
        _ = try Self.python("import os; os.setxattr('\(file)', 'user.berth', b'two')")
        let second = try Self.build(world, ["-t", "xa", context.path])
        #expect(!BuildCLITests.steps(second.stderr).last!.cached)
    }

    /// A wildcard source matching a name that is not UTF-8: matched as text, opened and copied
    /// by its bytes.
    @Test func aWildcardMatchesNamesThatAreNotUTF8() throws {
        let world = try World()
        let context = try Context(world, "bytes", ["Dockerfile": "FROM busybox\nCOPY d/*.txt /g/\n"])
        try FileManager.default.createDirectory(atPath: context.path + "/d", withIntermediateDirectories: true)
        let name = Array((context.path + "/d/bad").utf8) + [0xFF] + Array(".txt".utf8) + [0]
        let fd = name.withUnsafeBufferPointer {
            open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_CREAT | O_WRONLY, 0o644)
        }
        #expect(fd >= 0)
        close(fd)
        let result = try Self.build(world, ["-t", "bytes", context.path])
        #expect(result.status == 0, "\(result.stderr)")
        let listed = try world.berth([
            "container", "run", "--rm", "bytes", "sh", "-c", "for f in /g/*; do printf %s \"$f\"; done | od -An -tx1",
        ])
        #expect(listed.stdout.contains("2f 67 2f 62 61 64 ff 2e 74 78 74"), "\(listed.stdout)")
    }
}

/// What a review of the build found, each case as Docker (BuildKit) behaves.
@Suite(.serialized) struct BuildReviewTests {
    typealias World = ContainerCLITests.World
    typealias Context = BuildCLITests.Context

    static func build(_ world: World, _ arguments: [String], environment: [String: String] = [:]) throws
        -> BerthProcess.Result
    {
        try BerthProcess.run(
            ["build", "--progress", "plain"] + arguments,
            environment: ["BERTH_ROOT": world.root].merging(environment) {
                a, _ in a
            })
    }

    static func inspect(_ world: World, _ image: String) throws -> [String: Any] {
        let output = try world.berth(["image", "inspect", image]).stdout
        return (try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]])?.first ?? [:]
    }

    static func run(_ world: World, _ image: String, _ script: String) throws -> String {
        try world.berth(["container", "run", "--rm", "-u", "0", image, "sh", "-c", script]).stdout
    }

    /// A heredoc's name is written in the step's directory on the host first: one with a path
    /// in it is refused, and nothing is written outside.
    @Test func aHeredocNameIsNoHostPath() throws {
        let world = try World()
        let climb = String(repeating: "../", count: 12) + String(world.dir.path.dropFirst()) + "/escaped"
        let context = try Context(
            world, "heredoc", ["Dockerfile": "FROM busybox\nCOPY <<\(climb) /x\nhello\n\(climb)\n"])
        let result = try Self.build(world, [context.path])
        #expect(result.status != 0 && result.stderr.contains("heredoc name"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: world.dir.path + "/escaped"))
    }

    /// SOURCE_DATE_EPOCH is in the key: an image built without it is not reused for a build
    /// with it (its times would be the other build's).
    @Test func sourceDateEpochIsPartOfTheKey() throws {
        let world = try World()
        let context = try Context(world, "epoch", ["Dockerfile": "FROM busybox\nRUN echo x > /x\n"])
        #expect(try Self.build(world, ["-t", "e", context.path]).status == 0)
        let again = try Self.build(world, ["-t", "e", context.path], environment: ["SOURCE_DATE_EPOCH": "0"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(!BuildCLITests.steps(again.stderr).last!.cached)
        let inspect = try world.berth(["image", "inspect", "e"])
        #expect(inspect.stdout.contains("\"Created\" : \"1970-01-01T00:00:00"), "\(inspect.stdout)")
    }

    /// Mount points the runtime made for a secret (a file) and a cache (a directory), and their
    /// parents, are not in the layer; WORKDIR under USER owns only what it makes; a secret has
    /// the mount's owner and mode; labels given on the command line keep the image ID.
    @Test func mountStubsWorkdirOwnersSecretsAndLabels() throws {
        let world = try World()
        let secret = world.dir.path + "/token"
        try "s3cret\n".write(toFile: secret, atomically: true, encoding: .utf8)
        chmod(secret, 0o600)
        let context = try Context(
            world, "stubs",
            [
                "Dockerfile": """
                FROM busybox
                RUN --mount=type=secret,id=tok --mount=type=cache,target=/var/cache/x cat /run/secrets/tok
                USER app
                WORKDIR /etc
                WORKDIR /home/app/new/dir
                RUN --mount=type=secret,id=tok,uid=1000,mode=0400 cat /run/secrets/tok > seen
                """
            ])
        let arguments = ["--secret", "id=tok,src=\(secret)", "--label", "a=b", "-t", "stubs", context.path]
        let first = try Self.build(world, arguments)
        #expect(first.status == 0, "\(first.stderr)")
        let listing = try Self.run(
            world, "stubs",
            "ls -d /run/secrets /var/cache 2>&1; stat -c '%U %n' /etc /home/app/new /home/app/new/dir; cat seen")
        #expect(
            listing
                == "ls: /run/secrets: No such file or directory\nls: /var/cache: No such file or directory\n"
                + "root /etc\napp /home/app/new\napp /home/app/new/dir\ns3cret\n", "\(listing)")
        let id = try Self.inspect(world, "stubs")["Id"] as? String
        let second = try Self.build(world, arguments)
        #expect(second.status == 0)
        #expect(try Self.inspect(world, "stubs")["Id"] as? String == id)
    }

    /// `.dockerignore` exceptions bring back what they name and no empty directory around it;
    /// a RUN bind of the context sees it through .dockerignore too.
    @Test func ignoreExceptionsCopyNoSkeletonsAndBindsSeeTheFilteredContext() throws {
        let world = try World()
        let context = try Context(
            world, "ignore",
            [
                ".dockerignore": "*\n!**/*.go\n!Dockerfile\n", "main.go": "package main\n",
                "pkg/util.go": "package pkg\n", "node_modules/lib/index.js": "x\n", "secret.txt": "no\n",
                "Dockerfile": """
                FROM busybox
                COPY . /app/
                RUN --mount=type=bind,target=/ctx ls -R /ctx > /seen
                """,
            ])
        try FileManager.default.createDirectory(
            atPath: context.path + "/.git/objects/ab", withIntermediateDirectories: true)
        #expect(try Self.build(world, ["-t", "ign", context.path]).status == 0)
        #expect(
            try Self.run(world, "ign", "cd /app && find . | sort")
                == ".\n./Dockerfile\n./main.go\n./pkg\n./pkg/util.go\n")
        let seen = try Self.run(world, "ign", "cat /seen")
        #expect(!seen.contains("secret.txt") && seen.contains("main.go"), "\(seen)")
        // An empty directory under an ignored one changes nothing.
        try FileManager.default.createDirectory(
            atPath: context.path + "/.git/objects/cd", withIntermediateDirectories: true)
        let again = try Self.build(world, ["-t", "ign", context.path])
        #expect(BuildCLITests.steps(again.stderr).filter { $0.name.contains("COPY") }.allSatisfy { $0.cached })
    }

    /// A wildcard that matches one file may name a file destination; one that matches nothing
    /// copies nothing (BuildKit's AllowEmptyWildcard).
    @Test func wildcardsMatchingOneOrNone() throws {
        let world = try World()
        let context = try Context(
            world, "wild",
            [
                "requirements.txt": "r\n",
                "Dockerfile": "FROM busybox\nCOPY re*.txt /app/reqs.txt\nCOPY optional* /app/\nEXPOSE 8000-8002\n",
            ])
        let built = try Self.build(world, ["-t", "wild", context.path])
        #expect(built.status == 0, "\(built.stderr)")
        #expect(try Self.run(world, "wild", "ls /app") == "reqs.txt\n")
        let config = try Self.inspect(world, "wild")["Config"] as? [String: Any]
        let ports = (config?["ExposedPorts"] as? [String: Any] ?? [:]).keys.sorted()
        #expect(ports == ["8000/tcp", "8001/tcp", "8002/tcp"])
    }

    /// When a stage fails, a stage building beside it is stopped rather than waited for.
    @Test func aFailingStageStopsItsSiblings() throws {
        let world = try World()
        let context = try Context(
            world, "siblings",
            [
                "Dockerfile": """
                FROM busybox AS slow
                RUN sleep 60 && touch /done
                FROM busybox AS failing
                RUN sleep 1; exit 3
                FROM busybox
                COPY --from=slow /done /
                COPY --from=failing /etc/passwd /
                """
            ])
        let result = try Self.build(world, [context.path])
        #expect(result.status != 0 && result.stderr.contains("exit code 3"), "\(result.stderr)")
        // The slow step's number, and how it ended: ERROR (killed), not DONE after 60 s.
        let line = result.stderr.split(separator: "\n").first { $0.hasSuffix("RUN sleep 60 && touch /done") }
        let number = try #require(line.flatMap { $0.split(separator: " ").first })
        #expect(result.stderr.contains("\n\(number) ERROR"), "\(result.stderr)")
        try BuildCLITests.expectNothingLeft(world)
    }

    /// ENTRYPOINT clears an inherited CMD, not one this stage set, also when that CMD step came
    /// from the cache.
    @Test func anEntrypointKeepsTheStagesCachedCmd() throws {
        let world = try World()
        let context = try Context(
            world, "cmd", ["Dockerfile": "FROM busybox\nCMD [\"one\"]\nENTRYPOINT [\"/bin/echo\"]\n"])
        #expect(try Self.build(world, ["-t", "cmd", context.path]).status == 0)
        try context.write("Dockerfile", "FROM busybox\nCMD [\"one\"]\nENTRYPOINT [\"/bin/echo\", \"-n\"]\n")
        let again = try Self.build(world, ["-t", "cmd", context.path])
        #expect(again.status == 0, "\(again.stderr)")
        let config = try Self.inspect(world, "cmd")["Config"] as? [String: Any]
        #expect(config?["Cmd"] as? [String] == ["one"])
        #expect(config?["Entrypoint"] as? [String] == ["/bin/echo", "-n"])
    }
}
