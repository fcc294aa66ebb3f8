import Foundation
import Testing

@testable import Registry

@Suite struct ChallengeTests {
    @Test func bearerWithQuotedCommas() {
        let header =
            #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#
        #expect(
            Challenge(header: header)
                == .bearer(
                    realm: "https://auth.docker.io/token", service: "registry.docker.io",
                    scope: "repository:a/b:pull,push"))
    }

    @Test func basicAndUnknownSchemes() {
        #expect(Challenge(header: #"Basic realm="basic-realm""#) == .basic)
        #expect(Challenge(header: #"Negotiate abc"#) == nil)
        // A bearer challenge without a realm cannot be followed.
        #expect(Challenge(header: #"Bearer service="x""#) == nil)
    }
}

@Suite struct RegistryNameTests {
    @Test func loopbackNames() {
        for name in ["localhost", "localhost:5000", "127.0.0.1", "127.1.2.3:443", "[::1]:5000"] {
            #expect(Registry.isLoopback(name), "\(name)")
        }
        for name in ["docker.io", "127.0.0.1.example.com", "10.0.0.1:5000", "128.0.0.1", "localhost.example:5000"] {
            #expect(!Registry.isLoopback(name), "\(name)")
        }
    }

    @Test func dockerHubEndpointAndKey() throws {
        let dir = try FileManager.default.url(
            for: .itemReplacementDirectory, in: .userDomainMask, appropriateFor: URL(fileURLWithPath: "/tmp"),
            create: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let hub = try Registry("docker.io", root: dir.path)
        #expect(hub.endpoint == "registry-1.docker.io")
        #expect(hub.credentialKey == "https://index.docker.io/v1/")
        #expect(!hub.allowsPlainHTTP)
        // Listed as insecure: plain HTTP allowed and certificates not checked, as Docker.
        try #"{"insecure-registries": ["reg.example:5000"]}"#.write(
            to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        let insecure = try Registry("reg.example:5000", root: dir.path)
        #expect(insecure.allowsPlainHTTP && insecure.skipsVerification)
        #expect(try !Registry("other.example", root: dir.path).allowsPlainHTTP)
        // A config.json that does not parse is an error, not "no insecure registries".
        try "{".write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        #expect(throws: RegistryError.self) { try Registry("x.example", root: dir.path) }
    }

    /// A registry name becomes a URL host and a certs.d folder: host[:port] only, as Docker's.
    @Test func registryNamesAreHostAndPort() throws {
        for name in ["docker.io", "localhost:5000", "127.0.0.1:15000", "[::1]:5000", "my-reg.example.com", "a.b-c.d:1"]
        {
            #expect(Registry.isValidName(name), "\(name)")
        }
        for name in [
            "..", "../etc", "a/b", "", "host:", "host:123456", "host:65536", "host:0", "host:+1", "host:12a", "-a.b",
            "a-.b", "a..b", "[]", "a b",
            "h\u{1B}[2J", "é.example",
        ] {
            #expect(!Registry.isValidName(name), "\(name)")
        }
        #expect(throws: RegistryError.invalidName("..")) { try Registry("..", root: "/nonexistent") }
    }

    @Test func paginationLink() {
        #expect(RegistryClient.nextLink(#"</v2/_catalog?last=b&n=2>; rel="next""#) == "/v2/_catalog?last=b&n=2")
        #expect(RegistryClient.nextLink(#"</v2/_catalog?last=b>; rel="prev""#) == nil)
    }

    @Test func percentEncoding() {
        #expect(RegistryClient.percentEncoded("repository:a/b:pull,push") == "repository%3Aa%2Fb%3Apull%2Cpush")
        #expect(RegistryClient.percentEncoded("sha256:ab") == "sha256%3Aab")
    }
}

@Suite struct CredentialsFileTests {
    @Test func keepsUnknownKeysAndReadsDockerSpellings() throws {
        let dir = try FileManager.default.url(
            for: .itemReplacementDirectory, in: .userDomainMask, appropriateFor: URL(fileURLWithPath: "/tmp"),
            create: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("sub/config.json").path
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("sub"), withIntermediateDirectories: true)
        // What docker login writes: Hub under its old index URL, a private registry with a scheme.
        let hubAuth = Data("hubuser:hubpass".utf8).base64EncodedString()
        try """
        {"auths": {"https://index.docker.io/v1/": {"auth": "\(hubAuth)"},
                   "https://reg.example:5000": {"username": "u", "password": "p"}},
         "psFormat": "table {{.ID}}", "proxies": {"default": {"httpProxy": "http://p:3128"}}}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        var file = try CredentialsFile(path: path)
        let root = dir.path
        #expect(
            try file.credentials(for: try Registry("docker.io", root: root))
                == Credentials(username: "hubuser", password: "hubpass"))
        #expect(
            try file.credentials(for: try Registry("reg.example:5000", root: root))
                == Credentials(username: "u", password: "p"))
        #expect(try file.credentials(for: try Registry("127.0.0.1:5000", root: root)) == nil)

        let local = try Registry("127.0.0.1:5000", root: root)
        try file.store(Credentials(username: "alice", password: "pa:ss"), for: local)
        try file.save()
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let reread = try CredentialsFile(path: path)
        // The password may hold a colon: only the first one splits.
        #expect(try reread.credentials(for: local) == Credentials(username: "alice", password: "pa:ss"))
        let json = try String(contentsOfFile: path, encoding: .utf8)
        #expect(json.contains("psFormat") && json.contains("httpProxy"))
        #expect(json.contains(Data("alice:pa:ss".utf8).base64EncodedString()))

        var again = reread
        #expect(try again.remove(for: try Registry("reg.example:5000", root: root)))
        #expect(try !again.remove(for: try Registry("reg.example:5000", root: root)))
        #expect(try again.credentials(for: local) != nil)
    }

    /// config.json's credsStore (or credHelpers) sends credentials to docker-credential-NAME, as
    /// Docker does: get, store and erase, with the server URL or a JSON document on stdin.
    @Test func credentialHelperStoresGetsAndErases() throws {
        let dir = try FileManager.default.url(
            for: .itemReplacementDirectory, in: .userDomainMask, appropriateFor: URL(fileURLWithPath: "/tmp"),
            create: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = dir.path
        let helper = d + "/docker-credential-berthtest"
        try """
        #!/bin/sh
        read -r input
        echo "$1 $input" >> '\(d)/calls'
        case "$1" in
          get) if [ -f '\(d)/stored' ]; then cat '\(d)/stored'; else echo "credentials not found"; exit 1; fi ;;
          store) echo "$input" > '\(d)/stored' ;;
          erase) rm -f '\(d)/stored' ;;
        esac
        """.writeExecutable(helper)
        try #"{"credsStore": "berthtest"}"#.write(toFile: d + "/config.json", atomically: true, encoding: .utf8)
        let registry = try Registry("127.0.0.1:5000", root: d)

        var file = try CredentialsFile(path: d + "/config.json", searchPath: d)
        #expect(try file.credentials(for: registry) == nil)
        try file.store(Credentials(username: "alice", password: "s3cret"), for: registry)
        try file.save()
        #expect(try file.credentials(for: registry) == Credentials(username: "alice", password: "s3cret"))
        // The password went to the helper, not into config.json.
        let json = try String(contentsOfFile: d + "/config.json", encoding: .utf8)
        #expect(!json.contains(Data("alice:s3cret".utf8).base64EncodedString()) && json.contains("127.0.0.1:5000"))
        #expect(try file.remove(for: registry))
        #expect(try file.credentials(for: registry) == nil)
        let calls = try String(contentsOfFile: d + "/calls", encoding: .utf8)
        #expect(calls.contains("get 127.0.0.1:5000") && calls.contains("erase 127.0.0.1:5000"))
        #expect(calls.contains(#"store {"#) && calls.contains(#""ServerURL":"127.0.0.1:5000""#))

        // A helper config.json names but PATH lacks is an error, not an anonymous pull.
        let missing = try CredentialsFile(path: d + "/config.json", searchPath: "/nonexistent")
        #expect(throws: RegistryError.self) { try missing.credentials(for: registry) }
        // Nor may the name carry a path.
        try #"{"credsStore": "../../bin/sh"}"#.write(toFile: d + "/config.json", atomically: true, encoding: .utf8)
        #expect(throws: RegistryError.self) { try CredentialsFile(path: d + "/config.json").credentials(for: registry) }
    }

    @Test func damagedFileIsAnError() throws {
        let path = "/tmp/berth-credentials-\(getpid())-\(UUID().uuidString).json"
        try "{not json".write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        #expect(throws: RegistryError.self) { try CredentialsFile(path: path) }
    }
}

extension String {
    /// Writes an executable script through a close-on-exec descriptor: a program another test of
    /// this process starts meanwhile must not inherit it open for writing, or running the script
    /// fails with ETXTBSY ("Text file busy").
    func writeExecutable(_ path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(fd) }
        let bytes = Array(utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else { throw CocoaError(.fileWriteUnknown) }
    }
}
