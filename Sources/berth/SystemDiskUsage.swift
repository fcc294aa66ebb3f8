import ArgumentParser
import FoundationEssentials
import Images
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `docker system df`: what images and containers take on disk, and how much a prune would free.
/// Images count each unpacked layer once however many images share it; a container's size is
/// its upper (writable) directory. Build cache is what only build-cache entries keep (layers no
/// image uses) and the cache mounts; none of it is in use between builds. berth has no volume
/// sizes yet: that row is 0.
struct SystemDiskUsage: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "df", abstract: "Show berth disk usage.")

    @OptionGroup var global: RootOptions

    @Flag(name: [.customShort("v"), .customLong("verbose")], help: "Show detailed information on space usage.")
    var verbose = false

    func run() throws {
        let root = global.stateRoot
        let store = try ImageStore(root: root)
        // One row per image, not per reference, as Docker counts them.
        var images: [Image] = []
        for image in try store.list() where !images.contains(where: { $0.id == image.id }) { images.append(image) }
        let containers = Container.list(root: root)
        var users: [String: Int] = [:]
        for c in containers { users[c.record.spec.imageID, default: 0] += 1 }

        var layerSize: [String: Int64] = [:]
        var layerImages: [String: Int] = [:]
        for image in images {
            for diffID in Set(image.diffIDs) {
                layerSize[diffID] = store.layerSize(diffID)
                layerImages[diffID, default: 0] += 1
            }
        }
        let imagesTotal = layerSize.values.reduce(0, +)
        let activeLayers = Set(images.filter { users[$0.id] != nil }.flatMap(\.diffIDs))
        let imagesReclaimable = imagesTotal - activeLayers.reduce(0) { $0 + (layerSize[$1] ?? 0) }

        let states = containers.map { $0.state() }
        let sizes = containers.map { Self.treeSize(root + "/containers/" + $0.id + "/upper") }
        let containersTotal = sizes.reduce(0, +)
        let containersReclaimable = zip(states, sizes).filter { $0.0.status != .running }.reduce(0) { $0 + $1.1 }
        let buildCache = try store.buildCacheUsage()

        func size(_ bytes: Int64) -> String { HumanFormat.size(bytes, precision: 4) }
        func reclaimable(_ bytes: Int64, of total: Int64) -> String {
            total > 0 ? "\(size(bytes)) (\(bytes * 100 / total)%)" : size(bytes)
        }
        if !verbose {
            print(
                HumanFormat.table([
                    ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
                    [
                        "Images", "\(images.count)", "\(images.filter { users[$0.id] != nil }.count)",
                        size(imagesTotal), reclaimable(imagesReclaimable, of: imagesTotal),
                    ],
                    [
                        "Containers", "\(containers.count)", "\(states.filter { $0.status == .running }.count)",
                        size(containersTotal), reclaimable(containersReclaimable, of: containersTotal),
                    ],
                    ["Local Volumes", "0", "0", "0B", "0B"],
                    ["Build Cache", "\(buildCache.entries)", "0", size(buildCache.size), size(buildCache.size)],
                ]), terminator: "")
            return
        }

        let now = Date()
        var imageRows = [
            ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"]
        ]
        for image in images {
            let shared = Set(image.diffIDs).filter { (layerImages[$0] ?? 0) > 1 }.reduce(0) {
                $0 + (layerSize[$1] ?? 0)
            }
            let (repository, tag) = ImageList.splitReference(image.reference)
            imageRows.append([
                repository, tag, String(image.id.dropFirst("sha256:".count).prefix(12)),
                image.created.map { HumanFormat.duration(now.timeIntervalSince($0)) + " ago" } ?? "N/A",
                size(image.size), size(shared), size(image.size - shared), "\(users[image.id] ?? 0)",
            ])
        }
        var containerRows = [
            ["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"]
        ]
        for (i, c) in containers.enumerated() {
            var command = c.record.process.argv.joined(separator: " ")
            if command.count > 20 { command = String(command.prefix(19)) + "…" }
            containerRows.append([
                c.shortID, c.record.spec.image, "\"\(command)\"", "0", size(sizes[i]),
                ago(c.record.created) + " ago", ContainerList.status(states[i]), c.name,
            ])
        }
        print("Images space usage:\n\n" + HumanFormat.table(imageRows))
        print("Containers space usage:\n\n" + HumanFormat.table(containerRows))
        print("Local Volumes space usage:\n\n" + HumanFormat.table([["VOLUME NAME", "LINKS", "SIZE"]]))
        print("Build cache usage: \(size(buildCache.size))\n")
        print(
            HumanFormat.table([["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"]]),
            terminator: "")
    }

    /// Bytes of the regular files under `path` (Docker's SizeRw), not following links; what
    /// cannot be read counts 0.
    static func treeSize(_ path: String) -> Int64 {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return Int64(st.st_size)
        case S_IFDIR: return Files.names(in: path).reduce(0) { $0 + treeSize(path + "/" + $1) }
        default: return 0
        }
    }
}
