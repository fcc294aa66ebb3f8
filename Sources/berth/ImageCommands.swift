import ArgumentParser
import FoundationEssentials
import Images
import Support

/// `berth image ...`, named and flagged like `docker image ...`.
struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image", abstract: "Manage images.",
        subcommands: [
            ImageImport.self, ImagePull.self, ImagePush.self, ImageList.self, ImageRemove.self, ImageTag.self, ImageInspect.self])
}

struct ImageImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import the contents of a tarball to create a file system image.")

    @OptionGroup var global: RootOptions

    @Option(
        name: [.customShort("c"), .customLong("change")],
        help:
            "Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, WORKDIR)."
    )
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
            rows.append([
                repository, tag, displayID(image.id),
                image.created.map { HumanFormat.duration(now.timeIntervalSince($0)) + " ago" } ?? "N/A",
                HumanFormat.size(image.size),
            ])
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
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove one or more images.", aliases: ["rmi", "remove"])

    @OptionGroup var global: RootOptions

    @Flag(
        name: [.customShort("f"), .customLong("force")], help: "Remove an image ID even if several references share it."
    )
    var force = false

    @Argument(help: "Image references or IDs.")
    var images: [String]

    func run() throws {
        let store = try ImageStore(root: global.stateRoot)
        try forEachArgument(images) { name in
            let image = try store.image(name)
            try store.remove(name, force: force)
            var said = image.reference.isEmpty ? "" : "Untagged: \(image.reference)\n"
            if (try? store.image(image.id)) == nil { said += "Deleted: \(image.id)\n" }
            return said
        }
    }
}

struct ImageTag: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tag", abstract: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.")

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
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Display detailed information on one or more images.")

    @OptionGroup var global: RootOptions

    @Argument(help: "Image references or IDs.")
    var images: [String]

    /// The subset of `docker image inspect` that berth knows, with Docker's field names.
    // swift-format-ignore: AlwaysUseLowerCamelCase
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
                let same = all.filter { $0.id == image.id }
                // A pulled image's digests are the registry's (an index's, for a multi-platform image).
                let pulled = Set(same.compactMap(\.repoDigest))
                let refs = same.map(\.reference).filter { !$0.isEmpty && !$0.contains("@") }
                out.append(
                    Inspect(
                        Id: image.id, RepoTags: refs.sorted(),
                        RepoDigests: pulled.isEmpty
                            ? refs.map {
                                ($0.split(separator: ":").dropLast().joined(separator: ":")) + "@" + image.manifestDigest
                            }.sorted() : pulled.sorted(),
                        Created: image.created.map(Timestamp.format) ?? "",
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
