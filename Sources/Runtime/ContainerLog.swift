import CRuntime
import FoundationEssentials
import Support

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

// MARK: - Entries

/// One line of the json-file log.
public struct ContainerLogEntry: Decodable, Sendable, Equatable {
    public var log: String
    public var stream: String
    public var time: String

    public init(log: String, stream: String, time: String) {
        self.log = log
        self.stream = stream
        self.time = time
    }

    /// `time` as `docker logs -t` prints it: RFC 3339 in UTC with exactly nine fraction digits.
    /// berth's writers store it so already; Go's encoder drops trailing zeros.
    public var displayTime: String {
        let text = time.utf8
        if text.count == 30, text.last == UInt8(ascii: "Z") { return time }
        return LogTimestamp(rfc3339: time)?.rfc3339Nano ?? time
    }

    /// One line of the file without its newline; nil for what is not an entry (a line a crash
    /// tore). The writers' own shape is read by hand: JSONDecoder costs microseconds a line, which
    /// a follower of a chatty container pays on every one. Anything else goes to JSONDecoder.
    static func parse(_ line: UnsafeBufferPointer<UInt8>) -> ContainerLogEntry? {
        var scanner = FlatObjectScanner(line)
        if let entry = scanner.entry() { return entry }
        return try? JSONDecoder().decode(ContainerLogEntry.self, from: Data(line))
    }
}

/// A JSON object whose values are all strings: the shape both log writers emit.
private struct FlatObjectScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var at = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    mutating func entry() -> ContainerLogEntry? {
        var log: String?
        var stream: String?
        var time: String?
        guard take(UInt8(ascii: "{")) else { return nil }
        if !take(UInt8(ascii: "}")) {
            repeat {
                guard let key = string(), take(UInt8(ascii: ":")), let value = string() else { return nil }
                switch key {
                case "log": log = value
                case "stream": stream = value
                case "time": time = value
                default: break
                }
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "}")) else { return nil }
        }
        skipSpace()
        guard at == bytes.count, let log, let stream, let time else { return nil }
        return ContainerLogEntry(log: log, stream: stream, time: time)
    }

    /// Skips white space, then consumes `byte` if it comes next.
    private mutating func take(_ byte: UInt8) -> Bool {
        skipSpace()
        guard at < bytes.count, bytes[at] == byte else { return false }
        at += 1
        return true
    }

    private mutating func skipSpace() {
        while at < bytes.count {
            switch bytes[at] {
            case 0x20, 0x09, 0x0A, 0x0D: at += 1
            default: return
            }
        }
    }

    private mutating func string() -> String? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = at
        while at < bytes.count {
            switch bytes[at] {
            case UInt8(ascii: "\""):
                at += 1
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<(at - 1)]), as: UTF8.self)
            case UInt8(ascii: "\\"):
                return escapedString(from: start)
            default:
                at += 1
            }
        }
        return nil
    }

    /// The rest of a string that holds escapes, from its first backslash (at `at`).
    private mutating func escapedString(from start: Int) -> String? {
        var out = Array(UnsafeBufferPointer(rebasing: bytes[start..<at]))
        while at < bytes.count {
            let byte = bytes[at]
            at += 1
            guard byte == UInt8(ascii: "\\") else {
                if byte == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                out.append(byte)
                continue
            }
            guard at < bytes.count else { return nil }
            let code = bytes[at]
            at += 1
            switch code {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(code)
            case UInt8(ascii: "u"):
                guard var value = hex4() else { return nil }
                // A character beyond the BMP comes as a UTF-16 surrogate pair: \ud83d\ude00.
                if (0xD800..<0xDC00).contains(value), at + 1 < bytes.count, bytes[at] == UInt8(ascii: "\\"),
                    bytes[at + 1] == UInt8(ascii: "u")
                {
                    let mark = at
                    at += 2
                    if let low = hex4(), (0xDC00..<0xE000).contains(low) {
                        value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        at = mark
                    }
                }
                UTF8.encode(Unicode.Scalar(value) ?? "\u{FFFD}") { out.append($0) }
            default:
                return nil
            }
        }
        return nil
    }

    private mutating func hex4() -> UInt32? {
        guard at + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for byte in bytes[at..<(at + 4)] {
            guard let digit = Hex.value(of: byte) else { return nil }
            value = value << 4 | UInt32(digit)
        }
        at += 4
        return value
    }
}

