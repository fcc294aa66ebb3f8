import CRuntime
import Foundation
import TestSupport
import Testing

@testable import Runtime

/// A start failure carries its step and errno as data, and Docker's exit statuses come from them:
/// 127 for a command that is not there, 126 for one that cannot be executed, 125 for the rest.
@Suite(.serialized) struct TypedErrorTests {
    /// busybox plus a script without its execute bit and an "executable" that is no program.
    static func fixture() throws -> RuntimeFixture {
        try RuntimeFixture(extraFiles: ["bin/not-executable": "#!/bin/sh\necho never\n"]) { rootfs in
            try "just words, no #! and no ELF header\n".write(
                toFile: rootfs + "/bin/not-a-program", atomically: false,
                encoding: .utf8)
            chmod(rootfs + "/bin/not-a-program", 0o755)
        }
    }

    /// The error `run` of `command` fails with (nil when it ran).
    func startError(_ f: RuntimeFixture, _ configure: (inout ContainerSpec) -> Void) -> Container.Error? {
        var spec = f.spec()
        configure(&spec)
        do {
            _ = try f.run(spec)
            return nil
        } catch {
            return error as? Container.Error
        }
    }

    @Test func missingCommandIsExecENOENTAnd127() throws {
        let f = try Self.fixture()
        defer { f.cleanup() }
        let error = startError(f) {
            $0.name = "missing-command"
            $0.command = ["no-such-command"]
        }
        #expect(error?.stage == .exec)
        #expect(error?.errno == ENOENT)
        #expect(error?.step == "exec no-such-command")
        #expect(error?.startFailureStatus == 127)
        #expect(error?.description == "container missing-command: step exec no-such-command: No such file or directory")
        #expect(Container.list(root: f.root).isEmpty)
    }

    @Test func fileWithoutExecuteBitIsEACCESAnd126() throws {
        let f = try Self.fixture()
        defer { f.cleanup() }
        let error = startError(f) { $0.command = ["/bin/not-executable"] }
        #expect(error?.stage == .exec)
        #expect(error?.errno == EACCES)
        #expect(error?.startFailureStatus == 126)
    }

    @Test func fileThatIsNoProgramIsENOEXECAnd126() throws {
        let f = try Self.fixture()
        defer { f.cleanup() }
        let error = startError(f) { $0.command = ["/bin/not-a-program"] }
        #expect(error?.stage == .exec)
        #expect(error?.errno == ENOEXEC)
        #expect(error?.startFailureStatus == 126)
    }

    @Test func missingBindSourceIsAMountErrorAnd125() throws {
        let f = try Self.fixture()
        defer { f.cleanup() }
        let error = startError(f) {
            $0.command = ["true"]
            $0.mounts = [MountSpec(kind: .bind, source: "/no/such/source", target: "/data")]
        }
        #expect(error?.stage == .mount)
        #expect(error?.step == "mount /data")
        #expect(error?.startFailureStatus == 125)
    }

    /// Refused by the child (inroot.c) after the clone: a mount may not cover a path in /proc.
    @Test func mountIntoProcIsTheChildsMountTargetStageAnd125() throws {
        let f = try Self.fixture()
        defer { f.cleanup() }
        let error = startError(f) {
            $0.command = ["true"]
            $0.mounts = [MountSpec(kind: .tmpfs, target: "/proc/sys/kernel")]
        }
        #expect(error?.stage == .mountTarget)
        #expect(error?.errno == EXDEV)
        #expect(error?.detail == "the target resolves to a path inside /proc, which a mount may not cover")
        #expect(error?.startFailureStatus == 125)
    }

