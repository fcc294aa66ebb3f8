import ContainerSpecs
import Foundation
import Images
import TestSupport

@testable import Runtime

/// One test's world: its own BERTH_ROOT with a busybox-static image (bin/busybox + applet links,
/// etc/passwd and etc/group with a few users) imported through ImageStore. `cleanup()` removes
/// every container it made (process, cgroup, files) and the root; call it in a defer.
final class RuntimeFixture {
    let root: String
    let image: Image

    struct Run {
        var code: Int32
        var stdout: String
        var stderr: String
    }

    /// `probes`: name -> C source, built with `cc -static` into the image's /bin. `links`: path ->
    /// symlink target, made last (replacing what is there); `prepare` may add anything else to
    /// the root filesystem (FIFOs, device nodes) before it is packed.
    init(
        imageConfig: ImageConfig = ImageConfig(cmd: ["sh"]), extraFiles: [String: String] = [:],
        probes: [String: String] = [:], links: [String: String] = [:], prepare: ((String) throws -> Void)? = nil
    ) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "berth-rt-\(UUID().uuidString.prefix(8))"
        ).path
        root = base + "/root"
        let rootfs = base + "/rootfs"
        let fm = FileManager.default
        do {
            for dir in ["bin", "etc", "tmp", "home/alice", "root"] {
                try fm.createDirectory(atPath: rootfs + "/" + dir, withIntermediateDirectories: true)
            }
            chmod(rootfs + "/tmp", 0o1777)
            chown(rootfs + "/home/alice", 1000, 1000)
            try fm.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
            let applets = try RuntimeFixture.capture(["/bin/busybox", "--list"]).split(separator: "\n")
            for applet in applets where applet != "busybox" {
                try fm.createSymbolicLink(atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox")
            }
            let files = [
                "etc/passwd":
                    "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n",
                "etc/group": "root:x:0:\nalice:x:1000:\nbob:x:1001:\nstaff:x:50:alice,bob\n",
            ].merging(extraFiles) { $1 }
            for (path, text) in files {
                try fm.createDirectory(
                    atPath: (rootfs + "/" + path as NSString).deletingLastPathComponent,
                    withIntermediateDirectories: true)
                try text.write(toFile: rootfs + "/" + path, atomically: false, encoding: .utf8)
            }
            for (name, source) in probes {
                try source.write(toFile: base + "/\(name).c", atomically: false, encoding: .utf8)
                try RuntimeFixture.capture([
                    "/usr/bin/cc", "-static", "-O1", "-o", rootfs + "/bin/" + name, base + "/\(name).c",
                ])
            }
            for (path, target) in links.sorted(by: { $0.key < $1.key }) {
                let full = rootfs + "/" + path
                try fm.createDirectory(
                    atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try? fm.removeItem(atPath: full)
                try fm.createSymbolicLink(atPath: full, withDestinationPath: target)
            }
            try prepare?(rootfs)
            let tar = base + "/rootfs.tar"
            _ = try RuntimeFixture.capture(["/bin/tar", "-C", rootfs, "-cf", tar, "."])
            image = try ImageStore(root: root).importRootfs(
                tarPath: tar, reference: "busybox-test:latest", config: imageConfig)
        } catch {
            try? fm.removeItem(atPath: base)
            throw error
        }
    }

    var base: String { (root as NSString).deletingLastPathComponent }

    /// The image's spec, built as the CLI builds it (ContainerSpecs), with `command` over its Cmd.
    func spec(_ command: [String]? = nil) -> ContainerSpec {
        var spec = ContainerSpec(image: image, reference: "busybox-test")
        spec.command = command
        return spec
    }

    /// Runs to completion in the foreground and returns what it wrote (from its json-file log).
    func run(_ spec: ContainerSpec, remove: Bool = true) throws -> Run {
        let container = try Container.create(spec: spec, root: root)
        defer { if remove { try? container.remove(force: true) } }
        let process = try container.start(stdio: .pipes(stdin: false))
        let code = process.wait()
        let entries = ContainerLogReader.entries(path: container.logPath)
        return Run(
            code: code,
            stdout: entries.filter { $0.stream == "stdout" }.map(\.log).joined(),
            stderr: entries.filter { $0.stream == "stderr" }.map(\.log).joined())
    }

    func run(_ command: [String]) throws -> Run {
        try run(spec(command))
    }

    /// A started container whose waiter runs on another thread; `finish()` joins it.
    final class Background {
        let container: Container
        private let group = DispatchGroup()
        private var code: Int32 = -1

        init(_ container: Container, _ process: ContainerProcess) {
            self.container = container
            group.enter()
            Thread.detachNewThread { [self] in
                code = process.wait()
                group.leave()
            }
        }

        /// The exit code, once the waiter recorded it (bounded: 30 s).
        func finish() -> Int32? {
            group.wait(timeout: .now() + 30) == .success ? code : nil
        }
    }

    func start(_ spec: ContainerSpec) throws -> Background {
        let container = try Container.create(spec: spec, root: root)
        do {
            return Background(container, try container.start(stdio: .pipes(stdin: false)))
        } catch {
            try? container.remove(force: true)
            throw error
        }
    }

    /// Waits until the container's log contains `text` (the container says it is ready); false when it
    /// exited without.
    func waitForLog(_ container: Container, containing text: String) -> Bool {
        // Follows the log (inotify) until the text shows, or the container has exited.
        var found = false
        try? container.readLog(follow: true) { entries in
            found = entries.contains { $0.log.contains(text) }
            return !found
        }
        return found
    }

    func cleanup() {
        for c in Container.list(root: root) { try? c.remove(force: true) }
        // Runs through the CLI joined the root's default network: its bridge goes with it.
        if FileManager.default.fileExists(atPath: root + "/networks") {
            _ = try? BerthProcess.run(["system", "prune", "-f"], root: root)
        }
        try? FileManager.default.removeItem(atPath: base)
    }

    /// Everything the container could have left on the host.
    static func leftovers(id: String, root: String) -> [String] {
        var found: [String] = []
        if FileManager.default.fileExists(atPath: root + "/containers/" + id) { found.append("directory") }
        let hierarchies = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []
        for h in hierarchies where FileManager.default.fileExists(atPath: "/sys/fs/cgroup/\(h)/berth/\(id)") {
            found.append("cgroup \(h)")
        }
        if FileManager.default.fileExists(atPath: "/sys/fs/cgroup/berth/\(id)") { found.append("cgroup v2") }
        if let mounts = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8), mounts.contains(id) {
            found.append("mount")
        }
        return found
    }

    /// Runs a host tool (tar, cc) for the fixture; not part of what is tested.
    @discardableResult
    static func capture(_ argv: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else {
            throw Container.Error(container: "", step: argv[0], detail: "exit \(p.terminationStatus): \(text)")
        }
        return text
    }
}