private enum Hex {
    static func value(of byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

// MARK: - Times

/// A time to the nanosecond: the log's "time" fields, and `--since`/`--until`.
public struct LogTimestamp: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var seconds: Int64
    /// 0 ..< 1,000,000,000.
    public var nanoseconds: Int32

    public init(seconds: Int64, nanoseconds: Int32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static var now: LogTimestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return LogTimestamp(seconds: Int64(ts.tv_sec), nanoseconds: Int32(ts.tv_nsec))
    }

    public static func < (a: LogTimestamp, b: LogTimestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }

    /// "2024-01-02T03:04:05.123456789Z": UTC with nine fraction digits, as `docker logs -t` prints.
    public var rfc3339Nano: String { Timestamp.format(seconds: Int(seconds), nanoseconds: Int(nanoseconds)) }
    public var description: String { rfc3339Nano }

    /// An RFC 3339 time with seconds and a zone, as the log's writers store it; nil otherwise.
    public init?(rfc3339 text: String) {
        guard let parts = CalendarText(text), parts.hasSeconds, let offset = parts.zoneOffset else { return nil }
        self = parts.timestamp(offset: offset)
    }

    /// A `--since`/`--until` value, read as Docker's client reads it (GetTimestamp, moby's
    /// api/types/time):
    /// - a Go duration back from `now`: "10m", "1h30m", "1.5h", "-5s" (rounded down to a whole
    ///   second, as Docker sends it);
    /// - an RFC 3339 date or time: "2024-01-02", "2024-01-02T15", "2024-01-02T15:04:05.5+02:00",
    ///   in the local zone (at its offset of now, as Docker) when it names none;
    /// - Unix seconds with an optional fraction: "1700000000", "1700000000.25".
    /// nil when it is none of these.
    public static func parse(argument text: String, now: LogTimestamp = .now) -> LogTimestamp? {
        // Docker takes "0" for the Unix epoch, not for a duration of nothing.
        if text != "0", let back = goDuration(text) {
            var (wholeSeconds, rest) = back.quotientAndRemainder(dividingBy: 1_000_000_000)
            if rest < 0 { (wholeSeconds, rest) = (wholeSeconds - 1, rest + 1_000_000_000) }
            let borrow: Int64 = Int64(now.nanoseconds) < rest ? 1 : 0
            return LogTimestamp(seconds: now.seconds - wholeSeconds - borrow)
        }
        if let parts = CalendarText(text) {
            return parts.timestamp(offset: parts.zoneOffset ?? localOffset(at: now))
        }
        // Something with a dash was meant as a date that is not one (Docker says so too).
        if text.contains("-") { return nil }
        return unixSeconds(text)
    }

    private static func localOffset(at time: LogTimestamp) -> Int {
        var t = time_t(time.seconds)
        var local = tm()
        localtime_r(&t, &local)
        return local.tm_gmtoff
    }

    private static func unixSeconds(_ text: String) -> LogTimestamp? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let seconds = Int64(parts[0]) else { return nil }
        guard parts.count == 2 else { return LogTimestamp(seconds: seconds) }
        let digits = parts[1]
        guard !digits.isEmpty, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        // Digits past the ninth are below a nanosecond.
        let nine = digits.prefix(9) + String(repeating: "0", count: max(0, 9 - digits.count))
        return LogTimestamp(seconds: seconds, nanoseconds: Int32(nine) ?? 0)
    }

