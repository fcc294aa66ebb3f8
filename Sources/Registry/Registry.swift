import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A registry as a reference names it ("docker.io", "127.0.0.1:5000", "ghcr.io"), with where
/// berth connects to it and how much it trusts it.
public struct Registry: Sendable, Equatable {
    /// The name as references write it.
    public var name: String
    /// host[:port] berth connects to: Docker Hub's API lives on registry-1.docker.io.
    public var endpoint: String
    /// Whether plain HTTP may be used when the registry does not speak TLS: loopback registries,
    /// and those listed as insecure in ROOT/config.json.
    public var allowsPlainHTTP: Bool
    /// localhost, 127.0.0.0/8 or ::1.
    public var isLoopback: Bool
    /// Listed as insecure: TLS certificates are not checked (Docker's rule for such registries).
    public var skipsVerification: Bool
    /// Folders holding the registry's CAs and client certificates, Docker's certs.d convention.
    public var certificateDirectories: [String]

    public static let dockerHub = "docker.io"

    /// `root` is berth's state root: ROOT/config.json's `insecure-registries` and ROOT/certs.d
    /// are read beside Docker's /etc/docker/certs.d.
    public init(_ name: String, root: String) throws {
        // The name becomes a URL's host and a certs.d folder name: host[:port] only, as Docker's
        // reference grammar has it (no "/", no "..").
        guard Self.isValidName(name) else { throw RegistryError.invalidName(name.printable) }
        self.name = name
        endpoint = name == Self.dockerHub ? "registry-1.docker.io" : name
        let insecure = try Self.insecureRegistries(root: root)
        skipsVerification = insecure.contains(name)
        isLoopback = Self.isLoopback(name)
        allowsPlainHTTP = skipsVerification || isLoopback
        // A colon would make the folder name "HOST:PORT"; Docker uses the name as written.
        certificateDirectories = ["/etc/docker/certs.d/" + name, root + "/certs.d/" + name]
    }

    /// Where the credentials for this registry are kept in config.json's `auths`.
    public var credentialKey: String {
        name == Self.dockerHub ? "https://index.docker.io/v1/" : name
    }

    /// host[:port]: dot-separated labels of letters, digits and inner '-', or a bracketed IPv6
    /// address; the port 1 to 65535.
    static func isValidName(_ name: String) -> Bool {
        var host = Substring(name)
        if let colon = host.lastIndex(of: ":"), !host.hasPrefix("[") || host[..<colon].hasSuffix("]") {
            let port = host[host.index(after: colon)...]
            guard port.allSatisfy({ $0.isASCII && $0.isNumber }), let number = UInt16(port), number > 0 else {
                return false
            }
            host = host[..<colon]
        }
        if host.hasPrefix("[") {
            let inner = host.dropFirst().dropLast()
            return host.hasSuffix("]") && !inner.isEmpty
                && inner.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        return !host.isEmpty
            && labels.allSatisfy { label in
                !label.isEmpty && label.first != "-" && label.last != "-"
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            }
    }

    /// localhost, 127.0.0.0/8 and ::1, with or without a port.
    static func isLoopback(_ name: String) -> Bool {
        var host = Substring(name)
        if host.hasPrefix("[") {
            host = host.dropFirst().prefix { $0 != "]" }
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    private struct InsecureConfig: Decodable {
        var insecureRegistries: [String]?
        enum CodingKeys: String, CodingKey { case insecureRegistries = "insecure-registries" }
    }

    static func insecureRegistries(root: String) throws -> [String] {
        let path = root + "/config.json"
        guard let bytes = Files.readAll(path) else { return [] }
        do {
            return try JSONDecoder().decode(InsecureConfig.self, from: Data(bytes)).insecureRegistries ?? []
        } catch {
            throw RegistryError.file(path, "not valid JSON for berth's configuration: \(error)")
        }
    }

    /// The TLS set-up from the certs.d folders: every *.crt is a CA trusted besides the system's,
    /// and a NAME.cert with its NAME.key is the client certificate.
    func tlsSettings() -> TLSSettings {
        var settings = TLSSettings(verify: !skipsVerification)
        var pem = Data()
        for dir in certificateDirectories {
            for file in Files.names(in: dir).sorted() {
                let path = dir + "/" + file
                if file.hasSuffix(".crt"), let bytes = Files.readAll(path) {
                    pem.append(contentsOf: bytes)
                    pem.append(10)
                } else if file.hasSuffix(".cert") {
                    let key = dir + "/" + file.dropLast(5) + ".key"
                    if Files.exists(key) { settings.clientCertificate = (path, key) }
                }
            }
        }
        if !pem.isEmpty { settings.extraCAs = pem }
        return settings
    }
}
