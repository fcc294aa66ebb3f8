import CCurl
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// The answer to one HTTP request: the status and headers of the last response (after any
/// redirects), and the body unless a sink took it.
struct HTTPResponse {
    var status: Int
    /// Header names in lower case, in the order received.
    var headers: [(name: String, value: String)]
    var body: Data

    func header(_ name: String) -> String? {
        headers.last { $0.name == name }?.value
    }

    var isSuccess: Bool { (200..<300).contains(status) }
}

/// How a connection's TLS is set up for one registry.
struct TLSSettings {
    /// PEM certificates trusted besides the system's (certs.d's *.crt files, concatenated).
    var extraCAs: Data?
    /// A client certificate and its key (certs.d's NAME.cert and NAME.key), when the registry asks.
    var clientCertificate: (certificate: String, key: String)?
    /// Off only for registries listed as insecure: their certificates are not checked (Docker's rule).
    var verify = true
}

/// What one request sends.
enum HTTPBody {
    case none
    case data(Data)
    /// `length` bytes of an open file from `offset` (a chunk of a blob upload); read with pread,
    /// so a request sent again (after a 401) sends the same bytes.
    case file(Int32, offset: Int64, length: Int64)
}

/// One libcurl easy handle, reused request after request so the registry's connection (and its
/// TLS session) is kept. Not for two threads at once: each download thread takes its own.
final class HTTPConnection {
    private let handle: UnsafeMutableRawPointer
    private let tls: TLSSettings

    /// Why a request failed before any HTTP status came back.
    struct TransportError: Swift.Error {
        var code: CURLcode
        var message: String

        /// The TLS handshake failed, not on the certificate (that is CURLE_PEER_FAILED_VERIFICATION):
        /// typically a plain-HTTP server answering the ClientHello ("wrong version number").
        var serverSpeaksPlainHTTP: Bool { code == CURLE_SSL_CONNECT_ERROR }
        var isCertificateProblem: Bool {
            code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE
        }
        /// The network failed (no connection, a cut or stalled transfer): worth trying again, and
        /// what was verified so far is worth keeping. Not so an answer that cannot be followed (a
        /// redirect to file://, a redirect loop) or a transfer berth stopped itself.
        var isTransient: Bool {
            [
                CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_PARTIAL_FILE,
                CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_HTTP2, CURLE_HTTP2_STREAM,
            ].contains(code)
        }
    }

    init(tls: TLSSettings) throws {
        if let error = ccurl_load_error() { throw RegistryError.library(String(cString: error)) }
        guard let handle = ccurl_easy_init() else { throw RegistryError.library("curl_easy_init failed") }
        self.handle = handle
        self.tls = tls
    }

    deinit { ccurl_easy_cleanup(handle) }

