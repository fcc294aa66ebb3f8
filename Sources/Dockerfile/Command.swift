/// The typed form of one instruction after Docker's variable substitution for that instruction
/// (`Instruction.command(escape:lookup:)`).
public enum Command: Equatable, Sendable {
    case from(image: String, platform: String?, alias: String?)
    case run(Run)
    case cmd(CommandLine)
    case entrypoint(CommandLine)
    case label([KeyValue])
    /// As written after substitution and validated: "80", "80/tcp", "8000-8010/udp".
    case expose([String])
    case env([KeyValue])
    case add(Copy)
    case copy(Copy)
    case volume([String])
    case user(String)
    case workdir(String)
    case arg([ArgDefinition])
    /// The trigger as written (substituted when it runs in a child build).
    case onbuild(String)
    case stopSignal(String)
    /// nil is `HEALTHCHECK NONE`.
    case healthcheck(Healthcheck?)
    case shell([String])
    case maintainer(String)
}

public struct KeyValue: Equatable, Sendable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

public struct ArgDefinition: Equatable, Sendable {
    public var name: String
    /// nil for `ARG NAME`; "" for `ARG NAME=`.
    public var defaultValue: String?

    public init(name: String, defaultValue: String? = nil) {
        self.name = name
        self.defaultValue = defaultValue
    }
}

public struct Run: Equatable, Sendable {
    /// The command as written (not substituted: the shell does that).
    public var command: CommandLine
    public var heredocs: [Heredoc]
    public var mounts: [RunMount]
    /// "default", "none" or "host".
    public var network: String?
    /// "sandbox" or "insecure".
    public var security: String?

    public init(
        command: CommandLine, heredocs: [Heredoc] = [], mounts: [RunMount] = [], network: String? = nil,
        security: String? = nil
    ) {
        self.command = command
        self.heredocs = heredocs
        self.mounts = mounts
        self.network = network
        self.security = security
    }
}

/// One `RUN --mount=...`, its values substituted and BuildKit's defaults applied.
public struct RunMount: Equatable, Sendable {
    public enum Kind: String, Sendable {
        case bind, cache, tmpfs, secret, ssh
    }

    public var kind: Kind
    /// `target=` (`dst=`, `destination=`); a secret's defaults to /run/secrets/<id>, an ssh
    /// socket's to /run/buildkit/ssh_agent.<n> (n counting the ssh mounts of the RUN).
    public var target: String
    /// `source=` (`src=`).
    public var source: String?
    /// `from=`: a stage name or index, or an image.
    public var from: String?
    /// A cache's id (defaults to its target), a secret's id (defaults to its source, else the
    /// target's last component), an ssh socket's id (defaults to "default").
    public var id: String?
    /// `ro`, `readonly`, `rw=false`...; bind, secret and ssh mounts default to read-only.
    public var readOnly: Bool
    /// shared, private or locked (cache mounts only).
    public var sharing: String?
    /// File mode, written in octal (cache, secret and ssh mounts).
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    /// A tmpfs's size in bytes.
    public var size: Int64?
    /// `required` for secret and ssh mounts: a missing secret fails the build.
    public var required: Bool

    public init(
        kind: Kind, target: String, source: String? = nil, from: String? = nil, id: String? = nil,
        readOnly: Bool = false, sharing: String? = nil, mode: UInt32? = nil, uid: UInt32? = nil,
        gid: UInt32? = nil, size: Int64? = nil, required: Bool = false
    ) {
        self.kind = kind
        self.target = target
        self.source = source
        self.from = from
        self.id = id
        self.readOnly = readOnly
        self.sharing = sharing
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.required = required
    }
}

/// COPY and ADD.
public struct Copy: Equatable, Sendable {
    /// Substituted, not yet matched against the context (wildcards are the builder's).
    public var sources: [String]
    public var destination: String
    /// `COPY <<EOF /dst`: files named by their delimiters, taken from these bodies.
    public var heredocs: [Heredoc]
    public var from: String?
    public var chown: String?
    /// Octal text, validated ("755", "0644").
    public var chmod: String?
    public var link: Bool
    public var parents: Bool
    public var excludes: [String]
    /// ADD --keep-git-dir.
    public var keepGitDir: Bool
    /// ADD --checksum.
    public var checksum: String?

    public init(
        sources: [String], destination: String, heredocs: [Heredoc] = [], from: String? = nil, chown: String? = nil,
        chmod: String? = nil, link: Bool = false, parents: Bool = false, excludes: [String] = [],
        keepGitDir: Bool = false, checksum: String? = nil
    ) {
        self.sources = sources
        self.destination = destination
        self.heredocs = heredocs
        self.from = from
        self.chown = chown
        self.chmod = chmod
        self.link = link
        self.parents = parents
        self.excludes = excludes
        self.keepGitDir = keepGitDir
        self.checksum = checksum
    }
}

public struct Healthcheck: Equatable, Sendable {
    /// Docker's form: ["CMD-SHELL", "text"] or ["CMD", arguments...].
    public var test: [String]
    /// Nanoseconds; nil when the flag was not given (the image's or the default value applies).
    public var interval: Int64?
    public var timeout: Int64?
    public var startPeriod: Int64?
    public var startInterval: Int64?
    public var retries: Int?

    public init(
        test: [String], interval: Int64? = nil, timeout: Int64? = nil, startPeriod: Int64? = nil,
        startInterval: Int64? = nil, retries: Int? = nil
    ) {
        self.test = test
        self.interval = interval
        self.timeout = timeout
        self.startPeriod = startPeriod
        self.startInterval = startInterval
        self.retries = retries
    }
}
