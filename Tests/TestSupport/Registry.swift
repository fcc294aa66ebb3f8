import Foundation
import Support

#if canImport(Glibc)
    import Glibc
#endif

// Registry fixtures for the pull, push, login and search tests: a real registry (Debian's
// docker-registry, the reference implementation), a token server, a test CA, a builder of OCI image
// layouts and a fake registry for what a real one cannot do (stall a blob, serve a bogus manifest).
// Everything listens on 127.0.0.1 only and lives in a temporary folder removed with its owner.

/// A fixture could not be made; what went wrong, with the tool's own words.
public struct FixtureError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }
}

/// Runs a helper program (skopeo, openssl, htpasswd, tar, curl) to its end.
public enum Command {
    /// The program's path: as given when it holds a slash, else the first match on PATH.
    public static func resolve(_ name: String) -> String {
        if name.contains("/") { return name }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        return "/usr/bin/" + name
    }

    /// `environment` is laid over this process's, without the variables named by `dropping`'s
    /// prefixes; both pipes are read as they fill, so a chatty program never blocks.
    public static func run(
        _ program: String, _ arguments: [String], environment: [String: String] = [:], stdin: Data? = nil,
        in directory: String? = nil, dropping prefixes: [String] = []
    ) throws -> BerthProcess.Result {
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where prefixes.contains(where: key.hasPrefix) { env[key] = nil }
        env.merge(environment) { $1 }
        // Support's ChildProcess (posix_spawn, a blocking waitpid), not Foundation's Process: its
        // end of a child is told by SIGCHLD, which a test runner's thread that does not block it
        // can swallow (a `berth up --wait` that ran for seconds was then never seen to end).
        var argv = [resolve(program)] + arguments
        if let directory { argv = ["/usr/bin/env", "-C", directory] + argv }
        let output = try ChildProcess.run(
            argv[0], Array(argv.dropFirst()), input: stdin.map { String(decoding: $0, as: UTF8.self) } ?? "",
            environment: env.map { "\($0.key)=\($0.value)" })
        return BerthProcess.Result(status: output.status, stdout: output.stdout, stderr: output.stderr)
    }

    /// As `run`, but a non-zero exit throws with the program's stderr.
    @discardableResult
    public static func check(
        _ program: String, _ arguments: [String], environment: [String: String] = [:], stdin: Data? = nil,
        in directory: String? = nil
    ) throws -> BerthProcess.Result {
        let result = try run(program, arguments, environment: environment, stdin: stdin, in: directory)
        guard result.status == 0 else {
            throw FixtureError(
                "\(program) \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
        }
        return result
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's pick for port 0).
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw FixtureError("socket: errno \(errno)") }
    defer { close(fd) }
    var address = loopbackAddress(port: 0)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw FixtureError("bind 127.0.0.1:0: errno \(errno)") }
    return try boundPort(fd)
}

func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
}

func boundPort(_ fd: Int32) throws -> Int {
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw FixtureError("getsockname: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The environment for skopeo: an empty auth file of the fixture's own, so that no credentials of
/// the user's (~/.docker, $XDG_RUNTIME_DIR/containers) are read or written.
func skopeoEnvironment(_ directory: String) throws -> [String: String] {
    let auth = directory + "/skopeo-auth.json"
    if !FileManager.default.fileExists(atPath: auth) { try Data("{}".utf8).write(to: URL(fileURLWithPath: auth)) }
    return ["REGISTRY_AUTH_FILE": auth, "DOCKER_CONFIG": directory + "/skopeo-docker-config"]
}

// MARK: - TestCA

/// A certificate authority made with openssl for the test, and a server certificate it signed for
/// IP:127.0.0.1 (subjectAltName), for a registry that speaks TLS.
public final class TestCA {
    public let directory: TemporaryDirectory
    /// The CA's certificate (PEM): what a client trusts, as certs.d/HOST:PORT/ca.crt.
    public var certificate: String { directory.path + "/ca.crt" }
    public var serverCertificate: String { directory.path + "/server.crt" }
    public var serverKey: String { directory.path + "/server.key" }
    /// A folder holding only ca.crt: skopeo's --cert-dir, curl's --capath is not needed (--cacert).
    public var certDirectory: String { directory.path + "/trust" }

    public init(commonName: String = "berth test CA") throws {
        directory = try TemporaryDirectory("berth-test-ca")
        let dir = directory.path
        try Command.check(
            "openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", dir + "/ca.key", "-out", dir + "/ca.crt", "-days", "2", "-subj", "/CN=\(commonName)",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ])
        try Command.check(
            "openssl",
            [
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", dir + "/server.key", "-out", dir + "/server.csr", "-subj", "/CN=127.0.0.1",
            ])
        try directory.write(
            "server.ext",
            """
            subjectAltName=IP:127.0.0.1
            basicConstraints=CA:FALSE
            keyUsage=critical,digitalSignature,keyEncipherment
            extendedKeyUsage=serverAuth

            """)
        try Command.check(
            "openssl",
            [
                "x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.crt", "-CAkey", dir + "/ca.key",
                "-CAcreateserial", "-out", dir + "/server.crt", "-days", "2", "-extfile", dir + "/server.ext",
            ])
        try FileManager.default.createDirectory(atPath: certDirectory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: certificate, toPath: certDirectory + "/ca.crt")
    }

    /// Puts the CA where berth looks for a registry's CA under its state root:
    /// ROOT/certs.d/HOST:PORT/ca.crt.
    public func trust(host: String, root: String) throws {
        let dir = root + "/certs.d/" + host
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: dir + "/ca.crt")
        try FileManager.default.copyItem(atPath: certificate, toPath: dir + "/ca.crt")
    }
}

