// For stat() below: see the note in StoreFiles.swift (libarchive owns <sys/stat.h> here).
import CArchive
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `image history`, `image prune`, and the untagging `image rm -f` does for an image a container
/// still uses.
extension ImageStore {
    /// One step of an image's history, as `docker history` shows it.
    public struct HistoryStep {
        public var created: Date?
        public var createdBy: String
        public var comment: String
        /// A step that made no layer (ENV, CMD, ...): shown with 0B.
        public var emptyLayer: Bool
        /// The unpacked size of the layer the step made.
        public var size: Int64
    }

    /// The image's history, oldest step first. An image whose config has no history (or one that
    /// does not account for every layer) gets one step per layer, as Docker shows `<missing>`.
    public func history(_ reference: String) throws -> (image: Image, steps: [HistoryStep]) {
        let image = try self.image(reference)
        let config = try imageConfig(image.id)
        var layers = image.diffIDs.makeIterator()
        var steps: [HistoryStep] = []
        let recorded = config.history ?? []
        if recorded.filter({ $0.emptyLayer != true }).count == image.diffIDs.count {
            for step in recorded {
                let empty = step.emptyLayer == true
                steps.append(
                    HistoryStep(
                        created: step.created.flatMap(Timestamp.parse), createdBy: step.createdBy ?? "",
                        comment: step.comment ?? "", emptyLayer: empty,
                        size: empty ? 0 : layers.next().map(layerSize) ?? 0))
            }
        } else {
            steps = image.diffIDs.map {
                HistoryStep(created: nil, createdBy: "", comment: "", emptyLayer: false, size: layerSize($0))
            }
        }
        return (image, steps)
    }

    /// The unpacked size of a layer in bytes (0 when it is not unpacked).
    public func layerSize(_ diffID: String) -> Int64 {
        (try? String(contentsOfFile: layerDirectory(diffID) + "/size", encoding: .utf8)).flatMap { Int64($0) } ?? 0
    }

    /// What `prune` did, for `image prune` to report as Docker does.
    public struct PruneReport {
        /// References removed, familiar form.
        public var untagged: [String] = []
        /// IDs of the images deleted, then the diff IDs of the layers deleted with them.
        public var deleted: [String] = []
        /// Bytes freed: the blobs and unpacked layers deleted.
        public var reclaimed: Int64 = 0
    }

    /// Removes untagged images, or with `all` every image, except those whose ID is in `inUse`
    /// (images containers were made from). An image whose manifest cannot be read is kept: the
    /// store never deletes on a guess.
    public func prune(all: Bool, inUse: Set<String>) throws -> PruneReport {
        var report = PruneReport()
        var removedIDs: [String] = []
        try FileLock.with(gcLockPath, exclusive: false) {
            try updateIndex { index in
                var kept: [Descriptor] = []
                var keptIDs = Set<String>()
                // Dangling, as Docker counts it: an image with no tag (a digest reference is no tag).
                let tagged = Set(
                    index.manifests.filter { $0.refName.map { !$0.contains("@") } ?? false }.compactMap {
                        try? manifest($0.digest).config.digest
                    })
                for entry in index.manifests {
                    guard let id = try? manifest(entry.digest).config.digest, !inUse.contains(id),
                        all || !tagged.contains(id)
                    else {
                        kept.append(entry)
                        if let id = try? manifest(entry.digest).config.digest { keptIDs.insert(id) }
                        continue
                    }
                    if let name = entry.refName { report.untagged.append(Self.familiar(name)) }
                    if !removedIDs.contains(id) { removedIDs.append(id) }
                }
                removedIDs.removeAll { keptIDs.contains($0) }
                index.manifests = kept
            }
        }
        // Sizes are read before the collection deletes what they describe.
        var sizes: [String: Int64] = [:]
        for name in Files.names(in: blobsDir) {
            var st = stat()
            if stat(blobsDir + "/" + name, &st) == 0 { sizes["blob:sha256:" + name] = Int64(st.st_size) }
        }
        for name in Files.names(in: layersDir) { sizes["layer:sha256:" + name] = layerSize("sha256:" + name) }
        let garbage = try collectGarbage()
        report.deleted = removedIDs + garbage.removedLayers
        report.reclaimed =
            garbage.removedBlobs.reduce(0) { $0 + (sizes["blob:" + $1] ?? 0) }
            + garbage.removedLayers.reduce(0) { $0 + (sizes["layer:" + $1] ?? 0) }
        return report
    }

    /// Removes a reference (or, for an ID, every reference of the image) but keeps the image, as
    /// an untagged entry: what `image rm -f` does to an image a container still uses, whose
    /// layers that container's overlay stacks.
    @discardableResult
    public func untag(_ reference: String) throws -> [String] {
        var untagged: [String] = []
        try updateIndex { index in
            let matches = try resolve(reference, in: index)
            var kept = index.manifests[matches[0]]
            for i in matches { if let name = index.manifests[i].refName { untagged.append(Self.familiar(name)) } }
            for i in matches.sorted(by: >) { index.manifests.remove(at: i) }
            if !index.manifests.contains(where: { $0.digest == kept.digest }) {
                kept.annotations?[refNameAnnotation] = nil
                if kept.annotations?.isEmpty == true { kept.annotations = nil }
                index.manifests.append(kept)
            }
        }
        return untagged
    }
}
