import ArgumentParser
import Compose
import FoundationEssentials
import Images
import Runtime
import Support
#if canImport(Glibc)
import Glibc
#endif


struct ContainerLogs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Fetch the logs of a container.")

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("f"), .customLong("follow")], help: "Follow log output.")
    var follow = false
    @Flag(name: [.customShort("t"), .customLong("timestamps")], help: "Show timestamps.")
    var timestamps = false
    @Option(name: [.customShort("n"), .customLong("tail")], help: "Number of lines to show from the end of the logs.")
    var tail: String = "all"
    @Argument var container: String

    func run() throws {
        let c = try Container.lookup(container, root: global.stateRoot)
        let emit: (ContainerLogEntry) -> Void = { e in
            let text = (timestamps ? e.time + " " : "") + e.log
            StandardStreams.write(text, to: e.stream == "stderr" ? 2 : 1)
        }
        if follow {
            ContainerLogReader.follow(path: c.logPath, isRunning: { c.isRunning }, emit: emit)
            return
        }
        var entries = ContainerLogReader.entries(path: c.logPath)
        if let n = Int(tail), n >= 0 { entries = Array(entries.suffix(n)) }
        entries.forEach(emit)
    }
}
