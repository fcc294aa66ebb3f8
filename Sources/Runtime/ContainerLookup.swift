import CRuntime
import FoundationEssentials
import Support
#if canImport(Glibc)
import Glibc
#endif

extension Container {
    // MARK: lookup

    /// By name, full ID or unique ID prefix.
    public static func lookup(_ reference: String, root: String) throws -> Container {
        if let id = NameLink.read(namesDir(root) + "/" + reference), let c = load(id: id, root: root) {
            return c
        }
        if reference.count == 64, let c = load(id: reference, root: root) { return c }
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: containersDir(root))) ?? []
        let matches = reference.isEmpty ? [] : ids.filter { $0.hasPrefix(reference) }
        if matches.count > 1 { throw Error(container: reference, step: "", detail: "the ID prefix is ambiguous; give more characters") }
        guard let only = matches.first, let c = load(id: only, root: root) else {
            throw Error(container: reference, step: "", detail: "no such container")
        }
        return c
    }

    static func load(id: String, root: String) -> Container? {
        guard let record = JSONFiles.read(ContainerRecord.self, containersDir(root) + "/" + id + "/config.json"),
              record.id == id else { return nil }
        return Container(root: root, record: record)
    }

    /// Every container under the root, newest first.
    public static func list(root: String) -> [Container] {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: containersDir(root))) ?? []
        return ids.compactMap { load(id: $0, root: root) }.sorted { $0.record.created > $1.record.created }
    }

    // MARK: state

    func readRawState() -> ContainerState {
        JSONFiles.read(ContainerState.self, statePath) ?? ContainerState(status: .created)
    }

    func writeState(_ state: ContainerState) {
        try? JSONFiles.write(state, statePath)
    }

    /// The state on disk, corrected by reality: a "running" container whose process is gone
    /// (or whose pid now names another process) is reported as exited.
    public func state() -> ContainerState {
        var s = readRawState()
        if s.status == .running, !isAlive(s) {
            s.status = .exited
            if s.exitCode == nil { s.exitCode = 255 }
        }
        return s
    }

    func isAlive(_ s: ContainerState) -> Bool {
        guard let pid = s.pid, let start = s.pidStartTime else { return false }
        return ProcFS.startTime(pid: pid) == start
    }

    public var isRunning: Bool { state().status == .running }
}


/// ROOT/container-names/NAME is a symlink whose target is the container's ID, written as 43
/// base64url characters rather than 64 hex digits: ext4 keeps a symlink target shorter than 60
/// bytes inside the inode, a longer one takes a data block, and freeing a block on a host whose
/// ext4 has no journal and mounts with `discard` waits for a synchronous discard (1-4 ms each,
/// measured, on every `rm`). Links holding the 64 hex digits read back as well.
enum NameLink {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func target(forID id: String) -> String {
        guard let bytes = hexBytes(id) else { return id }
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var chunk = UInt32(bytes[i]) << 16
            if n > 1 { chunk |= UInt32(bytes[i + 1]) << 8 }
            if n > 2 { chunk |= UInt32(bytes[i + 2]) }
            for k in 0...n { out.append(alphabet[Int((chunk >> (18 - 6 * UInt32(k))) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func id(fromTarget target: String) -> String? {
        if target.utf8.count == 64 { return hexBytes(target) == nil ? nil : target }
        var bits: UInt32 = 0, count = 0
        var bytes: [UInt8] = []
        for c in target.utf8 {
            guard let v = alphabet.firstIndex(of: c) else { return nil }
            bits = (bits << 6) | UInt32(v)
            count += 6
            if count >= 8 {
                count -= 8
                bytes.append(UInt8((bits >> UInt32(count)) & 0xff))
            }
        }
        guard bytes.count == 32 else { return nil }
        var hex: [UInt8] = []
        for b in bytes { hex.append(hexDigits[Int(b >> 4)]); hex.append(hexDigits[Int(b & 15)]) }
        return String(decoding: hex, as: UTF8.self)
    }

    /// The ID a name link points at, or nil when there is no such (valid) link.
    static func read(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return id(fromTarget: target)
    }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < u.count {
            guard let hi = hexDigits.firstIndex(of: u[i]), let lo = hexDigits.firstIndex(of: u[i + 1]) else { return nil }
            out.append(UInt8(hi << 4 | lo))
            i += 2
        }
        return out
    }
}
