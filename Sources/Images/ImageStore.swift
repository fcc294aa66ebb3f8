import Crypto
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// The image store: an OCI image layout under ROOT/images, plus unpacked layers.
///
///     ROOT/images/oci-layout                       {"imageLayoutVersion": "1.0.0"}
///     ROOT/images/index.json                       one manifest entry per reference
///     ROOT/images/blobs/sha256/<hex>               content-addressed blobs
///     ROOT/images/layers/sha256/<diffid>/diff/     a layer, unpacked once, with overlay whiteouts
///     ROOT/images/layers/sha256/<diffid>/size      its uncompressed size in bytes
///     ROOT/images/tmp/                             work in progress, renamed into place when done;
///                                                  what a failed or killed import leaves there goes
///                                                  with the next garbage collection
///     ROOT/images/leases/<id>.json                 content a pull or a build holds before an image
///                                                  names it (GarbageCollection.swift)
///     ROOT/images/buildcache/<key>.json            a build step's image, a root of garbage collection
///                                                  that `image ls` does not list (ImageCommit.swift)
///
/// Several berth processes may use one store at once. `lock` serializes index.json updates.
/// `gc.lock` is held shared by everything that adds content and exclusive by garbage collection,
/// so a collection never deletes a blob an import has written but not yet referenced.
public final class ImageStore {
    public let root: String
    let dir: String
    let blobsDir: String
    let layersDir: String
    let tmpDir: String
    let indexPath: String
    private let indexLockPath: String
    let gcLockPath: String

