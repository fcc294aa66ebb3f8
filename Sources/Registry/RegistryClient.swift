import Crypto
import FoundationEssentials
import Support
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A client of one registry's distribution API (the OCI distribution spec, Docker's registry v2).
///
/// It finds the registry's scheme and authentication once (`GET /v2/`), then keeps one bearer
/// token per scope and a pool of connections, so several threads may use one client at once
/// (each request takes a connection of its own).
public final class RegistryClient: @unchecked Sendable {
    public let registry: Registry
    let credentials: Credentials?
    let tls: TLSSettings

    private struct State {
        /// "https://HOST" or "http://HOST", once known.
        var base: String?
        var challenge: Challenge?
        var tokens: [String: String] = [:]
        var idle: [HTTPConnection] = []
    }
    private let state = Mutex(State())

    public init(registry: Registry, credentials: Credentials?) {
        self.registry = registry
        self.credentials = credentials
        tls = registry.tlsSettings()
    }

    /// A client for the registry `name` (a reference's domain) with the credentials `berth login`
    /// or `docker login` stored for it (config.json or its credential helper): what the CLI and
    /// the orchestrator pull and push with.
    public static func withStoredCredentials(for name: String, root: String) throws -> RegistryClient {
        let registry = try Registry(name, root: root)
        return RegistryClient(registry: registry, credentials: try CredentialsFile().credentials(for: registry))
    }

    /// The scopes of Docker's token flow.
    public static func pullScope(_ repository: String) -> String { "repository:\(repository):pull" }
    public static func pushScope(_ repository: String) -> String { "repository:\(repository):pull,push" }
    static let catalogScope = "registry:catalog:*"

    // MARK: connections

    private func withConnection<T>(_ body: (HTTPConnection) throws -> T) throws -> T {
        let connection = try state.withLock { $0.idle.popLast() } ?? HTTPConnection(tls: tls)
        defer { state.withLock { $0.idle.append(connection) } }
        return try body(connection)
    }

    /// Sends a request to the registry, mapping curl's failures to RegistryError.
    private func perform(
        _ method: String, _ url: String, headers: [String], body: HTTPBody,
        sink: ((UnsafeRawBufferPointer) -> Bool)?
    ) throws -> HTTPResponse {
        try withConnection { connection in
            do {
                return try connection.perform(method, url, headers: headers, body: body, sink: sink)
            } catch let failure as HTTPConnection.TransportError {
                throw failure.isCertificateProblem
                    ? RegistryError.certificate(registry: registry.name, failure.message)
                    : failure.isTransient
                        ? RegistryError.unreachable(registry: registry.name, failure.message)
                        : RegistryError.transfer(registry: registry.name, failure.message)
            }
        }
    }

    // MARK: discovery and authentication

    /// `GET /v2/`: over TLS, or over plain HTTP where the registry may use it and the server does
    /// not speak TLS. A certificate that does not verify is an error, never a reason to fall back.
    /// A loopback registry is asked in plain HTTP first (no credentials go with that question):
    /// a TLS attempt costs ~30 ms of loading the system's CAs, which a local registry would pay on
    /// every pull; one that answers plain HTTP with anything but 200 or 401 (a TLS server's 400)
    /// is asked again over TLS. Other registries are asked over TLS first, as Docker does.
    private func discover() throws -> (base: String, challenge: Challenge?) {
        if let known = state.withLock({ s in s.base.map { ($0, s.challenge) } }) { return known }
        func ping(_ base: String) throws -> HTTPResponse { try withConnection { try $0.perform("GET", base + "/v2/") } }
        let plain = "http://" + registry.endpoint
        let secure = "https://" + registry.endpoint
        var base = secure
        var response: HTTPResponse? = nil
        if registry.isLoopback, let answer = try? ping(plain), answer.status == 200 || answer.status == 401 {
            (base, response) = (plain, answer)
        }
        if response == nil {
            do {
                response = try ping(secure)
            } catch let failure as HTTPConnection.TransportError {
                if failure.serverSpeaksPlainHTTP && registry.allowsPlainHTTP {
                    base = plain
                    do { response = try ping(plain) } catch let failure as HTTPConnection.TransportError {
                        throw RegistryError.unreachable(registry: registry.name, failure.message)
                    }
                } else if failure.isCertificateProblem {
                    throw RegistryError.certificate(registry: registry.name, failure.message)
                } else {
                    throw RegistryError.unreachable(registry: registry.name, failure.message)
                }
            }
        }
        guard let response else { throw RegistryError.unreachable(registry: registry.name, "no answer") }
        var challenge: Challenge? = nil
        switch response.status {
        case 200..<300: break
        case 401:
            challenge = response.header("www-authenticate").flatMap(Challenge.init(header:))
            guard challenge != nil else {
                throw RegistryError.response(
                    "registry \(registry.name)", status: 401, "it asks for an authentication berth does not know")
            }
        default:
            throw RegistryError.response(
                "registry \(registry.name)", status: response.status, "it does not serve the registry API at /v2/")
        }
        state.withLock {
            $0.base = base
            $0.challenge = challenge
        }
        return (base, challenge)
    }

    /// The Authorization header for a request needing `scope`, or none.
    private func authorization(_ challenge: Challenge?, scope: String?, renew: Bool = false) throws -> [String] {
        switch challenge {
        case nil: return []
        case .basic: return credentials.map { ["Authorization: " + $0.basicAuthorization] } ?? []
        case .bearer(let realm, let service, let challengeScope):
            let wanted = scope ?? challengeScope ?? ""
            if !renew, let token = state.withLock({ $0.tokens[wanted] }) { return ["Authorization: Bearer " + token] }
            let token = try fetchToken(realm: realm, service: service, scope: wanted)
            state.withLock { $0.tokens[wanted] = token }
            return ["Authorization: Bearer " + token]
        }
    }

