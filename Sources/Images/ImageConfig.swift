import FoundationEssentials

/// The run-time defaults an image carries: the `config` object of an OCI image configuration,
/// with Docker's capitalized keys (`Entrypoint`, `Cmd`, `Env`, ...), so configs written by Docker,
/// buildkit or skopeo read back unchanged.
public struct ImageConfig: Codable, Equatable {
    public var entrypoint: [String]?
    public var cmd: [String]?
    public var env: [String]?
    public var workingDir: String?
    public var user: String?
    public var stopSignal: String?
    /// `["80/tcp", "53/udp"]`; stored as `{"80/tcp": {}}` as the spec wants.
    public var exposedPorts: [String]?
    public var labels: [String: String]?

    public init(
        entrypoint: [String]? = nil, cmd: [String]? = nil, env: [String]? = nil,
        workingDir: String? = nil, user: String? = nil, stopSignal: String? = nil,
        exposedPorts: [String]? = nil, labels: [String: String]? = nil
    ) {
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.env = env
        self.workingDir = workingDir
        self.user = user
        self.stopSignal = stopSignal
        self.exposedPorts = exposedPorts
        self.labels = labels
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
    }
}
