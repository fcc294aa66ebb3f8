import ArgumentParser
import Compose
import FoundationEssentials
import Orchestrator
import Runtime
import Support
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// docker compose's log lines: `NAME  | text`, the name padded to the longest and coloured by
/// service, everything on stdout; written whole lines at a time from several followers.
final class ComposeLogPrinter: Sendable {
    let width: Int
    let colours: [String: Int]
    let prefix: Bool
    let timestamps: Bool
    private let output = Mutex(())

    init(_ containers: [Container], colour: Bool, prefix: Bool, timestamps: Bool) {
        width = containers.map(\.name.count).max() ?? 0
        // docker compose's rainbow: cyan, yellow, green, magenta, blue, then their bright forms.
        let palette = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94]
        var colours: [String: Int] = [:]
        if colour {
            for (index, service) in Array(Set(containers.map(\.service))).sorted().enumerated() {
                colours[service] = palette[index % palette.count]
            }
        }
        self.colours = colours
        self.prefix = prefix
        self.timestamps = timestamps
    }

    func linePrefix(_ container: Container) -> String {
        guard prefix else { return "" }
        let padded = container.name + String(repeating: " ", count: max(0, width - container.name.count)) + "  | "
        guard let code = colours[container.service] else { return padded }
        return "\u{1B}[\(code)m\(padded)\u{1B}[0m"
    }

    /// False once stdout is gone (EPIPE).
    func print(_ entries: [ContainerLogEntry], of container: Container) -> Bool {
        let head = linePrefix(container)
        var text = ""
        for entry in entries {
            text += head
            if timestamps { text += entry.displayTime + " " }
            text += entry.log
            if !entry.log.hasSuffix("\n") { text += "\n" }
        }
        return output.withLock { _ in StandardStreams.write(text, to: STDOUT_FILENO) }
    }

    func say(_ text: String) { output.withLock { _ in StandardStreams.write(text, to: STDOUT_FILENO) } }
}

/// Follows the logs of several containers at once, a thread each, until each container's log is
/// complete (it exited and the supervisor will not restart it) or `finish()`.
final class ComposeLogFollowers {
    private var works: [BackgroundWork<Void>] = []
    private var wake: [Int32] = [-1, -1]
    private let finished = Finished()

    /// Set once, read by every follower (a class, so the closures share one).
    final class Finished: Sendable {
        let value = Atomic(false)
        var isSet: Bool { value.load(ordering: .relaxed) }
    }

    init(
        _ containers: [Container], printer: ComposeLogPrinter, selection: ContainerLogSelection,
        orchestrator: Orchestrator
    ) {
        if pipe(&wake) == 0 { for fd in wake { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) } }
        let wakeFD = wake[0]
        for container in containers {
            works.append(
                BackgroundWork { [finished] in
                    try? ContainerLogReader.follow(
                        path: container.logPath, selection: selection,
                        isWriting: {
                            !finished.isSet
                                && (container.logMayGrow || orchestrator.willRestart(container))
                        }, wakeUpDescriptors: [wakeFD]
                    ) { printer.print($0, of: container) }
                })
        }
    }

    /// Ends the followers once they have read what is written, and waits for them.
    func finish() {
        finished.value.store(true, ordering: .relaxed)
        var byte: UInt8 = 1
        _ = write(wake[1], &byte, 1)
        waitForAll()
    }

    func waitForAll() {
        for work in works { try? work.wait() }
        works = []
        for fd in wake where fd >= 0 { close(fd) }
        wake = [-1, -1]
    }
}

/// `berth logs`: the services' logs merged in time order (a line of each container as it came);
/// with -f, then what each adds, until they have all stopped.
struct ComposeLogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "View output from containers.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: ComposeOutputOptions
    @Flag(name: .customLong("follow"), help: "Follow log output (-f).")
    var follow = false
    @Flag(name: [.customShort("t"), .customLong("timestamps")], help: "Show timestamps.")
    var timestamps = false
    @Option(name: [.customShort("n"), .customLong("tail")], help: "Number of lines from the end of each log, or all.")
    var tail: String = "all"
    @Option(name: .customLong("since"), help: "Show logs since a timestamp or relative time (42m).")
    var since: String?
    @Option(name: .customLong("until"), help: "Show logs before a timestamp or relative time.")
    var until: String?
    @Flag(name: .customLong("no-color"), help: "Produce monochrome output.")
    var noColor = false
    @Flag(name: .customLong("no-log-prefix"), help: "Don't print prefix in logs.")
    var noLogPrefix = false
    @Option(name: .customLong("index"), help: "The index of the container if the service has multiple replicas.")
    var index: Int?
    @Argument var services: [String] = []

    func run() throws {
        var single = ContainerLogs()
        (single.tail, single.since, single.until) = (tail, since, until)
        let selection = try single.parseSelection()
        let context = try global.composeContext(output, needsModel: false, services: services)
        let containers = context.orchestrator.containers(of: services, oneoff: true).filter {
            index == nil || $0.number == index
        }
        let printer = ComposeLogPrinter(
            containers, colour: !noColor && isatty(STDOUT_FILENO) != 0, prefix: !noLogPrefix, timestamps: timestamps)
        if follow {
            ComposeLogFollowers(containers, printer: printer, selection: selection, orchestrator: context.orchestrator)
                .waitForAll()
            return
        }
        var all: [(time: LogTimestamp, order: Int, entry: ContainerLogEntry, container: Container)] = []
        for container in containers {
            try ContainerLogReader.read(path: container.logPath, selection: selection) { batch in
                for entry in batch {
                    all.append(
                        (LogTimestamp(rfc3339: entry.time) ?? LogTimestamp(seconds: 0), all.count, entry, container))
                }
                return true
            }
        }
        all.sort { $0.time != $1.time ? $0.time < $1.time : $0.order < $1.order }
        for item in all { guard printer.print([item.entry], of: item.container) else { return } }
    }
}
