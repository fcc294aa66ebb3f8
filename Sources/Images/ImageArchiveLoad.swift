import CArchive
import Crypto
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `docker load`: images from a docker-save archive (manifest.json with `<id>/layer.tar` or, since
/// Docker 25, `blobs/sha256/<hex>` paths) or an OCI image-layout archive (oci-layout, index.json,
/// blobs), plain or compressed.
///
/// The outer tar is read once, front to back (manifest.json comes last in Docker's archives), and
/// every regular file is staged under tmp/ with its sha256, as numbered files: no name from the
/// archive ever becomes a path on disk, and links, devices and paths with `..` are refused. Then
/// every blob is checked against its name or descriptor, each layer is unpacked (its diff ID
/// checked against the config's), the blobs are moved into the store, and one index update
/// names the images. Until that update nothing references the new content, so a failure at any
/// step leaves nothing: the garbage collection that follows removes what was moved in.
extension ImageStore {
    /// An image `load` stored: its ID and the references it now has (familiar form).
    public struct LoadedImage: Equatable {
        public var id: String
        public var references: [String]
    }

    /// Larger JSON documents than this are refused unread (real configs are a few KiB; Docker's
    /// own reader caps manifests at 4 MiB).
    static let archiveJSONLimit: Int64 = 8 << 20

    /// Once the archive is read, standard input is let go (replaced by /dev/null): in
    /// `berth save x | berth load` on one root, the save holds gc.lock shared while it writes, and
    /// a failed load's collection, which waits for that lock, must not keep the pipe open.
    private static func releaseStandardInput(_ path: String) {
        guard path == "-" else { return }
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        if null >= 0 {
            dup2(null, STDIN_FILENO)
            close(null)
        }
    }

    /// Loads every image in the archive at `path` (`-` for standard input).
    public func load(archivePath path: String) throws -> [LoadedImage] {
        let display = path == "-" ? "standard input" : path
        let fd = path == "-" ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreFiles.fail("open", display) }
        let loaded: [LoadedImage]
        do {
            loaded = try FileLock.with(gcLockPath, exclusive: false) {
                let staging: StagedArchive
                do {
                    staging = try StagedArchive(fd: fd, display: display, tmpDir: tmpDir)
                    Self.releaseStandardInput(path)
                } catch {
                    Self.releaseStandardInput(path)
                    throw error
                }
                defer { staging.remove() }
                return try ArchiveLoader(store: self, archive: staging).run()
            }
        } catch {
            // The blobs and layers this load moved in are referenced by nothing: collect them now,
            // so a failed load leaves the store as it was.
            _ = try? collectGarbage()
            throw error
        }
        try collectGarbageIfIdle()
        return loaded
    }
}

/// The regular files of an archive, staged under tmp/ by number, with their digests.
final class StagedArchive {
    struct File {
        var path: String
        var digest: String
        var size: Int64
    }

    let display: String
    let dir: String
    private(set) var files: [String: File] = [:]
    /// Symbolic links, by name, to the archive path they resolve to.
    private var links: [String: String] = [:]

    init(fd: Int32, display: String, tmpDir: String) throws {
        defer { close(fd) }
        self.display = display
        dir = tmpDir + "/load-\(getpid())-\(UUID().uuidString)"
        try StoreFiles.mkdirs(dir, mode: 0o700)
        do {
            try read(fd)
        } catch {
            remove()
            throw error
        }
    }

    func remove() {
        try? StoreFiles.removeTree(dir)
    }

