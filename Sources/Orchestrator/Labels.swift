/// The labels docker compose puts on what it makes, with the same keys and values, so a person
/// (or a tool) that knows them finds berth's containers, networks and volumes the same way; and
/// how berth finds a project's containers again (they are its only record of them).
public enum ComposeLabel {
    public static let project = "com.docker.compose.project"
    public static let service = "com.docker.compose.service"
    public static let containerNumber = "com.docker.compose.container-number"
    public static let configHash = "com.docker.compose.config-hash"
    public static let oneoff = "com.docker.compose.oneoff"
    public static let workingDir = "com.docker.compose.project.working_dir"
    public static let configFiles = "com.docker.compose.project.config_files"
    public static let image = "com.docker.compose.image"
    public static let dependsOn = "com.docker.compose.depends_on"
    public static let version = "com.docker.compose.version"
    public static let network = "com.docker.compose.network"
    public static let volume = "com.docker.compose.volume"

    /// What berth writes as com.docker.compose.version.
    public static let versionValue = "2.29.0-berth"
}
