import Foundation
import Testing

@testable import Runtime

/// The json-file log read back as `docker logs` reads it: rotation followed by inode, `--tail`,
/// `--since`/`--until`, Docker's time arguments. Each test has its own directory; the writer is
/// the runtime's own ContainerLogWriter on a thread (the container tests are in ContainerCLITests).
@Suite struct LogFollowTests {
    // MARK: Following a rotating log

    @Test func followerReadsEveryLineOnceAcrossRotations() throws {
        let dir = try TemporaryLogDirectory()
        let count = 50_000
        // ~3.5 MB in 64 KiB files: some 55 rotations, none of them deleting a file.
        let (followed, readWhileWriting) = try Self.followWhileWriting(
            dir.log, lines: count, maxSize: 64 * 1024,
            maxFiles: 100)
        #expect(readWhileWriting, "the follower read nothing before the writer was done")
        let numbers = followed.map(\.log)
        #expect(numbers.count == count)
        if let wrong = zip(numbers, 1...count).first(where: { $0.0 != "\($0.1)\n" }) {
            Issue.record("line \(wrong.1) read as \(wrong.0.debugDescription)")
        }
        #expect(Set(followed.map(\.stream)) == ["stdout", "stderr"])
    }

    /// max-file=2 drops files the follower may not have reached (and max-file=1 truncates in
    /// place): lines may be lost, but none may come twice or out of order, and the end is read.
    @Test(arguments: [1, 2]) func fewFilesMayLoseButNeverRepeat(maxFiles: Int) throws {
        let dir = try TemporaryLogDirectory()
        let count = 50_000
        let (followed, _) = try Self.followWhileWriting(dir.log, lines: count, maxSize: 16 * 1024, maxFiles: maxFiles)
        let numbers = followed.compactMap { Int($0.log.dropLast()) }
        #expect(numbers.count == followed.count, "a line was torn")
        #expect(numbers.last == count)
        if let back = zip(numbers, numbers.dropFirst()).first(where: { $0.0 >= $0.1 }) {
            Issue.record("\(back.1) came after \(back.0)")
        }
    }

    @Test func followerWaitsForTheLogToAppear() throws {
        let dir = try TemporaryLogDirectory()
        let writing = WritingSignal()
        let follower = BackgroundFollower(path: dir.log, writing: writing)
        // The file is made only now; the follower has been watching the directory for it.
        let writer = ContainerLogWriter(path: dir.log)
        Array("late\n".utf8).withUnsafeBytes { writer.append($0, stream: "stdout") }
        writing.finish()
        let entries = try #require(follower.result(within: 60))
        #expect(entries.map(\.log) == ["late\n"])
    }

    @Test func finishedLogIsReadAtOnce() throws {
        let dir = try TemporaryLogDirectory()
        try dir.write("container.log", [("first\n", 0), ("second\n", 1)])
        let writing = WritingSignal()
        writing.finish()
        let follower = BackgroundFollower(path: dir.log, writing: writing)
        let entries = try #require(follower.result(within: 60))
        #expect(entries.map(\.log) == ["first\n", "second\n"])
    }

    // MARK: Selecting entries

    /// Three files of three entries each, one second apart from `base`: a1 a2 a3 (.2), b1 b2 b3
    /// (.1), c1 c2 c3 (container.log), i.e. seconds 0...8.
    static let base = LogTimestamp(seconds: 1_700_000_000)

    static func threeFiles() throws -> TemporaryLogDirectory {
        let dir = try TemporaryLogDirectory()
        try dir.write("container.log.2", [("a1\n", 0), ("a2\n", 1), ("a3\n", 2)])
        try dir.write("container.log.1", [("b1\n", 3), ("b2\n", 4), ("b3\n", 5)])
        try dir.write("container.log", [("c1\n", 6), ("c2\n", 7), ("c3\n", 8)])
        return dir
    }