    private func read(_ fd: Int32) throws {
        if let problem = carchive_load_error() {
            throw ImageStore.Error.unpack(display, "", String(cString: problem))
        }
        guard let a = archive_read_new() else { throw ImageStore.Error.unpack(display, "", "out of memory") }
        defer { archive_read_free(a) }
        LayerUnpacker.supportDecompressors(a)
        archive_read_support_format_tar(a)
        guard archive_read_open_fd(a, fd, 1 << 20) == ARCHIVE_OK else {
            throw ImageStore.Error.notATar(display, LayerUnpacker.archiveError(a))
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var count = 0
        while true {
            var entry: OpaquePointer?
            let r = archive_read_next_header(a, &entry)
            if r == ARCHIVE_EOF { break }
            guard r >= ARCHIVE_WARN, let entry else {
                throw count == 0
                    ? ImageStore.Error.notATar(display, LayerUnpacker.archiveError(a))
                    : ImageStore.Error.unpack(display, "", LayerUnpacker.archiveError(a))
            }
            count += 1
            let raw = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
            let name = try ArchivePath.clean(raw, archive: display, what: "entry")
            if archive_entry_hardlink(entry) != nil {
                throw ImageStore.ArchiveError.hostileEntry(
                    archive: display, entry: DisplayPath.of(Array(raw.utf8)), reason: "is a hard link")
            }
            switch archive_entry_filetype(entry) {
            case S_IFDIR: continue
            case S_IFREG: break
            case S_IFLNK:
                // docker save (up to Docker 24) writes a layer that repeats an earlier one as a link
                // to that one's layer.tar. Followed inside the archive only, after every entry is read.
                let target = archive_entry_symlink(entry).map { String(cString: $0) } ?? ""
                guard !name.isEmpty, files[name] == nil, links[name] == nil else {
                    throw ImageStore.ArchiveError.hostileEntry(
                        archive: display, entry: DisplayPath.of(Array(raw.utf8)), reason: "appears twice")
                }
                links[name] = try ArchivePath.resolve(target, from: name, archive: display)
                continue
            default:
                throw ImageStore.ArchiveError.hostileEntry(
                    archive: display, entry: DisplayPath.of(Array(raw.utf8)),
                    reason: "is not a regular file or directory")
            }
            guard !name.isEmpty, files[name] == nil, links[name] == nil else {
                throw ImageStore.ArchiveError.hostileEntry(
                    archive: display, entry: DisplayPath.of(Array(raw.utf8)), reason: "appears twice")
            }
            let file = try stage(a, number: count, name: name, buffer: buffer)
            // A blob must hash to its name, whatever refers to it.
            let parts = name.split(separator: "/")
            if parts.count == 3, parts[0] == "blobs", parts[1] == "sha256", file.digest != "sha256:" + parts[2] {
                throw ImageStore.Error.digestMismatch(
                    what: "\(display): \(name)", expected: "sha256:" + parts[2], actual: file.digest)
            }
            files[name] = file
        }
        if count == 0 { throw ImageStore.Error.notATar(display, "the archive is empty") }
        for (name, target) in links {
            guard let file = files[target] else {
                throw ImageStore.ArchiveError.hostileEntry(
                    archive: display, entry: DisplayPath.of(Array(name.utf8)),
                    reason: "is a symbolic link to \(target), which is not a regular file of the archive")
            }
            files[name] = file
        }
    }

    private func stage(_ a: OpaquePointer, number: Int, name: String, buffer: UnsafeMutableRawPointer) throws -> File {
        let path = dir + "/\(number)"
        let out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard out >= 0 else { throw StoreFiles.fail("create", path) }
        defer { close(out) }
        var hasher = SHA256()
        var size: Int64 = 0
        while true {
            let n = archive_read_data(a, buffer, 1 << 20)
            if n < 0 {
                throw ImageStore.Error.unpack(display, name, "cannot read it: \(LayerUnpacker.archiveError(a))")
            }
            if n == 0 { break }
            let chunk = UnsafeRawBufferPointer(start: buffer, count: n)
            hasher.update(bufferPointer: chunk)
            try StoreFiles.writeAll(out, chunk, path: path)
            size += Int64(n)
        }
        return File(path: path, digest: "sha256:" + StoreFiles.hex(hasher.finalize()), size: size)
    }

    /// The staged file for a path the archive's documents name (relative to the archive's top).
    func file(_ named: String, referencedBy document: String) throws -> File {
        let name = try ArchivePath.clean(named, archive: display, what: "\(document) path")
        guard let file = files[name] else { throw ImageStore.ArchiveError.missing(archive: display, path: name) }
        return file
    }

    /// The staged blob a descriptor names, checked against the descriptor's digest and size.
    func blob(_ descriptor: Descriptor) throws -> File {
        guard ImageReference.isDigest(descriptor.digest) else {
            throw ImageStore.ArchiveError.invalid(
                archive: display, reason: "\(descriptor.digest) is not a sha256 digest")
        }
        let file = try file("blobs/sha256/" + descriptor.digest.dropFirst(7), referencedBy: "index")
        // A link named like a blob may point at any file of the archive: the content decides.
        guard file.digest == descriptor.digest else {
            throw ImageStore.Error.digestMismatch(
                what: "\(display): blobs/sha256/\(descriptor.digest.dropFirst(7))", expected: descriptor.digest,
                actual: file.digest)
        }
        guard file.size == descriptor.size else {
            throw ImageStore.ArchiveError.invalid(
                archive: display,
                reason: "blob \(descriptor.digest) has \(file.size) bytes but its descriptor says \(descriptor.size)")
        }
        return file
    }

    /// A JSON document of the archive, refused when it is larger than `archiveJSONLimit`.
    func json<T: Decodable>(_ type: T.Type, _ file: File, name: String) throws -> (T, Data) {
        guard file.size <= ImageStore.archiveJSONLimit else {
            throw ImageStore.ArchiveError.tooLarge(archive: display, path: name, limit: ImageStore.archiveJSONLimit)
        }
        let data = try StoreFiles.read(file.path)
        do {
            return (try JSONDecoder().decode(type, from: data), data)
        } catch {
            throw ImageStore.ArchiveError.invalid(archive: display, reason: "\(name) is not a valid \(type) document")
        }
    }
}

/// Paths inside an image archive.
enum ArchivePath {
    /// `./a//b` → `a/b`. Absolute paths and `..` are refused: nothing the archive says may reach
    /// outside it.
    /// Where a symbolic link entry `name` with `target` points, as an archive path: resolved
    /// lexically from the link's folder, and never outside the archive (nor absolute).
    static func resolve(_ target: String, from name: String, archive: String) throws -> String {
        func hostile(_ reason: String) -> ImageStore.ArchiveError {
            .hostileEntry(archive: archive, entry: DisplayPath.of(Array(name.utf8)), reason: reason)
        }
        guard !target.hasPrefix("/") else { throw hostile("is a symbolic link to an absolute path") }
        var parts = name.split(separator: "/").dropLast().map(String.init)
        for part in target.split(separator: "/") where part != "." {
            if part == ".." {
                guard parts.popLast() != nil else { throw hostile("is a symbolic link out of the archive") }
            } else {
                parts.append(String(part))
            }
        }
        return parts.joined(separator: "/")
    }