// MARK: - RegistryServer

/// Debian's docker-registry (distribution 2.8) on 127.0.0.1 and a free port, with its own storage
/// folder and configuration; optionally htpasswd basic auth, token auth or TLS. Stopped (SIGTERM,
/// then SIGKILL) and removed with everything it stored when it goes.
public final class RegistryServer {
    public struct User {
        public var name: String
        public var password: String

        public init(_ name: String, _ password: String) { (self.name, self.password) = (name, password) }
    }

    /// The registry's `auth.token` section (see TokenServer.registryAuth).
    public struct TokenAuth {
        public var realm: String
        public var service: String
        public var issuer: String
        public var rootCertBundle: String

        public init(realm: String, service: String, issuer: String, rootCertBundle: String) {
            (self.realm, self.service, self.issuer, self.rootCertBundle) = (realm, service, issuer, rootCertBundle)
        }
    }

    public let directory: TemporaryDirectory
    public private(set) var port: Int = 0
    /// 127.0.0.1:PORT, as a reference names the registry.
    public var host: String { "127.0.0.1:\(port)" }
    public let users: [User]
    public let token: TokenAuth?
    public let ca: TestCA?
    public var scheme: String { ca == nil ? "http" : "https" }
    /// The registry's storage root (the filesystem driver's rootdirectory).
    public var storage: String { directory.path + "/storage" }
    /// What the registry wrote: its application log and its access log (one combined-format line
    /// per request, `"GET /v2/NAME/blobs/sha256:HEX HTTP/1.1" 200 ...`).
    public var logPath: String { directory.path + "/registry.log" }
    private var process: Process?

    public init(users: [User] = [], token: TokenAuth? = nil, tls ca: TestCA? = nil) throws {
        directory = try TemporaryDirectory("berth-test-registry")
        (self.users, self.token, self.ca) = (users, token, ca)
        try FileManager.default.createDirectory(atPath: storage, withIntermediateDirectories: true)
        if !users.isEmpty {
            var lines = ""
            for user in users { lines += try Command.check("htpasswd", ["-Bbn", user.name, user.password]).stdout }
            try directory.write("htpasswd", lines.split(separator: "\n").joined(separator: "\n") + "\n")
        }
        // Another process may take the free port between the look and the registry's bind: try again.
        var lastError: Error = FixtureError("the registry did not start")
        for _ in 0..<3 {
            do {
                try start(port: try freeLoopbackPort())
                return
            } catch {
                lastError = error
                stop()
            }
        }
        throw lastError
    }

    private func configuration(port: Int) -> String {
        var yaml = """
            version: 0.1
            log:
              level: info
              formatter: text
              accesslog:
                disabled: false
            storage:
              filesystem:
                rootdirectory: \(storage)
              delete:
                enabled: true
              maintenance:
                uploadpurging:
                  enabled: false
            http:
              addr: 127.0.0.1:\(port)
              secret: berth-test-secret
              headers:
                X-Content-Type-Options: [nosniff]

            """
        if let ca {
            yaml += """
                  tls:
                    certificate: \(ca.serverCertificate)
                    key: \(ca.serverKey)

                """
        }
        if let token {
            yaml += """
                auth:
                  token:
                    realm: \(token.realm)
                    service: \(token.service)
                    issuer: \(token.issuer)
                    rootcertbundle: \(token.rootCertBundle)

                """
        } else if !users.isEmpty {
            yaml += """
                auth:
                  htpasswd:
                    realm: berth-test-realm
                    path: \(directory.path)/htpasswd

                """
        }
        return yaml
    }