    @Test func theCLIExitsWithDockersStatuses() throws {
        let f = try Self.fixture()
        defer { f.cleanup() }
        func run(_ arguments: [String]) throws -> BerthProcess.Result {
            try BerthProcess.run(["container", "run", "--rm"] + arguments, root: f.root)
        }
        let missing = try run(["--name", "cli-missing", "busybox-test", "no-such-command"])
        #expect(missing.status == 127)
        #expect(
            missing.stderr
                == "berth: container cli-missing: step exec no-such-command: No such file or directory\n")
        #expect(try run(["busybox-test", "/bin/not-executable"]).status == 126)
        #expect(try run(["busybox-test", "/bin/not-a-program"]).status == 126)
        #expect(try run(["--tmpfs", "/proc/sys/kernel", "busybox-test", "true"]).status == 125)
        // ENOENT from a step other than exec (a mount point /proc cannot have) is no 127.
        #expect(try run(["--tmpfs", "/proc/berth-test", "busybox-test", "true"]).status == 125)
        #expect(try run(["no-such-image", "true"]).status == 125)
        // A command that ran and failed passes its own status through, even 126 or 127.
        #expect(try run(["busybox-test", "sh", "-c", "exit 127"]).status == 127)
        #expect(try BerthProcess.run(["container", "ps", "-a", "-q"], root: f.root).stdout.isEmpty)
    }

    // MARK: the type itself

    @Test func theTextComesFromTheFields() {
        let exec = Container.Error(container: "web", stage: .exec, step: "exec sh", errno: ENOENT)
        #expect(exec.description == "container web: step exec sh: No such file or directory")
        #expect(exec.detail == "No such file or directory")
        #expect(exec.explanation == nil)
        let refused = Container.Error(container: "web", stage: .create, detail: "no command specified")
        #expect(refused.description == "container web: no command specified")
        #expect(refused.errno == nil)
        let cgroup = Container.Error(container: "", stage: .cgroup, errno: EBUSY)
        #expect(cgroup.description == "step cgroup: Device or resource busy")
        #expect(cgroup.startFailureStatus == 125)
        // Only the exec step's errno picks 126/127: a missing working directory is 125.
        #expect(Container.Error(container: "web", stage: .workingDirectory, errno: ENOENT).startFailureStatus == 125)
        #expect(Container.Error(container: "web", stage: .exec, errno: EISDIR).startFailureStatus == 126)
        #expect(Container.Error(container: "web", stage: .exec, errno: E2BIG).startFailureStatus == 125)
    }

    @Test func theChildsReportBecomesStageAndErrno() {
        let execFailure = berth_failure(stage: Int32(BERTH_STAGE_EXEC.rawValue), err: EACCES, index: -1)
        let exec = Container.Error(container: "web", childFailure: execFailure, step: "exec /app")
        #expect(exec.stage == .exec)
        #expect(exec.errno == EACCES)
        #expect(exec.description == "container web: step exec /app: Permission denied")
        #expect(exec.startFailureStatus == 126)
        let targetFailure = berth_failure(stage: Int32(BERTH_STAGE_MOUNT_TARGET.rawValue), err: EBUSY, index: 0)
        let target = Container.Error(container: "web", childFailure: targetFailure, step: "mount /x (tmpfs)")
        #expect(target.stage == .mountTarget)
        #expect(target.errno == EBUSY)
        #expect(target.detail == "the target resolves to the container's root (\"/\"), which a mount cannot replace")
    }

    /// Every stage the child can report has its own case, named as SpawnConfig names it.
    @Test func everyChildStageHasACaseWithSpawnConfigsName() {
        for number in 1..<Int32(BERTH_STAGE_COUNT.rawValue) {
            let stage = Container.Error.Stage(childStage: number)
            #expect(stage != .childProtocol, "BERTH_STAGE \(number) has no case")
            #expect(stage.isInChild)
            #expect(stage.name == SpawnConfig.stageNames[number], "BERTH_STAGE \(number)")
        }
        #expect(Container.Error.Stage(childStage: 9999) == .childProtocol)
        #expect(!Container.Error.Stage.remove.isInChild)
    }

    /// The text-only initializer other code still calls: same text, and the stage and errno read
    /// from it.
    @Test func theTextOnlyInitializerStillWorks() {
        let legacy = Container.Error(container: "db", step: "mount /data", detail: "No such file or directory")
        #expect(legacy.description == "container db: step mount /data: No such file or directory")
        #expect(legacy.stage == .mount)
        #expect(legacy.errno == ENOENT)
        let denied = Container.Error(container: "db", step: "exec sh", detail: "Permission denied")
        #expect(denied.startFailureStatus == 126)
        #expect(Container.Error(container: "db", step: "", detail: "invalid name").stage == .create)
        #expect(Container.Error(container: "db", step: "write /x/y", detail: "boom").stage == .files)
        #expect(Container.Error(container: "db", step: "something new", detail: "boom").stage == .other)
        #expect(Container.Error(container: "db", step: "user", detail: "unable to find user x").errno == nil)
    }

    /// Codable, so a process that started a container (the -d monitor) can hand the whole error
    /// to the one that asked.
    @Test func anErrorSurvivesJSON() throws {
        let error = Container.Error(container: "web", stage: .exec, step: "exec sh", errno: ENOENT)
        let decoded = try JSONDecoder().decode(Container.Error.self, from: JSONEncoder().encode(error))
        #expect(decoded == error)
        #expect(decoded.startFailureStatus == 127)
    }
}
