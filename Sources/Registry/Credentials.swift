import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A user name and password (or token) for one registry.
public struct Credentials: Sendable, Equatable {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    var basicAuthorization: String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }
}

/// Docker's credentials file, `$DOCKER_CONFIG/config.json` (default ~/.docker/config.json), read
/// and written in Docker's format so that `docker login` and `berth login` share it:
///
///     {"auths": {"127.0.0.1:5000": {"auth": "base64(user:password)"}}, ...}
///
/// Keys berth does not use (credsStore, proxies, plugins...) are kept as they are on write.
public struct CredentialsFile {
    public let path: String
    private var document: [String: JSONValue]
    /// Where credential helpers are looked for (PATH).
    private let searchPath: String

    /// The file `DOCKER_CONFIG` or HOME point at; missing is empty.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let dir = environment["DOCKER_CONFIG"] ?? ((environment["HOME"] ?? "/root") + "/.docker")
        try self.init(path: dir + "/config.json", searchPath: environment["PATH"])
    }

    public init(path: String, searchPath: String? = nil) throws {
        self.path = path
        self.searchPath = searchPath ?? "/usr/local/bin:/usr/bin:/bin"
        guard let bytes = Files.readAll(path) else {
            document = [:]
            return
        }
        do {
            document = try JSONDecoder().decode([String: JSONValue].self, from: Data(bytes))
        } catch {
            throw RegistryError.file(path, "not a valid Docker config.json: \(error)")
        }
    }

    /// The credentials stored for `registry`: from its credential helper when config.json names one
    /// (`credHelpers`, else `credsStore`, as Docker), else from `auths`, under any of the spellings
    /// Docker accepts for a key (with or without a scheme, Docker Hub's historic index address).
    public func credentials(for registry: Registry) throws -> Credentials? {
        if let helper = helper(for: registry) {
            let answer = try CredentialHelper(helper, searchPath: searchPath).run("get", input: registry.credentialKey)
            // "credentials not found" is the helper's way of saying none: anonymous, as Docker.
            guard answer.status == 0 else { return nil }
            // swift-format-ignore: AlwaysUseLowerCamelCase
            struct Stored: Decodable {
                var Username: String
                var Secret: String
            }
            guard let stored = try? JSONDecoder().decode(Stored.self, from: Data(answer.stdout.utf8)) else {
                throw RegistryError.file("docker-credential-\(helper)", "its answer to get is not valid JSON")
            }
            // An identity token (OAuth refresh token) is not a password; berth does not speak that flow.
            return stored.Username == "<token>" ? nil : Credentials(username: stored.Username, password: stored.Secret)
        }
        guard case .object(let auths)? = document["auths"] else { return nil }
        for (key, value) in auths where Self.normalizedKey(key) == Self.normalizedKey(registry.credentialKey) {
            guard case .object(let entry) = value else { continue }
            if case .string(let auth)? = entry["auth"], let decoded = Data(base64Encoded: auth),
                let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
            {
                return Credentials(
                    username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
            }
            if case .string(let user)? = entry["username"], case .string(let password)? = entry["password"] {
                return Credentials(username: user, password: password)
            }
        }
        return nil
    }

    /// Docker's key for Docker Hub is its old index URL; any of these names it.
    private static func normalizedKey(_ key: String) -> String {
        var k = Substring(key)
        for scheme in ["https://", "http://"] where k.hasPrefix(scheme) { k = k.dropFirst(scheme.count) }
        if let slash = k.firstIndex(of: "/") { k = k[..<slash] }
        return ["index.docker.io", "registry-1.docker.io", "docker.io"].contains(String(k)) ? "docker.io" : String(k)
    }

    /// Keeps the credentials: in the registry's credential helper when there is one (config.json
    /// then holds an empty entry, as Docker writes it), else base64 in `auths`.
    public mutating func store(_ credentials: Credentials, for registry: Registry) throws {
        try remove(for: registry)
        var auths: [String: JSONValue] = [:]
        if case .object(let existing)? = document["auths"] { auths = existing }
        if let helper = helper(for: registry) {
            // swift-format-ignore: AlwaysUseLowerCamelCase
            struct Stored: Encodable {
                var ServerURL: String
                var Username: String
                var Secret: String
            }
            let json = try JSONEncoder().encode(
                Stored(ServerURL: registry.credentialKey, Username: credentials.username, Secret: credentials.password))
            let answer = try CredentialHelper(helper, searchPath: searchPath).run(
                "store", input: String(decoding: json, as: UTF8.self))
            guard answer.status == 0 else {
                throw RegistryError.file(
                    "docker-credential-\(helper)", "store failed: \(answer.stdout + answer.stderr)")
            }
            auths[registry.credentialKey] = .object([:])
        } else {
            auths[registry.credentialKey] = .object([
                "auth": .string(Data("\(credentials.username):\(credentials.password)".utf8).base64EncodedString())
            ])
        }
        document["auths"] = .object(auths)
    }

    /// Forgets every entry naming `registry`; false when there was none.
    @discardableResult
    public mutating func remove(for registry: Registry) throws -> Bool {
        if let helper = helper(for: registry) {
            // Nothing stored there is not an error (the helper says so on its output).
            _ = try CredentialHelper(helper, searchPath: searchPath).run("erase", input: registry.credentialKey)
        }
        guard case .object(var auths)? = document["auths"] else { return false }
        let keys = auths.keys.filter { Self.normalizedKey($0) == Self.normalizedKey(registry.credentialKey) }
        for key in keys { auths[key] = nil }
        document["auths"] = .object(auths)
        return !keys.isEmpty
    }

    /// The helper Docker would use for `registry`: credHelpers' entry for it, else credsStore.
    private func helper(for registry: Registry) -> String? {
        if case .object(let helpers)? = document["credHelpers"] {
            for (key, value) in helpers where Self.normalizedKey(key) == Self.normalizedKey(registry.credentialKey) {
                if case .string(let name) = value, !name.isEmpty { return name }
            }
        }
        if case .string(let name)? = document["credsStore"], !name.isEmpty { return name }
        return nil
    }

    /// Writes the file atomically, readable by its owner only (it holds passwords).
    public func save() throws {
        let dir = Files.parentDirectory(path)
        do {
            try Files.makeDirectories(dir, mode: 0o700)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(document)
            try data.withUnsafeBytes { try Files.replace(path, with: $0, mode: 0o600) }
        } catch {
            throw RegistryError.file(path, "cannot save credentials: \(error)")
        }
    }
}

/// Any JSON value, so a document can be read and written back without losing keys berth ignores.
enum JSONValue: Codable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? c.decode(Double.self) {
            self = .number(n)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n): try c.encode(n)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

/// A Docker credential helper, `docker-credential-NAME` on PATH, spoken to as Docker does: the
/// verb as its argument, the server URL or a JSON document on its stdin, JSON on its stdout.
struct CredentialHelper {
    let program: String

    init(_ name: String, searchPath: String) throws {
        // A name from config.json becomes a program name: no path may hide in it.
        guard !name.contains("/"), !name.isEmpty else {
            throw RegistryError.file("docker-credential-\(name)", "not a valid credential helper name")
        }
        let file = "docker-credential-" + name
        let path = searchPath.split(separator: ":").map { $0 + "/" + file }.first { access($0, X_OK) == 0 }
        guard let path else { throw RegistryError.file(file, "not found on PATH (config.json names it)") }
        program = path
    }

    func run(_ verb: String, input: String) throws -> ChildProcess.Output {
        do { return try ChildProcess.run(program, [verb], input: input) } catch let failure as ChildProcess.Failure {
            throw RegistryError.file(program, failure.message)
        }
    }
}