    private func start(port: Int) throws {
        self.port = port
        try directory.write("config.yml", configuration(port: port))
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        defer { try? log.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Command.resolve("docker-registry"))
        process.arguments = ["serve", directory.path + "/config.yml"]
        // REGISTRY_* variables override the configuration (REGISTRY_AUTH_FILE would be auth.file).
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("REGISTRY_") }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        // Ready when GET /v2/ answers (200, or 401 with auth); bounded, no fixed sleep.
        let deadline = Date() + 30
        while Date() < deadline {
            guard process.isRunning else { throw FixtureError("docker-registry exited: \(self.log)") }
            var arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2"]
            if let ca { arguments += ["--cacert", ca.certificate] }
            let probe = try Command.run("curl", arguments + ["\(scheme)://\(host)/v2/"])
            if probe.stdout == "200" || probe.stdout == "401" { return }
            usleep(20_000)
        }
        throw FixtureError("docker-registry did not answer GET /v2/ within 30 s: \(self.log)")
    }

    /// SIGTERM, then SIGKILL when it is still there after 5 s. Idempotent.
    public func stop() {
        guard let process else { return }
        self.process = nil
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date() + 5
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The access log's request lines for `method` whose path contains `path`.
    public func requests(_ method: String, containing path: String) -> [String] {
        log.split(separator: "\n").filter { $0.contains("\"\(method) /") && $0.contains(path) }.map(String.init)
    }

    /// How many times the blob `digest` was fetched (GET; HEAD requests do not count).
    public func blobGETs(_ digest: String) -> Int { requests("GET", containing: "/blobs/\(digest) ").count }

    /// The file holding blob `digest` in the registry's storage, to corrupt it.
    public func blobDataPath(_ digest: String) -> String {
        let hex = digest.replacingOccurrences(of: "sha256:", with: "")
        return storage + "/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
    }

    /// The credentials skopeo presents: the first htpasswd user unless given.
    private func credentials(_ user: User?) -> [String] {
        (user ?? users.first).map { ["\($0.name):\($0.password)"] } ?? []
    }

    /// `skopeo copy --all` of the layout's `tag` to REPOSITORY:TAG here (TAG defaults to the
    /// layout's), with the registry's credentials and CA.
    public func push(
        _ layout: OCILayoutBuilder, tag: String, to repository: String, as target: String? = nil, user: User? = nil
    )
        throws
    {
        var arguments = ["copy", "--all", "--quiet", "--retry-times", "0"]
        if let ca {
            arguments += ["--dest-cert-dir", ca.certDirectory]
        } else {
            arguments += ["--dest-tls-verify=false"]
        }
        if let creds = credentials(user).first { arguments += ["--dest-creds", creds] }
        arguments += ["oci:\(layout.path):\(tag)", "docker://\(host)/\(repository):\(target ?? tag)"]
        try Command.check("skopeo", arguments, environment: try skopeoEnvironment(directory.path))
    }

    /// skopeo with source options for this registry inserted after the verb (inspect, copy).
    public func skopeo(_ verb: String, _ arguments: [String], user: User? = nil, anonymous: Bool = false) throws
        -> BerthProcess.Result
    {
        var options = [verb]
        if let ca { options += ["--src-cert-dir", ca.certDirectory] } else { options += ["--src-tls-verify=false"] }
        if verb == "inspect" { options = options.map { $0.replacingOccurrences(of: "--src-", with: "--") } }
        if !anonymous, let creds = credentials(user).first {
            options += [verb == "inspect" ? "--creds" : "--src-creds", creds]
        }
        return try Command.run("skopeo", options + arguments, environment: try skopeoEnvironment(directory.path))
    }

    /// The repositories in GET /v2/_catalog (with the first user's credentials).
    public func catalog() throws -> [String] {
        var arguments = ["-sf", "--max-time", "10"]
        if let ca { arguments += ["--cacert", ca.certificate] }
        if token == nil, let user = users.first { arguments += ["-u", "\(user.name):\(user.password)"] }
        let result = try Command.check("curl", arguments + ["\(scheme)://\(host)/v2/_catalog"])
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        return object?["repositories"] as? [String] ?? []
    }
}
