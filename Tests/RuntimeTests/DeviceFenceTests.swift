import CRuntime
import Foundation
import Testing

@testable import Runtime

#if canImport(Glibc)
    import Glibc
#endif

/// A cgroup2 file system mounted on a fresh temporary directory, one child group in it, a static
/// probe and a host device node made outside the group. This host keeps every controller on v1,
/// but the v2 hierarchy still exists and the kernel runs its device programs for any process in
/// it, so the v2 fence can be tested here. `cleanup()` undoes everything; call it in a defer.
private final class V2Lab {
    let dir: String
    var mount: String { dir + "/cgroup2" }
    let groupName = "berth-devtest-\(UUID().uuidString.prefix(8).lowercased())"
    var group: String { mount + "/" + groupName }
    var probe: String { dir + "/probe" }
    /// A node for /dev/kmsg (c 1:11, outside Docker's list), made by the test, not the probe.
    var kmsg: String { dir + "/kmsg" }
    private var mounted = false

    /// `probe JOIN (OP PATH [MAJOR MINOR])...`: joins the group by writing "0" to JOIN (or not,
    /// for "-"), then prints "OP PATH ERRNO" per operation; 0 means it worked. Device nodes are
    /// opened non-blocking and closed at once, except `rw`, which writes and reads one byte
    /// (only ever used on /dev/null and /dev/zero).
    static let probeSource = #"""
        #include <errno.h>
        #include <fcntl.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/stat.h>
        #include <sys/sysmacros.h>
        #include <unistd.h>
        static int try_open(const char *path, int flags, int io) {
            int fd = open(path, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
            if (fd < 0) return errno;
            char c = 'x';
            int err = 0;
            if (io && (write(fd, &c, 1) != 1 || read(fd, &c, 1) < 0)) err = errno;
            close(fd);
            return err;
        }
        int main(int argc, char **argv) {
            if (argc < 2) return 2;
            if (strcmp(argv[1], "-") != 0) {
                int fd = open(argv[1], O_WRONLY);
                if (fd < 0 || write(fd, "0", 1) != 1) { perror("join"); return 2; }
                close(fd);
            }
            for (int i = 2; i + 1 < argc; i += 2) {
                const char *op = argv[i], *path = argv[i + 1];
                int err;
                if (strcmp(op, "mknod") == 0 && i + 3 < argc) {
                    dev_t dev = makedev(atoi(argv[i + 2]), atoi(argv[i + 3]));
                    err = mknod(path, S_IFCHR | 0600, dev) == 0 ? 0 : errno;
                    i += 2;
                } else if (strcmp(op, "read") == 0) {
                    err = try_open(path, O_RDONLY, 0);
                } else if (strcmp(op, "write") == 0) {
                    err = try_open(path, O_WRONLY, 0);
                } else if (strcmp(op, "rw") == 0) {
                    err = try_open(path, O_RDWR, 1);
                } else {
                    return 2;
                }
                printf("%s %s %d\n", op, path, err);
            }
            return 0;
        }
        """#

    init() throws {
        let name = "berth-devfence-\(UUID().uuidString.prefix(8))"
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
        do {
            try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
            try Self.probeSource.write(toFile: dir + "/probe.c", atomically: false, encoding: .utf8)
            let cc = try Self.run("/usr/bin/cc", ["-static", "-O1", "-o", probe, dir + "/probe.c"])
            guard cc.status == 0 else { throw Failure("cc: \(cc.output)") }
            guard Glibc.mount("none", mount, "cgroup2", 0, nil) == 0 else {
                throw Failure("mount -t cgroup2 \(mount): \(String(cString: strerror(errno)))")
            }
            mounted = true
            guard mkdir(group, 0o755) == 0 else { throw Failure("mkdir \(group): \(String(cString: strerror(errno)))") }
            guard mknod(kmsg, S_IFCHR | 0o600, Self.device(major: 1, minor: 11)) == 0 else {
                throw Failure("mknod \(kmsg): \(String(cString: strerror(errno)))")
            }
        } catch {
            cleanup()
            throw error
        }
    }

    /// glibc's makedev() is a macro Swift cannot call.
    static func device(major: UInt64, minor: UInt64) -> dev_t {
        dev_t((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12) | ((major & ~0xfff) << 32))
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// The Cgroup value Container.makeCgroup would hand DeviceRules on a v2 host.
    var cgroup: Cgroup { Cgroup(name: groupName, layout: .v2(mount), paths: [group]) }

    var attachedPrograms: Int32 { berth_device_fence_count(group) }

    /// Runs the probe inside the group (or outside it, `inGroup: false`); "OP PATH" -> errno.
    func probe(_ operations: [String], inGroup: Bool = true) throws -> [String: Int32] {
        let result = try Self.run(probe, [inGroup ? group + "/cgroup.procs" : "-"] + operations)
        guard result.status == 0 else { throw Failure("probe exited \(result.status): \(result.output)") }
        var errors: [String: Int32] = [:]
        for line in result.output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 3, let err = Int32(fields[2]) { errors["\(fields[0]) \(fields[1])"] = err }
        }
        return errors
    }

    /// The group (with any process the probe left), the mount, the nodes, the directory.
    func cleanup() {
        if mounted {
            if let procs = try? String(contentsOfFile: group + "/cgroup.procs", encoding: .utf8) {
                for pid in procs.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
            }
            // The kernel may call a group busy for a moment after its last process exited.
            var attempts = 0
            while rmdir(group) != 0 && errno == EBUSY && attempts < 200 {
                attempts += 1
                usleep(5_000)
            }
            // Never rm -rf a directory that still holds the cgroup2 mount.
            guard umount2(mount, Int32(MNT_DETACH)) == 0 else { return }
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    static func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// Device fencing: Docker's allow list on cgroup v1 (devices.allow) and v2 (a BPF program).
@Suite(.serialized) struct DeviceFenceTests {
    static let dockerDefaultLines = [
        "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
        "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
    ]

    @Test func rulesReadAndWriteCgroupV1Syntax() {
        #expect(DeviceRules.dockerDefaults.map(\.description) == Self.dockerDefaultLines)
        for line in Self.dockerDefaultLines { #expect(DeviceRules.Rule(parsing: line)?.description == line) }
        let disks = DeviceRules.Rule(.block, major: 8, minor: nil, access: [.read, .write])
        #expect(DeviceRules.Rule(parsing: "b 8:* rw") == disks)
        #expect(DeviceRules.Rule(parsing: "a") == DeviceRules.Rule(.all, major: nil, minor: nil, access: .rwm))
        for bad in ["", "c", "x 1:3 rwm", "c 1:3", "c 1 rwm", "c 1:3 rwx", "c -1:3 r", "c 1:3 ", "c a:3 r", "b"] {
            #expect(DeviceRules.Rule(parsing: bad) == nil, "\(bad)")
        }
    }

    // MARK: cgroup v2

    @Test func dockerDefaultsOnV2RefuseHostDevicesAndAllowTheDefaultOnes() throws {
        let lab = try V2Lab()
        defer { lab.cleanup() }
        let node = lab.dir + "/ser"
        // Outside the group nothing is fenced: root opens the kmsg node.
        #expect(try lab.probe(["read", lab.kmsg], inGroup: false)["read \(lab.kmsg)"] == 0)

        try DeviceRules.apply(to: lab.cgroup, privileged: false, container: "devtest")
        #expect(lab.attachedPrograms == 1)
        let r = try lab.probe([
            "mknod", node, "4", "64", "read", node, "write", node, "read", lab.kmsg,
            "read", "/dev/kmsg", "write", "/dev/kmsg", "rw", "/dev/null", "rw", "/dev/zero",
            "read", "/dev/urandom",
        ])
        // Docker allows mknod of any node ("c *:* m") but not opening it: the serial console
        // (c 4:64) stays closed, for reading and for writing.
        #expect(r["mknod \(node)"] == 0)
        #expect(r["read \(node)"] == EPERM)
        #expect(r["write \(node)"] == EPERM)
        #expect(r["read \(lab.kmsg)"] == EPERM)
        #expect(r["read /dev/kmsg"] == EPERM)
        #expect(r["write /dev/kmsg"] == EPERM)
        #expect(r["rw /dev/null"] == 0)
        #expect(r["rw /dev/zero"] == 0)
        #expect(r["read /dev/urandom"] == 0)
    }

    @Test func withoutTheMknodRuleMknodIsRefused() throws {
        let lab = try V2Lab()
        defer { lab.cleanup() }
        let node = lab.dir + "/ser"
        try DeviceRules.attachV2(
            [DeviceRules.Rule(.char, major: 1, minor: 3, access: .rwm)], dir: lab.group,
            container: "devtest")
        let r = try lab.probe([
            "mknod", node, "4", "64", "mknod", lab.dir + "/null", "1", "3",
            "rw", "/dev/null", "rw", "/dev/zero",
        ])
        #expect(r["mknod \(node)"] == EPERM)
        #expect(!FileManager.default.fileExists(atPath: node))
        #expect(r["mknod \(lab.dir)/null"] == 0)
        #expect(r["rw /dev/null"] == 0)
        #expect(r["rw /dev/zero"] == EPERM)
    }

    @Test func wildcardsAccessBitsAndTheAllType() throws {
        let lab = try V2Lab()
        defer { lab.cleanup() }
        let rules = [
            DeviceRules.Rule(.char, major: 1, minor: nil, access: .read),  // any memory device, read only
            DeviceRules.Rule(.all, major: 1, minor: 3, access: .write),  // /dev/null, write, either type
            DeviceRules.Rule(.block, major: nil, minor: nil, access: .rwm),  // block devices only
        ]
        try DeviceRules.attachV2(rules, dir: lab.group, container: "devtest")
        let r = try lab.probe([
            "read", lab.kmsg, "read", "/dev/zero", "write", "/dev/zero", "write", "/dev/null",
            "rw", "/dev/null", "read", "/dev/tty0", "mknod", lab.dir + "/m", "1", "11",
        ])
        #expect(r["read \(lab.kmsg)"] == 0)
        #expect(r["read /dev/zero"] == 0)
        #expect(r["write /dev/zero"] == EPERM)
        #expect(r["write /dev/null"] == 0)
        // An O_RDWR open asks for read and write at once, and no single rule grants both; v1's
        // devices controller judges a request against one rule at a time too.
        #expect(r["rw /dev/null"] == EPERM)
        #expect(r["read /dev/tty0"] == EPERM)  // c 4:0: the block rule does not cover it
        #expect(r["mknod \(lab.dir)/m"] == EPERM)
    }

    @Test func anEmptyListDeniesEverything() throws {
        let lab = try V2Lab()
        defer { lab.cleanup() }
        try DeviceRules.attachV2([], dir: lab.group, container: "devtest")
        let r = try lab.probe(["rw", "/dev/null", "read", "/dev/zero", "mknod", lab.dir + "/null", "1", "3"])
        #expect(r["rw /dev/null"] == EPERM)
        #expect(r["read /dev/zero"] == EPERM)
        #expect(r["mknod \(lab.dir)/null"] == EPERM)
    }

    @Test func aSecondApplyReplacesTheFirstProgram() throws {
        let lab = try V2Lab()
        defer { lab.cleanup() }
        try DeviceRules.attachV2([], dir: lab.group, container: "devtest")
        try DeviceRules.apply(to: lab.cgroup, privileged: false, container: "devtest")
        // Stacked, the empty program would still refuse /dev/null (every program must allow).
        #expect(lab.attachedPrograms == 1)
        #expect(try lab.probe(["rw", "/dev/null"])["rw /dev/null"] == 0)
    }

    @Test func privilegedAttachesNothing() throws {
        let lab = try V2Lab()
        defer { lab.cleanup() }
        try DeviceRules.apply(to: lab.cgroup, privileged: true, container: "devtest")
        #expect(lab.attachedPrograms == 0)
        #expect(try lab.probe(["read", lab.kmsg])["read \(lab.kmsg)"] == 0)
    }

    @Test func aMissingGroupIsAContainerError() throws {
        let missing = Cgroup(name: "none", layout: .v2("/nonexistent"), paths: ["/nonexistent/berth/none"])
        let error = #expect(throws: Container.Error.self) {
            try DeviceRules.apply(to: missing, privileged: false, container: "web")
        }
        #expect(
            error?.description == "container web: step cgroup /nonexistent/berth/none devices: "
                + "cannot attach the device program: No such file or directory")
    }

    // MARK: cgroup v1 (this host)

    @Test func v1WritesDockersListToTheDevicesController() throws {
        guard case .v1(let hierarchies) = try CgroupLayout.host(),
            let devices = hierarchies.first(where: { $0.controllers.contains("devices") })
        else { return }
        let name = "berth-devtest-\(UUID().uuidString.prefix(8).lowercased())"
        let group = try Cgroup.create(name: name, limits: CgroupLimits())
        defer { try? group.remove() }
        let list = devices.mountPoint + "/" + Cgroup.parentName + "/" + name + "/devices.list"

        try DeviceRules.apply(
            to: group, privileged: false, extra: [DeviceRules.Rule(parsing: "a 7:* rw")!],
            container: "devtest")
        let lines = (try String(contentsOfFile: list, encoding: .utf8)).split(separator: "\n").map(String.init)
        // v1 reads "a" as allow-everything, so the `a` rule lands as one char and one block rule.
        #expect(lines == Self.dockerDefaultLines + ["c 7:* rw", "b 7:* rw"])
    }

    @Test func v1ContainerMayMakeButNotOpenAHostDevice() throws {
        guard case .v1 = try CgroupLayout.host() else { return }
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let r = try f.run([
            "sh", "-c",
            """
            mknod /tmp/ser c 4 64 && echo made
            true < /tmp/ser && echo opened-ser
            echo x > /dev/null && echo null-ok
            head -c 4 /dev/zero | wc -c
            """,
        ])
        #expect(r.stdout.split(separator: "\n") == ["made", "null-ok", "4"], "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("Operation not permitted"), "\(r.stderr)")

        var privileged = f.spec(["sh", "-c", "mknod /tmp/kmsg c 1 11 && true < /tmp/kmsg && echo opened-kmsg"])
        privileged.privileged = true
        #expect(try f.run(privileged).stdout == "opened-kmsg\n")
    }
}
