import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// One step of a build, as the image's history records it.
public struct HistoryEntry: Sendable, Equatable {
    /// The instruction, as Docker writes it (`RUN /bin/sh -c make`, `ENV A=b`).
    public var createdBy: String
    public var comment: String?
    /// True for a step that made no layer (ENV, CMD, ...). `commitImage` sets it when it is
    /// given no layer, whatever this says.
    public var emptyLayer: Bool

    public init(createdBy: String, comment: String? = nil, emptyLayer: Bool = false) {
        self.createdBy = createdBy
        self.comment = comment
        self.emptyLayer = emptyLayer
    }
}

/// The images a build makes, and its cache:
///
///     ROOT/images/buildcache/<key>.json      {"manifest":"sha256:..."}: a build step's result
///     ROOT/builder/cache-mounts/<id>/        RUN --mount=type=cache directories
///
/// A build-cache entry is a root of garbage collection as an index.json entry is, but
/// `image ls` does not list it and `image prune` does not remove it; `builder prune` does.
/// An entry's modification time is when it was last made or used.
extension ImageStore {
    var buildCacheDir: String { dir + "/buildcache" }
    var cacheMountsDir: String { root + "/builder/cache-mounts" }

    /// What a build-cache entry file holds.
    struct BuildCacheRecord: Codable {
        var manifest: String
    }

    /// A readable build-cache entry and the content it keeps.
    struct BuildCacheContent {
        var key: String
        var manifest: String
        /// The manifest, config and layer blobs.
        var blobs: [String]
        var diffIDs: [String]
        var lastUsed: Int64
    }

    /// A new image: `parent`'s layers (nil: scratch) plus `layer` if given, with `config`, the
    /// parent's history plus `history` (dated `created`, as is the config), the parent's platform
    /// (or the host's). Stores the config and manifest blobs, names the image with each of `tags`
    /// (a tag moved off another image leaves that one dangling, as `image tag` does) and, with a
    /// `cacheKey`, records the build-cache entry `cacheKey` for it. The same inputs always give the
    /// same image ID and manifest digest. All under gc.lock shared, so a garbage collection never
    /// comes between the blobs and what names them. An image given neither tags nor a cache key
    /// is kept by a lease (a day, or until `tagImage` names it).
    public func commitImage(
        parent: Image?, layer: BuiltLayer?, config: ImageConfig, history: HistoryEntry, created: String,
        cacheKey: String? = nil, tags: [String] = []
    ) throws -> Image {
        let refs = try tags.map { try ImageReference(parsing: $0) }
        if let cacheKey { try Self.checkCacheKey(cacheKey) }
        let descriptor: Descriptor = try FileLock.with(gcLockPath, exclusive: false) {
            var layers: [Descriptor] = []
            var diffIDs: [String] = []
            var steps: [History] = []
            var platform = Platform(architecture: Self.hostArchitecture, os: "linux")
            if let parent {
                let m = try manifest(parent.manifestDigest)
                let c = try imageConfig(m.config.digest)
                layers = m.layers.map(Self.ociLayer)
                diffIDs = c.rootfs.diffIDs
                steps = c.history ?? []
                platform = Platform(architecture: c.architecture, os: c.os)
            }
            if let layer {
                guard Files.exists(blobPath(layer.diffID)), Files.exists(layerPath(layer.diffID)) else {
                    throw Error.notFound("layer \(layer.diffID)")
                }
                layers.append(Descriptor(mediaType: MediaType.layerTar, digest: layer.diffID, size: layer.size))
                diffIDs.append(layer.diffID)
            }
            steps.append(
                History(
                    created: created, createdBy: history.createdBy, comment: history.comment,
                    emptyLayer: layer == nil ? true : nil))
            let imageConfig = OCIImageConfig(
                created: created, architecture: platform.architecture, os: platform.os, config: config,
                rootfs: RootFS(diffIDs: diffIDs), history: steps)
            let configDescriptor = try putBlob(JSON.encode(imageConfig), mediaType: MediaType.config)
            var descriptor = try putBlob(
                JSON.encode(OCIManifest(config: configDescriptor, layers: layers)), mediaType: MediaType.manifest)
            descriptor.platform = platform
            if !refs.isEmpty {
                try updateIndex { index in
                    for ref in refs { name(descriptor, ref.normalized, in: &index, imageID: { self.imageID(of: $0) }) }
                }
                descriptor.annotations = [refNameAnnotation: refs[0].normalized]
            }
            if let cacheKey {
                try StoreFiles.mkdirs(buildCacheDir)
                try StoreFiles.writeAtomically(
                    JSON.encode(BuildCacheRecord(manifest: descriptor.digest)), to: cacheEntryPath(cacheKey))
            }
            if cacheKey != nil || !refs.isEmpty {
                // Named now: the capture's lease has done its work.
                if let layer { Lease.release(Self.captureLeaseName(layer.diffID), in: self) }
            } else {
                // Nothing names the image yet: a lease keeps it for the `tagImage` that will.
                _ = try Lease(
                    store: self, name: Self.commitLeaseName(descriptor.digest),
                    blobs: [descriptor.digest, configDescriptor.digest] + layers.map(\.digest), layers: diffIDs)
            }
            return descriptor
        }
        return try makeImage(descriptor)
    }

