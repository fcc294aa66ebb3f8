/// Docker's rule for the names a user gives to containers and local volumes,
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (moby's RestrictedNamePattern): the one copy of it, for Runtime
/// (container names, volume names in mounts), the CLI (`--name`, `-v NAME:...`) and Compose
/// (`container_name`). It admits no "/" and no name made of dots only, so a name can be joined
/// to a directory of berth's without climbing out of it.
public enum DockerNames {
    public static func isValid(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard scalars.count >= 2, isAlphanumeric(scalars[0]) else { return false }
        return scalars.allSatisfy { isAlphanumeric($0) || $0 == "_" || $0 == "." || $0 == "-" }
    }

    /// A container name as Docker's daemon reads one: the rule after an optional leading "/"
    /// (`docker inspect` prints names that way, and `--name /web` is `web`); nil when invalid.
    public static func containerName(_ text: String) -> String? {
        let name = text.hasPrefix("/") ? String(text.dropFirst()) : text
        return isValid(name) ? name : nil
    }

    /// What a refusal of a container name says, as moby words it.
    public static func invalidContainerName(_ name: String) -> String {
        "Invalid container name (\(name)), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    }

    private static func isAlphanumeric(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
    }
}
