import Crypto
import FoundationEssentials
import Registry
import Support
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What a pull reports as it goes, layer by layer (for progress bars or plain lines).
public enum PullEvent: Sendable {
    /// The manifest to pull is known: its layers, by digest, lowest first.
    case resolved(manifest: String, layers: [String])
    case layer(digest: String, LayerProgress)
}

public enum LayerProgress: Sendable, Equatable {
    /// Verified and unpacked earlier (by this image or another, or a pull that was cut short).
    case alreadyExists
    /// Queued behind the downloads running (three at a time).
    case waiting
    case downloading(done: Int64, total: Int64)
    case extracting
    case complete
}

/// How a pull ended.
public struct PullResult {
    public var image: Image
    /// The digest the reference resolved to: the index's for a multi-platform image, as Docker's
    /// "Digest:" line and RepoDigests show it.
    public var digest: String
    /// False when the reference already named this manifest ("Image is up to date").
    public var changed: Bool
    /// The image's platform when it is not the host's and no platform was asked for: Docker pulls
    /// such an image and warns (it may run under binfmt emulation).
    public var foreignPlatform: String? = nil
}

/// A pull's failures that are not the registry's or the store's.
public enum PullError: Swift.Error, CustomStringConvertible, Equatable {
    case noMatchingPlatform(String, wanted: String, available: [String])
    case unsupportedMediaType(String, String)
    case invalidPlatform(String)
    case damaged(String, String)

    public var description: String {
        switch self {
        case .noMatchingPlatform(let ref, let wanted, let available):
            return available.isEmpty || available.count > 8
                ? "no matching manifest for \(wanted) in the manifest list entries of \(ref)"
                : "no matching manifest for \(wanted) in the manifest list entries of \(ref) "
                    + "(it has \(available.joined(separator: ", ")); choose one with --platform)"
        case .unsupportedMediaType(let what, let type):
            return "\(what) has the unsupported media type \"\(type)\""
        case .invalidPlatform(let text):
            return "invalid platform \"\(text)\": expected os/arch[/variant], such as linux/amd64"
        case .damaged(let what, let reason):
            return "\(what) is not valid: \(reason)"
        }
    }
}