    static func read(_ dir: TemporaryLogDirectory, _ selection: ContainerLogSelection) throws -> [String] {
        var logs: [String] = []
        try ContainerLogReader.read(path: dir.log, selection: selection) { batch in
            logs += batch.map { String($0.log.dropLast()) }
            return true
        }
        return logs
    }

    static func at(_ second: Int64, nanoseconds: Int32 = 0) -> LogTimestamp {
        LogTimestamp(seconds: base.seconds + second, nanoseconds: nanoseconds)
    }

    @Test func tailCountsLinesAcrossRotatedFiles() throws {
        let dir = try Self.threeFiles()
        #expect(try Self.read(dir, .init()) == ["a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2", "c3"])
        #expect(try Self.read(dir, .init(tail: 2)) == ["c2", "c3"])
        #expect(try Self.read(dir, .init(tail: 3)) == ["c1", "c2", "c3"])
        #expect(try Self.read(dir, .init(tail: 5)) == ["b2", "b3", "c1", "c2", "c3"])
        #expect(try Self.read(dir, .init(tail: 0)) == [])
        #expect(try Self.read(dir, .init(tail: 100)).count == 9)
    }

    @Test func sinceAndUntilAreInclusive() throws {
        let dir = try Self.threeFiles()
        #expect(try Self.read(dir, .init(since: Self.at(7))) == ["c2", "c3"])
        #expect(try Self.read(dir, .init(since: Self.at(6, nanoseconds: 1))) == ["c2", "c3"])
        #expect(try Self.read(dir, .init(until: Self.at(1))) == ["a1", "a2"])
        #expect(try Self.read(dir, .init(since: Self.at(2), until: Self.at(4))) == ["a3", "b1", "b2"])
        // Docker applies --tail first, then --since.
        #expect(try Self.read(dir, .init(tail: 4, since: Self.at(3))) == ["b3", "c1", "c2", "c3"])
        #expect(try Self.read(dir, .init(tail: 4, since: Self.at(7))) == ["c2", "c3"])
        #expect(try Self.read(dir, .init(until: Self.at(-1))) == [])
    }

