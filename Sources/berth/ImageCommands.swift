import ArgumentParser
import FoundationEssentials
import Images
import Runtime
import Support

/// `berth image ...`, named and flagged like `docker image ...`.
struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image", abstract: "Manage images.",
        subcommands: [
            ImageImport.self, ImagePull.self, ImagePush.self, ImageList.self, ImageRemove.self, ImageTag.self,
            ImageInspect.self, ImageLoad.self,
            ImageSave.self, ImageHistory.self, ImagePrune.self, ImageBuild.self,
        ])
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

    @Flag(name: .customLong("digests"), help: "Show digests.")
    var digests = false

    @Option(
        name: [.customShort("f"), .customLong("filter")],
        help: "Filter output based on conditions provided (dangling=true|false, reference=PATTERN).")
    var filters: [String] = []

    func run() throws {
        let filter = try ImageFilter(filters)
        let images = try ImageStore(root: global.stateRoot).list().filter(filter.matches)
        if quiet {
            // Like docker: one line per image, not per reference.
            var seen = Set<String>()
            for image in images where seen.insert(image.id).inserted { print(displayID(image.id)) }
            return
        }
        var rows = [["REPOSITORY", "TAG"] + (digests ? ["DIGEST"] : []) + ["IMAGE ID", "CREATED", "SIZE"]]
        let now = Date()
        for image in images {
            let (repository, tag) = Self.splitReference(image.reference)
            rows.append(
                [repository, tag] + (digests ? [Self.digest(of: image)] : [])
                    + [
                        displayID(image.id),
                        image.created.map { HumanFormat.duration(now.timeIntervalSince($0)) + " ago" } ?? "N/A",
                        HumanFormat.size(image.size),
                    ])
        }
        print(HumanFormat.table(rows), terminator: "")
    }

    /// The registry's digest for a pulled image (as inspect's RepoDigests), else the stored manifest's.
    static func digest(of image: Image) -> String {
        if let repoDigest = image.repoDigest, let at = repoDigest.lastIndex(of: "@") {
            return String(repoDigest[repoDigest.index(after: at)...])
        }
        return image.manifestDigest.isEmpty ? "<none>" : image.manifestDigest
    }

    private func displayID(_ id: String) -> String {
        noTrunc ? id : String(id.dropFirst("sha256:".count).prefix(12))
    }

    /// `busybox:latest` → ("busybox", "latest"); an untagged image is `<none>` twice.
    static func splitReference(_ reference: String) -> (String, String) {
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
        name: [.customShort("f"), .customLong("force")],
        help: "Remove an image ID even if several references share it, or untag an image containers use."
    )
    var force = false

    @Argument(help: "Image references or IDs.")
    var images: [String]

    func run() throws {
        let store = try ImageStore(root: global.stateRoot)
        let containers = Container.list(root: global.stateRoot)
        try forEachArgument(images) { name in
            let image = try store.image(name)
            // A reference the image has besides others goes freely: the image stays, named.
            let references = try store.list().filter { $0.id == image.id && !$0.reference.isEmpty }.count
            if references < 2 || !ImageInUse.isReference(name, in: store),
                let user = containers.first(where: { $0.record.spec.imageID == image.id })
            {
                // Removing the image would take the layers its containers stack: as Docker, only
                // with -f, and then the image stays, untagged, for as long as they use it. By ID,
                // an image a running container uses is not removed even with -f (Docker's rule).
                let byID = !ImageInUse.isReference(name, in: store)
                guard force && !(byID && user.isRunning) else {
                    throw try ImageInUse(name: name, image: image, container: user, store: store)
                }
                let untagged = try store.untag(name)
                return untagged.map { "Untagged: \($0)\n" }.joined()
            }
            // Every reference removed (by ID with -f, all of them), then the image if it went.
            let removal = try store.remove(name, force: force)
            return removal.untagged.map { "Untagged: \($0)\n" }.joined()
                + removal.deleted.map { "Deleted: \($0)\n" }.joined()
        }
    }
}

/// Docker's conflict when an image to remove is a container's: worded as Docker words it
/// (scripts match it), for a reference or for an ID.
struct ImageInUse: Error, CustomStringConvertible {
    var description: String

    init(name: String, image: Image, container: Container, store: ImageStore) throws {
        let imageID = String(image.id.dropFirst("sha256:".count).prefix(12))
        if Self.isReference(name, in: store) {
            description =
                "Error response from daemon: conflict: unable to remove repository reference \"\(name)\" "
                + "(must force) - container \(container.shortID) is using its referenced image \(imageID)"
        } else {
            let state = container.isRunning ? "running" : "stopped"
            let force = container.isRunning ? "cannot be forced" : "must be forced"
            description =
                "Error response from daemon: conflict: unable to delete \(imageID) (\(force)) - "
                + "image is being used by \(state) container \(container.shortID)"
        }
    }

    /// Whether `name` is one of the store's references (not an ID).
    static func isReference(_ name: String, in store: ImageStore) -> Bool {
        guard let ref = try? ImageReference(parsing: name) else { return false }
        return (try? store.list())?.contains { $0.reference == ref.familiar } ?? false
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
                                ($0.split(separator: ":").dropLast().joined(separator: ":")) + "@"
                                    + image.manifestDigest
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
