import ArgumentParser
import FoundationEssentials
import Images
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `berth image load`, as `docker load`.
struct ImageLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load", abstract: "Load an image from a tar archive or STDIN.")

    @OptionGroup var global: RootOptions

    @Option(
        name: [.customShort("i"), .customLong("input")],
        help: "Read from tar archive file (plain or compressed), instead of STDIN.")
    var input: String?

    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Suppress the load output.")
    var quiet = false

    func run() throws {
        if input == nil && isatty(STDIN_FILENO) != 0 {
            throw ImageCommandError(
                description: "requested load from stdin, but stdin is empty (give a file with -i or redirect)")
        }
        let loaded = try ImageStore(root: global.stateRoot).load(archivePath: input ?? "-")
        if quiet { return }
        for image in loaded {
            if image.references.isEmpty {
                print("Loaded image ID: \(image.id)")
            } else {
                for reference in image.references { print("Loaded image: \(reference)") }
            }
        }
    }
}

/// `berth image save`, as `docker save`.
struct ImageSave: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save", abstract: "Save one or more images to a tar archive (streamed to STDOUT by default).")

    @OptionGroup var global: RootOptions

    @Option(name: [.customShort("o"), .customLong("output")], help: "Write to a file, instead of STDOUT.")
    var output: String?

    @Argument(help: "Image references, IDs, or repositories (all their tags).")
    var images: [String]

    func run() throws {
        let store = try ImageStore(root: global.stateRoot)
        if let output {
            try store.save(images, toFile: output)
        } else {
            guard isatty(STDOUT_FILENO) == 0 else { throw ImageStore.ArchiveError.terminal }
            try store.save(images, to: STDOUT_FILENO)
        }
    }
}

/// `berth image history`, as `docker history`.
struct ImageHistory: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "Show the history of an image.")

    @OptionGroup var global: RootOptions

    /// On by default, as Docker's; `-H` alone is accepted as Docker's is, and `--no-human` turns it
    /// off (where Docker spells it `--human=false`, which a flag here cannot take).
    @Flag(
        name: [.customShort("H"), .customLong("human")], inversion: .prefixedNo,
        help: "Print sizes and dates in human readable format.")
    var human = true

    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.")
    var noTrunc = false

    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Only show image IDs.")
    var quiet = false

    @Argument(help: "An image reference or ID.")
    var image: String

    func run() throws {
        let (image, steps) = try ImageStore(root: global.stateRoot).history(self.image)
        let id = noTrunc ? image.id : String(image.id.dropFirst("sha256:".count).prefix(12))
        if quiet {
            // One line per step, as Docker's: the image's ID on the newest, <missing> below it.
            for i in steps.indices.reversed() { print(i == steps.count - 1 ? id : "<missing>") }
            return
        }
        var rows = [["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]]
        let now = Date()
        // Newest step first; only the top one is the image itself, the rest have no ID of their
        // own (Docker's `<missing>` for pulled and loaded images).
        for (i, step) in steps.enumerated().reversed() {
            var createdBy = step.createdBy.replacing("\t", with: " ").replacing("\n", with: " ")
            if !noTrunc && createdBy.count > 45 { createdBy = String(createdBy.prefix(44)) + "…" }
            let created =
                step.created.map {
                    human ? HumanFormat.duration(now.timeIntervalSince($0)) + " ago" : Timestamp.format($0)
                } ?? "N/A"
            rows.append([
                i == steps.count - 1 ? id : "<missing>", created, createdBy,
                human ? HumanFormat.size(step.size) : String(step.size), step.comment,
            ])
        }
        print(HumanFormat.table(rows), terminator: "")
    }
}

/// `berth image prune`, as `docker image prune`.
struct ImagePrune: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove unused images.")

    @OptionGroup var global: RootOptions

    @Flag(name: [.customShort("a"), .customLong("all")], help: "Remove all unused images, not just dangling ones.")
    var all = false

    @Flag(name: [.customShort("f"), .customLong("force")], help: "Do not prompt for confirmation.")
    var force = false

    func run() throws {
        let warning =
            all
            ? "WARNING! This will remove all images without at least one container associated to them."
            : "WARNING! This will remove all dangling images."
        guard force || Self.confirmed(warning) else { return }
        let root = global.stateRoot
        let inUse = Set(Container.list(root: root).map(\.record.spec.imageID))
        let report = try ImageStore(root: root).prune(all: all, inUse: inUse)
        if !report.untagged.isEmpty || !report.deleted.isEmpty {
            print("Deleted Images:")
            for name in report.untagged { print("untagged: \(name)") }
            for id in report.deleted { print("deleted: \(id)") }
            print("")
        }
        print("Total reclaimed space: \(HumanFormat.size(report.reclaimed, precision: 4))")
    }
}

/// Problems of the image commands that are about the command line, not the store.
struct ImageCommandError: Error, CustomStringConvertible {
    var description: String
}

// MARK: Docker's top-level shortcuts (`docker load`, `docker images`, ...)

struct LoadShortcut: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load", abstract: ImageLoad.configuration.abstract, shouldDisplay: false)
    @OptionGroup var command: ImageLoad
    func run() throws { try command.run() }
}

struct SaveShortcut: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save", abstract: ImageSave.configuration.abstract, shouldDisplay: false)
    @OptionGroup var command: ImageSave
    func run() throws { try command.run() }
}

struct RmiShortcut: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rmi", abstract: ImageRemove.configuration.abstract, shouldDisplay: false)
    @OptionGroup var command: ImageRemove
    func run() throws { try command.run() }
}

struct HistoryShortcut: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: ImageHistory.configuration.abstract, shouldDisplay: false)
    @OptionGroup var command: ImageHistory
    func run() throws { try command.run() }
}