    @Test func tornAndForeignLinesAreReadAsWellAsTheyCanBe() throws {
        let dir = try TemporaryLogDirectory()
        // A partial last line of output (no newline in "log"), a key order and escapes of Go's
        // encoder, an entry with extra fields, garbage, and a last entry cut before its newline.
        let text =
            #"{"log":"no newline","stream":"stdout","time":"2023-11-14T22:13:20Z"}"# + "\n"
            + #"{"time":"2023-11-14T22:13:21.5Z","stream":"stderr","log":"\u003cb\u003e \ud83d\ude00 \"q\"\n"}"# + "\n"
            + #"{"log":"x\n","stream":"stdout","attrs":{"a":"1"},"time":"2023-11-14T22:13:22.000000001Z"}"# + "\n"
            + "not json\n"
            + #"{"log":"cut\n","stream":"stdout","time":"2023-11-14T22:13:23Z"}"#
        try text.write(toFile: dir.log, atomically: false, encoding: .utf8)
        let entries = ContainerLogReader.entries(path: dir.log)
        #expect(entries.map(\.log) == ["no newline", "<b> 😀 \"q\"\n", "x\n", "cut\n"])
        #expect(entries.map(\.stream) == ["stdout", "stderr", "stdout", "stdout"])
        #expect(
            entries.map(\.displayTime) == [
                "2023-11-14T22:13:20.000000000Z", "2023-11-14T22:13:21.500000000Z",
                "2023-11-14T22:13:22.000000001Z", "2023-11-14T22:13:23.000000000Z",
            ])
    }

    // MARK: Times

    @Test func entryTimesAreRFC3339() {
        #expect(LogTimestamp(rfc3339: "2023-11-14T22:13:20Z") == LogTimestamp(seconds: 1_700_000_000))
        #expect(
            LogTimestamp(rfc3339: "2023-11-14T22:13:20.123456789Z")
                == LogTimestamp(seconds: 1_700_000_000, nanoseconds: 123_456_789))
        #expect(
            LogTimestamp(rfc3339: "2023-11-15T00:13:20.5+02:00")
                == LogTimestamp(seconds: 1_700_000_000, nanoseconds: 500_000_000))
        #expect(LogTimestamp(rfc3339: "1969-12-31T23:59:59Z") == LogTimestamp(seconds: -1))
        #expect(LogTimestamp(rfc3339: "2024-02-29T00:00:00Z") != nil)
        for bad in ["2023-02-29T00:00:00Z", "2023-11-14T22:13:20", "2023-11-14", "2023-11-14T24:00:00Z", "x"] {
            #expect(LogTimestamp(rfc3339: bad) == nil, "\(bad)")
        }
        #expect(LogTimestamp(seconds: 1_700_000_000, nanoseconds: 5).rfc3339Nano == "2023-11-14T22:13:20.000000005Z")
    }

    @Test func dockerTimeArguments() {
        let now = LogTimestamp(seconds: 1_700_000_000, nanoseconds: 250_000_000)
        func parse(_ text: String) -> LogTimestamp? { LogTimestamp.parse(argument: text, now: now) }
        // Durations count back from now, in whole seconds as Docker sends them.
        #expect(parse("10m") == LogTimestamp(seconds: 1_700_000_000 - 600))
        #expect(parse("1h30m") == LogTimestamp(seconds: 1_700_000_000 - 5400))
        #expect(parse("1.5h") == LogTimestamp(seconds: 1_700_000_000 - 5400))
        #expect(parse("300ms") == LogTimestamp(seconds: 1_699_999_999))
        #expect(parse("-5s") == LogTimestamp(seconds: 1_700_000_005))
        #expect(parse("0s") == LogTimestamp(seconds: 1_700_000_000))
        #expect(parse("1µs") == LogTimestamp(seconds: 1_700_000_000))
        // Unix seconds, with an optional fraction; "0" is the epoch.
        #expect(parse("0") == LogTimestamp(seconds: 0))
        #expect(parse("1600000000") == LogTimestamp(seconds: 1_600_000_000))
        #expect(parse("1600000000.25") == LogTimestamp(seconds: 1_600_000_000, nanoseconds: 250_000_000))
        // RFC 3339 and its shorter forms Docker accepts, with a zone.
        #expect(parse("2023-11-14T22:13:20Z") == LogTimestamp(seconds: 1_700_000_000))
        #expect(parse("2023-11-14T22:13:20.000000001Z") == LogTimestamp(seconds: 1_700_000_000, nanoseconds: 1))
        #expect(parse("2023-11-14T23:13:20+01:00") == LogTimestamp(seconds: 1_700_000_000))
        #expect(parse("2023-11-14T22:13Z") == LogTimestamp(seconds: 1_700_000_000 - 20))
        #expect(parse("2023-11-14T22Z") == LogTimestamp(seconds: 1_700_000_000 - 13 * 60 - 20))
        #expect(parse("2023-11-14Z") == LogTimestamp(seconds: 1_700_000_000 - 22 * 3600 - 13 * 60 - 20))
        #expect(parse("2023-11-14-01:00") == LogTimestamp(seconds: 1_700_000_000 - 22 * 3600 - 13 * 60 - 20 + 3600))
        // Without a zone: local time, at the local zone's offset of now (as Docker).
        var t = time_t(now.seconds)
        var local = tm()
        localtime_r(&t, &local)
        #expect(parse("2023-11-14T22:13:20") == LogTimestamp(seconds: 1_700_000_000 - Int64(local.tm_gmtoff)))
        for bad in [
            "junk", "", "10x", "1.5.5", "1h-5m", "2023-13-01", "2023-11-31", "2023-11-14T22:13:20z", "1e9",
            "1600000000.", "--5s",
        ] {
            #expect(parse(bad) == nil, "\(bad)")
        }
    }

    // MARK: Helpers

    /// Writes `lines` numbered lines ("1\n", ...) through ContainerLogWriter on another thread,
    /// odd ones on stdout and even ones on stderr, while a follower started first reads them.
    /// Returns what it read and whether it read any of it while the writer was still at work.
    static func followWhileWriting(
        _ path: String, lines: Int, maxSize: Int64,
        maxFiles: Int
    ) throws -> (entries: [ContainerLogEntry], readWhileWriting: Bool) {
        let writing = WritingSignal()
        let follower = BackgroundFollower(path: path, writing: writing)
        let writer = Thread {
            let log = ContainerLogWriter(path: path, maxSize: maxSize, maxFiles: maxFiles)
            var line = 1
            while line <= lines {
                // A few lines per call, as a pipe hands them over.
                let batch = line...min(lines, line + 9)
                for n in batch {
                    let text = Array("\(n)\n".utf8)
                    text.withUnsafeBytes { log.append($0, stream: n % 2 == 1 ? "stdout" : "stderr") }
                }
                line = batch.upperBound + 1
            }
            log.flush()
            writing.finish()
        }
        writer.start()
        let entries = try #require(follower.result(within: 60), "the follower did not end within 60 s")
        return (entries, follower.batchesWhileWriting > 0)
    }
}

