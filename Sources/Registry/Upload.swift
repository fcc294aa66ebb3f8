import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

extension RegistryClient {
    /// Whether the repository already has the blob (`HEAD`), so a push can skip it.
    public func blobExists(_ repository: String, _ digest: String) throws -> Bool {
        let response = try send("HEAD", "/v2/\(repository)/blobs/\(digest)", scope: Self.pushScope(repository))
        if response.status == 404 { return false }
        guard response.isSuccess else { throw failure("blob \(digest) of \(registry.name)/\(repository)", response) }
        return true
    }

    /// Cross-repository mount: asks the registry to link a blob `source` (a repository of the same
    /// registry) has into `repository`, without sending it. True when mounted; a registry that
    /// cannot mount it starts an upload instead, which is abandoned (the blob is then sent).
    public func mountBlob(_ repository: String, _ digest: String, from source: String) throws -> Bool {
        let path = "/v2/\(repository)/blobs/uploads/?mount=\(Self.percentEncoded(digest))&from=\(source)"
        let response = try send(
            "POST", path, scope: Self.pushScope(repository) + " " + Self.pullScope(source))
        return response.status == 201
    }

    /// Uploads a blob from `fd` in chunks (`POST` for a session, a `PATCH` per chunk, `PUT` with the
    /// digest to finish), as the distribution spec's chunked upload. `progress` gets bytes sent.
    public func uploadBlob(
        _ repository: String, digest: String, from fd: Int32, size: Int64, chunkSize: Int64 = 32 << 20,
        progress: (Int64) -> Void = { _ in }
    ) throws {
        let what = "upload of \(digest) to \(registry.name)/\(repository)"
        let scope = Self.pushScope(repository)
        var response = try send("POST", "/v2/\(repository)/blobs/uploads/", scope: scope)
        guard response.status == 202, var location = response.header("location") else {
            throw failure(what, response)
        }
        var sent: Int64 = 0
        while sent < size {
            let length = min(chunkSize, size - sent)
            response = try send(
                "PATCH", absolute(location), scope: scope,
                headers: ["Content-Type: application/octet-stream", "Content-Range: \(sent)-\(sent + length - 1)"],
                body: .file(fd, offset: sent, length: length))
            guard response.status == 202, let next = response.header("location") else { throw failure(what, response) }
            location = next
            sent += length
            progress(sent)
        }
        let finish = absolute(location)
        response = try send(
            "PUT", finish + (finish.contains("?") ? "&" : "?") + "digest=" + Self.percentEncoded(digest), scope: scope,
            headers: ["Content-Type: application/octet-stream"])
        guard response.status == 201 || response.status == 204 else { throw failure(what, response) }
    }

    /// Puts a manifest (or index) under a tag; returns the digest the registry gives it.
    @discardableResult
    public func putManifest(_ repository: String, _ reference: String, data: Data, mediaType: String) throws -> String?
    {
        let response = try send(
            "PUT", "/v2/\(repository)/manifests/\(reference)", scope: Self.pushScope(repository),
            headers: ["Content-Type: " + mediaType], body: .data(data))
        guard response.isSuccess else {
            throw failure("push of the manifest \(registry.name)/\(repository):\(reference)", response)
        }
        return response.header("docker-content-digest")
    }

    /// A Location header as `send` takes it: absolute, or a path from the registry's root.
    private func absolute(_ location: String) -> String {
        location.hasPrefix("http://") || location.hasPrefix("https://") || location.hasPrefix("/")
            ? location : "/" + location
    }
}
