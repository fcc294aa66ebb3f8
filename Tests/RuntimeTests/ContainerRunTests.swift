import Foundation
import Images
import Testing

@testable import Runtime

/// A container sees itself as PID 1 in its own root, with the identity Docker would give it.
@Suite(.serialized) struct ContainerRunTests {
    @Test func pidHostnameAndIsolation() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec([
            "sh", "-c", "echo pid=$$; hostname; test -e /work && echo host-visible; ls /; cat /etc/hostname",
        ])
        spec.hostname = "box1"
        let r = try f.run(spec)
        #expect(r.code == 0)
        #expect(r.stdout.contains("pid=1\n"))
        #expect(r.stdout.contains("box1\n"))
        #expect(!r.stdout.contains("host-visible"))
        let entries = Set(r.stdout.split(separator: "\n").map(String.init))
        #expect(entries.isSuperset(of: ["bin", "etc", "dev", "proc", "sys", "tmp"]))
        #expect(!entries.contains("usr") && !entries.contains("work"))
    }

    @Test func envWorkingDirAndUser() throws {
        let f = try RuntimeFixture(imageConfig: ImageConfig(cmd: ["sh"], env: ["FROM_IMAGE=yes", "OVERRIDE=image"]))
        defer { f.cleanup() }
        var spec = f.spec(["sh", "-c", "id; pwd; echo $FROM_IMAGE $OVERRIDE $GIVEN $HOME; echo $PATH"])
        spec.env = ["OVERRIDE=given", "GIVEN=1"]
        spec.user = "alice"
        spec.workingDir = "/work/dir"
        let r = try f.run(spec)
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout.contains("uid=1000(alice) gid=1000(alice)"))
        #expect(r.stdout.contains("50(staff)"))
        #expect(r.stdout.contains("/work/dir\n"))
        #expect(r.stdout.contains("yes given 1 /home/alice\n"))
        #expect(r.stdout.contains(ProcessResolution.defaultPath))
    }

    @Test func numericUserAndGroup() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["id"])
        spec.user = "1001:50"
        let r = try f.run(spec)
        #expect(r.stdout.hasPrefix("uid=1001(bob) gid=50(staff)"))
    }

    @Test func entrypointAndCmdAsDocker() throws {
        let f = try RuntimeFixture(imageConfig: ImageConfig(entrypoint: ["echo", "entry"], cmd: ["default"]))
        defer { f.cleanup() }
        #expect(try f.run(f.spec()).stdout == "entry default\n")
        #expect(try f.run(f.spec(["given"])).stdout == "entry given\n")
        var reset = f.spec()
        reset.entrypoint = ["echo"]
        #expect(try f.run(reset).stdout == "\n")
        var both = f.spec(["a", "b"])
        both.entrypoint = ["echo", "new"]
        #expect(try f.run(both).stdout == "new a b\n")
    }

    @Test func exitCodesPropagate() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        #expect(try f.run(["sh", "-c", "exit 42"]).code == 42)
        #expect(try f.run(["true"]).code == 0)
        // PID 1 ignores SIGKILL from inside its namespace; with berth's init the shell is PID 2.
        var spec = f.spec(["sh", "-c", "echo pid=$$; kill -9 $$"])
        spec.initProcess = true
        let r = try f.run(spec)
        #expect(r.code == 137)
        #expect(r.stdout.contains("pid=2"))
    }

    @Test func readOnlyRootfsAndMounts() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let host = f.base + "/shared"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        try "from host\n".write(toFile: host + "/file", atomically: false, encoding: .utf8)
        var spec = f.spec([
            "sh", "-c",
            """
            touch /rootfile 2>/dev/null && echo root-writable; cat /data/file; touch /data/new 2>/dev/null && echo data-writable;
            echo hi > /scratch/x && cat /scratch/x; grep ' /scratch ' /proc/mounts; echo v > /vol/v && echo vol-ok;
            grep ' /dev/shm ' /proc/mounts
            """,
        ])
        spec.readOnly = true
        spec.shmSize = 16 * 1024 * 1024
        spec.mounts = [
            MountSpec(kind: .bind, source: host, target: "/data", readOnly: true),
            MountSpec(kind: .tmpfs, target: "/scratch", tmpfsSize: 1 << 20, tmpfsMode: 0o700),
            MountSpec(kind: .volume, source: "vol1", target: "/vol"),
        ]
        let r = try f.run(spec)
        #expect(r.code == 0, "\(r.stderr)")
        #expect(!r.stdout.contains("root-writable"))
        #expect(r.stdout.contains("from host"))
        #expect(!r.stdout.contains("data-writable"))
        #expect(r.stdout.contains("hi\n"))
        #expect(r.stdout.contains("size=1024k,mode=700"))
        #expect(r.stdout.contains("vol-ok"))
        #expect(r.stdout.contains("size=16384k"))
        #expect(FileManager.default.fileExists(atPath: f.root + "/volumes/vol1/_data/v"))
    }

    @Test func sysctlsUlimitsAndNetwork() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec([
            "sh", "-c",
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni; ulimit -n; ip -o link 2>/dev/null | wc -l; cat /sys/class/net/lo/operstate",
        ])
        spec.sysctls = ["net.ipv4.ip_forward": "1", "kernel.shmmni": "1000"]
        spec.ulimits = [Ulimit(name: "nofile", soft: 512, hard: 1024)]
        let r = try f.run(spec)
        #expect(r.code == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.prefix(3) == ["1", "1000", "512"])
        #expect(lines.last == "unknown" || lines.last == "up")
        // The host's own setting is untouched.
        #expect((try? String(contentsOfFile: "/proc/sys/kernel/shmmni", encoding: .utf8))?.hasPrefix("1000") == false)
    }

    @Test func logsAreJsonLines() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let c = try Container.create(
            spec: f.spec(["sh", "-c", "echo out; echo err >&2; printf partial"]), root: f.root)
        defer { try? c.remove(force: true) }
        _ = try c.start(stdio: .pipes(stdin: false)).wait()
        let text = try String(contentsOfFile: c.logPath, encoding: .utf8)
        #expect(text.contains(#"{"log":"out\n","stream":"stdout","time":""#))
        #expect(text.contains(#"{"log":"err\n","stream":"stderr","time":""#))
        #expect(text.contains(#"{"log":"partial","stream":"stdout""#))
        #expect(c.state().status == .exited && c.state().exitCode == 0)
    }

    @Test func logRotationBySize() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done"])
        spec.logMaxSize = 4096
        spec.logMaxFiles = 3
        let c = try Container.create(spec: spec, root: f.root)
        defer { try? c.remove(force: true) }
        _ = try c.start(stdio: .pipes(stdin: false)).wait()
        #expect(FileManager.default.fileExists(atPath: c.logPath + ".1"))
        #expect(FileManager.default.fileExists(atPath: c.logPath + ".2"))
        #expect(!FileManager.default.fileExists(atPath: c.logPath + ".3"))
        let entries = ContainerLogReader.entries(path: c.logPath)
        #expect(entries.last?.log == "line-299\n")
    }
}