    static func clean(_ path: String, archive: String, what: String) throws -> String {
        if path.hasPrefix("/") {
            throw ImageStore.ArchiveError.hostileEntry(
                archive: archive, entry: DisplayPath.of(Array(path.utf8)), reason: "(\(what)) is an absolute path")
        }
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            if part == ".." {
                throw ImageStore.ArchiveError.hostileEntry(
                    archive: archive, entry: DisplayPath.of(Array(path.utf8)),
                    reason: "(\(what)) leaves the archive with '..'")
            }
            parts.append(part)
        }
        return parts.joined(separator: "/")
    }
}

/// The annotation containerd and Docker 25+ put on an index.json entry: the image's full name.
let containerdImageNameAnnotation = "io.containerd.image.name"

/// Turns a staged archive into stored images.
private struct ArchiveLoader {
    let store: ImageStore
    let archive: StagedArchive

    /// One image to store: where its manifest, config and layers are in the archive.
    struct Candidate {
        /// The manifest as the archive holds it (OCI layout), or nil to make one (docker-save).
        var manifest: (descriptor: Descriptor, data: Data, document: OCIManifest)?
        var config: StagedArchive.File
        var layers: [StagedArchive.File]
        var names: [ImageReference] = []
    }

    func run() throws -> [ImageStore.LoadedImage] {
        var candidates: [Candidate]
        let dockerEntries = try archive.files["manifest.json"].map {
            try archive.json([DockerArchiveEntry].self, $0, name: "manifest.json").0
        }
        if let indexFile = archive.files["index.json"], archive.files["oci-layout"] != nil {
            candidates = try ociCandidates(indexFile)
            // Docker 25+ writes both: manifest.json's RepoTags name the same images by config.
            for entry in dockerEntries ?? [] {
                let config = try archive.file(entry.config, referencedBy: "manifest.json")
                for i in candidates.indices where candidates[i].config.digest == config.digest {
                    candidates[i].names += try (entry.repoTags ?? []).map { try ImageReference(parsing: $0) }
                }
            }
        } else if let dockerEntries {
            candidates = try dockerEntries.map { entry in
                let config = try archive.file(entry.config, referencedBy: "manifest.json")
                // The legacy layout names the config by its digest: `<hex>.json`.
                let base = entry.config.split(separator: "/").last.map(String.init) ?? ""
                if base.hasSuffix(".json"), ImageReference.isFullHexID(String(base.dropLast(5))),
                    config.digest != "sha256:" + base.dropLast(5)
                {
                    throw ImageStore.Error.digestMismatch(
                        what: "\(archive.display): \(entry.config)", expected: "sha256:" + base.dropLast(5),
                        actual: config.digest)
                }
                return Candidate(
                    config: config,
                    layers: try entry.layers.map { try archive.file($0, referencedBy: "manifest.json") },
                    names: try (entry.repoTags ?? []).map { try ImageReference(parsing: $0) })
            }
        } else {
            throw ImageStore.ArchiveError.invalid(
                archive: archive.display, reason: "it has neither manifest.json (docker save) nor index.json (OCI)")
        }
        guard !candidates.isEmpty else {
            throw ImageStore.ArchiveError.invalid(archive: archive.display, reason: "it lists no image")
        }

        var layers: [String: ImageStore.Layer] = [:]
        var stored: [(descriptor: Descriptor, id: String, names: [ImageReference])] = []
        for candidate in candidates {
            let (descriptor, id) = try store(candidate, layers: &layers)
            var names: [ImageReference] = []
            for name in candidate.names where !names.contains(name) { names.append(name) }
            stored.append((descriptor, id, names))
        }

        try store.updateIndex { index in
            for image in stored {
                if image.names.isEmpty {
                    // Already in the store (by manifest or by image ID): nothing to add.
                    if !index.manifests.contains(where: {
                        $0.digest == image.descriptor.digest || store.imageID(of: $0) == image.id
                    }) {
                        index.manifests.append(image.descriptor)
                    }
                    continue
                }
                for name in image.names {
                    store.name(image.descriptor, name.normalized, in: &index, imageID: store.imageID(of:))
                }
            }
        }
        return stored.map { .init(id: $0.id, references: $0.names.map(\.familiar)) }
    }

