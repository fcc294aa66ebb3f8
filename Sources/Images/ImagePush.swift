import FoundationEssentials
import Registry
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// What a push reports for each blob it handles.
public enum PushEvent: Sendable {
    case layer(digest: String, PushProgress)
}

public enum PushProgress: Sendable, Equatable {
    case alreadyExists
    case mounted(from: String)
    case pushing(done: Int64, total: Int64)
    case pushed
}

extension ImageStore {
    /// Pushes the image `reference` names to its registry: each layer and the config unless the
    /// repository has it (HEAD), mounted from another repository of the same registry when a
    /// stored image came from there, else uploaded in chunks; then the manifest, byte for byte as
    /// stored, so its digest stays the image's. Returns the manifest digest and size.
    public func push(
        _ reference: ImageReference, client: RegistryClient,
        progress: @escaping @Sendable (PushEvent) -> Void = { _ in }
    ) throws -> (digest: String, size: Int) {
        let index = try readIndex()
        let descriptor = index.manifests[try resolve(reference.familiar, in: index)[0]]
        let manifestData = try readBlob(descriptor.digest)
        let manifest = try JSON.decode(OCIManifest.self, from: manifestData, path: blobPath(descriptor.digest))
        let repository = reference.path
        for blob in manifest.layers + [manifest.config] {
            let report = { (state: PushProgress) in progress(.layer(digest: blob.digest, state)) }
            if try client.blobExists(repository, blob.digest) {
                report(.alreadyExists)
                continue
            }
            if let source = mountSource(blob.digest, registry: reference.domain, except: repository, index: index),
                try client.mountBlob(repository, blob.digest, from: source)
            {
                report(.mounted(from: source))
                continue
            }
            let path = blobPath(blob.digest)
            guard let fd = FileDescriptor(taking: open(path, O_RDONLY | O_CLOEXEC)) else {
                throw StoreFiles.fail("open", path)
            }
            var info = stat()
            guard fstat(fd.rawValue, &info) == 0 else { throw StoreFiles.fail("stat", path) }
            report(.pushing(done: 0, total: Int64(info.st_size)))
            try client.uploadBlob(repository, digest: blob.digest, from: fd.rawValue, size: Int64(info.st_size)) {
                report(.pushing(done: $0, total: Int64(info.st_size)))
            }
            report(.pushed)
        }
        let tag = reference.tag ?? ImageReference.defaultTag
        try client.putManifest(
            repository, tag, data: manifestData, mediaType: manifest.mediaType ?? descriptor.mediaType)
        return (descriptor.digest, manifestData.count)
    }

    /// Another repository of `registry` whose stored image has the blob: the registry can link it
    /// into the target without the bytes being sent again.
    private func mountSource(_ digest: String, registry: String, except repository: String, index: OCIIndex) -> String?
    {
        for d in index.manifests {
            guard let name = d.refName, let ref = try? ImageReference(parsing: name), ref.domain == registry,
                ref.path != repository, let m = try? manifest(d.digest),
                m.layers.contains(where: { $0.digest == digest }) || m.config.digest == digest
            else { continue }
            return ref.path
        }
        return nil
    }
}
