import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Garbage collection: deleting blobs and unpacked layers no reference reaches, and whatever
/// imports left in tmp/.
///
/// It runs under gc.lock held exclusively. Everything that adds content (imports, the late unpack
/// in `makeImage`) holds gc.lock shared for as long as it works, including all its work in tmp/.
/// So a collection never takes a blob an import has written but not yet referenced, and whatever
/// tmp/ holds while the collection has the lock belongs to no live process: an import that was
/// killed, or that failed and could not clean up. flock(2) locks die with their process, so a
/// killed import never keeps its leftovers from being collected.
extension ImageStore {
    /// What one garbage collection deleted, and what it should have deleted but could not.
    public struct GarbageReport {
        /// Digests of the blobs deleted.
        public var removedBlobs: [String] = []
        /// Diff IDs of the unpacked layers deleted.
        public var removedLayers: [String] = []
        /// What stays although nothing uses it (a blob digest, a layer diff ID or a tmp/ name), and
        /// why. The next collection tries again.
        public var kept: [(item: String, error: ImageStore.Error)] = []
        /// Why the collection deleted no blob or layer at all: a damaged manifest or config makes
        /// it unknowable what that image uses, and the store never deletes on a guess.
        public var skipped: ImageStore.Error?
    }

    /// Deletes blobs, layers and temp files that no reference reaches. Waits for imports in
    /// progress (they hold gc.lock shared), so their new blobs are never taken.
    @discardableResult
    public func collectGarbage() throws -> GarbageReport {
        try FileLock.with(gcLockPath, exclusive: true) { try collectLocked() }
    }

    /// A collection only if nothing holds gc.lock now: after a pull or load that succeeded, whose
    /// caller must not wait behind a long `image save` or another pull for housekeeping. What it
    /// skips, the next collection does.
    public func collectGarbageIfIdle() throws {
        guard let lock = try FileLock.tryExclusive(gcLockPath) else { return }
        defer { lock.unlock() }
        _ = try collectLocked()
    }

    /// A collection for a caller that holds gc.lock exclusively already.
    func collectLocked() throws -> GarbageReport {
        var report = GarbageReport()
        for name in Files.names(in: tmpDir) {
            do {
                try StoreFiles.removeTree(tmpDir + "/" + name)
            } catch let error as ImageStore.Error {
                report.kept.append((name, error))
            }
        }

        let blobs: Set<String>
        let layers: Set<String>
        switch try referencedContent() {
        case .success(let content): (blobs, layers) = content
        case .failure(let damage):
            report.skipped = damage
            return report
        }
        for name in Files.names(in: blobsDir) where !blobs.contains("sha256:" + name) {
            if unlink(blobsDir + "/" + name) == 0 || errno == ENOENT {
                report.removedBlobs.append("sha256:" + name)
            } else {
                report.kept.append(("sha256:" + name, StoreFiles.fail("remove", blobsDir + "/" + name)))
            }
        }
        for name in Files.names(in: layersDir) where !layers.contains("sha256:" + name) {
            do {
                try removeLayer(name)
                report.removedLayers.append("sha256:" + name)
            } catch let error as ImageStore.Error {
                report.kept.append(("sha256:" + name, error))
            }
        }
        return report
    }

    /// Deletes the unpacked layer `layers/sha256/<name>`. It is first renamed into tmp/, one
    /// atomic step, so a collection cut short never leaves a half-deleted tree in layers/, where
    /// an import would take it for the whole layer; the rest of it goes with tmp/ next time.
    private func removeLayer(_ name: String) throws {
        let path = layersDir + "/" + name
        let doomed = tmpDir + "/removing-layer-\(name)-\(getpid())-\(UUID().uuidString)"
        guard rename(path, doomed) == 0 else {
            if errno == ENOENT { return }
            throw StoreFiles.fail("move away the layer directory", path)
        }
        try StoreFiles.removeTree(doomed)
    }

    /// The blob digests and diff IDs the index, a build-cache entry or a lease reaches, or the
    /// damage that hides some of them. Build-cache entries whose image is gone or damaged are
    /// removed here: the cache is only ever a shortcut, and the index's images decide alone
    /// whether damage stops the collection.
    private func referencedContent() throws -> Result<(Set<String>, Set<String>), ImageStore.Error> {
        var (blobs, layers) = Lease.held(in: self)
        for entry in buildCacheEntries(removingDamaged: true) {
            blobs.formUnion(entry.blobs)
            layers.formUnion(entry.diffIDs)
        }
        for d in try readIndex().manifests {
            blobs.insert(d.digest)
            let m: OCIManifest
            let c: OCIImageConfig
            do {
                m = try manifest(d.digest)
                blobs.insert(m.config.digest)
                for layer in m.layers { blobs.insert(layer.digest) }
                c = try imageConfig(m.config.digest)
            } catch let damage as ImageStore.Error {
                return .failure(damage)
            }
            layers.formUnion(c.rootfs.diffIDs)
        }
        return .success((blobs, layers))
    }
}

/// A pull's claim on the content it brings before index.json names it: ROOT/images/leases/ID.json
/// lists the blobs and diff IDs, and garbage collection keeps them while the lease is there. A pull
/// removes its lease when it ends; one that was killed leaves it, so what it verified is still
/// there for the next pull, until the lease expires a day later (containerd keeps ingests as long).
struct Lease {
    let path: String

    static let lifetime: Double = 24 * 3600

    private struct Content: Codable {
        var blobs: [String]
        var layers: [String]
    }

    static func directory(_ store: ImageStore) -> String { store.dir + "/leases" }

    init(store: ImageStore, blobs: [String], layers: [String]) throws {
        try self.init(store: store, name: UUID().uuidString, blobs: blobs, layers: layers)
    }

    /// A lease with a name of its own (a layer a build captured), written again (and so renewed)
    /// by each holder of that name.
    init(store: ImageStore, name: String, blobs: [String], layers: [String]) throws {
        try StoreFiles.mkdirs(Self.directory(store))
        path = Self.directory(store) + "/\(name).json"
        try StoreFiles.writeAtomically(JSON.encode(Content(blobs: blobs, layers: layers)), to: path)
    }

    /// Removes the lease `name`, if there is one.
    static func release(_ name: String, in store: ImageStore) {
        unlink(directory(store) + "/\(name).json")
    }

    func release() { unlink(path) }

    /// What the live leases hold; expired and unreadable ones are removed (under gc.lock).
    static func held(in store: ImageStore) -> (blobs: Set<String>, layers: Set<String>) {
        var blobs = Set<String>()
        var layers = Set<String>()
        let dir = directory(store)
        let now = Date().timeIntervalSince1970
        for name in Files.names(in: dir) {
            let path = dir + "/" + name
            var info = stat()
            guard stat(path, &info) == 0 else { continue }
            guard Double(info.st_mtim.tv_sec) > now - lifetime,
                let content = try? JSONDecoder().decode(Content.self, from: StoreFiles.read(path))
            else {
                unlink(path)
                continue
            }
            blobs.formUnion(content.blobs)
            layers.formUnion(content.layers)
        }
        return (blobs, layers)
    }
}