    /// Sends one request. A 2xx body goes to `sink` when given (which returns false to abort);
    /// every other body is kept (up to 64 KiB) in the response, for the registry's error message.
    func perform(
        _ method: String, _ url: String, headers: [String] = [], body: HTTPBody = .none,
        sink: ((UnsafeRawBufferPointer) -> Bool)? = nil
    ) throws(TransportError) -> HTTPResponse {
        ccurl_easy_reset(handle)
        let exchange = Exchange(sink: sink, body: body)
        let context = Unmanaged.passUnretained(exchange).toOpaque()
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        var list: UnsafeMutablePointer<curl_slist>? = nil
        // No "Expect: 100-continue" round trip before an upload.
        for line in headers + ["Expect:"] { list = ccurl_slist_append(list, line) }
        defer { ccurl_slist_free_all(list) }

        let code: CURLcode = url.withCString { url in
            errorBuffer.withUnsafeMutableBufferPointer { errorBuffer in
                withExtraCAs { caBlob in
                    ccurl_setopt_pointer(handle, CURLOPT_URL, url)
                    ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer.baseAddress)
                    ccurl_setopt_pointer(handle, CURLOPT_HTTPHEADER, list)
                    ccurl_setopt_pointer(handle, CURLOPT_USERAGENT, userAgent)
                    // Threads: no SIGALRM-based timeouts.
                    ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
                    // Blob GETs are redirected to storage; curl drops Authorization on a redirect to
                    // another host, so the registry's token never reaches it.
                    ccurl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 1)
                    ccurl_setopt_long(handle, CURLOPT_MAXREDIRS, 10)
                    // HTTP(S) only, redirects too: a registry must not send berth to file:// or
                    // gopher://. Refused by a libcurl older than 7.85, and then nothing is sent.
                    guard ccurl_setopt_pointer(handle, CURLOPT_PROTOCOLS_STR, httpProtocols) == CURLE_OK,
                        ccurl_setopt_pointer(handle, CURLOPT_REDIR_PROTOCOLS_STR, httpProtocols) == CURLE_OK
                    else { return CURLE_NOT_BUILT_IN }
                    ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT, 30)
                    // Blobs arrive in 512 KiB reads, not curl's default 16 KiB: a 64 MiB pull makes
                    // 128 receive, write and hash calls per layer instead of 4000.
                    ccurl_setopt_long(handle, CURLOPT_BUFFERSIZE, 512 << 10)
                    // A registry that sends less than 1 KiB/s for a minute (a dead or deliberately
                    // slow peer) is given up on, and retried.
                    ccurl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1024)
                    ccurl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, 60)
                    if !tls.verify {
                        ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 0)
                        ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 0)
                    }
                    // certs.d's CAs must not be dropped silently (libcurl older than 7.77).
                    if let caBlob, ccurl_setopt_pointer(handle, CURLOPT_CAINFO_BLOB, caBlob) != CURLE_OK {
                        return CURLE_NOT_BUILT_IN
                    }
                    if let client = tls.clientCertificate {
                        ccurl_setopt_pointer(handle, CURLOPT_SSLCERT, client.certificate)
                        ccurl_setopt_pointer(handle, CURLOPT_SSLKEY, client.key)
                    }
                    ccurl_setopt_header(handle, headerCallback, context)
                    ccurl_setopt_write(handle, writeCallback, context)
                    switch body {
                    case .none:
                        if method == "HEAD" {
                            ccurl_setopt_long(handle, CURLOPT_NOBODY, 1)
                        } else if method == "POST" {
                            ccurl_setopt_long(handle, CURLOPT_POST, 1)
                            ccurl_setopt_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, 0)
                            // Copied: a plain POSTFIELDS pointer must outlive the transfer.
                            ccurl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, "")
                        } else if method != "GET" {
                            ccurl_setopt_pointer(handle, CURLOPT_CUSTOMREQUEST, method)
                            if method == "PUT" {
                                ccurl_setopt_long(handle, CURLOPT_UPLOAD, 1)
                                ccurl_setopt_offset(handle, CURLOPT_INFILESIZE_LARGE, 0)
                                ccurl_setopt_read(handle, readCallback, context)
                            }
                        }
                    case .data, .file:
                        ccurl_setopt_long(handle, CURLOPT_UPLOAD, 1)
                        ccurl_setopt_offset(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(exchange.uploadLength))
                        ccurl_setopt_read(handle, readCallback, context)
                        if method != "PUT" { ccurl_setopt_pointer(handle, CURLOPT_CUSTOMREQUEST, method) }
                    }
                    let code = ccurl_easy_perform(handle)
                    // The buffer goes with this scope; curl must not keep pointing at it.
                    ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, nil)
                    return code
                }
            }
        }
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            throw TransportError(
                code: code, message: detail.isEmpty ? String(cString: ccurl_easy_strerror(code)) : detail)
        }
        return HTTPResponse(status: exchange.status, headers: exchange.headers, body: exchange.kept)
    }

    /// Runs `body` with a curl_blob of the extra CAs (copied by curl), or nil.
    private func withExtraCAs<T>(_ body: (UnsafeMutableRawPointer?) -> T) -> T {
        guard var pem = tls.extraCAs else { return body(nil) }
        return pem.withUnsafeMutableBytes { bytes in
            var blob = curl_blob(data: bytes.baseAddress, len: bytes.count, flags: UInt32(CURL_BLOB_COPY))
            return withUnsafeMutablePointer(to: &blob) { body(UnsafeMutableRawPointer($0)) }
        }
    }
}

private let userAgent = "berth/0.1"
private let httpProtocols = "http,https"

/// The state of one request that libcurl's callbacks reach through their context pointer.
private final class Exchange {
    var status = 0
    var headers: [(name: String, value: String)] = []
    var kept = Data()
    let sink: ((UnsafeRawBufferPointer) -> Bool)?
    let body: HTTPBody
    var uploaded = 0

    init(sink: ((UnsafeRawBufferPointer) -> Bool)?, body: HTTPBody) {
        self.sink = sink
        self.body = body
    }

    var uploadLength: Int64 {
        switch body {
        case .none: return 0
        case .data(let data): return Int64(data.count)
        case .file(_, _, let length): return length
        }
    }
}

private let headerCallback: ccurl_data_callback = { data, size, count, context in
    let exchange = Unmanaged<Exchange>.fromOpaque(context!).takeUnretainedValue()
    let n = size * count
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: n), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        // A new response (after a redirect or a 100 Continue): only the last one counts.
        let fields = line.split(separator: " ", maxSplits: 2)
        exchange.status = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
        exchange.headers = []
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingWhitespaceAndNewlines()
        exchange.headers.append((name, value))
    }
    return n
}

private let writeCallback: ccurl_data_callback = { data, size, count, context in
    let exchange = Unmanaged<Exchange>.fromOpaque(context!).takeUnretainedValue()
    let n = size * count
    let bytes = UnsafeRawBufferPointer(start: data, count: n)
    if (200..<300).contains(exchange.status), let sink = exchange.sink {
        return sink(bytes) ? n : 0
    }
    // Error bodies are the registry's JSON; anything longer is not worth keeping.
    if exchange.kept.count < 65536 { exchange.kept.append(contentsOf: bytes.prefix(65536 - exchange.kept.count)) }
    return n
}

private let readCallback: ccurl_data_callback = { buffer, size, count, context in
    let exchange = Unmanaged<Exchange>.fromOpaque(context!).takeUnretainedValue()
    let room = size * count
    switch exchange.body {
    case .none:
        return 0
    case .data(let data):
        let n = min(room, data.count - exchange.uploaded)
        data.withUnsafeBytes { bytes in
            _ = memcpy(buffer!, bytes.baseAddress! + exchange.uploaded, n)
        }
        exchange.uploaded += n
        return n
    case .file(let fd, let offset, let length):
        let n = min(room, Int(length) - exchange.uploaded)
        guard n > 0 else { return 0 }
        while true {
            let got = pread(fd, buffer, n, off_t(offset) + off_t(exchange.uploaded))
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { return Int(CURL_READFUNC_ABORT) }
            exchange.uploaded += got
            return got
        }
    }
}
