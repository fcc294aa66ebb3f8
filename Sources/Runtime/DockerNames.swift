/// Docker's rule for the names a user gives to containers and local volumes:
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`. It admits no "/" and no name made of dots only, so a name can
/// be joined to a directory of berth's without climbing out of it.
public enum DockerNames {
    public static func isValid(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard scalars.count >= 2, isAlphanumeric(scalars[0]) else { return false }
        return scalars.allSatisfy { isAlphanumeric($0) || $0 == "_" || $0 == "." || $0 == "-" }
    }

    private static func isAlphanumeric(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
    }
}