    /// Docker's token flow: GET realm?service=...&scope=... with the credentials as basic auth,
    /// or anonymously when there are none.
    private func fetchToken(realm: String, service: String?, scope: String) throws -> String {
        guard realm.hasPrefix("https://") || realm.hasPrefix("http://") else {
            throw RegistryError.badToken("the realm \"\(realm.prefix(80))\" is not an http(s) URL")
        }
        var query: [String] = []
        if let service { query.append("service=" + Self.percentEncoded(service)) }
        for part in scope.split(separator: " ") { query.append("scope=" + Self.percentEncoded(String(part))) }
        if let credentials { query.append("account=" + Self.percentEncoded(credentials.username)) }
        let url = realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&")
        let headers = credentials.map { ["Authorization: " + $0.basicAuthorization] } ?? []
        let response: HTTPResponse
        do {
            response = try withConnection { try $0.perform("GET", url, headers: headers) }
        } catch let failure as HTTPConnection.TransportError {
            throw RegistryError.badToken("cannot reach \(realm): \(failure.message)")
        }
        if response.status == 401 || response.status == 403 {
            throw RegistryError.unauthorized(
                "registry \(registry.name)",
                credentials == nil ? "authentication required" : "incorrect username or password")
        }
        guard response.isSuccess else {
            throw RegistryError.badToken("\(realm) answered HTTP \(response.status)")
        }
        struct TokenAnswer: Decodable {
            var token: String?
            var accessToken: String?
            enum CodingKeys: String, CodingKey {
                case token
                case accessToken = "access_token"
            }
        }
        guard let answer = try? JSONDecoder().decode(TokenAnswer.self, from: response.body),
            let token = answer.token ?? answer.accessToken, !token.isEmpty
        else { throw RegistryError.badToken("\(realm) did not answer with a token") }
        return token
    }

    /// Checks the credentials the client was made with, as `docker login` does: a token for no
    /// scope, or `GET /v2/` with basic auth.
    public func verifyCredentials() throws {
        let (base, challenge) = try discover()
        switch challenge {
        case nil: return
        case .bearer: _ = try authorization(challenge, scope: "", renew: true)
        case .basic:
            let response = try perform(
                "GET", base + "/v2/", headers: authorization(challenge, scope: nil), body: .none, sink: nil)
            guard response.isSuccess else {
                throw RegistryError.unauthorized("registry \(registry.name)", "incorrect username or password")
            }
        }
    }

    /// One request with authentication: on a 401 the token is fetched again (it may have expired,
    /// or the registry wants a wider scope, which its challenge names) and the request sent once more.
    func send(
        _ method: String, _ path: String, scope: String?, headers: [String] = [], body: HTTPBody = .none,
        sink: ((UnsafeRawBufferPointer) -> Bool)? = nil
    ) throws -> HTTPResponse {
        let (base, challenge) = try discover()
        let url = path.hasPrefix("http://") || path.hasPrefix("https://") ? path : base + path
        // A Location pointing elsewhere (upload storage) gets no credentials or token of this registry.
        guard Self.sameOrigin(url, base) else {
            return try perform(method, url, headers: headers, body: body, sink: sink)
        }
        var auth = try authorization(challenge, scope: scope)
        var response = try perform(method, url, headers: headers + auth, body: body, sink: sink)
        if response.status == 401, case .bearer(let realm, let service, _) = challenge {
            let asked = response.header("www-authenticate").flatMap(Challenge.init(header:))
            var wider = scope
            if case .bearer(_, _, let s)? = asked, let s { wider = s }
            auth = try authorization(.bearer(realm: realm, service: service, scope: wider), scope: wider, renew: true)
            response = try perform(method, url, headers: headers + auth, body: body, sink: sink)
        }
        return response
    }

    /// Whether `url` is on the registry's own scheme, host and port.
    static func sameOrigin(_ url: String, _ base: String) -> Bool {
        url == base || url.hasPrefix(base + "/") || url.hasPrefix(base + "?")
    }

    // MARK: errors

    /// The registry's own words for a failed request: the first of its `errors`, or the status.
    func failure(_ what: String, _ response: HTTPResponse) -> RegistryError {
        struct Errors: Decodable {
            struct Item: Decodable {
                var code: String?
                var message: String?
            }
            var errors: [Item]?
        }
        let item = (try? JSONDecoder().decode(Errors.self, from: response.body))?.errors?.first
        // "name unknown: repository name not known to registry", as Docker prints them.
        let code = item?.code?.lowercased().replacing("_", with: " ").printable
        let text = item?.message?.printable
        let message = code == text || text == nil ? code ?? "" : code.map { "\($0): " + text! } ?? text!
        switch response.status {
        case 401, 403:
            // The code is "unauthorized" or "denied" already; the message says the rest.
            let reason = text ?? (message.isEmpty ? "access denied" : message)
            return .unauthorized(
                what, credentials == nil ? reason + " (log in with berth login \(registry.name))" : reason)
        default:
            return .response(
                what, status: response.status, message.isEmpty ? Self.statusText(response.status) : message)
        }
    }

    static func statusText(_ status: Int) -> String {
        switch status {
        case 404: return "not found"
        case 405: return "method not allowed"
        case 500..<600: return "the registry failed"
        default: return "unexpected answer"
        }
    }

    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(Character(Unicode.Scalar(byte)))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