    /// The image a build-cache entry names, or nil when there is none or its content is gone or
    /// damaged. A hit marks the entry used now (for `builder prune`'s age filter).
    public func cachedImage(key: String) -> Image? {
        guard (try? Self.checkCacheKey(key)) != nil else { return nil }
        let path = cacheEntryPath(key)
        guard let bytes = Files.readAll(path),
            let record = try? JSONDecoder().decode(BuildCacheRecord.self, from: Data(bytes)),
            ImageReference.isDigest(record.manifest)
        else { return nil }
        var st = stat()
        guard stat(blobPath(record.manifest), &st) == 0,
            let m = try? manifest(record.manifest), let c = try? imageConfig(m.config.digest)
        else { return nil }
        var descriptor = Descriptor(mediaType: MediaType.manifest, digest: record.manifest, size: Int64(st.st_size))
        descriptor.platform = Platform(architecture: c.architecture, os: c.os)
        guard let image = try? makeImage(descriptor) else { return nil }
        utimensat(AT_FDCWD, path, nil, 0)
        return image
    }

    /// Names an image already stored with more tags (a build whose last step came from the
    /// cache). With no tags, the image gets an untagged entry in the index, unless it has one
    /// already: an untagged build's result, which `image ls` shows as dangling, as Docker's.
    public func tagImage(_ image: Image, as tags: [String]) throws {
        let refs = try tags.map { try ImageReference(parsing: $0) }
        try FileLock.with(gcLockPath, exclusive: false) {
            var st = stat()
            guard stat(blobPath(image.manifestDigest), &st) == 0 else { throw Error.notFound(image.manifestDigest) }
            let m = try manifest(image.manifestDigest)
            var descriptor = Descriptor(
                mediaType: m.mediaType ?? MediaType.manifest, digest: image.manifestDigest, size: Int64(st.st_size))
            descriptor.platform = Platform(architecture: image.architecture, os: image.os)
            try updateIndex { index in
                if refs.isEmpty {
                    if !index.manifests.contains(where: { $0.digest == descriptor.digest }) {
                        index.manifests.append(descriptor)
                    }
                }
                for ref in refs { name(descriptor, ref.normalized, in: &index, imageID: { self.imageID(of: $0) }) }
            }
            Lease.release(Self.commitLeaseName(image.manifestDigest), in: self)
        }
    }

    /// The lease `commitImage` takes on an image it names in no way, released by `tagImage`.
    static func commitLeaseName(_ manifestDigest: String) -> String {
        "image-" + manifestDigest.replacing("sha256:", with: "")
    }

    /// `builder prune`: removes the build-cache entries and cache mounts, then collects garbage.
    /// Without `all`, entries whose image the index names are kept (pruning them frees nothing).
    /// With `olderThan` (seconds), only what was not used for that long goes. Returns the bytes
    /// freed: the sizes of the layers deleted and of the cache mounts.
    public func pruneBuildCache(all: Bool = true, olderThan: Double? = nil) throws -> Int64 {
        try FileLock.with(gcLockPath, exclusive: true) {
            let cutoff = olderThan.map { Date().timeIntervalSince1970 - $0 }
            func old(_ path: String) -> Bool {
                guard let cutoff else { return true }
                var st = stat()
                return lstat(path, &st) == 0 && Double(st.st_mtim.tv_sec) <= cutoff
            }
            let named = all ? [] : Set((try? readIndex().manifests.map(\.digest)) ?? [])
            for name in Files.names(in: buildCacheDir) {
                let path = buildCacheDir + "/" + name
                guard old(path) else { continue }
                if !named.isEmpty, let bytes = Files.readAll(path),
                    let record = try? JSONDecoder().decode(BuildCacheRecord.self, from: Data(bytes)),
                    named.contains(record.manifest)
                {
                    continue
                }
                if unlink(path) != 0 && errno != ENOENT { throw StoreFiles.fail("remove", path) }
            }
            var reclaimed: Int64 = 0
            for name in Files.names(in: cacheMountsDir) {
                let path = cacheMountsDir + "/" + name
                guard old(path) else { continue }
                let size = Self.treeSize(path)
                try StoreFiles.removeTree(path)
                reclaimed += size
            }
            // Sizes are read before the collection deletes what they describe.
            var sizes: [String: Int64] = [:]
            for name in Files.names(in: layersDir) { sizes["sha256:" + name] = layerSize("sha256:" + name) }
            // What a collection keeps (a file it cannot remove) it tries again next time, as after
            // `image prune`; a damaged image that stops it is worth saying.
            let report = try collectLocked()
            if let damage = report.skipped { throw damage }
            return reclaimed + report.removedLayers.reduce(0) { $0 + (sizes[$1] ?? 0) }
        }
    }

