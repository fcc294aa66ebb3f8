import Foundation

/// A registry of the distribution API's read side (GET/HEAD of /v2/, manifests and blobs) served
/// from memory on 127.0.0.1, every response with `Connection: close`, for what a real registry
/// cannot do: hold a chosen blob halfway until released (a pull killed mid-download), or serve a
/// manifest of any media type. Every request is logged. Plain HTTP, no auth.
public final class FakeRegistry: @unchecked Sendable {
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var range: String?
    }

    private struct Manifest {
        var mediaType: String
        var data: Data
    }

    private let lock = NSLock()
    private var manifests: [String: Manifest] = [:]  // "NAME@REFERENCE" (a tag or a digest)
    private var blobs: [String: Data] = [:]
    private var stalls: [String: Int] = [:]
    private var gate = Gate()
    private var log: [Request] = []
    private var server: LoopbackHTTPServer?

    public init() throws {
        server = try LoopbackHTTPServer { [unowned self] request in self.handle(request) }
    }

    deinit {
        release()
        server?.stop()
    }

    public var host: String { server!.host }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Serves `data` as a blob of every repository; its digest.
    @discardableResult
    public func addBlob(_ data: Data) -> String {
        let digest = OCILayoutBuilder.sha256(data)
        locked { blobs[digest] = data }
        return digest
    }

    /// Serves `data` as NAME's manifest by its digest and, when given, by `tag`, with `mediaType`
    /// as its Content-Type (whatever the JSON says); its digest.
    @discardableResult
    public func addManifest(_ data: Data, mediaType: String, repository: String, tag: String? = nil) -> String {
        let digest = OCILayoutBuilder.sha256(data)
        locked {
            manifests["\(repository)@\(digest)"] = Manifest(mediaType: mediaType, data: data)
            if let tag { manifests["\(repository)@\(tag)"] = Manifest(mediaType: mediaType, data: data) }
        }
        return digest
    }

    /// Serves a layout's blobs, its manifests and indexes by digest as REPOSITORY's, and
    /// `descriptor` (one of them) as REPOSITORY:TAG.
    public func serve(_ layout: OCILayoutBuilder, _ descriptor: OCIDescriptor, as repository: String, tag: String)
        throws
    {
        let dir = layout.path + "/blobs/sha256"
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
            addBlob(data)
            if data.first == UInt8(ascii: "{"),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let mediaType = object["mediaType"] as? String,
                mediaType == OCILayoutBuilder.manifestType || mediaType == OCILayoutBuilder.indexType
            {
                addManifest(data, mediaType: mediaType, repository: repository)
            }
        }
        addManifest(
            try layout.readBlob(descriptor.digest), mediaType: descriptor.mediaType, repository: repository, tag: tag)
    }

    /// Sends the first `bytes` of blob `digest`, then holds the rest until `release()`.
    public func stall(_ digest: String, after bytes: Int) { locked { stalls[digest] = bytes } }

    /// Lets every held response finish; later fetches of those blobs are served at once.
    public func release() {
        let opened = locked {
            stalls = [:]
            let old = gate
            gate = Gate()
            return old
        }
        opened.open()
    }

    public var requests: [Request] { locked { log } }

    /// How many GET requests asked for blob `digest`.
    public func blobGETs(_ digest: String) -> Int {
        requests.filter { $0.method == "GET" && $0.path.hasSuffix("/blobs/\(digest)") }.count
    }

    private func handle(_ request: HTTPRequest) -> HTTPResponse {
        locked { log.append(Request(method: request.method, path: request.path, range: request.headers["range"])) }
        let api = [("Docker-Distribution-API-Version", "registry/2.0")]
        guard request.method == "GET" || request.method == "HEAD" else {
            return .json(405, error("UNSUPPORTED", "the fake registry is read-only"), headers: api)
        }
        if request.path == "/v2/" || request.path == "/v2" { return .json(200, [String: String](), headers: api) }
        guard request.path.hasPrefix("/v2/") else { return .json(404, error("NOT_FOUND", "not found"), headers: api) }
        let rest = request.path.dropFirst(4)
        if let at = rest.range(of: "/manifests/", options: .backwards) {
            let name = rest[..<at.lowerBound]
            let reference = rest[at.upperBound...]
            guard let manifest = locked({ manifests["\(name)@\(reference)"] }) else {
                return .json(404, error("MANIFEST_UNKNOWN", "manifest unknown"), headers: api)
            }
            var response = HTTPResponse(
                status: 200,
                headers: api + [
                    ("Content-Type", manifest.mediaType),
                    ("Docker-Content-Digest", OCILayoutBuilder.sha256(manifest.data)),
                ],
                body: manifest.data)
            response.headers.append(("Etag", "\"\(OCILayoutBuilder.sha256(manifest.data))\""))
            return response
        }
        if let at = rest.range(of: "/blobs/", options: .backwards) {
            let digest = String(rest[at.upperBound...])
            let (found, stall, gate): (Data?, Int?, Gate) = locked { (blobs[digest], stalls[digest], self.gate) }
            guard let data = found else { return .json(404, error("BLOB_UNKNOWN", "blob unknown"), headers: api) }
            let headers =
                api + [("Content-Type", "application/octet-stream"), ("Docker-Content-Digest", digest)]
            // A range `bytes=N-` (a client resuming): 206 with the rest.
            if let range = request.headers["range"], range.hasPrefix("bytes="),
                let dash = range.firstIndex(of: "-"),
                let start = Int(range[range.index(range.startIndex, offsetBy: 6)..<dash]),
                range[range.index(after: dash)...].isEmpty
            {
                guard start < data.count else {
                    return HTTPResponse(status: 416, headers: headers + [("Content-Range", "bytes */\(data.count)")])
                }
                return HTTPResponse(
                    status: 206,
                    headers: headers + [("Content-Range", "bytes \(start)-\(data.count - 1)/\(data.count)")],
                    body: data.dropFirst(start))
            }
            var response = HTTPResponse(status: 200, headers: headers + [("Accept-Ranges", "bytes")], body: data)
            if let stall, request.method == "GET" { response.stall = (stall, gate) }
            return response
        }
        return .json(404, error("NOT_FOUND", "not found"), headers: api)
    }

    private func error(_ code: String, _ message: String) -> [String: Any] {
        ["errors": [["code": code, "message": message, "detail": NSNull()]]]
    }
}