extension Platform {
    /// `--platform`: os/arch[/variant], or arch alone for the host's OS.
    public init(parsing text: String) throws {
        let parts = text.lowercased().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (1...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else {
            throw PullError.invalidPlatform(text)
        }
        if parts.count == 1 {
            self.init(architecture: parts[0], os: "linux")
        } else {
            self.init(architecture: parts[1], os: parts[0], variant: parts.count == 3 ? parts[2] : nil)
        }
        if architecture == "x86_64" || architecture == "x86-64" { architecture = "amd64" }
        if architecture == "aarch64" { architecture = "arm64" }
    }

    /// The platform of this host, as images name it.
    public static var host: Platform {
        let arch = ImageStore.hostArchitecture
        return Platform(architecture: arch, os: "linux", variant: arch == "arm" ? "v7" : nil)
    }

    /// Whether an image for `self` runs where `wanted` is asked for; a variant left out matches any,
    /// and arm64's only variant, v8, is the same as none.
    func satisfies(_ wanted: Platform) -> Bool {
        guard os == wanted.os, architecture == wanted.architecture else { return false }
        func normal(_ v: String?) -> String? { architecture == "arm64" && v == "v8" ? nil : v }
        return wanted.variant == nil || normal(variant) == normal(wanted.variant)
    }
}

/// The annotation that keeps a pulled image's repository digest (`repo@sha256:...`).
let repoDigestAnnotation = "io.berth.image.repo-digest"

extension ImageStore {
    /// Pulls `reference` from its registry into the store and unpacks its layers.
    ///
    /// Safe against being killed at any point: each blob is verified in tmp/ before it is renamed
    /// into blobs/, and a lease file names everything the pull brings until the reference is in
    /// index.json, so garbage collection keeps it; a pull killed halfway leaves its lease behind
    /// (for a day), so the next pull finds the verified layers and does not fetch them again. Two
    /// pulls of one blob at once take turns on a lock of their own: the second finds it done.
    /// A pull that fails removes its lease and whatever only it brought.
    public func pull(
        _ reference: ImageReference, client: RegistryClient, platform: Platform? = nil,
        progress: @escaping @Sendable (PullEvent) -> Void = { _ in }
    ) throws -> PullResult {
        let repository = reference.path
        let wanted = platform ?? .host
        let top = try client.manifest(repository, reference.digest ?? reference.tag ?? ImageReference.defaultTag)
        var fetched = top
        if MediaType.indexes.contains(top.mediaType) {
            let index = try decode(OCIIndex.self, top.data, "the manifest list of \(reference.familiar)")
            let candidates = index.manifests.filter { MediaType.imageManifests.contains($0.mediaType) }
            guard let chosen = candidates.first(where: { $0.platform?.satisfies(wanted) ?? false }) else {
                throw PullError.noMatchingPlatform(
                    reference.familiar, wanted: wanted.description,
                    available: candidates.compactMap { $0.platform?.description })
            }
            try Self.checkDigests([chosen.digest], in: "the manifest list of \(reference.familiar)")
            fetched = try client.manifest(repository, chosen.digest)
        }
        guard MediaType.imageManifests.contains(fetched.mediaType) else {
            throw PullError.unsupportedMediaType("the manifest of \(reference.familiar)", fetched.mediaType)
        }
        let manifest = try decode(OCIManifest.self, fetched.data, "the manifest of \(reference.familiar)")
        for layer in manifest.layers where !MediaType.layers.contains(layer.mediaType) {
            throw PullError.unsupportedMediaType("layer \(layer.digest) of \(reference.familiar)", layer.mediaType)
        }
        // Digests become URLs and file names: a hostile manifest must not name "../" anything.
        try Self.checkDigests(
            [manifest.config.digest] + manifest.layers.map(\.digest), in: "the manifest of \(reference.familiar)")
        if let bad = manifest.layers.first(where: { $0.size < 0 }) {
            throw PullError.damaged("the manifest of \(reference.familiar)", "layer \(bad.digest) has a negative size")
        }
        let configData = try client.blobData(repository, manifest.config.digest)
        let config = try decode(OCIImageConfig.self, configData, "the image config of \(reference.familiar)")
        guard config.rootfs.diffIDs.count == manifest.layers.count else {
            throw PullError.damaged(
                "the image config of \(reference.familiar)",
                "\(config.rootfs.diffIDs.count) diff IDs for \(manifest.layers.count) layers")
        }
        try Self.checkDigests(config.rootfs.diffIDs, in: "the image config of \(reference.familiar)")
        let imagePlatform = Platform(architecture: config.architecture, os: config.os, variant: nil)
        let foreign = !imagePlatform.satisfies(Platform(architecture: wanted.architecture, os: wanted.os))
        // Asked for by --platform, another platform is an error (Docker's "does not match the
        // specified platform"); by default a single-platform image is pulled with a warning.
        if foreign && platform != nil {
            throw PullError.noMatchingPlatform(
                reference.familiar, wanted: wanted.description, available: [imagePlatform.description])
        }
        progress(.resolved(manifest: fetched.digest, layers: manifest.layers.map(\.digest)))

        let refName = reference.digest.map { reference.repository + "@" + $0 } ?? reference.normalized
        let changed: Bool
        do {
            changed = try FileLock.with(gcLockPath, exclusive: false) {
                let lease = try Lease(
                    store: self,
                    blobs: [fetched.digest, manifest.config.digest] + manifest.layers.map(\.digest),
                    layers: config.rootfs.diffIDs)
                // The registry went away mid-pull: what was verified stays under the lease (for a
                // day), so pulling again fetches only the rest. Any other failure (bad content, no
                // such image, no access) leaves nothing behind.
                var keepLease = false
                defer { if !keepLease { lease.release() } }
                do {
                    try fetchLayers(
                        manifest.layers, diffIDs: config.rootfs.diffIDs, from: repository, client: client,
                        progress: progress)
                } catch let error as RegistryError {
                    if case .unreachable = error { keepLease = true }
                    throw error
                }
                _ = try putBlob(configData, mediaType: manifest.config.mediaType)
                let stored = try putBlob(fetched.data, mediaType: fetched.mediaType)
                let descriptor = Descriptor(
                    mediaType: fetched.mediaType, digest: stored.digest, size: stored.size,
                    annotations: [
                        refNameAnnotation: refName, repoDigestAnnotation: reference.repository + "@" + top.digest,
                    ],
                    platform: Platform(architecture: config.architecture, os: config.os))
                var changed = true
                try updateIndex { index in
                    changed = !index.manifests.contains { $0.refName == refName && $0.digest == descriptor.digest }
                    // A digest reference of this image in this repository (a pull by digest) gives way
                    // to the tag; another repository's digest reference stays.
                    if reference.digest == nil {
                        index.manifests.removeAll {
                            $0.digest == descriptor.digest && $0.refName == reference.repository + "@" + $0.digest
                        }
                    }
                    name(descriptor, refName, in: &index, imageID: imageID(of:))
                }
                return changed
            }
        } catch {
            // Whatever only this pull brought goes now (unless its lease was kept).
            _ = try? collectGarbage()
            throw error
        }
        try collectGarbageIfIdle()
        return PullResult(
            image: try image(refName), digest: top.digest, changed: changed,
            foreignPlatform: foreign ? imagePlatform.description : nil)
    }