    /// For `system df`: the build-cache entries and cache mounts, and the bytes they alone keep
    /// (layers no image in the index uses, and the cache mounts' files).
    public func buildCacheUsage() throws -> (entries: Int, size: Int64) {
        let entries = buildCacheEntries(removingDamaged: false)
        var layers = Set(entries.flatMap(\.diffIDs))
        for d in try readIndex().manifests {
            guard let m = try? manifest(d.digest), let c = try? imageConfig(m.config.digest) else { continue }
            layers.subtract(c.rootfs.diffIDs)
        }
        let mounts = Files.names(in: cacheMountsDir)
        let size =
            layers.reduce(0) { $0 + layerSize($1) }
            + mounts.reduce(0) { $0 + Self.treeSize(cacheMountsDir + "/" + $1) }
        return (entries.count + mounts.count, size)
    }

    // MARK: internals

    func cacheEntryPath(_ key: String) -> String {
        buildCacheDir + "/" + key + ".json"
    }

    /// Keys name files: letters, digits, '.', '_', '-' and ':' (a digest is a good key), not
    /// starting with '.'.
    static func checkCacheKey(_ key: String) throws {
        let allowed = key.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a)
                || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
                || $0 == UInt8(ascii: ":")
        }
        guard allowed, !key.isEmpty, key.utf8.count <= 200, !key.hasPrefix(".") else {
            throw Error.invalidCacheKey(key)
        }
    }

    /// The readable build-cache entries and their content. With `removingDamaged` (garbage
    /// collection, under gc.lock exclusive), entries whose manifest or config is gone or damaged
    /// are removed, and the temp files of writes that never finished.
    func buildCacheEntries(removingDamaged: Bool) -> [BuildCacheContent] {
        var entries: [BuildCacheContent] = []
        for name in Files.names(in: buildCacheDir).sorted() {
            let path = buildCacheDir + "/" + name
            guard name.hasSuffix(".json"), !name.hasPrefix(".") else {
                if removingDamaged && name.hasPrefix(".tmp-") { unlink(path) }
                continue
            }
            var st = stat()
            guard let bytes = Files.readAll(path), stat(path, &st) == 0,
                let record = try? JSONDecoder().decode(BuildCacheRecord.self, from: Data(bytes)),
                ImageReference.isDigest(record.manifest), let m = try? manifest(record.manifest),
                let c = try? imageConfig(m.config.digest), c.rootfs.diffIDs.count == m.layers.count
            else {
                if removingDamaged { unlink(path) }
                continue
            }
            entries.append(
                BuildCacheContent(
                    key: String(name.dropLast(5)), manifest: record.manifest,
                    blobs: [record.manifest, m.config.digest] + m.layers.map(\.digest), diffIDs: c.rootfs.diffIDs,
                    lastUsed: Int64(st.st_mtim.tv_sec)))
        }
        return entries
    }

    /// A parent's layer descriptor as an OCI manifest lists it: Docker's media types for the
    /// same bytes become OCI's.
    static func ociLayer(_ layer: Descriptor) -> Descriptor {
        var layer = layer
        switch layer.mediaType {
        case MediaType.dockerLayerGzip: layer.mediaType = MediaType.layerTarGzip
        case MediaType.dockerLayerTar: layer.mediaType = MediaType.layerTar
        default: break
        }
        layer.annotations = nil
        layer.platform = nil
        return layer
    }

    /// Bytes of the regular files under `path`, not following links, by directory descriptors
    /// (a cache mount may hold paths longer than PATH_MAX); what cannot be read counts 0.
    static func treeSize(_ path: String) -> Int64 {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        return treeSize(fd: fd)
    }

    /// `treeSize` of the file open as `fd`, which it closes.
    private static func treeSize(fd: Int32) -> Int64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            close(fd)
            return 0
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG:
            close(fd)
            return Int64(st.st_size)
        case S_IFDIR:
            guard let handle = fdopendir(fd) else {
                close(fd)
                return 0
            }
            defer { closedir(handle) }
            var total: Int64 = 0
            while let entry = readdir(handle) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
                if name == [UInt8(ascii: ".")] || name == [UInt8(ascii: "."), UInt8(ascii: ".")] { continue }
                var child = stat()
                let cName = LayerEntryWriter.cString(name)
                guard fstatat(dirfd(handle), cName, &child, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                switch child.st_mode & S_IFMT {
                case S_IFREG: total += Int64(child.st_size)
                case S_IFDIR:
                    let sub = openat(dirfd(handle), cName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    if sub >= 0 { total += treeSize(fd: sub) }
                default: break
                }
            }
            return total
        default:
            close(fd)
            return 0
        }
    }
}
