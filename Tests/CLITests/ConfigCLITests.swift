import Foundation
import TestSupport
import Testing

/// `berth config` from the outside: exit codes and the one-line `berth:` errors a person reads.
@Suite struct ConfigCLITests {
    @Test func printsCanonicalJSON() throws {
        let dir = try TemporaryDirectory()
        try dir.write("compose.yaml", "services:\n  web:\n    image: busybox\n    ports: [\"8080:80\"]\n")
        let result = try BerthProcess.run(["config", "--format", "json", "-p", "demo"], in: dir.path)
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(json["name"] as? String == "demo")
        let web = try #require((json["services"] as? [String: Any])?["web"] as? [String: Any])
        let port = try #require((web["ports"] as? [[String: Any]])?.first)
        #expect(port["target"] as? Int == 80)
        #expect(port["published"] as? String == "8080")
    }

    @Test func listsServices() throws {
        let dir = try TemporaryDirectory()
        try dir.write("compose.yaml", "services:\n  b:\n    image: busybox\n  a:\n    image: busybox\n")
        let result = try BerthProcess.run(["config", "--services"], in: dir.path)
        #expect(result.status == 0)
        #expect(Set(result.stdout.split(separator: "\n").map(String.init)) == ["a", "b"])
    }

    @Test func globalOptionsMayStandBeforeTheCommand() throws {
        let dir = try TemporaryDirectory()
        try dir.write(
            "other.yaml", "services:\n  api:\n    image: busybox\n  dbg:\n    image: busybox\n    profiles: [debug]\n")
        let result = try BerthProcess.run([
            "-f", "\(dir.path)/other.yaml", "--profile=debug", "-p", "early", "config", "--format", "json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(json["name"] as? String == "early")
        #expect((json["services"] as? [String: Any])?.keys.sorted() == ["api", "dbg"])
    }

    @Test func invalidUTF8IsRefusedWithItsPosition() throws {
        let dir = try TemporaryDirectory()
        let bytes: [UInt8] = Array("services:\n  a:\n    image: \"".utf8) + [0xff, 0xfe] + Array("\"\n".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: dir.path + "/compose.yaml"))
        let result = try BerthProcess.run(["config"], in: dir.path)
        #expect(result.status == 1)
        #expect(result.stderr.hasSuffix("compose.yaml:3:13: invalid UTF-8\n"), "\(result.stderr)")
    }

    @Test func laterEnvFilesSeeEarlierOnes() throws {
        let dir = try TemporaryDirectory()
        try dir.write("a.env", "X=fromA\n")
        try dir.write("b.env", "Y=${X}-b\n")
        try dir.write("compose.yaml", "services:\n  web:\n    image: \"${Y}\"\n")
        let result = try BerthProcess.run(
            ["--env-file", "a.env", "--env-file", "b.env", "config", "--images"], in: dir.path)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "fromA-b\n")
    }

    @Test func readsStdin() throws {
        let dir = try TemporaryDirectory()
        let result = try BerthProcess.run(
            ["config", "-f", "-", "--services"], in: dir.path, stdin: "services:\n  only:\n    image: busybox\n")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "only\n")
    }

    @Test(arguments: [
        // A YAML syntax error.
        ("services:\n  web:\n    image: [x\n", "compose.yaml:"),
        // A wrong type.
        ("services:\n  web:\n    image: busybox\n    ports: 80\n", "compose.yaml:4:12"),
        // An unknown key.
        ("services:\n  web:\n    image: busybox\n    imagee: x\n", "compose.yaml:4:5"),
        // An undefined reference.
        ("services:\n  web:\n    image: busybox\n    depends_on: [db]\n", "compose.yaml:4:"),
        // A cycle.
        (
            "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n",
            "cycle"
        ),
        // A number outside compose's float32 range.
        ("services:\n  web:\n    image: busybox\n    cpus: 1e300\n", "compose.yaml:4:11"),
        // An unset required variable.
        ("services:\n  web:\n    image: ${IMAGE:?set IMAGE please}\n", "compose.yaml:3:12"),
    ])
    func badInputIsOneLineAndExitOne(compose: String, expected: String) throws {
        let dir = try TemporaryDirectory()
        try dir.write("compose.yaml", compose)
        let result = try BerthProcess.run(["config"], in: dir.path)
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("berth: "))
        #expect(result.stderr.contains(expected), "\(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
    }
}
