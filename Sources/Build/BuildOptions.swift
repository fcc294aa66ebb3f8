/// One build, as `berth build` or a compose service's `build:` asks for it.
public struct BuildOptions: Sendable {
    /// The build context: a directory on this host.
    public var context: String
    /// The Dockerfile's path (relative paths are the context's); nil: CONTEXT/Dockerfile.
    public var dockerfile: String?
    /// The Dockerfile's text itself (compose's `dockerfile_inline`), which wins over `dockerfile`.
    public var dockerfileText: String?
    /// `--build-arg K=V`; a nil value takes the variable from this process's environment, as
    /// Docker's `--build-arg K` does.
    public var buildArgs: [String: String?]
    /// The stage to build (`--target`); nil: the last.
    public var target: String?
    public var noCache: Bool
    /// Pull every FROM image, even one the store has (`--pull`).
    public var pull: Bool
    /// References to name the result with (`-t`).
    public var tags: [String]
    /// `--label`: set on the final image, over the Dockerfile's.
    public var labels: [String: String]
    /// `--secret id=ID,src=PATH`: files a `RUN --mount=type=secret,id=ID` sees.
    public var secrets: [String: String]
    /// `--secret id=ID,env=VAR` (or `id=ID` alone, VAR being ID): secrets given by value, which
    /// the RUN step that mounts one gets as a file of its own.
    public var secretValues: [String: String]
    /// RUN steps' network when they name none: "default" (a bridge), "none" or "host".
    public var network: String
    /// `--allow network.host`: a Dockerfile's `RUN --network=host` may use the host's network
    /// (BuildKit's entitlement). Without it only `network` "host" (the user's own choice) does.
    public var allowHostNetwork: Bool
    /// SOURCE_DATE_EPOCH: the time written into the image and the layers' newest mtime, so that
    /// equal inputs give equal digests.
    public var sourceDateEpoch: Int64?

    public init(
        context: String, dockerfile: String? = nil, dockerfileText: String? = nil, buildArgs: [String: String?] = [:],
        target: String? = nil, noCache: Bool = false, pull: Bool = false, tags: [String] = [],
        labels: [String: String] = [:], secrets: [String: String] = [:], network: String = "default",
        sourceDateEpoch: Int64? = nil, allowHostNetwork: Bool = false, secretValues: [String: String] = [:]
    ) {
        self.context = context
        self.dockerfile = dockerfile
        self.dockerfileText = dockerfileText
        self.buildArgs = buildArgs
        self.target = target
        self.noCache = noCache
        self.pull = pull
        self.tags = tags
        self.labels = labels
        self.secrets = secrets
        self.network = network
        self.sourceDateEpoch = sourceDateEpoch
        self.allowHostNetwork = allowHostNetwork
        self.secretValues = secretValues
    }
}
