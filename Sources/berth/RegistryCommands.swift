import ArgumentParser
import FoundationEssentials
import Images
import Registry
import Support
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A line on standard output, unbuffered: progress lines are written directly, and the two must
/// come out in order.
private func say(_ line: String) {
    StandardStreams.write(line + "\n", to: STDOUT_FILENO)
}

struct ImagePull: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull", abstract: "Download an image from a registry.")

    @OptionGroup var global: RootOptions

    @Flag(name: [.customShort("a"), .customLong("all-tags")], help: "Download all tagged images in the repository.")
    var allTags = false

    @Option(help: "Set platform if server is multi-platform capable (os/arch[/variant]).")
    var platform: String?

    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Suppress verbose output.")
    var quiet = false

    @Argument(help: "NAME[:TAG|@DIGEST]")
    var name: String

    static func warnIfForeign(_ result: PullResult) {
        guard let foreign = result.foreignPlatform else { return }
        StandardStreams.writeError(
            "WARNING: The requested image's platform (\(foreign)) does not match the detected host platform "
                + "(\(Platform.host)) and no specific platform was requested\n")
    }

    /// Whether `text` gives no tag (the last path part has no colon; a colon before is a port).
    static func namesNoTag(_ text: String) -> Bool {
        !(text.split(separator: "/").last?.contains(":") ?? false)
    }

    func run() throws {
        var reference = try ImageReference(parsing: name)
        let chosen = try platform.map { try Platform(parsing: $0) }
        let store = try ImageStore(root: global.stateRoot)
        let client = try RegistryClient.withStoredCredentials(for: reference.domain, root: global.stateRoot)
        var tags = [reference.tag]
        if allTags {
            guard !name.contains("@"), Self.namesNoTag(name) else {
                throw ValidationError("tag can't be used with --all-tags/-a")
            }
            // Names from the registry become URLs and references: only valid tags (Docker's grammar).
            let listed = try client.tags(reference.path)
            tags = listed.filter(ImageReference.isTag).sorted()
            if tags.count < listed.count {
                StandardStreams.writeError(
                    "WARNING: skipped \(listed.count - tags.count) tag names that are not valid tags\n")
            }
            if !quiet { say("Pulling all tags of \(reference.familiarRepository)") }
        } else if !quiet && Self.namesNoTag(name) && reference.digest == nil {
            say("Using default tag: latest")
        }
        for tag in tags {
            if allTags { reference.tag = tag }
            if !quiet {
                say("\(reference.digest ?? tag ?? "latest"): Pulling from \(reference.path)")
            }
            let printer = quiet ? nil : ProgressPrinter()
            let result = try store.pull(reference, client: client, platform: chosen) { event in
                printer?.pullEvent(event)
            }
            Self.warnIfForeign(result)
            if !quiet {
                say("Digest: \(result.digest)")
                say(
                    "Status: "
                        + (result.changed ? "Downloaded newer image for " : "Image is up to date for ")
                        + reference.familiar)
            }
            say(reference.normalized)
        }
    }
}

/// The pull `container run` and `create` make for `--pull`: progress on standard error, as
/// Docker's, so that the container's own output stays alone on standard output.
func pullForContainer(_ name: String, root: String) throws {
    let reference = try ImageReference(parsing: name)
    let store = try ImageStore(root: root)
    let printer = ProgressPrinter(output: STDERR_FILENO)
    printer.say("\(reference.digest ?? reference.tag ?? "latest"): Pulling from \(reference.path)")
    let result = try store.pull(
        reference, client: RegistryClient.withStoredCredentials(for: reference.domain, root: root)
    ) {
        printer.pullEvent($0)
    }
    ImagePull.warnIfForeign(result)
    printer.say("Digest: \(result.digest)")
    printer.say("Status: Downloaded newer image for \(reference.familiar)")
}

struct ImagePush: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push", abstract: "Upload an image to a registry.")

    @OptionGroup var global: RootOptions

    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Suppress verbose output.")
    var quiet = false

    @Argument(help: "NAME[:TAG]")
    var name: String

    func run() throws {
        let reference = try ImageReference(parsing: name)
        guard reference.digest == nil else { throw ValidationError("push a tag, not a digest: \(name)") }
        let store = try ImageStore(root: global.stateRoot)
        let client = try RegistryClient.withStoredCredentials(for: reference.domain, root: global.stateRoot)
        if !quiet { say("The push refers to repository [\(reference.repository)]") }
        let printer = quiet ? nil : ProgressPrinter()
        let (digest, size) = try store.push(reference, client: client) { event in printer?.pushEvent(event) }
        say(quiet ? reference.normalized : "\(reference.tag ?? "latest"): digest: \(digest) size: \(size)")
    }
}

