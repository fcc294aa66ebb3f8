import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// Docker's json-file log: one JSON object per line,
/// {"log":"text\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"},
/// rotated by size into container.log.1, .2, ... (json-file's max-size / max-file).
public final class ContainerLogWriter {
    let path: String
    let maxSize: Int64
    let maxFiles: Int
    private var fd: Int32
    private var size: Int64
    private var partial: [String: [UInt8]] = [:]

    /// A line longer than this is written in pieces, as Docker does at 16 KiB.
    static let maxLine = 16 * 1024

    public init(path: String, maxSize: Int64? = nil, maxFiles: Int? = nil) {
        self.path = path
        self.maxSize = maxSize ?? 0
        self.maxFiles = max(1, maxFiles ?? 1)
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        var st = stat()
        size = fd >= 0 && fstat(fd, &st) == 0 ? Int64(st.st_size) : 0
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Bytes as they came from the container; only whole lines are written until `flush`.
    public func append(_ bytes: UnsafeRawBufferPointer, stream: String) {
        var pending = partial[stream] ?? []
        pending.append(contentsOf: bytes)
        var start = 0
        var out = ""
        for (i, b) in pending.enumerated() where b == 0x0A || i - start + 1 >= Self.maxLine {
            out += entry(pending[start...i], stream: stream)
            start = i + 1
            // With rotation on, decide per line so a burst cannot overshoot max-size.
            if maxSize > 0 {
                write(out)
                out = ""
            }
        }
        partial[stream] = Array(pending[start...])
        if !out.isEmpty { write(out) }
    }

    /// The last unterminated line of each stream, at exit.
    public func flush() {
        var out = ""
        for (stream, rest) in partial where !rest.isEmpty {
            out += entry(rest[...], stream: stream)
        }
        partial = [:]
        if !out.isEmpty { write(out) }
    }

    private func entry(_ bytes: ArraySlice<UInt8>, stream: String) -> String {
        "{\"log\":\"" + Self.escape(String(decoding: bytes, as: UTF8.self)) + "\",\"stream\":\"" + stream
            + "\",\"time\":\"" + Timestamp.now() + "\"}\n"
    }

    private func write(_ text: String) {
        guard fd >= 0 else { return }
        if maxSize > 0 && size > 0 && size + Int64(text.utf8.count) > maxSize { rotate() }
        var text = text
        text.withUTF8 { buf in
            var done = 0
            while done < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + done, buf.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                done += n
            }
        }
        size += Int64(text.utf8.count)
    }

    private func rotate() {
        close(fd)
        if maxFiles > 1 {
            for i in stride(from: maxFiles - 1, through: 1, by: -1) {
                let from = i == 1 ? path : "\(path).\(i - 1)"
                rename(from, "\(path).\(i)")
            }
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o640)
        size = 0
    }

    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count + 8)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    // JSON's \u escape takes four hex digits.
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}

/// Reads a container's json-file log back (`docker logs`).
public struct ContainerLogEntry: Decodable, Sendable {
    public var log: String
    public var stream: String
    public var time: String
}

public enum ContainerLogReader {
    /// Every entry, oldest rotated file first.
    public static func entries(path: String) -> [ContainerLogEntry] {
        var files: [String] = []
        var i = 1
        while FileManager.default.fileExists(atPath: "\(path).\(i)") {
            files.insert("\(path).\(i)", at: 0)
            i += 1
        }
        files.append(path)
        return files.flatMap { parse(readAll($0) ?? [])[...] }
    }

    static func parse(_ bytes: [UInt8]) -> [ContainerLogEntry] {
        let decoder = JSONDecoder()
        return bytes.split(separator: 0x0A).compactMap { try? decoder.decode(ContainerLogEntry.self, from: Data($0)) }
    }

    /// `logs -f`: prints what is there, then follows the file until `isRunning` turns false and
    /// nothing new arrives. There is no event for "a file grew" without inotify plumbing, so this
    /// polls every 50 ms.
    public static func follow(path: String, isRunning: () -> Bool, emit: (ContainerLogEntry) -> Void) {
        var offset: Int64 = 0
        var inode: UInt64 = 0
        var carry: [UInt8] = []
        for e in entries(path: path) { emit(e) }
        var st = stat()
        if stat(path, &st) == 0 {
            offset = Int64(st.st_size)
            inode = UInt64(st.st_ino)
        }
        var finalPass = false
        while true {
            if stat(path, &st) == 0 {
                if UInt64(st.st_ino) != inode || Int64(st.st_size) < offset {
                    inode = UInt64(st.st_ino)
                    offset = 0
                    carry = []
                }
                if Int64(st.st_size) > offset {
                    let fd = open(path, O_RDONLY | O_CLOEXEC)
                    if fd >= 0 {
                        lseek(fd, off_t(offset), SEEK_SET)
                        let bytes = readFD(fd)
                        close(fd)
                        offset += Int64(bytes.count)
                        carry += bytes
                        if let last = carry.lastIndex(of: 0x0A) {
                            for e in parse(Array(carry[...last])) { emit(e) }
                            carry = Array(carry[(last + 1)...])
                        }
                    }
                }
            }
            if finalPass { return }
            if !isRunning() { finalPass = true; continue }
            usleep(50_000)
        }
    }
}