    /// Opens (creating if needed) the store under `root`, the berth state root.
    public init(root: String) throws {
        self.root = root
        dir = root + "/images"
        blobsDir = dir + "/blobs/sha256"
        layersDir = dir + "/layers/sha256"
        tmpDir = dir + "/tmp"
        indexPath = dir + "/index.json"
        indexLockPath = dir + "/lock"
        gcLockPath = dir + "/gc.lock"
        if !Files.exists(dir) {
            // Root's alone, as Docker's /var/lib/docker: layers hold the images' setuid files
            // and device nodes, which no other user of the host may reach (CVE-2021-41091).
            try StoreFiles.mkdirs(root)
            chmod(root, 0o700)
        }
        for d in [blobsDir, layersDir, tmpDir] { try StoreFiles.mkdirs(d) }
        if !Files.exists(dir + "/oci-layout") {
            try StoreFiles.writeAtomically(Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8), to: dir + "/oci-layout")
        }
        if !Files.exists(indexPath) {
            try FileLock.with(indexLockPath, exclusive: true) {
                if !Files.exists(indexPath) { try writeIndex(OCIIndex()) }
            }
        }
    }

    // MARK: public API

    /// `docker import`: makes a one-layer image from a root file system tar (plain, gzip or zstd;
    /// `-` reads standard input). The blob is stored as given; re-importing the same file reuses
    /// the unpacked layer.
    public func importRootfs(tarPath: String, reference: String, config: ImageConfig = ImageConfig()) throws -> Image {
        let ref = reference.isEmpty ? nil : try ImageReference(parsing: reference)
        let display = tarPath == "-" ? "standard input" : tarPath
        let manifestDescriptor: Descriptor = try FileLock.with(gcLockPath, exclusive: false) {
            let fd = tarPath == "-" ? dup(STDIN_FILENO) : open(tarPath, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw StoreFiles.fail("open", tarPath) }
            let (tempBlob, blobDigest, blobSize) = try ingest(fd: fd, display: display)
            defer { unlink(tempBlob) }

            let layer = try ensureLayer(blobPath: tempBlob, blobDigest: blobDigest, display: display)
            try commitBlob(tempBlob, digest: blobDigest)

            let now = Timestamp.format(Date())
            let imageConfig = OCIImageConfig(
                created: now, architecture: Self.hostArchitecture, os: "linux", config: config,
                rootfs: RootFS(diffIDs: [layer.diffID]),
                history: [History(created: now, createdBy: "berth image import", comment: "Imported from \(display)")])
            let configDescriptor = try putBlob(JSON.encode(imageConfig), mediaType: MediaType.config)
            let manifest = OCIManifest(
                config: configDescriptor,
                layers: [Descriptor(mediaType: layer.mediaType, digest: blobDigest, size: blobSize)])
            var descriptor = try putBlob(JSON.encode(manifest), mediaType: MediaType.manifest)
            descriptor.platform = Platform(architecture: Self.hostArchitecture, os: "linux")
            if let ref { descriptor.annotations = [refNameAnnotation: ref.normalized] }
            try updateIndex { index in
                if let ref { name(descriptor, ref.normalized, in: &index) } else { index.manifests.append(descriptor) }
            }
            return descriptor
        }
        try collectGarbage()
        return try makeImage(manifestDescriptor)
    }

    /// The image with this reference, full ID, or unambiguous ID prefix (`sha256:` optional).
    public func image(_ reference: String) throws -> Image {
        let index = try readIndex()
        let matches = try resolve(reference, in: index)
        return try makeImage(index.manifests[matches[0]])
    }

    /// Every reference in the store, newest image first, as `docker images` lists them.
    public func list() throws -> [Image] {
        let index = try readIndex()
        return try index.manifests.map { try makeImage($0) }
            .sorted { ($0.created ?? .distantPast, $0.reference) > ($1.created ?? .distantPast, $1.reference) }
    }

    /// What `remove` did, for `image rm` to report.
    public struct Removal {
        /// The references removed, as the user writes them.
        public var untagged: [String] = []
        /// IDs of the images no reference names any more, whose content is now deleted.
        public var deleted: [String] = []
    }

    /// Removes a reference (or, by ID, the image's only reference), then deletes blobs and layers
    /// no remaining image uses. An ID that several references share needs `force`. Content of the
    /// image that could not be deleted is an error (`contentKept`), never a silent leftover.
    @discardableResult
    public func remove(_ reference: String, force: Bool = false) throws -> Removal {
        var removal = Removal()
        // Manifest digest and image ID of each entry removed from the index.
        var removedImages: [(manifest: String, id: String?)] = []
        // Blob digests and diff IDs of the removed images, read while the index still names them.
        var content = Set<String>()
        try FileLock.with(gcLockPath, exclusive: false) {
            try updateIndex { index in
                let matches = try resolve(reference, in: index)
                let refs = matches.compactMap { index.manifests[$0].refName }
                if matches.count > 1 && !force {
                    let id = try manifest(index.manifests[matches[0]].digest).config.digest
                    throw Error.referencedMany(String(id.dropFirst(7).prefix(12)), refs.map { Self.familiar($0) })
                }
                for i in matches {
                    let descriptor = index.manifests[i]
                    content.insert(descriptor.digest)
                    if let name = descriptor.refName { removal.untagged.append(Self.familiar(name)) }
                    let m = try? manifest(descriptor.digest)
                    removedImages.append((descriptor.digest, m?.config.digest))
                    guard let m else { continue }
                    content.insert(m.config.digest)
                    for layer in m.layers { content.insert(layer.digest) }
                    content.formUnion((try? imageConfig(m.config.digest))?.rootfs.diffIDs ?? [])
                }
                for i in matches.sorted(by: >) { index.manifests.remove(at: i) }
            }
        }
        let report = try collectGarbage()
        if let kept = report.kept.first(where: { content.contains($0.item) }) {
            throw Error.contentKept(reference, "\(kept.error)")
        }
        // What the build cache still holds stays on purpose (`builder prune` removes it).
        let cached = Set(buildCacheEntries(removingDamaged: false).map(\.manifest))
        let remaining = Set(try readIndex().manifests.map(\.digest)).union(cached)
        for image in removedImages where !remaining.contains(image.manifest) {
            // Only a collection that skipped everything (a damaged store file) leaves it.
            guard !Files.exists(blobPath(image.manifest)) else {
                let reason = report.skipped.map { "\($0)" } ?? "its manifest \(image.manifest) is still stored"
                throw Error.contentKept(reference, reason)
            }
            if let id = image.id, !removal.deleted.contains(id) { removal.deleted.append(id) }
        }
        return removal
    }

    /// Gives the image `source` names the reference `target`, moving `target` off any other image.
    public func tag(_ source: String, _ target: String) throws {
        let ref = try ImageReference(parsing: target)
        try FileLock.with(gcLockPath, exclusive: false) {
            try updateIndex { index in
                let source = index.manifests[try resolve(source, in: index)[0]]
                name(source, ref.normalized, in: &index)
            }
        }
        try collectGarbage()
    }

    // MARK: resolving

    /// Indexes into `index.manifests` that `text` names: one entry for a reference, every entry of
    /// the image for an ID.
    func resolve(_ text: String, in index: OCIIndex) throws -> [Int] {
        if let ref = try? ImageReference(parsing: text) {
            if let i = index.manifests.firstIndex(where: { $0.refName == ref.normalized }) { return [i] }
            if let digest = ref.digest, ref.tag == nil || ref.tag == ImageReference.defaultTag,
                let i = index.manifests.firstIndex(where: {
                    $0.digest == digest
                        && $0.refName.flatMap { try? ImageReference(parsing: $0) }?.repository == ref.repository
                })
            {
                return [i]
            }
        }
        let hex = text.hasPrefix("sha256:") ? String(text.dropFirst(7)) : text
        guard !hex.isEmpty, hex.count <= 64, hex.allSatisfy(ImageReference.isLowerHex) else {
            throw Error.notFound(text)
        }
        var ids: [Int: String] = [:]
        for (i, d) in index.manifests.enumerated() {
            let id = try manifest(d.digest).config.digest
            if id.dropFirst(7).hasPrefix(hex) { ids[i] = id }
        }
        guard !ids.isEmpty else { throw Error.notFound(text) }
        guard Set(ids.values).count == 1 else { throw Error.ambiguous(text) }
        return ids.keys.sorted()
    }

    func makeImage(_ descriptor: Descriptor) throws -> Image {
        let m = try manifest(descriptor.digest)
        let c = try imageConfig(m.config.digest)
        guard c.rootfs.diffIDs.count == m.layers.count else {
            throw Error.corrupt(
                blobPath(descriptor.digest),
                "the manifest has \(m.layers.count) layers but the config \(c.rootfs.diffIDs.count) diff IDs")
        }
        var paths: [String] = []
        var size: Int64 = 0
        for (diffID, layer) in zip(c.rootfs.diffIDs, m.layers) {
            let layerDir = layerDirectory(diffID)
            if !Files.exists(layerDir + "/diff") {
                // Content present but not unpacked (an interrupted import): unpack it now.
                _ = try FileLock.with(gcLockPath, exclusive: false) {
                    try ensureLayer(
                        blobPath: blobPath(layer.digest), blobDigest: layer.digest,
                        display: layer.digest, expectedDiffID: diffID)
                }
            }
            paths.append(layerDir + "/diff")
            size += (try? String(contentsOfFile: layerDir + "/size", encoding: .utf8)).flatMap { Int64($0) } ?? 0
        }
        // A layer repeated in one image (the empty layer of many Dockerfile steps, or the same
        // content added twice) is one directory, which overlayfs refuses twice (ELOOP). Only the
        // topmost copy is kept: a layer applied again decides every path it touches, and the
        // paths it does not touch never depended on it, so the merged tree is the same.
        var seen = Set<String>()
        paths = paths.reversed().filter { seen.insert($0).inserted }.reversed()
        return Image(
            reference: descriptor.refName.map(Self.familiar) ?? "",
            id: m.config.digest, config: c.config ?? ImageConfig(), layerPaths: paths, size: size,
            created: c.created.flatMap(Timestamp.parse), manifestDigest: descriptor.digest,
            diffIDs: c.rootfs.diffIDs, architecture: c.architecture, os: c.os,
            repoDigest: descriptor.annotations?[repoDigestAnnotation].map(Self.familiar))
    }

    static func familiar(_ normalized: String) -> String {
        (try? ImageReference(parsing: normalized))?.familiar ?? normalized
    }

    // MARK: blobs

    func blobPath(_ digest: String) -> String {
        blobsDir + "/" + digest.replacing("sha256:", with: "")
    }

    func layerDirectory(_ diffID: String) -> String {
        layersDir + "/" + diffID.replacing("sha256:", with: "")
    }

    /// Reads a blob and checks it still hashes to its name.
    func readBlob(_ digest: String) throws -> Data {
        guard ImageReference.isDigest(digest) else {
            throw Error.corrupt(indexPath, "\(digest) is not a sha256 digest")
        }
        let path = blobPath(digest)
        let data = try StoreFiles.read(path)
        let actual = "sha256:" + StoreFiles.sha256Hex(data)
        guard actual == digest else { throw Error.digestMismatch(what: path, expected: digest, actual: actual) }
        return data
    }

    func manifest(_ digest: String) throws -> OCIManifest {
        try JSON.decode(OCIManifest.self, from: readBlob(digest), path: blobPath(digest))
    }

    func imageConfig(_ digest: String) throws -> OCIImageConfig {
        try JSON.decode(OCIImageConfig.self, from: readBlob(digest), path: blobPath(digest))
    }

    /// Stores a small blob (a manifest or config) and returns its descriptor.
    func putBlob(_ data: Data, mediaType: String) throws -> Descriptor {
        let digest = "sha256:" + StoreFiles.sha256Hex(data)
        if !Files.exists(blobPath(digest)) {
            try StoreFiles.writeAtomically(data, to: blobPath(digest))
        }
        return Descriptor(mediaType: mediaType, digest: digest, size: Int64(data.count))
    }

    /// Copies `fd` (closing it) into a temp file under tmp/, hashing on the way.
    func ingest(fd: Int32, display: String) throws -> (path: String, digest: String, size: Int64) {
        defer { close(fd) }
        let temp = tmpDir + "/blob-\(getpid())-\(UUID().uuidString)"
        let out = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard out >= 0 else { throw StoreFiles.fail("create", temp) }
        var done = false
        defer {
            close(out)
            if !done { unlink(temp) }
        }
        var hasher = SHA256()
        var size: Int64 = 0
        let capacity = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer, capacity)
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreFiles.fail("read", display)
            }
            if n == 0 { break }
            let chunk = UnsafeRawBufferPointer(start: buffer, count: n)
            hasher.update(bufferPointer: chunk)
            try StoreFiles.writeAll(out, chunk, path: temp)
            size += Int64(n)
        }
        guard fsync(out) == 0 else { throw StoreFiles.fail("sync", temp) }
        done = true
        return (temp, "sha256:" + StoreFiles.hex(hasher.finalize()), size)
    }

    /// Moves an ingested temp file to its content address (or drops it if already there).
    func commitBlob(_ temp: String, digest: String) throws {
        let path = blobPath(digest)
        if Files.exists(path) { return }
        guard rename(temp, path) == 0 else { throw StoreFiles.fail("store blob", path) }
        Files.syncDirectory(blobsDir)
    }

    // MARK: layers

    struct Layer {
        var diffID: String
        var mediaType: String
    }

    /// Makes sure the layer in `blobPath` is unpacked, and returns its diff ID and media type.
    /// A blob the store already knows is not unpacked again. Unpacking happens in tmp/ and the
    /// finished directory is renamed into place, so a crash never leaves half a layer.
    func ensureLayer(blobPath: String, blobDigest: String, display: String, expectedDiffID: String? = nil) throws
        -> Layer
    {
        if let known = try knownLayer(blobDigest), Files.exists(layerDirectory(known.diffID) + "/diff") {
            return known
        }
        let work = tmpDir + "/layer-\(getpid())-\(UUID().uuidString)"
        try StoreFiles.mkdirs(work + "/diff")
        // On any failure the partial tree goes now; if even that fails (or the process dies), the
        // next garbage collection removes it: nothing else works in tmp/ without gc.lock shared.
        defer { try? StoreFiles.removeTree(work) }
        let diff = open(work + "/diff", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard diff >= 0 else { throw StoreFiles.fail("open", work + "/diff") }
        defer { close(diff) }
        let result = try LayerUnpacker.unpack(blobPath: blobPath, into: diff, displayName: display)
        if let expectedDiffID, expectedDiffID != result.diffID {
            throw Error.digestMismatch(
                what: "the uncompressed layer \(blobDigest)", expected: expectedDiffID, actual: result.diffID)
        }
        try StoreFiles.writeAtomically(Data(String(result.size).utf8), to: work + "/size")
        let final = layerDirectory(result.diffID)
        if !Files.exists(final) {
            if rename(work, final) != 0 && errno != EEXIST && errno != ENOTEMPTY {
                throw StoreFiles.fail("move the unpacked layer to", final)
            }
            Files.syncDirectory(layersDir)
        }
        return Layer(diffID: result.diffID, mediaType: result.mediaType)
    }

    /// The diff ID of a layer blob some stored image already uses, found through its manifest.
    func knownLayer(_ blobDigest: String) throws -> Layer? {
        guard Files.exists(blobPath(blobDigest)) else { return nil }
        for d in try readIndex().manifests {
            guard let m = try? manifest(d.digest),
                let i = m.layers.firstIndex(where: { $0.digest == blobDigest }),
                let c = try? imageConfig(m.config.digest), i < c.rootfs.diffIDs.count
            else { continue }
            return Layer(diffID: c.rootfs.diffIDs[i], mediaType: m.layers[i].mediaType)
        }
        return nil
    }

    // MARK: index

    func readIndex() throws -> OCIIndex {
        try JSON.decode(OCIIndex.self, from: StoreFiles.read(indexPath), path: indexPath)
    }

    private func writeIndex(_ index: OCIIndex) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try StoreFiles.writeAtomically(encoder.encode(index), to: indexPath)
    }

    /// Read-modify-write of index.json under the index lock.
    func updateIndex(_ change: (inout OCIIndex) throws -> Void) throws {
        try FileLock.with(indexLockPath, exclusive: true) {
            var index = try readIndex()
            try change(&index)
            try writeIndex(index)
        }
    }

    /// This machine's architecture as images name it (Go's names: amd64, arm64).
    public static var hostArchitecture: String {
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch machine {
        case "x86_64": return "amd64"
        case "aarch64": return "arm64"
        case "armv7l": return "arm"
        case "i686", "i386": return "386"
        default: return machine
        }
    }
}
