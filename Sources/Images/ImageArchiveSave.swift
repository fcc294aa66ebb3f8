import CArchive
import Crypto
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `docker save`: one tar in Docker 25's combined layout, which `docker load` (old and new),
/// skopeo's `docker-archive:` and `oci-archive:` readers and `berth image load` all accept:
///
///     blobs/sha256/<hex>   manifests, configs and layers, byte for byte as stored
///     index.json           OCI index: one entry per tag (io.containerd.image.name and
///                          org.opencontainers.image.ref.name), or one untagged entry
///     manifest.json        Docker's: Config, RepoTags, Layers as paths into blobs/
///     oci-layout           {"imageLayoutVersion":"1.0.0"}
///     repositories         Docker's legacy name → tag → top layer map
extension ImageStore {
    /// Writes the images `references` name (references, IDs, or a repository: all its tags) to
    /// `path`: a temp file beside it, renamed into place when whole, so a failure never leaves
    /// half an archive where the user looks for one.
    public func save(_ references: [String], toFile path: String) throws {
        // Something that is not a regular file (/dev/stdout, a FIFO, a device) is written into,
        // never replaced: berth runs as root, and a rename over /dev/null would replace the device.
        var info = stat()
        if lstat(path, &info) == 0 && info.st_mode & S_IFMT != S_IFREG {
            guard let out = FileDescriptor(taking: open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)) else {
                throw StoreFiles.fail("open", path)
            }
            return try save(references, to: out.rawValue)
        }
        let parent = Files.parentDirectory(path)
        let dir = parent.isEmpty ? "." : parent
        let temp = dir + "/.berth-save-\(getpid())-\(UUID().uuidString)"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreFiles.fail("create", temp) }
        var done = false
        defer {
            if !done { unlink(temp) }
        }
        do {
            try save(references, to: fd)
            guard fsync(fd) == 0 else { throw StoreFiles.fail("sync", temp) }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        guard rename(temp, path) == 0 else { throw StoreFiles.fail("rename into place", path) }
        done = true
        Files.syncDirectory(dir)
    }

    /// Writes the archive to an open descriptor (standard output); the caller owns `fd`.
    public func save(_ references: [String], to fd: Int32) throws {
        try FileLock.with(gcLockPath, exclusive: false) {
            let images = try imagesToSave(references)
            try ArchiveWriter(fd: fd).write { writer in
                try writeArchive(images, with: writer)
            }
        }
    }

    /// One image of a save: its index entry (without names) and the tags to give it.
    private struct SavedImage {
        var descriptor: Descriptor
        var manifest: OCIManifest
        var names: [ImageReference]
    }

    /// Resolves the arguments to images, merging tags of one manifest, in the order given.
    private func imagesToSave(_ references: [String]) throws -> [SavedImage] {
        let index = try readIndex()
        var images: [SavedImage] = []
        func add(_ entry: Descriptor, named: Bool) throws {
            // Only tags name an image in an archive: docker load and skopeo refuse a digest there.
            let parsed = named ? entry.refName.flatMap { try? ImageReference(parsing: $0) } : nil
            let name = parsed?.tag == nil ? nil : parsed
            if let i = images.firstIndex(where: { $0.descriptor.digest == entry.digest }) {
                if let name, !images[i].names.contains(name) { images[i].names.append(name) }
                return
            }
            let descriptor = Descriptor(mediaType: entry.mediaType, digest: entry.digest, size: entry.size)
            images.append(
                SavedImage(descriptor: descriptor, manifest: try manifest(entry.digest), names: name.map { [$0] } ?? [])
            )
        }
        for text in references {
            // A bare repository (`busybox`) means every tag of it, as Docker's save.
            if !text.split(separator: "/").last!.contains(":"), !text.contains("@"),
                let ref = try? ImageReference(parsing: text)
            {
                let tagged = index.manifests.filter {
                    guard let name = $0.refName.flatMap({ try? ImageReference(parsing: $0) }) else { return false }
                    return name.repository == ref.repository && name.tag != nil
                }
                if !tagged.isEmpty {
                    for entry in tagged { try add(entry, named: true) }
                    continue
                }
            }
            let matches = try resolve(text, in: index)
            // By reference: that tag. By ID: the image without names, as `docker save ID`.
            let byReference =
                (try? ImageReference(parsing: text)).map { ref in
                    index.manifests[matches[0]].refName == ref.normalized
                        || (ref.digest != nil && index.manifests[matches[0]].digest == ref.digest)
                } ?? false
            try add(index.manifests[matches[0]], named: byReference && index.manifests[matches[0]].refName != nil)
        }
        return images
    }

    private func writeArchive(_ images: [SavedImage], with writer: ArchiveWriter) throws {
        try writer.directory("blobs")
        try writer.directory("blobs/sha256")
        var written = Set<String>()
        for image in images {
            for descriptor in [image.descriptor, image.manifest.config] + image.manifest.layers
            where written.insert(descriptor.digest).inserted {
                try writer.file(
                    "blobs/sha256/" + descriptor.digest.dropFirst(7), contentsOf: blobPath(descriptor.digest),
                    digest: descriptor.digest)
            }
        }

        var index = OCIIndex()
        var dockerManifest: [DockerArchiveEntry] = []
        var repositories: [String: [String: String]] = [:]
        for image in images {
            if image.names.isEmpty { index.manifests.append(image.descriptor) }
            for name in image.names {
                var entry = image.descriptor
                entry.annotations = [containerdImageNameAnnotation: name.normalized]
                if let tag = name.tag { entry.annotations?[refNameAnnotation] = tag }
                index.manifests.append(entry)
                if let tag = name.tag, let top = image.manifest.layers.last {
                    repositories[name.familiarRepository, default: [:]][tag] = String(top.digest.dropFirst(7))
                }
            }
            dockerManifest.append(
                DockerArchiveEntry(
                    config: "blobs/sha256/" + image.manifest.config.digest.dropFirst(7),
                    repoTags: image.names.isEmpty ? nil : image.names.map(\.familiar),
                    layers: image.manifest.layers.map { "blobs/sha256/" + $0.digest.dropFirst(7) }))
        }
        try writer.file("index.json", data: JSON.encode(index))
        try writer.file("manifest.json", data: JSON.encode(dockerManifest))
        try writer.file("oci-layout", data: Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8))
        try writer.file("repositories", data: JSON.encode(repositories))
    }
}