    /// Go's time.ParseDuration: a signed sequence of decimal numbers with units ("300ms",
    /// "-1.5h", "2h45m"; units ns, us, µs, ms, s, m, h), in nanoseconds; nil when malformed or
    /// out of range.
    static func goDuration(_ text: String) -> Int64? {
        let units: [(name: [UInt8], nanoseconds: Int64)] = [
            (Array("ns".utf8), 1), (Array("us".utf8), 1_000), (Array("µs".utf8), 1_000), (Array("μs".utf8), 1_000),
            (Array("ms".utf8), 1_000_000), (Array("s".utf8), 1_000_000_000), (Array("m".utf8), 60_000_000_000),
            (Array("h".utf8), 3_600_000_000_000),
        ]
        var bytes = Array(text.utf8)[...]
        var negative = false
        if let sign = bytes.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
            negative = sign == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        if bytes.elementsEqual("0".utf8) { return 0 }
        guard !bytes.isEmpty else { return nil }
        func isDigit(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) }
        var total: Int64 = 0
        while !bytes.isEmpty {
            var whole: Int64 = 0
            var fraction: Int64 = 0
            var scale: Int64 = 1
            var digits = 0
            while let b = bytes.first, isDigit(b) {
                let (times10, o1) = whole.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(Int64(b - 0x30))
                guard !o1, !o2 else { return nil }
                whole = sum
                digits += 1
                bytes = bytes.dropFirst()
            }
            if bytes.first == UInt8(ascii: ".") {
                bytes = bytes.dropFirst()
                while let b = bytes.first, isDigit(b) {
                    // Beyond 18 digits a fraction no longer changes a nanosecond count.
                    if scale < 1_000_000_000_000_000_000 {
                        fraction = fraction * 10 + Int64(b - 0x30)
                        scale *= 10
                    }
                    digits += 1
                    bytes = bytes.dropFirst()
                }
            }
            guard digits > 0 else { return nil }
            let unitEnd = bytes.firstIndex { isDigit($0) || $0 == UInt8(ascii: ".") } ?? bytes.endIndex
            guard let unit = units.first(where: { bytes[..<unitEnd].elementsEqual($0.name) }) else { return nil }
            bytes = bytes[unitEnd...]
            let (value, o1) = whole.multipliedReportingOverflow(by: unit.nanoseconds)
            let part = Int64((Double(fraction) * Double(unit.nanoseconds) / Double(scale)).rounded(.down))
            let (withFraction, o2) = value.addingReportingOverflow(part)
            let (sum, o3) = total.addingReportingOverflow(withFraction)
            guard !o1, !o2, !o3 else { return nil }
            total = sum
        }
        return negative ? -total : total
    }
}

/// "YYYY-MM-DD[THH[:MM[:SS[.fraction]]]][Z|±HH:MM]", with the ranges Go's time.Parse checks.
private struct CalendarText {
    var year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0
    var nanoseconds: Int32 = 0
    var hasSeconds = false
    /// Seconds east of UTC; nil when the text names no zone.
    var zoneOffset: Int?

