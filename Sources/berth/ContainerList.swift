import ArgumentParser
import Compose
import FoundationEssentials
import Images
import Network
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

struct ContainerList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps", abstract: "List containers.", aliases: ["ls", "list"])

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
            rows.append([
                noTrunc ? c.id : c.shortID, c.record.spec.image, "\"\(command)\"",
                ago(c.record.created) + " ago", Self.status(s), Self.ports(c, s), c.name,
            ])
        }
        if quiet { return }
        print(HumanFormat.table(rows), terminator: "")
    }

    /// Docker's PORTS column: published ports as "0.0.0.0:8080->80/tcp", then the exposed ports
    /// that are not published (the image's and `--expose`). Only while the container runs on a
    /// bridge network: Docker lists the ports of its running endpoints, none for `none`,
    /// `host` and `container:`, and none once the container has stopped or before it started.
    static func ports(_ container: Container, _ s: ContainerState) -> String {
        let spec = container.record.spec
        guard s.status == .running, spec.network == .default else { return "" }
        let published = ContainerPort.published(container)
        let shown = Set(published.map { "\($0.containerPort)/\($0.proto)" })
        let exposed = Self.displayablePorts(spec.allExposedPorts.filter { !shown.contains($0) })
        return (published.map(ContainerPort.display) + (exposed.isEmpty ? [] : [exposed])).joined(separator: ", ")
    }

    /// docker/cli's DisplayablePorts for ports without a host side: sorted by number, runs of
    /// consecutive ports of one protocol as a range ("8000-8002/tcp"), "80/tcp, 443/tcp".
    static func displayablePorts(_ ports: [String]) -> String {
        let parsed = ports.compactMap { text -> (port: Int, proto: String)? in
            let parts = text.split(separator: "/", maxSplits: 1)
            guard let port = parts.first.flatMap({ Int($0) }) else { return nil }
            return (port, parts.count == 2 ? String(parts[1]) : "tcp")
        }.sorted { $0.port != $1.port ? $0.port < $1.port : $0.proto < $1.proto }
        var groups: [String: (first: Int, last: Int)] = [:]
        var order: [String] = []
        var result: [String] = []
        func form(_ proto: String, _ group: (first: Int, last: Int)) -> String {
            (group.first == group.last ? "\(group.first)" : "\(group.first)-\(group.last)") + "/" + proto
        }
        for (port, proto) in parsed {
            guard let group = groups[proto] else {
                groups[proto] = (port, port)
                order.append(proto)
                continue
            }
            if port == group.last + 1 {
                groups[proto] = (group.first, port)
                continue
            }
            result.append(form(proto, group))
            groups[proto] = (port, port)
        }
        for proto in order { result.append(form(proto, groups[proto]!)) }
        return result.joined(separator: ", ")
    }

    static func status(_ s: ContainerState) -> String {
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