    /// The images of an OCI layout's index.json; a nested index resolves to the host's platform.
    private func ociCandidates(_ indexFile: StagedArchive.File) throws -> [Candidate] {
        let (index, _) = try archive.json(OCIIndex.self, indexFile, name: "index.json")
        var candidates: [Candidate] = []
        for entry in index.manifests {
            var descriptor = entry
            var depth = 0
            while MediaType.indexes.contains(descriptor.mediaType) {
                depth += 1
                guard depth <= 4 else {
                    throw ImageStore.ArchiveError.invalid(archive: archive.display, reason: "its indexes nest too deep")
                }
                let (nested, _) = try archive.json(
                    OCIIndex.self, try archive.blob(descriptor), name: "index \(descriptor.digest)")
                descriptor = try platformManifest(nested)
            }
            guard MediaType.imageManifests.contains(descriptor.mediaType) else {
                throw ImageStore.ArchiveError.invalid(
                    archive: archive.display, reason: "\(descriptor.digest) has media type \(descriptor.mediaType)")
            }
            let (manifest, data) = try archive.json(
                OCIManifest.self, try archive.blob(descriptor), name: "manifest \(descriptor.digest)")
            var names: [ImageReference] = []
            if let name = entry.annotations?[containerdImageNameAnnotation] {
                names.append(try ImageReference(parsing: name))
            } else if let name = entry.refName, name.contains(":") || name.contains("/") {
                // A bare ref.name ("latest", as Docker writes it) is only a tag, no image name.
                names.append(try ImageReference(parsing: name))
            }
            if let same = candidates.firstIndex(where: { $0.manifest?.descriptor.digest == descriptor.digest }) {
                candidates[same].names += names
                continue
            }
            candidates.append(
                Candidate(
                    manifest: (descriptor, data, manifest), config: try archive.blob(manifest.config),
                    layers: try manifest.layers.map { try archive.blob($0) }, names: names))
        }
        return candidates
    }