struct Login: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login", abstract: "Log in to a registry (Docker Hub when no server is given).")

    @OptionGroup var global: RootOptions

    @Option(name: [.customShort("u"), .customLong("username")], help: "Username.")
    var username: String?

    @Option(name: [.customShort("p"), .customLong("password")], help: "Password or token.")
    var password: String?

    @Flag(name: .customLong("password-stdin"), help: "Take the password from stdin.")
    var passwordStdin = false

    @Argument(help: "SERVER")
    var server: String?

    func run() throws {
        let registry = try Registry(Self.registryName(server), root: global.stateRoot)
        if passwordStdin && password != nil {
            throw ValidationError("--password and --password-stdin are mutually exclusive")
        }
        guard let user = username ?? Self.prompt("Username: ", echo: true), !user.isEmpty else {
            throw ValidationError("a username is required (-u)")
        }
        var secret = password
        if passwordStdin {
            secret = String(decoding: Files.readAll(fd: STDIN_FILENO) ?? [], as: UTF8.self)
                .trimming { $0 == "\n" || $0 == "\r" }
        } else if secret == nil {
            secret = Self.prompt("Password: ", echo: false)
        } else {
            StandardStreams.writeError("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
        }
        guard let secret, !secret.isEmpty else { throw ValidationError("a password is required") }
        let credentials = Credentials(username: user, password: secret)
        try RegistryClient(registry: registry, credentials: credentials).verifyCredentials()
        var file = try CredentialsFile()
        try file.store(credentials, for: registry)
        try file.save()
        print("Login Succeeded")
    }

    /// `docker.io` for none or Docker Hub's old index address; else the host[:port] given
    /// (a scheme or path typed with it is dropped, as docker login does).
    static func registryName(_ server: String?) -> String {
        guard var name = server.map({ Substring($0) }), !name.isEmpty else { return Registry.dockerHub }
        for scheme in ["https://", "http://"] where name.hasPrefix(scheme) { name = name.dropFirst(scheme.count) }
        name = name.prefix { $0 != "/" }
        return ["index.docker.io", "registry-1.docker.io"].contains(String(name)) ? Registry.dockerHub : String(name)
    }

    /// Reads a line from the terminal (without echo for a password); nil when stdin is no terminal.
    private static func prompt(_ text: String, echo: Bool) -> String? {
        guard isatty(STDIN_FILENO) != 0 else { return nil }
        StandardStreams.writeError(text)
        var saved = termios()
        let hidden = !echo && tcgetattr(STDIN_FILENO, &saved) == 0
        if hidden {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(STDIN_FILENO, TCSANOW, &quiet)
        }
        defer {
            if hidden {
                tcsetattr(STDIN_FILENO, TCSANOW, &saved)
                StandardStreams.writeError("\n")
            }
        }
        return readLine(strippingNewline: true)
    }
}