    init?(_ text: String) {
        let b = Array(text.utf8)
        var i = 0
        func number(_ count: Int) -> Int? {
            guard i + count <= b.count else { return nil }
            var value = 0
            for byte in b[i..<(i + count)] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            i += count
            return value
        }
        func take(_ c: Unicode.Scalar) -> Bool {
            guard i < b.count, b[i] == UInt8(ascii: c) else { return false }
            i += 1
            return true
        }
        guard let year = number(4), take("-"), let month = number(2), take("-"), let day = number(2) else { return nil }
        (self.year, self.month, self.day) = (year, month, day)
        if take("T") {
            guard let hour = number(2) else { return nil }
            self.hour = hour
            if take(":") {
                guard let minute = number(2) else { return nil }
                self.minute = minute
                if take(":") {
                    guard let second = number(2) else { return nil }
                    self.second = second
                    hasSeconds = true
                    if take(".") {
                        let start = i
                        while i < b.count, (0x30...0x39).contains(b[i]) { i += 1 }
                        guard i > start else { return nil }
                        let digits = b[start..<min(i, start + 9)]
                        var value = digits.reduce(0) { $0 * 10 + Int32($1 - 0x30) }
                        for _ in digits.count..<9 { value *= 10 }
                        nanoseconds = value
                    }
                }
            }
        }
        if take("Z") {
            zoneOffset = 0
        } else if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
            i += 1
            guard let hours = number(2), take(":"), let minutes = number(2), hours < 24, minutes < 60 else {
                return nil
            }
            zoneOffset = sign * (hours * 3600 + minutes * 60)
        }
        guard i == b.count, (1...12).contains(month), day >= 1, day <= Self.days(inMonth: month, of: year),
            hour < 24, minute < 60, second < 60
        else { return nil }
    }

    static func days(inMonth month: Int, of year: Int) -> Int {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    func timestamp(offset: Int) -> LogTimestamp {
        let days = CivilDate.daysSince1970(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        return LogTimestamp(seconds: Int64(seconds), nanoseconds: nanoseconds)
    }
}

// MARK: - Reading and following

/// Which entries to read, as `docker logs` picks them.
public struct ContainerLogSelection: Sendable {
    /// Only the last `tail` complete lines there are when reading starts, across rotated files;
    /// nil for all of them.
    public var tail: Int?
    /// Entries older than this are skipped (applied after `tail`, as Docker does).
    public var since: LogTimestamp?
    /// Reading ends at the first entry newer than this, and a follower also once the clock
    /// passes it.
    public var until: LogTimestamp?

    public init(tail: Int? = nil, since: LogTimestamp? = nil, until: LogTimestamp? = nil) {
        self.tail = tail
        self.since = since
        self.until = until
    }
}

public enum ContainerLogReader {
    /// Every entry, oldest rotated file first.
    public static func entries(path: String) -> [ContainerLogEntry] {
        var all: [ContainerLogEntry] = []
        try? read(path: path) { batch in
            all += batch
            return true
        }
        return all
    }

    /// The selected entries the log holds now, handed to `handler` in order, a batch per read;
    /// `handler` returns false to stop.
    public static func read(
        path: String, selection: ContainerLogSelection = ContainerLogSelection(),
        handler: ([ContainerLogEntry]) -> Bool
    ) throws {
        try follow(path: path, selection: selection, isWriting: { false }, handler: handler)
    }

    /// `logs -f`: the selected entries, oldest rotated file first, then whatever the writer adds
    /// while `isWriting()` is true; returns once it is false and everything written is read (or
    /// at `selection.until`, or when `handler` returns false).
    ///
    /// Nothing is polled: the follower waits (poll(2)) on an inotify watch of the log's
    /// directory, which reports growth (IN_MODIFY), rotation (renames, the new file) and the
    /// writer's exit records (state.json, exit.json), and on `wakeUpDescriptors` (e.g. pidfds),
    /// for a change of `isWriting()` that shows nowhere in that directory. An event only wakes
    /// it; what to do is decided from the files themselves, so a missed or merged event costs
    /// nothing.
    ///
    /// Files are told apart by inode, never by name: the file being read is held open and read
    /// to its end after it was renamed to .1 (rotation) or unlinked, then reading goes on with
    /// the file that came after it. Which one that is comes from a listing of the directory
    /// during which no log file was renamed, created or deleted (the watch tells), so the names'
    /// order is the rotation's order, and each file is opened and checked to be the one listed.
    /// With enough rotations before a file is read (max-file reached) that file is lost, as with
    /// Docker; nothing is ever read twice or out of order.
    public static func follow(
        path: String, selection: ContainerLogSelection = ContainerLogSelection(),
        isWriting: () -> Bool, wakeUpDescriptors: [Int32] = [],
        handler: ([ContainerLogEntry]) -> Bool
    ) throws {
        try withoutActuallyEscaping(handler) { handler in
            let follower = LogFollower(path: path, selection: selection, handler: handler)
            try follower.run(isWriting: isWriting, wakeUpDescriptors: wakeUpDescriptors)
        }
    }
}

/// The reading side of `ContainerLogReader.follow`, for one call.
private final class LogFollower {
    private struct OpenFile {
        let fd: Int32
        let inode: UInt64
    }

    private let path: String
    private let directory: String
    private let baseName: String
    private let selection: ContainerLogSelection
    private let handler: ([ContainerLogEntry]) -> Bool
    /// inotify descriptor watching `directory`, or -1.
    private var watch: Int32 = -1
    /// Log files renamed, created or deleted so far (and event queue overflows), as the watch told.
    private var nameChanges = 0
    /// Open files not yet read to their end, oldest first; the last is the newest one known.
    private var files: [OpenFile] = []
    /// The start of a line whose newline has not been read yet.
    private var pending: [UInt8] = []
    private var readBuffer = [UInt8](repeating: 0, count: 256 * 1024)
    private var eventBuffer = [UInt8](repeating: 0, count: 64 * 1024)

    init(path: String, selection: ContainerLogSelection, handler: @escaping ([ContainerLogEntry]) -> Bool) {
        self.path = path
        let slash = path.lastIndex(of: "/")
        directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        baseName = slash.map { String(path[path.index(after: $0)...]) } ?? path
        self.selection = selection
        self.handler = handler
    }

    deinit {
        for file in files { close(file.fd) }
        if watch >= 0 { close(watch) }
    }

    func run(isWriting: () -> Bool, wakeUpDescriptors: [Int32]) throws {
        var wakeUps = wakeUpDescriptors
        // The watch comes before the first look at the writer and the files, so that no change
        // after that look goes unnoticed.
        watch = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        let events = UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)
        var watchError: Int32 = 0
        if watch >= 0, inotify_add_watch(watch, directory, events) < 0 {
            watchError = errno
            close(watch)
            watch = -1
        } else if watch < 0 {
            watchError = errno
        }
        files = openFiles(newerThan: nil)
        if let tail = selection.tail { startAtLastLines(tail) }
        while true {
            drainEvents()
            let untilPassed = selection.until.map { LogTimestamp.now > $0 } ?? false
            // Looked at before reading: whatever was written before it stopped is read below.
            let writing = !untilPassed && isWriting()
            if writing && watch < 0 {
                throw Container.Error(container: "", step: "watch \(directory)", detail: ProcFS.errnoText(watchError))
            }
            guard let current = files.first else {
                files = openFiles(newerThan: nil)
                if !files.isEmpty { continue }
                guard writing else { return }
                try wait(&wakeUps)
                continue
            }
            guard readToEnd(current) else { return }
            if files.count > 1 {
                // An older file: its writer closed it before renaming it, so it is complete.
                guard finishFile() else { return }
                continue
            }
            if isNewest(current) {
                guard writing else { return finishLastFile() }
                try wait(&wakeUps)
                continue
            }
            let newer = openFiles(newerThan: current.inode)
            if newer.isEmpty {
                // Renamed away, and the new file not made yet (or never: the writer is gone).
                guard writing else { return finishLastFile() }
                try wait(&wakeUps)
                continue
            }
            // What the writer added between the read above and the rename.
            guard readToEnd(current), finishFile() else { return }
            files = newer
        }
    }

    // MARK: Files

    /// Whether `file` is still the one named by the log's path (not rotated away).
    private func isNewest(_ file: OpenFile) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && UInt64(st.st_ino) == file.inode
    }

    /// 0 for the log itself, N for its rotated copy ".N", nil for any other name.
    private func rotationIndex(_ name: String) -> Int? {
        if name == baseName { return 0 }
        guard name.hasPrefix(baseName + ".") else { return nil }
        let suffix = name.dropFirst(baseName.count + 1)
        guard !suffix.isEmpty, suffix.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let index = Int(suffix),
            index > 0
        else { return nil }
        return index
    }

    /// The log's files, oldest first, as one instant saw them: listed again until no log file
    /// was renamed, created or deleted during the listing, so that the names' order is the
    /// rotation's order.
    private func listFiles() -> [(path: String, inode: UInt64)] {
        while true {
            drainEvents()
            let changesBefore = nameChanges
            var found: [(index: Int, path: String, inode: UInt64)] = []
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                guard let index = rotationIndex(name) else { continue }
                let file = directory + "/" + name
                var st = stat()
                guard lstat(file, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
                found.append((index, file, UInt64(st.st_ino)))
            }
            drainEvents()
            if watch < 0 || nameChanges == changesBefore {
                return found.sorted { $0.index > $1.index }.map { ($0.path, $0.inode) }
            }
        }
    }

    /// Opens the files that came after the file with inode `current` (all of them when nil, or
    /// when that file is gone: rotation drops the oldest first, so all that are left are newer).
    private func openFiles(newerThan current: UInt64?) -> [OpenFile] {
        retry: while true {
            let listed = listFiles()
            var first = 0
            if let current, let at = listed.firstIndex(where: { $0.inode == current }) { first = at + 1 }
            var opened: [OpenFile] = []
            for file in listed[first...] {
                let fd = open(file.path, O_RDONLY | O_CLOEXEC)
                let openError = errno
                var st = stat()
                if fd >= 0, fstat(fd, &st) == 0, UInt64(st.st_ino) == file.inode {
                    opened.append(OpenFile(fd: fd, inode: file.inode))
                    continue
                }
                if fd >= 0 { close(fd) }
                // Anything but a rotation in between (EACCES, EMFILE) would fail again: skip it.
                if fd < 0 && openError != ENOENT { continue }
                for file in opened { close(file.fd) }
                continue retry
            }
            return opened
        }
    }

    /// Starts reading at the `count`-th last complete line, dropping the files before it.
    private func startAtLastLines(_ count: Int) {
        var remaining = count
        for index in files.indices.reversed() {
            guard let offset = offsetOfLastLines(files[index].fd, &remaining) else { continue }
            for file in files[..<index] { close(file.fd) }
            files.removeFirst(index)
            lseek(files[0].fd, off_t(offset), SEEK_SET)
            return
        }
    }

    /// Where the last `remaining` complete lines of the file begin: after the newline that ends
    /// the line before them. nil when the file holds no more lines than that; then `remaining`
    /// goes down by the lines it has.
    private func offsetOfLastLines(_ fd: Int32, _ remaining: inout Int) -> Int64? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        var end = Int64(st.st_size)
        var newlines = 0
        while end > 0 {
            let start = max(0, end - Int64(readBuffer.count))
            let n = readBuffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(end - start), off_t(start)) }
            guard n > 0 else { break }
            for i in stride(from: n - 1, through: 0, by: -1) where readBuffer[i] == 0x0A {
                newlines += 1
                if newlines == remaining + 1 { return start + Int64(i) + 1 }
            }
            end = start
        }
        remaining -= newlines
        return nil
    }

    // MARK: Reading

    /// Reads `file` from where it stands to its end, handing on the whole lines. false: stop.
    private func readToEnd(_ file: OpenFile) -> Bool {
        // max-file=1 rotates by truncating the file in place: start over at its top.
        var st = stat()
        if fstat(file.fd, &st) == 0, Int64(st.st_size) < Int64(lseek(file.fd, 0, SEEK_CUR)) {
            lseek(file.fd, 0, SEEK_SET)
            pending = []
        }
        while true {
            let n = readBuffer.withUnsafeMutableBytes { Glibc.read(file.fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return true }
            // Only the bytes just read can hold a newline: what was pending before had none.
            let lineBytes = readBuffer.withUnsafeBufferPointer { chunk in
                var last = n - 1
                while last >= 0 && chunk[last] != 0x0A { last -= 1 }
                pending.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[0..<n]))
                return last < 0 ? 0 : pending.count - n + last + 1
            }
            guard lineBytes > 0 else { continue }
            let keepGoing = deliver(lineCount: lineBytes)
            pending.removeFirst(lineBytes)
            if !keepGoing { return false }
        }
    }

    /// Closes the first file, handing on a last line it left without a newline.
    private func finishFile() -> Bool {
        let keepGoing = pending.isEmpty || deliver(lineCount: pending.count)
        pending = []
        close(files.removeFirst().fd)
        return keepGoing
    }

    private func finishLastFile() {
        _ = finishFile()
    }

    /// Parses the first `count` bytes of `pending` (whole lines; a last one may lack its
    /// newline), selects and hands them on. false once `until` is passed or the handler says so.
    private func deliver(lineCount count: Int) -> Bool {
        var batch: [ContainerLogEntry] = []
        var passedUntil = false
        pending.withUnsafeBufferPointer { all in
            guard let base = all.baseAddress else { return }
            var start = 0
            while start < count, !passedUntil {
                let newline = memchr(base + start, 0x0A, count - start)
                let end = newline.map { UnsafeRawPointer(base).distance(to: $0) } ?? count
                defer { start = end + 1 }
                let line = UnsafeBufferPointer(rebasing: all[start..<end])
                guard let entry = ContainerLogEntry.parse(line) else { continue }
                if selection.since != nil || selection.until != nil, let time = LogTimestamp(rfc3339: entry.time) {
                    if let since = selection.since, time < since { continue }
                    if let until = selection.until, time > until {
                        passedUntil = true
                        break
                    }
                }
                batch.append(entry)
            }
        }
        let keepGoing = batch.isEmpty || handler(batch)
        return keepGoing && !passedUntil
    }

    // MARK: Waiting

    /// Reads what the watch has queued, counting the events that rename, create or delete a log
    /// file (and overflows, after which anything may have happened).
    private func drainEvents() {
        guard watch >= 0 else { return }
        let headerSize = MemoryLayout<inotify_event>.size
        while true {
            let n = eventBuffer.withUnsafeMutableBytes { Glibc.read(watch, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            eventBuffer.withUnsafeBytes { raw in
                var offset = 0
                while offset + headerSize <= n {
                    let mask = raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
                    let nameLength = Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                    let nameBytes = raw[(offset + headerSize)..<min(n, offset + headerSize + nameLength)]
                    let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
                    let renames = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)
                    if mask & UInt32(IN_Q_OVERFLOW) != 0 || (mask & renames != 0 && rotationIndex(name) != nil) {
                        nameChanges += 1
                    }
                    offset += headerSize + nameLength
                }
            }
        }
    }

    /// Blocks until the directory changes, a wake-up descriptor becomes readable, or `until`
    /// comes (nothing written after it can be selected).
    private func wait(_ wakeUps: inout [Int32]) throws {
        var fds = [pollfd(fd: watch, events: Int16(POLLIN), revents: 0)]
        fds += wakeUps.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var timeout: Int32 = -1
        if let until = selection.until {
            let now = LogTimestamp.now
            let milliseconds =
                (until.seconds - now.seconds) * 1000
                + (Int64(until.nanoseconds) - Int64(now.nanoseconds)) / 1_000_000 + 1
            timeout = Int32(clamping: max(0, milliseconds))
        }
        let rc = poll(&fds, nfds_t(fds.count), timeout)
        if rc < 0 && errno != EINTR {
            throw Container.Error(container: "", step: "watch \(directory)", detail: ProcFS.errnoText(errno))
        }
        // A descriptor that fired stays readable (a pidfd after the exit): it has said its piece.
        if rc > 0 { wakeUps = zip(wakeUps, fds.dropFirst()).filter { $0.1.revents == 0 }.map(\.0) }
    }
}

