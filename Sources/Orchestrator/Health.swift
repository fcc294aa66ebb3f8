import Compose
import FoundationEssentials
import Images
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A service's health check, in seconds, with Docker's defaults filled in.
public struct HealthcheckSpec: Codable, Equatable, Sendable {
    /// The argv to exec in the container (`CMD` as is, `CMD-SHELL` through /bin/sh -c).
    public var command: [String]
    public var interval: Double
    public var timeout: Double
    public var startPeriod: Double
    public var startInterval: Double
    public var retries: Int

    public init(
        command: [String], interval: Double = 30, timeout: Double = 30, startPeriod: Double = 0,
        startInterval: Double = 5, retries: Int = 3
    ) {
        self.command = command
        self.interval = interval
        self.timeout = timeout
        self.startPeriod = startPeriod
        self.startInterval = startInterval
        self.retries = retries
    }

    /// Compose's healthcheck over the image's HEALTHCHECK, field by field as Docker merges them
    /// (a compose check with only `interval` keeps the image's test); nil when there is none or
    /// either disables it.
    public init?(compose: Healthcheck?, image: ImageHealthcheck?) throws {
        guard let image, image.test.first != "NONE", !image.test.isEmpty else {
            guard let compose else { return nil }
            try self.init(compose)
            return
        }
        var merged = compose ?? Healthcheck()
        if merged.test == nil { merged.test = image.test }
        func duration(_ ns: Int64?) -> ComposeDuration? { ns.map { ComposeDuration(nanoseconds: $0) } }
        merged.interval = merged.interval ?? duration(image.interval)
        merged.timeout = merged.timeout ?? duration(image.timeout)
        merged.startPeriod = merged.startPeriod ?? duration(image.startPeriod)
        merged.startInterval = merged.startInterval ?? duration(image.startInterval)
        merged.retries = merged.retries ?? image.retries.map { UInt64(max(0, $0)) }
        try self.init(merged)
    }

    /// From compose's healthcheck; nil when it is disabled (`disable: true`, `test: [NONE]`) or
    /// has no test.
    public init?(_ check: Healthcheck) throws {
        guard !check.disable, let test = check.test, let kind = test.first, kind != "NONE" else { return nil }
        switch kind {
        case "CMD":
            command = Array(test.dropFirst())
        case "CMD-SHELL":
            command = ["/bin/sh", "-c", test.dropFirst().joined(separator: " ")]
        default:
            // compose-go turns a string test into CMD-SHELL; anything else is Docker's error.
            throw OrchestratorError("healthcheck test must start with CMD, CMD-SHELL or NONE, not \"\(kind)\"")
        }
        guard !command.isEmpty else { return nil }
        func seconds(_ d: ComposeDuration?, _ fallback: Double) -> Double {
            guard let d, d.nanoseconds > 0 else { return fallback }
            return d.seconds
        }
        interval = seconds(check.interval, 30)
        timeout = seconds(check.timeout, 30)
        startPeriod = seconds(check.startPeriod, 0)
        startInterval = seconds(check.startInterval, 5)
        retries = check.retries.map { Int(clamping: $0) }.flatMap { $0 > 0 ? $0 : nil } ?? 3
    }
}

/// A container's health as Docker shows it (`State.Health`), kept by the supervisor in
/// ROOT/projects/NAME/health/ID.json.
public struct HealthRecord: Codable, Equatable, Sendable {
    public enum Status: String, Codable, Sendable {
        case starting, healthy, unhealthy
    }
    public struct Probe: Codable, Equatable, Sendable {
        public var start: String
        public var end: String
        public var exitCode: Int32
        public var output: String
    }
    public var status: Status
    public var failingStreak: Int
    /// The last five probes, oldest first (Docker keeps five).
    public var log: [Probe]
    /// The container's start this record is about (its state's startedAt): a record of an
    /// earlier run reads as no record.
    public var startedAt: String?

    public init(status: Status = .starting, failingStreak: Int = 0, log: [Probe] = [], startedAt: String?) {
        self.status = status
        self.failingStreak = failingStreak
        self.log = log
        self.startedAt = startedAt
    }

    /// Docker's rules for one more probe: a success makes it healthy; a failure counts towards
    /// `retries` only after the start period (unless it was healthy already).
    mutating func record(_ probe: Probe, spec: HealthcheckSpec, inStartPeriod: Bool) {
        log.append(probe)
        if log.count > 5 { log.removeFirst(log.count - 5) }
        if probe.exitCode == 0 {
            status = .healthy
            failingStreak = 0
        } else if !(inStartPeriod && status == .starting) {
            failingStreak += 1
            if failingStreak >= spec.retries { status = .unhealthy }
        }
    }
}

/// One probe: the check's command exec'ed in the container, its output kept (4 KiB, as Docker),
/// killed at the timeout (exit code -1 then, as Docker reports a timed-out probe).
enum HealthProbe {
    static func run(_ spec: HealthcheckSpec, in container: Container) -> HealthRecord.Probe {
        let start = Timestamp.now()
        var output: [UInt8] = []
        let code: Int32
        do {
            let process = try container.exec(
                ExecSpec(argv: spec.command, env: [], user: nil, workingDir: nil, tty: false, interactive: false))
            let control = process.control
            let deadline = Deadline(seconds: spec.timeout) { _ = control.signal(SIGKILL) }
            let status = process.wait { chunk, _ in
                if output.count < 4096 { output += chunk.prefix(4096 - output.count) }
            }
            let expired = deadline.cancel()
            code = expired ? -1 : status
            if expired { output = Array("Health check exceeded timeout (\(spec.timeout)s)".utf8) }
        } catch {
            code = -1
            output = Array("\(error)".utf8)
        }
        return HealthRecord.Probe(
            start: start, end: Timestamp.now(), exitCode: code, output: String(decoding: output, as: UTF8.self))
    }
}

/// Runs `action` on a thread of its own after `seconds`, unless cancelled first: a poll(2) on a
/// pipe with that timeout, so cancelling wakes it at once.
final class Deadline {
    private var pipeEnds: [Int32] = [-1, -1]
    private var timer: BackgroundWork<Bool>?

    init(seconds: Double, action: @escaping @Sendable () -> Void) {
        guard pipe(&pipeEnds) == 0 else {
            // No timer to be had: the probe's own end is all there is (a rare resource limit).
            pipeEnds = [-1, -1]
            return
        }
        for fd in pipeEnds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let readEnd = pipeEnds[0]
        let milliseconds = Int32(clamping: Int(seconds * 1000))
        timer = BackgroundWork {
            var poller = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            var ready: Int32
            repeat { ready = poll(&poller, 1, milliseconds) } while ready < 0 && errno == EINTR
            guard ready == 0 else { return false }
            action()
            return true
        }
    }

    /// Stops the timer; whether it had fired already.
    func cancel() -> Bool {
        if pipeEnds[1] >= 0 {
            var byte: UInt8 = 1
            _ = write(pipeEnds[1], &byte, 1)
        }
        let fired = (try? timer?.wait()) ?? false
        timer = nil
        for fd in pipeEnds where fd >= 0 { close(fd) }
        pipeEnds = [-1, -1]
        return fired
    }
}
