import Crypto
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A manifest or index as the registry sent it, with the digest of those exact bytes.
public struct FetchedManifest: Sendable {
    public var data: Data
    public var mediaType: String
    public var digest: String
}

extension RegistryClient {
    /// The media types berth asks manifests in: OCI's and Docker's, single images and lists.
    public static let manifestMediaTypes = [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]

    /// Manifests and configs are small; a registry sending more is refused (containerd's limit).
    static let documentLimit: Int64 = 4 << 20

    /// The manifest `reference` (a tag or a digest) names, verified: by digest, the bytes must
    /// hash to it; by tag, to the Docker-Content-Digest the registry announces, if any.
    public func manifest(_ repository: String, _ reference: String) throws -> FetchedManifest {
        let what =
            "manifest for \(registry.name)/\(repository)\(reference.hasPrefix("sha256:") ? "@" : ":")\(reference)"
        let (response, data) = try document(
            "/v2/\(repository)/manifests/\(reference)", scope: Self.pullScope(repository), what: what,
            headers: ["Accept: " + Self.manifestMediaTypes.joined(separator: ", ")])
        let digest = "sha256:" + SHA256.hash(data: data).hexString
        let expected = reference.hasPrefix("sha256:") ? reference : response.header("docker-content-digest")
        if let expected, expected != digest {
            throw RegistryError.digestMismatch(what: what, expected: expected, actual: digest)
        }
        var mediaType = response.header("content-type").map { String($0.prefix { $0 != ";" }) } ?? ""
        if !Self.manifestMediaTypes.contains(mediaType) {
            // Registries may answer with a generic type; the document says what it is.
            struct Typed: Decodable { var mediaType: String? }
            mediaType = (try? JSONDecoder().decode(Typed.self, from: data))?.mediaType ?? mediaType
        }
        return FetchedManifest(data: data, mediaType: mediaType, digest: digest)
    }

    /// A JSON document (manifest, config, list) in memory, from a 2xx answer only; a registry
    /// sending more than `documentLimit` bytes is cut off.
    func document(_ path: String, scope: String, what: String, headers: [String] = []) throws -> (HTTPResponse, Data) {
        var data = Data()
        var overflow = false
        let response: HTTPResponse
        do {
            response = try send(
                "GET", path, scope: scope, headers: headers,
                sink: { bytes in
                    data.append(contentsOf: bytes)
                    overflow = Int64(data.count) > Self.documentLimit
                    return !overflow
                })
        } catch RegistryError.transfer(_, _) where overflow {
            throw RegistryError.tooLarge(what, limit: Self.documentLimit)
        }
        guard response.isSuccess else { throw failure(what, response) }
        return (response, data)
    }

    /// A small blob (an image config) in memory, verified against its digest.
    public func blobData(_ repository: String, _ digest: String) throws -> Data {
        let what = "blob \(digest) of \(registry.name)/\(repository)"
        let (_, data) = try document("/v2/\(repository)/blobs/\(digest)", scope: Self.pullScope(repository), what: what)
        let actual = "sha256:" + SHA256.hash(data: data).hexString
        guard actual == digest else { throw RegistryError.digestMismatch(what: what, expected: digest, actual: actual) }
        return data
    }

    /// Streams a blob into the file `fd` (from its start), hashing on the way, and checks both its
    /// size and digest: a registry that sends more than `size` bytes is cut off at once. Transport
    /// failures and 5xx answers are retried with backoff (0.5, 1, 2 s), from the start of the blob.
    /// `progress` gets the bytes written so far.
    public func downloadBlob(
        _ repository: String, digest: String, size: Int64, into fd: Int32, progress: (Int64) -> Void = { _ in }
    ) throws {
        // The sink that reports progress is kept by the request only while it runs.
        try withoutActuallyEscaping(progress) { progress in
            try download(repository, digest: digest, size: size, into: fd, progress: progress)
        }
    }

    private func download(
        _ repository: String, digest: String, size: Int64, into fd: Int32, progress: @escaping (Int64) -> Void
    ) throws {
        let what = "blob \(digest) of \(registry.name)/\(repository)"
        var attempt = 0
        while true {
            attempt += 1
            // Only a retry starts over (a truncation to zero would also make ext4 flush the file
            // on close, on top of the caller's fsync).
            guard attempt == 1 || (ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0) else {
                throw RegistryError.file("the download of \(digest)", String(cString: strerror(errno)))
            }
            var hasher = SHA256()
            var written: Int64 = 0
            var writeError: Int32 = 0
            // curl hands over at most 16 KiB at a time; the file gets 1 MiB writes.
            var pending: [UInt8] = []
            pending.reserveCapacity(1 << 20)
            func flush() -> Bool {
                defer { pending.removeAll(keepingCapacity: true) }
                do { try pending.withUnsafeBytes { try Files.writeAll(fd, $0, path: digest) } } catch {
                    writeError = errno
                    return false
                }
                return true
            }
            let response: HTTPResponse
            do {
                response = try send(
                    "GET", "/v2/\(repository)/blobs/\(digest)", scope: Self.pullScope(repository),
                    sink: { bytes in
                        guard written + Int64(bytes.count) <= size else {
                            written += Int64(bytes.count)
                            return false
                        }
                        hasher.update(bufferPointer: bytes)
                        pending.append(contentsOf: bytes)
                        written += Int64(bytes.count)
                        if pending.count >= 1 << 20 && !flush() { return false }
                        progress(written)
                        return true
                    })
                guard flush() else {
                    throw RegistryError.file("the download of \(digest)", String(cString: strerror(writeError)))
                }
            } catch let error as RegistryError {
                // Stopped by the sink: the registry sent too much, or the file could not be written.
                if written > size { throw RegistryError.tooLarge(what, limit: size) }
                if writeError != 0 {
                    throw RegistryError.file("the download of \(digest)", String(cString: strerror(writeError)))
                }
                // Only the network's failures are tried again.
                guard case .unreachable = error, attempt < 4 else { throw error }
                usleep(UInt32(250_000 << attempt))
                continue
            }
            if (500..<600).contains(response.status) && attempt < 4 {
                usleep(UInt32(250_000 << attempt))
                continue
            }
            guard response.isSuccess else { throw failure(what, response) }
            guard written == size else { throw RegistryError.sizeMismatch(what, expected: size, actual: written) }
            let actual = "sha256:" + hasher.finalize().hexString
            guard actual == digest else {
                throw RegistryError.digestMismatch(what: what, expected: digest, actual: actual)
            }
            return
        }
    }
}