/// An entry of Docker's manifest.json (one per image), as `image save` writes it and
/// `image load` reads it.
struct DockerArchiveEntry: Codable {
    var config: String
    var repoTags: [String]?
    var layers: [String]

    enum CodingKeys: String, CodingKey {
        case config = "Config"
        case repoTags = "RepoTags"
        case layers = "Layers"
    }
}

/// A tar written through libarchive to a descriptor, entry by entry.
final class ArchiveWriter {
    private let fd: Int32
    private var a: OpaquePointer?

    init(fd: Int32) { self.fd = fd }

    func write(_ body: (ArchiveWriter) throws -> Void) throws {
        if let problem = carchive_load_error() {
            throw ImageStore.ArchiveError.writeFailed(String(cString: problem))
        }
        guard let a = archive_write_new() else { throw ImageStore.Error.system("allocate", "the archive", ENOMEM) }
        self.a = a
        defer { archive_write_free(a) }
        archive_write_set_format_pax_restricted(a)
        // No padding of the last block beyond the tar's own: a pipe reader sees the exact end.
        archive_write_set_bytes_in_last_block(a, 1)
        try check(archive_write_open_fd(a, fd), "opening")
        try body(self)
        try check(archive_write_close(a), "finishing")
    }

    func directory(_ name: String) throws {
        try header(name + "/", type: S_IFDIR, perm: 0o755, size: 0)
    }

    func file(_ name: String, data: Data) throws {
        try header(name, type: S_IFREG, perm: 0o644, size: Int64(data.count))
        try data.withUnsafeBytes { try put($0) }
        try check(archive_write_finish_entry(a), "\(name)")
    }

    /// Copies a stored blob into the archive, checking on the way that it still hashes to its
    /// name: a damaged store must not turn into a damaged archive.
    func file(_ name: String, contentsOf path: String, digest: String) throws {
        let input = open(path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw StoreFiles.fail("open", path) }
        defer { close(input) }
        var st = stat()
        guard fstat(input, &st) == 0 else { throw StoreFiles.fail("stat", path) }
        try header(name, type: S_IFREG, perm: 0o644, size: Int64(st.st_size))
        var hasher = SHA256()
        let capacity = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var total: Int64 = 0
        while total < Int64(st.st_size) {
            let n = read(input, buffer, min(capacity, Int(Int64(st.st_size) - total)))
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreFiles.fail("read", path)
            }
            guard n > 0 else { throw StoreFiles.fail("read", path, EIO) }
            let chunk = UnsafeRawBufferPointer(start: buffer, count: n)
            hasher.update(bufferPointer: chunk)
            try put(chunk)
            total += Int64(n)
        }
        let actual = "sha256:" + StoreFiles.hex(hasher.finalize())
        guard actual == digest else {
            throw ImageStore.Error.digestMismatch(what: path, expected: digest, actual: actual)
        }
        try check(archive_write_finish_entry(a), "\(name)")
    }

    private func header(_ name: String, type: mode_t, perm: mode_t, size: Int64) throws {
        guard let entry = archive_entry_new() else { throw ImageStore.Error.system("allocate", name, ENOMEM) }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, name)
        archive_entry_set_filetype(entry, UInt32(type))
        archive_entry_set_perm(entry, perm)
        archive_entry_set_size(entry, size)
        archive_entry_set_mtime(entry, 0, 0)
        try check(archive_write_header(a, entry), "header of \(name)")
    }

    private func put(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = archive_write_data(a, bytes.baseAddress! + offset, bytes.count - offset)
            // 0 or less: libarchive failed (its status is in the error it keeps).
            if n <= 0 { try check(ARCHIVE_FATAL, "data") }
            offset += n
        }
    }

    private func check(_ status: Int32, _ what: String) throws {
        guard status < ARCHIVE_WARN, let a else { return }
        let err = archive_errno(a)
        let text = archive_error_string(a).map { String(cString: $0) } ?? String(cString: strerror(err > 0 ? err : EIO))
        throw ImageStore.ArchiveError.writeFailed("\(what): \(text)")
    }
}
