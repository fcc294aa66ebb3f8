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

    /// The file `DOCKER_CONFIG` or HOME point at; missing is empty.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let dir = environment["DOCKER_CONFIG"] ?? ((environment["HOME"] ?? "/root") + "/.docker")
        try self.init(path: dir + "/config.json")
    }

    public init(path: String) throws {
        self.path = path
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

    /// The credentials stored for `registry`, under any of the spellings Docker accepts for a key
    /// (with or without a scheme, Docker Hub's historic index address).
    public func credentials(for registry: Registry) -> Credentials? {
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

    public mutating func store(_ credentials: Credentials, for registry: Registry) {
        remove(for: registry)
        var auths: [String: JSONValue] = [:]
        if case .object(let existing)? = document["auths"] { auths = existing }
        auths[registry.credentialKey] = .object([
            "auth": .string(Data("\(credentials.username):\(credentials.password)".utf8).base64EncodedString())
        ])
        document["auths"] = .object(auths)
    }

    /// Forgets every entry naming `registry`; false when there was none.
    @discardableResult
    public mutating func remove(for registry: Registry) -> Bool {
        guard case .object(var auths)? = document["auths"] else { return false }
        let keys = auths.keys.filter { Self.normalizedKey($0) == Self.normalizedKey(registry.credentialKey) }
        for key in keys { auths[key] = nil }
        document["auths"] = .object(auths)
        return !keys.isEmpty
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