// MARK: - A container's log

extension Container {
    /// Whether anything may still be added to the log: the exit is not recorded (state.json by
    /// berth, exit.json by berth-shim, each written once the last line is in the log) and the
    /// container or the process writing its log is alive (one that died without recording the
    /// exit writes nothing more).
    public var logMayGrow: Bool {
        if access(dir + "/exit.json", F_OK) == 0 { return false }
        let s = readRawState()
        guard s.status == .running else { return false }
        // The writer is berth-shim (monitorIsAlive says how its pid is told from a reused one).
        return isAlive(s) || monitorIsAlive(s)
    }

    /// `docker logs`: the selected entries in order, a batch at a time; with `follow`, then what
    /// the container adds, until it has exited and everything is read. `handler` returns false
    /// to stop.
    public func readLog(
        _ selection: ContainerLogSelection = ContainerLogSelection(), follow: Bool,
        handler: ([ContainerLogEntry]) -> Bool
    ) throws {
        guard follow else { return try ContainerLogReader.read(path: logPath, selection: selection, handler: handler) }
        // Exit records land in the log's directory, which the follower watches; a container or
        // writer that dies without one shows only in its pidfd.
        var pidfds: [Int32] = []
        defer { for fd in pidfds { close(fd) } }
        let s = readRawState()
        if s.status == .running, let start = s.pidStartTime {
            for pid in [s.pid, s.monitorPid].compactMap({ $0 }) {
                let fd = berth_pidfd_open(pid)
                guard fd >= 0 else { continue }
                // Checked after the open: the descriptor then names the process that was checked.
                let isContainer = pid == s.pid
                if let started = ProcFS.startTime(pid: pid), isContainer ? started == start : started <= start {
                    pidfds.append(fd)
                } else {
                    close(fd)
                }
            }
        }
        try ContainerLogReader.follow(
            path: logPath, selection: selection, isWriting: { self.logMayGrow },
            wakeUpDescriptors: pidfds, handler: handler)
    }
}