    /// The entry of a nested index for this host: linux and its architecture.
    private func platformManifest(_ index: OCIIndex) throws -> Descriptor {
        let arch = ImageStore.hostArchitecture
        let matches = index.manifests.filter { $0.platform?.os == "linux" && $0.platform?.architecture == arch }
        // arm64's default variant is v8; prefer an exact one when several are listed.
        guard
            let chosen = matches.first(where: { $0.platform?.variant == nil || $0.platform?.variant == "v8" })
                ?? matches.first
        else {
            throw ImageStore.ArchiveError.noPlatform(archive: archive.display, platform: "linux/\(arch)")
        }
        return chosen
    }

    /// Unpacks and stores one image's layers, config and manifest; returns the index entry to
    /// add and the image ID.
    private func store(_ candidate: Candidate, layers known: inout [String: ImageStore.Layer]) throws -> (
        Descriptor, String
    ) {
        let configName = "config \(candidate.config.digest)"
        let (config, _) = try archive.json(OCIImageConfig.self, candidate.config, name: configName)
        guard config.rootfs.diffIDs.count == candidate.layers.count else {
            throw ImageStore.ArchiveError.invalid(
                archive: archive.display,
                reason: "image \(candidate.config.digest) has \(candidate.layers.count) layers "
                    + "but its config lists \(config.rootfs.diffIDs.count) diff IDs")
        }
        var layerDescriptors: [Descriptor] = []
        for (file, diffID) in zip(candidate.layers, config.rootfs.diffIDs) {
            let layer: ImageStore.Layer
            if let seen = known[file.digest] {
                layer = seen
            } else {
                // A staged file not yet moved into the store, or a blob the store already had.
                let source = Files.exists(file.path) ? file.path : store.blobPath(file.digest)
                layer = try store.ensureLayer(
                    blobPath: source, blobDigest: file.digest, display: "layer \(file.digest) of \(archive.display)",
                    expectedDiffID: diffID)
                try commit(file)
                known[file.digest] = layer
            }
            // ensureLayer trusts a layer the store already knows; the archive's config must agree too.
            guard layer.diffID == diffID else {
                throw ImageStore.Error.digestMismatch(
                    what: "the uncompressed layer \(file.digest)", expected: diffID, actual: layer.diffID)
            }
            layerDescriptors.append(Descriptor(mediaType: layer.mediaType, digest: file.digest, size: file.size))
        }
        try commit(candidate.config)

        var descriptor: Descriptor
        if let manifest = candidate.manifest {
            guard manifest.document.config.digest == candidate.config.digest else {
                throw ImageStore.ArchiveError.invalid(archive: archive.display, reason: "manifest and config disagree")
            }
            try commit(try archive.blob(manifest.descriptor))
            descriptor = Descriptor(
                mediaType: manifest.descriptor.mediaType, digest: manifest.descriptor.digest,
                size: manifest.descriptor.size)
        } else {
            let manifest = OCIManifest(
                config: Descriptor(
                    mediaType: MediaType.config, digest: candidate.config.digest, size: candidate.config.size),
                layers: layerDescriptors)
            descriptor = try store.putBlob(JSON.encode(manifest), mediaType: MediaType.manifest)
        }
        descriptor.platform = Platform(architecture: config.architecture, os: config.os)
        return (descriptor, candidate.config.digest)
    }

    /// Moves a staged file to its content address (a no-op once moved, or when the store has it).
    private func commit(_ file: StagedArchive.File) throws {
        guard Files.exists(file.path) else { return }
        try store.commitBlob(file.path, digest: file.digest)
    }
}