/// A writer's "still writing", as a pipe: its write end is closed when writing ends, which makes
/// the read end readable (the follower's wake-up) and tells `isWriting`.
final class WritingSignal: @unchecked Sendable {
    let readEnd: Int32
    private var writeEnd: Int32
    private let lock = NSLock()

    init() {
        var fds: [Int32] = [0, 0]
        pipe(&fds)
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    var isWriting: Bool {
        var fd = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
        return poll(&fd, 1, 0) == 0
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if writeEnd >= 0 { close(writeEnd) }
        writeEnd = -1
    }

    deinit {
        finish()
        close(readEnd)
    }
}

/// `ContainerLogReader.follow` on its own thread, so that the test's wait for it is bounded.
final class BackgroundFollower: @unchecked Sendable {
    private var entries: [ContainerLogEntry] = []
    /// Batches handed over while the writer was not done yet: the follower followed.
    private(set) var batchesWhileWriting = 0
    private var error: Error?
    private let done = DispatchSemaphore(value: 0)
    private let writing: WritingSignal

    init(path: String, selection: ContainerLogSelection = ContainerLogSelection(), writing: WritingSignal) {
        self.writing = writing
        Thread.detachNewThread { [self] in
            do {
                try ContainerLogReader.follow(
                    path: path, selection: selection, isWriting: { writing.isWriting },
                    wakeUpDescriptors: [writing.readEnd]
                ) { batch in
                    if writing.isWriting { batchesWhileWriting += 1 }
                    entries += batch
                    return true
                }
            } catch {
                self.error = error
            }
            done.signal()
        }
    }

    /// What it read, once it ended by itself; nil when it had not within `seconds` (then the
    /// writing signal is ended so that the thread ends too).
    func result(within seconds: Double) -> [ContainerLogEntry]? {
        guard done.wait(timeout: .now() + seconds) == .success else {
            writing.finish()
            _ = done.wait(timeout: .now() + 10)
            return nil
        }
        if let error { Issue.record("follow failed: \(error)") }
        return entries
    }
}

/// A directory removed at the end, with a json-file log path in it.
final class TemporaryLogDirectory {
    let path: String
    var log: String { path + "/container.log" }

    init() throws {
        let name = "berth-log-\(UUID().uuidString.prefix(8))"
        path = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// A log file of (text, seconds after LogFollowTests.base) entries, on stdout.
    func write(_ name: String, _ entries: [(String, Int64)]) throws {
        var text = ""
        for (log, second) in entries {
            let time = LogTimestamp(seconds: LogFollowTests.base.seconds + second).rfc3339Nano
            text += #"{"log":"\#(ContainerLogWriter.escape(log))","stream":"stdout","time":"\#(time)"}"# + "\n"
        }
        try text.write(toFile: path + "/" + name, atomically: false, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
