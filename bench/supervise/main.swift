// One process supervising 50 containers through the Runtime API, as the orchestrator's
// supervisor will: all started concurrently, each with its own output sink, each followed by a
// waiting thread. Reports the wall time to start them, this process's resident memory while it
// follows them, the berth-shims' (what stays per container) and the time to stop them all.
//
//   swift run -c release berth-bench-supervise [COUNT]     (as root; needs /bin/busybox, tar)
import ContainerSpecs
import Foundation
import Images
import Runtime

let count = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 50 : 50
let base = FileManager.default.temporaryDirectory.appendingPathComponent("berth-bench-sup-\(getpid())").path
let root = base + "/root"
defer { try? FileManager.default.removeItem(atPath: base) }

/// busybox-static and its applet links, imported as an image.
func makeImage() throws -> Image {
    let rootfs = base + "/rootfs"
    try FileManager.default.createDirectory(atPath: rootfs + "/bin", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: rootfs + "/etc", withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
    for applet in ["sh", "sleep", "echo"] {
        try FileManager.default.createSymbolicLink(atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox")
    }
    try "root:x:0:0:root:/root:/bin/sh\n".write(toFile: rootfs + "/etc/passwd", atomically: false, encoding: .utf8)
    try "root:x:0:\n".write(toFile: rootfs + "/etc/group", atomically: false, encoding: .utf8)
    let tar = Process()
    tar.executableURL = URL(fileURLWithPath: "/bin/tar")
    tar.arguments = ["-C", rootfs, "-cf", base + "/rootfs.tar", "."]
    try tar.run()
    tar.waitUntilExit()
    return try ImageStore(root: root).importRootfs(
        tarPath: base + "/rootfs.tar", reference: "bench:latest",
        config: ImageConfig(cmd: ["sh"]))
}

func statusKiB(_ pid: Int32, _ field: String) -> Int {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    let line = text.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
}

func seconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}

/// Counts what one container wrote; called on that container's waiting thread.
final class Sink: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes = 0
    func add(_ n: Int) { lock.withLock { bytes += n } }
    var total: Int { lock.withLock { bytes } }
}

let image = try makeImage()
var spec = ContainerSpec(image: image, reference: "bench")
spec.command = ["sh", "-c", "echo ready; exec sleep 1000"]

let sinks = (0..<count).map { _ in Sink() }
let waiters = DispatchGroup()
let lock = NSLock()
var containers: [Container] = []
var codes: [Int32] = []
let startTime = DispatchTime.now()
DispatchQueue.concurrentPerform(iterations: count) { i in
    do {
        let container = try Container.create(spec: spec, root: root, startingNow: true)
        let process = try container.start(stdio: .pipes(stdin: false))
        lock.withLock { containers.append(container) }
        waiters.enter()
        Thread.detachNewThread {
            let code = process.wait { chunk, _ in sinks[i].add(chunk.count) }
            lock.withLock { codes.append(code) }
            waiters.leave()
        }
    } catch {
        FileHandle.standardError.write("container \(i): \(error)\n".data(using: .utf8)!)
    }
}
let started = seconds(since: startTime)
// Everyone has said "ready" (6 bytes) once every sink has it: the containers run.
while sinks.contains(where: { $0.total < 6 }) { usleep(1000) }
let rss = statusKiB(getpid(), "VmRSS")
let peak = statusKiB(getpid(), "VmHWM")
let shims = containers.compactMap { $0.state().monitorPid }.map { statusKiB($0, "VmRSS") }
print("started \(containers.count) containers concurrently in \(String(format: "%.2f", started)) s")
print("supervising process: VmRSS \(rss / 1024) MiB (peak \(peak / 1024) MiB) following \(containers.count)")
print("berth-shim per container: median \(shims.sorted()[shims.count / 2]) KiB, total \(shims.reduce(0, +) / 1024) MiB")

let stopTime = DispatchTime.now()
DispatchQueue.concurrentPerform(iterations: containers.count) { i in try? containers[i].stop(timeout: 0) }
waiters.wait()
print("stopped all in \(String(format: "%.2f", seconds(since: stopTime))) s; exit codes: \(Set(codes).sorted())")
for container in containers { try? container.remove(force: true) }
