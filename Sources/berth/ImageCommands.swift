import ArgumentParser
import Foundation
import Images

/// `berth image ...`, named and flagged like `docker image ...`.
struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image", abstract: "Manage images.",
        subcommands: [ImageImport.self, ImageList.self, ImageRemove.self, ImageTag.self, ImageInspect.self])
}

struct ImageImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import the contents of a tarball to create a file system image.")

    @OptionGroup var global: RootOptions

    @Option(name: [.customShort("c"), .customLong("change")], help: "Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, WORKDIR).")
    var changes: [String] = []

    @Argument(help: "A tar file (plain, gzip or zstd), or - for standard input.")
    var file: String

    @Argument(help: "Name the image REPOSITORY[:TAG].")
    var reference: String?

    func run() throws {
        var config = ImageConfig()
        for change in changes { try config.apply(change: change) }
        let store = try ImageStore(root: global.stateRoot)
        let image = try store.importRootfs(tarPath: file, reference: reference ?? "", config: config)
        print(image.id)
    }
}

struct ImageList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List images.", aliases: ["list"])

    @OptionGroup var global: RootOptions

    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Only show image IDs.")
    var quiet = false

    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.")
    var noTrunc = false

    func run() throws {
        let images = try ImageStore(root: global.stateRoot).list()
        if quiet {
            // Like docker: one line per image, not per reference.
            var seen = Set<String>()
            for image in images where seen.insert(image.id).inserted { print(displayID(image.id)) }
            return
        }
        var rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
        let now = Date()
        for image in images {
            let (repository, tag) = splitReference(image.reference)
            rows.append([repository, tag, displayID(image.id),
                         image.created.map { HumanFormat.duration(now.timeIntervalSince($0)) + " ago" } ?? "N/A",
                         HumanFormat.size(image.size)])
        }
        print(HumanFormat.table(rows), terminator: "")
    }

    private func displayID(_ id: String) -> String {
        noTrunc ? id : String(id.dropFirst("sha256:".count).prefix(12))
    }

    private func splitReference(_ reference: String) -> (String, String) {
        guard !reference.isEmpty else { return ("<none>", "<none>") }
        var name = Substring(reference)
        if let at = name.firstIndex(of: "@") { name = name[..<at] }
        if let colon = name.lastIndex(of: ":"), !name[colon...].contains("/") {
            return (String(name[..<colon]), String(name[name.index(after: colon)...]))
        }
        return (String(name), "<none>")
    }
}

struct ImageRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove one or more images.", aliases: ["rmi", "remove"])

    @OptionGroup var global: RootOptions

    @Flag(name: [.customShort("f"), .customLong("force")], help: "Remove an image ID even if several references share it.")
    var force = false

    @Argument(help: "Image references or IDs.")
    var images: [String]

    func run() throws {
        let store = try ImageStore(root: global.stateRoot)
        // Like docker: try every argument, report each failure, fail at the end.
        var failed = false
        for name in images {
            do {
                let image = try store.image(name)
                try store.remove(name, force: force)
                if !image.reference.isEmpty { print("Untagged: \(image.reference)") }
                if (try? store.image(image.id)) == nil { print("Deleted: \(image.id)") }
            } catch {
                FileHandle.standardError.write(Data("berth: \(error)\n".utf8))
                failed = true
            }
        }
        if failed { throw CommandFailure(status: 1) }
    }
}

struct ImageTag: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tag", abstract: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.")

    @OptionGroup var global: RootOptions

    @Argument(help: "SOURCE_IMAGE[:TAG] or ID.")
    var source: String

    @Argument(help: "TARGET_IMAGE[:TAG].")
    var target: String

    func run() throws {
        try ImageStore(root: global.stateRoot).tag(source, target)
    }
}

struct ImageInspect: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Display detailed information on one or more images.")

    @OptionGroup var global: RootOptions

    @Argument(help: "Image references or IDs.")
    var images: [String]

    /// The subset of `docker image inspect` that berth knows, with Docker's field names.
    struct Inspect: Encodable {
        var Id: String
        var RepoTags: [String]
        var RepoDigests: [String]
        var Created: String
        var Config: ImageConfig
        var Architecture: String
        var Os: String
        var Size: Int64
        var RootFS: RootFS
        var GraphDriver: GraphDriver

        struct RootFS: Encodable {
            var `Type` = "layers"
            var Layers: [String]
        }

        struct GraphDriver: Encodable {
            var Name = "overlay2"
            var Data: [String: String]
        }
    }

    func run() throws {
        let store = try ImageStore(root: global.stateRoot)
        let all = try store.list()
        var out: [Inspect] = []
        var firstError: Error?
        for name in images {
            do {
                let image = try store.image(name)
                let refs = all.filter { $0.id == image.id && !$0.reference.isEmpty }.map(\.reference)
                let formatter = ISO8601DateFormatter()
                formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                out.append(Inspect(
                    Id: image.id, RepoTags: refs.sorted(),
                    RepoDigests: refs.map { ($0.split(separator: ":").dropLast().joined(separator: ":")) + "@" + image.manifestDigest }.sorted(),
                    Created: image.created.map(formatter.string(from:)) ?? "",
                    Config: image.config, Architecture: image.architecture, Os: image.os, Size: image.size,
                    RootFS: .init(Layers: image.diffIDs),
                    GraphDriver: .init(Data: ["LowerDir": image.layerPaths.reversed().joined(separator: ":")])))
            } catch {
                firstError = firstError ?? error
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(out), as: UTF8.self))
        if let firstError { throw firstError }
    }
}

/// Docker's human-readable sizes, durations and tables.
private enum HumanFormat {
    /// Decimal units with three significant digits: `4.26MB`, `1.23kB`, `512B`.
    static func size(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB", "PB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        var text = String(format: "%.3g", value)
        if text.contains("e") { text = String(format: "%.0f", value) }
        return text + units[unit]
    }

    /// `Less than a second`, `5 seconds`, `About a minute`, `3 hours`, `2 weeks`, ...
    static func duration(_ interval: TimeInterval) -> String {
        let seconds = Int(interval)
        let minutes = seconds / 60
        let hours = minutes / 60
        switch true {
        case seconds < 1: return "Less than a second"
        case seconds == 1: return "1 second"
        case seconds < 60: return "\(seconds) seconds"
        case minutes == 1: return "About a minute"
        case minutes < 60: return "\(minutes) minutes"
        case hours == 1: return "About an hour"
        case hours < 48: return "\(hours) hours"
        case hours < 24 * 7 * 2: return "\(hours / 24) days"
        case hours < 24 * 30 * 2: return "\(hours / 24 / 7) weeks"
        case hours < 24 * 365 * 2: return "\(hours / 24 / 30) months"
        default: return "\(hours / 24 / 365) years"
        }
    }

    /// Columns padded to the widest cell plus three spaces, like docker's tabwriter output.
    static func table(_ rows: [[String]]) -> String {
        guard let columns = rows.first?.count else { return "" }
        var widths = [Int](repeating: 0, count: columns)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var out = ""
        for row in rows {
            var line = ""
            for (i, cell) in row.enumerated() {
                line += i == columns - 1 ? cell : cell.padding(toLength: widths[i] + 3, withPad: " ", startingAt: 0)
            }
            out += line + "\n"
        }
        return out
    }
}
