import ArgumentParser
import Compose
import FoundationEssentials
import Images
import Runtime
import Support
#if canImport(Glibc)
import Glibc
#endif


struct ContainerList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List containers.", aliases: ["ls", "list"])

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("a"), .customLong("all")], help: "Show all containers (default shows just running).")
    var all = false
    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Only display container IDs.")
    var quiet = false
    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.")
    var noTrunc = false

    func run() throws {
        let containers = Container.list(root: global.stateRoot)
        var rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]]
        for c in containers {
            let s = c.state()
            if !all && s.status != .running { continue }
            if quiet {
                print(noTrunc ? c.id : c.shortID)
                continue
            }
            var command = c.record.process.argv.joined(separator: " ")
            if !noTrunc && command.count > 20 { command = String(command.prefix(19)) + "…" }
            rows.append([noTrunc ? c.id : c.shortID, c.record.spec.image, "\"\(command)\"",
                         ago(c.record.created) + " ago", status(s), "", c.name])
        }
        if quiet { return }
        print(HumanFormat.table(rows), terminator: "")
    }

    func status(_ s: ContainerState) -> String {
        switch s.status {
        case .created: return "Created"
        case .running: return "Up " + ago(s.startedAt ?? "")
        case .exited: return "Exited (\(s.exitCode ?? 0)) " + ago(s.finishedAt ?? "") + " ago"
        case .dead: return "Dead"
        }
    }
}

/// "2 minutes", "About an hour", ... from an RFC 3339 timestamp, as docker prints.
func ago(_ timestamp: String) -> String {
    guard let date = Timestamp.parse(timestamp) else { return "N/A" }
    let seconds = Int(Date().timeIntervalSince(date))
    switch seconds {
    case ..<1: return "Less than a second"
    case ..<60: return "\(seconds) seconds"
    case ..<120: return "About a minute"
    case ..<3600: return "\(seconds / 60) minutes"
    case ..<7200: return "About an hour"
    case ..<172800: return "\(seconds / 3600) hours"
    default: return "\(seconds / 86400) days"
    }
}
