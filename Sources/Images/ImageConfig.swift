import FoundationEssentials

/// The run-time defaults an image carries: the `config` object of an OCI image configuration,
/// with Docker's capitalized keys (`Entrypoint`, `Cmd`, `Env`, ...), so configs written by Docker,
/// buildkit or skopeo read back unchanged.
public struct ImageConfig: Codable, Equatable, Sendable {
    public var entrypoint: [String]?
    public var cmd: [String]?
    public var env: [String]?
    public var workingDir: String?
    public var user: String?
    public var stopSignal: String?
    /// `["80/tcp", "53/udp"]`; stored as `{"80/tcp": {}}` as the spec wants.
    public var exposedPorts: [String]?
    public var labels: [String: String]?
    /// `["/data"]`; stored as `{"/data": {}}`, as `ExposedPorts`.
    public var volumes: [String]?
    public var healthcheck: ImageHealthcheck?
    /// The shell of shell-form RUN, CMD and ENTRYPOINT (`SHELL`); nil is `["/bin/sh", "-c"]`.
    public var shell: [String]?
    /// `ONBUILD` instructions, run by a build that starts FROM this image.
    public var onBuild: [String]?
    /// Docker's Windows-only flag; read and written back, never used.
    public var argsEscaped: Bool?

    public init(
        entrypoint: [String]? = nil, cmd: [String]? = nil, env: [String]? = nil,
        workingDir: String? = nil, user: String? = nil, stopSignal: String? = nil,
        exposedPorts: [String]? = nil, labels: [String: String]? = nil,
        volumes: [String]? = nil, healthcheck: ImageHealthcheck? = nil, shell: [String]? = nil,
        onBuild: [String]? = nil, argsEscaped: Bool? = nil
    ) {
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.env = env
        self.workingDir = workingDir
        self.user = user
        self.stopSignal = stopSignal
        self.exposedPorts = exposedPorts
        self.labels = labels
        self.volumes = volumes
        self.healthcheck = healthcheck
        self.shell = shell
        self.onBuild = onBuild
        self.argsEscaped = argsEscaped
    }

    enum CodingKeys: String, CodingKey {
        case entrypoint = "Entrypoint"
        case cmd = "Cmd"
        case env = "Env"
        case workingDir = "WorkingDir"
        case user = "User"
        case stopSignal = "StopSignal"
        case exposedPorts = "ExposedPorts"
        case labels = "Labels"
        case volumes = "Volumes"
        case healthcheck = "Healthcheck"
        case shell = "Shell"
        case onBuild = "OnBuild"
        case argsEscaped = "ArgsEscaped"
    }

    /// The spec's way of writing a set: an object whose values are empty objects.
    private struct Empty: Codable {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        entrypoint = try c.decodeIfPresent([String].self, forKey: .entrypoint)
        cmd = try c.decodeIfPresent([String].self, forKey: .cmd)
        env = try c.decodeIfPresent([String].self, forKey: .env)
        workingDir = try c.decodeIfPresent(String.self, forKey: .workingDir)
        user = try c.decodeIfPresent(String.self, forKey: .user)
        stopSignal = try c.decodeIfPresent(String.self, forKey: .stopSignal)
        exposedPorts = try c.decodeIfPresent([String: Empty].self, forKey: .exposedPorts).map { $0.keys.sorted() }
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels)
        volumes = try c.decodeIfPresent([String: Empty].self, forKey: .volumes).map { $0.keys.sorted() }
        healthcheck = try c.decodeIfPresent(ImageHealthcheck.self, forKey: .healthcheck)
        shell = try c.decodeIfPresent([String].self, forKey: .shell)
        onBuild = try c.decodeIfPresent([String].self, forKey: .onBuild)
        argsEscaped = try c.decodeIfPresent(Bool.self, forKey: .argsEscaped)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(entrypoint, forKey: .entrypoint)
        try c.encodeIfPresent(cmd, forKey: .cmd)
        try c.encodeIfPresent(env, forKey: .env)
        // Docker leaves WorkingDir/User as "" when unset; nil and "" mean the same, so omit "".
        try c.encodeIfPresent(workingDir, forKey: .workingDir)
        try c.encodeIfPresent(user, forKey: .user)
        try c.encodeIfPresent(stopSignal, forKey: .stopSignal)
        if let exposedPorts {
            try c.encode(
                Dictionary(exposedPorts.map { ($0, Empty()) }, uniquingKeysWith: { a, _ in a }), forKey: .exposedPorts)
        }
        try c.encodeIfPresent(labels, forKey: .labels)
        if let volumes {
            try c.encode(Dictionary(volumes.map { ($0, Empty()) }, uniquingKeysWith: { a, _ in a }), forKey: .volumes)
        }
        try c.encodeIfPresent(healthcheck, forKey: .healthcheck)
        try c.encodeIfPresent(shell, forKey: .shell)
        try c.encodeIfPresent(onBuild, forKey: .onBuild)
        try c.encodeIfPresent(argsEscaped, forKey: .argsEscaped)
    }
}

/// `HEALTHCHECK` as an image config holds it (Docker's `Healthcheck`): durations in nanoseconds,
/// nil (or 0) for the default. `test` is `["NONE"]` (disabled), `["CMD", args...]` or
/// `["CMD-SHELL", command]`; an empty one inherits the base image's.
public struct ImageHealthcheck: Codable, Equatable, Sendable {
    public var test: [String]
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

    enum CodingKeys: String, CodingKey {
        case test = "Test"
        case interval = "Interval"
        case timeout = "Timeout"
        case startPeriod = "StartPeriod"
        case startInterval = "StartInterval"
        case retries = "Retries"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Docker writes `"Test": null` for a HEALTHCHECK that only changes the timings.
        test = try c.decodeIfPresent([String].self, forKey: .test) ?? []
        interval = try c.decodeIfPresent(Int64.self, forKey: .interval)
        timeout = try c.decodeIfPresent(Int64.self, forKey: .timeout)
        startPeriod = try c.decodeIfPresent(Int64.self, forKey: .startPeriod)
        startInterval = try c.decodeIfPresent(Int64.self, forKey: .startInterval)
        retries = try c.decodeIfPresent(Int.self, forKey: .retries)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        // As Docker's `omitempty`.
        if !test.isEmpty { try c.encode(test, forKey: .test) }
        try c.encodeIfPresent(interval, forKey: .interval)
        try c.encodeIfPresent(timeout, forKey: .timeout)
        try c.encodeIfPresent(startPeriod, forKey: .startPeriod)
        try c.encodeIfPresent(startInterval, forKey: .startInterval)
        try c.encodeIfPresent(retries, forKey: .retries)
    }
}
