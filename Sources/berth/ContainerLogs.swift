import ArgumentParser
import FoundationEssentials
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `berth container logs`, as `docker logs`: the json-file log's entries, stdout's on stdout and
/// stderr's on stderr; `-f` follows the container until it has exited and all is printed.
struct ContainerLogs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Fetch the logs of a container.")

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("f"), .customLong("follow")], help: "Follow log output.")
    var follow = false
    @Flag(name: [.customShort("t"), .customLong("timestamps")], help: "Show timestamps.")
    var timestamps = false
    @Option(
        name: [.customShort("n"), .customLong("tail")],
        help: "Number of lines to show from the end of the logs (or \"all\").")
    var tail: String = "all"
    @Option(
        name: .customLong("since"),
        help: "Show logs since a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes).")
    var since: String?
    @Option(
        name: .customLong("until"),
        help: "Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes).")
    var until: String?
    @Argument var container: String

    func run() throws {
        // The options are checked before the container is looked up, as Docker's client checks
        // them before it asks the daemon.
        let selection = try parseSelection()
        let c = try Container.lookup(container, root: global.stateRoot)
        if c.record.spec.logDriver == "none" {
            throw ContainerCommandError(description: "configured logging driver does not support reading")
        }
        let printer = LogPrinter(timestamps: timestamps)
        try c.readLog(selection, follow: follow) { printer.print($0) }
    }

    func parseSelection() throws -> ContainerLogSelection {
        var selection = ContainerLogSelection()
        if tail != "all" {
            guard let lines = Int(tail) else {
                throw ContainerCommandError(
                    description: "invalid value for \"tail\": \"\(tail)\" (a number of lines, or \"all\")")
            }
            // Docker reads a negative count as all of them.
            selection.tail = lines < 0 ? nil : lines
        }
        // Relative times count back from one moment for both options.
        let now = LogTimestamp.now
        func time(_ text: String?, _ option: String) throws -> LogTimestamp? {
            guard let text, !text.isEmpty else { return nil }
            guard let time = LogTimestamp.parse(argument: text, now: now) else {
                throw ContainerCommandError(
                    description: "invalid value for \"\(option)\": "
                        + "failed to parse value as time or duration: \"\(text)\"")
            }
            return time
        }
        selection.since = try time(since, "since")
        selection.until = try time(until, "until")
        return selection
    }
}

/// Prints entries as `docker logs` does, a batch at a time: each run of one stream's lines in one
/// write, so stdout and stderr keep their order without a system call per line.
struct LogPrinter {
    let timestamps: Bool

    /// false when the reader of the output is gone (EPIPE; berth ignores SIGPIPE): then there is
    /// nothing left to follow for.
    func print(_ entries: [ContainerLogEntry]) -> Bool {
        var text = ""
        var fd: Int32 = STDOUT_FILENO
        for entry in entries {
            let target = entry.stream == "stderr" ? STDERR_FILENO : STDOUT_FILENO
            if target != fd {
                guard StandardStreams.write(text, to: fd) else { return false }
                text = ""
                fd = target
            }
            if timestamps {
                text += entry.displayTime
                text += " "
            }
            text += entry.log
        }
        return StandardStreams.write(text, to: fd)
    }
}
