import Crypto
import Foundation

/// Docker's token authentication (distribution's docs/spec/auth/token.md) on 127.0.0.1: the
/// registry answers 401 with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, the client
/// asks `GET /token?service=S&scope=repository:NAME:pull,push` (Basic credentials optional, or a
/// POST of an OAuth2 password grant) and presents the JWT it gets. The JWT is ES256-signed with a
/// key whose self-signed certificate (made by openssl) is the registry's rootcertbundle, and
/// carries that certificate in its `x5c` header.
///
/// Anonymous clients get the requested actions that `anonymousActions` allows; a known user every
/// action asked for; wrong credentials 401. Every request is recorded.
public final class TokenServer: @unchecked Sendable {
    public struct Request: Sendable {
        public var method: String
        /// The user of valid credentials; nil for an anonymous request (or wrong credentials).
        public var user: String?
        /// Whether credentials came and did not match.
        public var rejected: Bool
        public var service: String?
        /// `repository:NAME:ACTIONS`, as asked.
        public var scopes: [String]
        /// The actions granted, per `type:name`.
        public var granted: [String: [String]]
    }

    public let service = "berth-test-registry"
    public let issuer = "berth-test-token-issuer"
    public let users: [String: String]
    public let anonymousActions: Set<String>
    public let directory: TemporaryDirectory
    /// The signing key's certificate (PEM): the registry's `auth.token.rootcertbundle`.
    public var certificatePath: String { directory.path + "/token.crt" }
    private let key: P256.Signing.PrivateKey
    private let certificateDER: String
    private var server: LoopbackHTTPServer?
    private let lock = NSLock()
    private var recorded: [Request] = []

    public init(users: [String: String] = [:], anonymousActions: Set<String> = ["pull"]) throws {
        (self.users, self.anonymousActions) = (users, anonymousActions)
        directory = try TemporaryDirectory("berth-test-token")
        key = P256.Signing.PrivateKey()
        try directory.write("token.key", key.pemRepresentation)
        try Command.check(
            "openssl",
            [
                "req", "-x509", "-new", "-key", directory.path + "/token.key", "-out", directory.path + "/token.crt",
                "-days", "2", "-subj", "/CN=\(issuer)",
            ])
        let pem = try String(contentsOfFile: directory.path + "/token.crt", encoding: .utf8)
        certificateDER = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        server = try LoopbackHTTPServer { [unowned self] request in self.handle(request) }
    }

    deinit { server?.stop() }

    public var port: Int { server!.port }
    public var realm: String { "http://127.0.0.1:\(port)/token" }

    /// The registry's `auth.token` section for this server.
    public var registryAuth: RegistryServer.TokenAuth {
        .init(realm: realm, service: service, issuer: issuer, rootCertBundle: certificatePath)
    }

    public var requests: [Request] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }

    private func handle(_ request: HTTPRequest) -> HTTPResponse {
        guard request.path == "/token", request.method == "GET" || request.method == "POST" else {
            return .json(404, ["error": "not found"])
        }
        var parameters = request.query
        var user: String?
        var password: String?
        if request.method == "POST" {
            // OAuth2: grant_type=password&username=&password=&service=&scope=
            parameters += HTTPRequest.decodeForm(Substring(String(decoding: request.body, as: UTF8.self)))
            user = parameters.first { $0.name == "username" }?.value
            password = parameters.first { $0.name == "password" }?.value
        } else if let authorization = request.headers["authorization"], authorization.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6)))
        {
            let pair = String(decoding: decoded, as: UTF8.self).split(
                separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            user = String(pair[0])
            password = pair.count > 1 ? String(pair[1]) : ""
        }
        let scopes = parameters.filter { $0.name == "scope" }.flatMap {
            $0.value.split(separator: " ").map(String.init)
        }
        let requestedService = parameters.first { $0.name == "service" }?.value
        var entry = Request(
            method: request.method, user: nil, rejected: false, service: requestedService, scopes: scopes, granted: [:])
        if let user {
            guard let expected = users[user], expected == password else {
                entry.rejected = true
                record(entry)
                return .json(401, ["errors": [["code": "UNAUTHORIZED", "message": "invalid username or password"]]])
            }
            entry.user = user
        }
        var access: [[String: Any]] = []
        for scope in scopes {
            // type:name:actions, where the name may hold colons (a port) but the type and actions do not.
            guard let first = scope.firstIndex(of: ":"), let last = scope.lastIndex(of: ":"), first < last else {
                continue
            }
            let type = String(scope[..<first])
            let name = String(scope[scope.index(after: first)..<last])
            let asked = scope[scope.index(after: last)...].split(separator: ",").map(String.init)
            let actions = entry.user != nil ? asked : asked.filter { anonymousActions.contains($0) }
            entry.granted["\(type):\(name)"] = actions
            access.append(["type": type, "name": name, "actions": actions])
        }
        record(entry)
        let now = Int(Date().timeIntervalSince1970)
        let claims: [String: Any] = [
            "iss": issuer, "sub": entry.user ?? "", "aud": requestedService ?? service, "exp": now + 300,
            "nbf": now - 10, "iat": now, "jti": UUID().uuidString, "access": access,
        ]
        let token = jwt(claims)
        let issuedAt = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(now)))
        return .json(
            200, ["token": token, "access_token": token, "expires_in": 300, "issued_at": issuedAt])
    }

    private func record(_ request: Request) {
        lock.lock()
        recorded.append(request)
        lock.unlock()
    }

    /// header.claims.signature, each base64url without padding; ES256's signature is r || s.
    func jwt(_ claims: [String: Any]) -> String {
        let header: [String: Any] = ["typ": "JWT", "alg": "ES256", "x5c": [certificateDER]]
        func encode(_ data: Data) -> String {
            data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        func json(_ object: [String: Any]) -> Data {
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        }
        let input = encode(json(header)) + "." + encode(json(claims))
        let signature = (try? key.signature(for: Data(input.utf8)))?.rawRepresentation ?? Data()
        return input + "." + encode(signature)
    }
}
