import ArgumentParser
import FoundationEssentials
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `berth volume ...`, named, flagged and printed like `docker volume ...`: the root's named
/// volumes (Sources/Runtime/Volumes.swift).
struct VolumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume", abstract: "Manage volumes.",
        subcommands: [VolumeList.self, VolumeCreate.self, VolumeInspect.self, VolumeRemove.self, VolumePrune.self])
}

struct VolumeList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List volumes.", aliases: ["list"])

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Only display volume names.")
    var quiet = false
    @Option(name: .customLong("format"), help: "Format output: table (default) or json.")
    var format: String?

    /// One line of `docker volume ls --format json`: its keys, "N/A" where the local driver
    /// has no answer, labels as "k=v,k=v".
    // swift-format-ignore: AlwaysUseLowerCamelCase
    struct Line: Encodable {
        var Availability = "N/A"
        var Driver: String
        var Group = "N/A"
        var Labels: String
        var Links = "N/A"
        var Mountpoint: String
        var Name: String
        var Scope: String
        var Size = "N/A"
        var Status = "N/A"
    }

    func run() throws {
        let volumes = VolumeStore(root: global.stateRoot).list()
        if quiet {
            for volume in volumes { print(volume.name) }
            return
        }
        switch format {
        case nil, "table":
            let rows = [["DRIVER", "VOLUME NAME"]] + volumes.map { [$0.driver, $0.name] }
            StandardStreams.write(HumanFormat.table(rows), to: STDOUT_FILENO)
        case "json":
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            for v in volumes {
                let labels = v.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                let line = Line(
                    Driver: v.driver, Labels: labels.joined(separator: ","), Mountpoint: v.mountpoint, Name: v.name,
                    Scope: v.scope)
                print(String(decoding: try encoder.encode(line), as: UTF8.self))
            }
        case let other?:
            throw ContainerCommandError(description: "unsupported format \(other): table or json")
        }
    }
}

struct VolumeCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a volume.")

    @OptionGroup var global: RootOptions
    @Option(name: [.customShort("d"), .customLong("driver")], help: "Specify volume driver name (local).")
    var driver = "local"
    @Option(name: .customLong("label"), help: "Set metadata for a volume.")
    var labels: [String] = []
    @Option(name: [.customShort("o"), .customLong("opt")], help: "Set driver specific options.")
    var options: [String] = []
    @Option(name: .customLong("name"), help: "Specify volume name.")
    var nameOption: String?
    @Argument var name: String?

    func run() throws {
        guard driver == "local" else {
            throw ContainerCommandError(
                description: "create \(name ?? nameOption ?? ""): plugin \"\(driver)\" not found")
        }
        if let name, let nameOption, name != nameOption {
            throw ContainerCommandError(
                description: "conflicting options: either specify --name or provide positional arg, not both")
        }
        var labelMap: [String: String] = [:]
        for label in labels {
            let parts = label.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            labelMap[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        var optionMap: [String: String] = [:]
        for option in options {
            let parts = option.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            optionMap[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        let record = try VolumeStore(root: global.stateRoot).create(
            name ?? nameOption, labels: labelMap, driverOptions: optionMap.isEmpty ? nil : optionMap)
        print(record.name)
    }
}

struct VolumeInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Display detailed information on one or more volumes.")

    @OptionGroup var global: RootOptions
    @Argument var volumes: [String]

    func run() throws {
        let store = VolumeStore(root: global.stateRoot)
        var records: [VolumeRecord] = []
        var failed = false
        for name in volumes {
            do { records.append(try store.volume(name)) } catch {
                StandardStreams.writeError("berth: \(error)\n")
                failed = true
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(records), as: UTF8.self))
        if failed { throw CommandFailure(status: 1) }
    }
}

struct VolumeRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove one or more volumes.", aliases: ["remove"])

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("f"), .customLong("force")], help: "Do not fail on a volume that does not exist.")
    var force = false
    @Argument var volumes: [String]

    func run() throws {
        let store = VolumeStore(root: global.stateRoot)
        try forEachArgument(volumes) { name in
            try store.remove(name, force: force)
            return name + "\n"
        }
    }
}

struct VolumePrune: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove unused local volumes.")

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("a"), .customLong("all")], help: "Remove all unused volumes, not just anonymous ones.")
    var all = false
    @Flag(name: [.customShort("f"), .customLong("force")], help: "Do not prompt for confirmation.")
    var force = false

    func run() throws {
        let warning =
            all
            ? "WARNING! This will remove all local volumes not used by at least one container."
            : "WARNING! This will remove anonymous local volumes not used by at least one container."
        guard force || Self.confirmed(warning) else { return }
        let report = try VolumeStore(root: global.stateRoot).prune(all: all)
        var text = ""
        if !report.removed.isEmpty { text += "Deleted Volumes:\n" + report.removed.joined(separator: "\n") + "\n\n" }
        text += "Total reclaimed space: " + HumanFormat.size(Int64(report.reclaimedBytes), precision: 4) + "\n"
        StandardStreams.write(text, to: STDOUT_FILENO)
    }
}