struct Logout: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout", abstract: "Log out from a registry (Docker Hub when no server is given).")

    @OptionGroup var global: RootOptions

    @Argument(help: "SERVER")
    var server: String?

    func run() throws {
        let registry = try Registry(Login.registryName(server), root: global.stateRoot)
        var file = try CredentialsFile()
        if try file.remove(for: registry) {
            try file.save()
            print("Removing login credentials for \(registry.credentialKey)")
        } else {
            print("Not logged in to \(registry.credentialKey)")
        }
    }
}

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search", abstract: "Search Docker Hub (or a registry's catalog: HOST:PORT/TERM) for images.")

    @OptionGroup var global: RootOptions

    @Option(help: "Max number of search results.")
    var limit = 25

    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.")
    var noTrunc = false

    @Argument(help: "TERM, or REGISTRY/TERM for a private registry's catalog.")
    var term: String

    func run() throws {
        guard (1...100).contains(limit) else {
            throw ValidationError("limit \(limit) is outside the range of [1, 100]")
        }
        var results: [SearchResult]
        if let slash = term.firstIndex(of: "/"),
            term[..<slash].contains(where: { $0 == "." || $0 == ":" })
                || term[..<slash] == "localhost"
        {
            // A private registry has no search API; its catalog, filtered, is the nearest thing.
            let domain = String(term[..<slash])
            let word = String(term[term.index(after: slash)...]).lowercased()
            let client = try RegistryClient.withStoredCredentials(for: domain, root: global.stateRoot)
            results = try client.catalog().filter { word.isEmpty || $0.contains(word) }.prefix(limit)
                .map { SearchResult(name: domain + "/" + $0) }
        } else {
            results = try RegistryClient.searchDockerHub(term, limit: limit, root: global.stateRoot)
        }
        var rows = [["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]]
        for r in results {
            // Names and descriptions come from the registry: no control character reaches the terminal.
            var description = (r.description ?? "").replacing("\n", with: " ").printable
            if !noTrunc && description.count > 45 { description = description.prefix(44) + "…" }
            rows.append([r.name.printable, description, String(r.starCount ?? 0), r.isOfficial == true ? "[OK]" : ""])
        }
        print(HumanFormat.table(rows), terminator: "")
    }
}

/// Per-layer progress: redrawn bars on a terminal, a plain line per step otherwise (Docker's two
/// forms). Events come from the download threads, hence the lock.
final class ProgressPrinter: @unchecked Sendable {
    private struct State {
        var order: [String] = []
        var lines: [String: String] = [:]
        var screen = TerminalBlock()
    }
    private let state = Mutex(State())
    private let output: Int32
    private let terminal: Bool

    init(output: Int32 = STDOUT_FILENO) {
        self.output = output
        terminal = isatty(output) != 0
    }

    /// A line of its own below the layers' (which are not drawn again after it).
    func say(_ line: String) {
        state.withLock { s in
            StandardStreams.write(line + "\n", to: output)
            s = State()
        }
    }

    func pullEvent(_ event: PullEvent) {
        switch event {
        case .resolved(_, let layers):
            for layer in layers { update(layer, "Pulling fs layer", plain: true) }
        case .layer(let digest, let progress):
            switch progress {
            case .alreadyExists: update(digest, "Already exists", plain: true)
            case .waiting: update(digest, "Waiting", plain: true)
            case .downloading(let done, let total):
                update(digest, "Downloading " + Self.bar(done, total), plain: done == 0)
            case .extracting: update(digest, "Download complete", plain: true)
            case .complete: update(digest, "Pull complete", plain: true)
            }
        }
    }

    func pushEvent(_ event: PushEvent) {
        guard case .layer(let digest, let progress) = event else { return }
        switch progress {
        case .alreadyExists: update(digest, "Layer already exists", plain: true)
        case .mounted(let source): update(digest, "Mounted from \(source)", plain: true)
        case .pushing(let done, let total): update(digest, "Pushing " + Self.bar(done, total), plain: done == 0)
        case .pushed: update(digest, "Pushed", plain: true)
        }
    }

    /// Sets a layer's line; on a terminal every line is drawn again, otherwise only `plain`
    /// steps are printed (no byte counts in logs).
    private func update(_ digest: String, _ text: String, plain: Bool) {
        let id = String(digest.dropFirst("sha256:".count).prefix(12))
        state.withLock { s in
            if s.lines[id] == nil { s.order.append(id) }
            s.lines[id] = text
            if terminal {
                StandardStreams.write(s.screen.redraw(s.order.map { "\($0): \(s.lines[$0] ?? "")" }), to: output)
            } else if plain {
                StandardStreams.write("\(id): \(text.prefix { $0 != "[" }.trimmingWhitespace())\n", to: output)
            }
        }
    }

    /// `[=====>     ]  12.3MB/45.6MB`
    static func bar(_ done: Int64, _ total: Int64) -> String {
        let width = 40
        let filled = total > 0 ? Int(Double(done) / Double(total) * Double(width)) : 0
        let arrow = String(repeating: "=", count: max(0, filled - 1)) + (filled > 0 ? ">" : "")
        return "[" + arrow + String(repeating: " ", count: width - arrow.count) + "]  "
            + HumanFormat.size(done) + "/" + HumanFormat.size(total)
    }
}
