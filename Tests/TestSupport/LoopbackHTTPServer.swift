import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One HTTP/1.1 request as the loopback servers see it.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The request target: path and query.
    public var target: String
    public var path: String
    /// The query's parameters, percent-decoded, in order (a name may come more than once).
    public var query: [(name: String, value: String)]
    /// Header fields by lowercased name.
    public var headers: [String: String]
    public var body: Data

    public func parameters(_ name: String) -> [String] { query.filter { $0.name == name }.map(\.value) }

    /// Decodes `a=1&b=x%20y` (form or query encoding).
    public static func decodeForm(_ text: Substring) -> [(name: String, value: String)] {
        text.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                let spaced = s.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }
}

/// A gate that a response waits at until it is opened (for a stalled blob).
public final class Gate: @unchecked Sendable {
    private let condition = NSCondition()
    private var isOpen = false

    public init() {}

    public func open() {
        condition.lock()
        isOpen = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until the gate opens, for `seconds` at most; whether it opened.
    @discardableResult
    public func wait(seconds: Double = 300) -> Bool {
        let deadline = Date() + seconds
        condition.lock()
        defer { condition.unlock() }
        while !isOpen {
            if !condition.wait(until: deadline) { return isOpen }
        }
        return true
    }
}

/// What a handler answers.
public struct HTTPResponse {
    public var status: Int
    public var headers: [(String, String)]
    public var body: Data
    /// Send this many bytes of the body, then wait at `gate` before sending the rest.
    public var stall: (bytes: Int, gate: Gate)?

    public init(status: Int, headers: [(String, String)] = [], body: Data = Data()) {
        (self.status, self.headers, self.body) = (status, headers, body)
    }

    public static func json(_ status: Int, _ object: Any, headers: [(String, String)] = []) -> HTTPResponse {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return HTTPResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: data)
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 and a port of the kernel's choice: one thread accepts, one
/// thread per connection answers one request and closes (`Connection: close`). For the test
/// fixtures only; stopped when it goes.
public final class LoopbackHTTPServer: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let handler: @Sendable (HTTPRequest) -> HTTPResponse
    private let lock = NSLock()
    private var stopping = false
    private let acceptEnded = DispatchSemaphore(value: 0)

    public init(handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket: errno \(errno)") }
        var address = loopbackAddress(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw FixtureError("bind/listen on 127.0.0.1: errno \(errno)")
        }
        listener = fd
        port = try boundPort(fd)
        self.handler = handler
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    public var host: String { "127.0.0.1:\(port)" }

    private var isStopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopping
    }

    public func stop() {
        lock.lock()
        let first = !stopping
        stopping = true
        lock.unlock()
        guard first else { return }
        acceptEnded.wait()
        close(listener)
    }

    deinit { stop() }

    private func acceptLoop() {
        defer { acceptEnded.signal() }
        while !isStopping {
            var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 100) > 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            var timeout = timeval(tv_sec: 30, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let handler = handler
            Thread.detachNewThread { Self.serve(connection, handler) }
        }
    }

    private static func serve(_ fd: Int32, _ handler: (HTTPRequest) -> HTTPResponse) {
        defer { close(fd) }
        guard let request = readRequest(fd) else { return }
        let response = handler(request)
        let reasons = [
            200: "OK", 201: "Created", 202: "Accepted", 206: "Partial Content", 400: "Bad Request",
            401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 416: "Range Not Satisfiable",
        ]
        var head = "HTTP/1.1 \(response.status) \(reasons[response.status] ?? "Status")\r\n"
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(response.body.count)\r\nConnection: close\r\n\r\n"
        guard send(fd, Data(head.utf8)) else { return }
        if request.method != "HEAD" {
            if let stall = response.stall {
                let first = min(stall.bytes, response.body.count)
                guard send(fd, response.body.prefix(first)) else { return }
                stall.gate.wait()
                guard send(fd, response.body.dropFirst(first)) else { return }
            } else {
                guard send(fd, response.body) else { return }
            }
        }
        shutdown(fd, Int32(SHUT_WR))
        // Let the client close first, so that it never sees a reset before reading it all.
        var sink = [UInt8](repeating: 0, count: 4096)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        while recv(fd, &sink, sink.count, 0) > 0 {}
    }

    /// Whether all of `data` went out (false once the client is gone; never SIGPIPE).
    private static func send(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }

    private static func readRequest(_ fd: Int32) -> HTTPRequest? {
        var buffer = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        let separator = Data("\r\n\r\n".utf8)
        var headEnd: Range<Data.Index>?
        while headEnd == nil {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && errno == EINTR { continue }
            guard n > 0, buffer.count < 1 << 20 else { return nil }
            buffer.append(contentsOf: chunk[0..<n])
            // A TLS client hello (a client trying HTTPS first): answer in plain HTTP, as a plain
            // HTTP server does, so that the client sees at once that this one does not speak TLS.
            if buffer.first == 0x16 {
                _ = send(fd, Data("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".utf8))
                return nil
            }
            headEnd = buffer.range(of: separator)
        }
        let head = String(decoding: buffer[..<headEnd!.lowerBound], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        var body = Data(buffer[headEnd!.upperBound...])
        let length = headers["content-length"].flatMap { Int($0) } ?? 0
        while body.count < length {
            let n = recv(fd, &chunk, min(chunk.count, length - body.count), 0)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            body.append(contentsOf: chunk[0..<n])
        }
        let target = String(requestLine[1])
        let pathEnd = target.firstIndex(of: "?") ?? target.endIndex
        let query = pathEnd < target.endIndex ? HTTPRequest.decodeForm(target[target.index(after: pathEnd)...]) : []
        return HTTPRequest(
            method: String(requestLine[0]), target: target, path: String(target[..<pathEnd]), query: query,
            headers: headers, body: body)
    }
}