    /// Downloads, verifies and unpacks the layers not yet in the store: a thread per layer (up to
    /// eight), three downloads at a time as Docker's default, and each layer unpacked as soon as
    /// its download is done, while the next downloads run.
    private func fetchLayers(
        _ layers: [Descriptor], diffIDs: [String], from repository: String, client: RegistryClient,
        progress: @escaping @Sendable (PullEvent) -> Void
    ) throws {
        nonisolated(unsafe) let store = self
        let downloads = Gate(width: 3)
        try runInParallel(layers.count, width: 8) { i in
            let layer = layers[i]
            let diffID = diffIDs[i]
            let report = { (state: LayerProgress) in progress(.layer(digest: layer.digest, state)) }
            func present() -> Bool {
                Files.exists(store.blobPath(layer.digest)) && Files.exists(store.layerDirectory(diffID) + "/diff")
            }
            if present() { return report(.alreadyExists) }
            // One fetch of a blob at a time in this store: a concurrent pull waits, then finds it.
            try FileLock.with(store.tmpDir + "/fetch-" + layer.digest.dropFirst(7) + ".lock", exclusive: true) {
                if present() { return report(.alreadyExists) }
                if Files.exists(store.blobPath(layer.digest)) {
                    // Verified before it was stored: only the unpack was cut short.
                    report(.extracting)
                    _ = try store.ensureLayer(
                        blobPath: store.blobPath(layer.digest), blobDigest: layer.digest, display: layer.digest,
                        expectedDiffID: diffID)
                    return report(.complete)
                }
                let temp = store.tmpDir + "/blob-\(getpid())-\(UUID().uuidString)"
                guard let fd = FileDescriptor(taking: open(temp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)) else {
                    throw StoreFiles.fail("create", temp)
                }
                defer { unlink(temp) }
                var reported: Int64 = 0
                try downloads.through(waiting: { report(.waiting) }) {
                    report(.downloading(done: 0, total: layer.size))
                    try client.downloadBlob(
                        repository, digest: layer.digest, size: layer.size, into: fd.rawValue
                    ) { done in
                        // About a hundred updates a layer, not one per network read.
                        if done - reported >= max(layer.size / 100, 1 << 16) || done == layer.size {
                            reported = done
                            report(.downloading(done: done, total: layer.size))
                        }
                    }
                }
                // Synced before the unpack dirties the page cache with the layer's files, which would
                // compete with it for the disk. Only a blob on disk is named by its digest.
                guard fsync(fd.rawValue) == 0 else { throw StoreFiles.fail("sync", temp) }
                report(.extracting)
                _ = try store.ensureLayer(
                    blobPath: temp, blobDigest: layer.digest, display: layer.digest, expectedDiffID: diffID)
                try store.commitBlob(temp, digest: layer.digest)
                report(.complete)
            }
        }
    }

    /// Every digest must be `sha256:` and 64 lowercase hex digits, the only form the store keeps.
    static func checkDigests(_ digests: [String], in what: String) throws {
        if let bad = digests.first(where: { !ImageReference.isDigest($0) }) {
            throw PullError.damaged(what, "\"\(bad.prefix(80))\" is not a sha256 digest")
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, _ data: Data, _ what: String) throws -> T {
        do { return try JSONDecoder().decode(type, from: data) } catch {
            throw PullError.damaged(what, "not a valid JSON document of its kind")
        }
    }
}
