import FoundationEssentials
import Support

/// Docker's rules for what runs: argv from Entrypoint/Cmd, the environment, and the user
/// (name or uid[:gid] looked up in the image's /etc/passwd and /etc/group).
public enum ProcessResolution {
    public struct Error: Swift.Error, CustomStringConvertible {
        public var description: String
    }

    /// `docker run [--entrypoint E] IMAGE [ARGS]`: a given entrypoint replaces the image's and
    /// drops the image's Cmd; given args replace only Cmd.
    public static func argv(image: ImageDefaults, entrypoint: [String]?, command: [String]?) -> [String] {
        let entry: [String]
        var cmd: [String]
        if let entrypoint {
            entry = entrypoint.filter { !$0.isEmpty || entrypoint.count > 1 }
            cmd = []
        } else {
            entry = image.entrypoint ?? []
            cmd = image.cmd ?? []
        }
        if let command, !command.isEmpty { cmd = command }
        return entry + cmd
    }

    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// Image env, then the given env on top (same key wins later), PATH when missing,
    /// HOSTNAME and (from passwd) HOME when missing, as Docker does.
    public static func environment(image: [String]?, given: [String], hostname: String?, home: String?, tty: Bool)
        -> [String]
    {
        var order: [String] = []
        var values: [String: String] = [:]
        func set(_ entry: String) {
            let key =
                entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)
                ?? entry
            if values[key] == nil { order.append(key) }
            values[key] = entry
        }
        set("PATH=" + defaultPath)
        if let hostname { set("HOSTNAME=" + hostname) }
        if tty { set("TERM=xterm") }
        for e in image ?? [] { set(e) }
        for e in given { set(e) }
        if let home, values["HOME"] == nil { set("HOME=" + home) }
        return order.compactMap { values[$0] }
    }

    public struct User: Codable, Equatable, Sendable {
        public var uid: UInt32
        public var gid: UInt32
        public var groups: [UInt32]
        public var home: String
    }

    /// Resolves `user` (name, uid, name:group, uid:gid) the way runc does: names must exist in
    /// the image's files, numbers need not; supplementary groups are every /etc/group entry that
    /// lists the user by name, plus `extraGroups`.
    /// `readFile` reads a path inside the container's root and never outside it (RootFiles).
    public static func user(_ spec: String?, extraGroups: [String] = [], readFile: (String) throws -> String?) throws
        -> User
    {
        let passwd = parse(try readFile("/etc/passwd"))
        let group = parse(try readFile("/etc/group"))
        let value = (spec ?? "").isEmpty ? "0" : spec!
        let parts = value.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let userPart = parts[0]
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        var home = "/"
        var name: String?
        if let number = UInt32(userPart) {
            uid = try checked(number)
            if let entry = passwd.first(where: { $0.count > 3 && UInt32($0[2]) == number }) {
                gid = try id(entry[3], of: entry[0])
                name = entry[0]
                if entry.count > 5, !entry[5].isEmpty { home = entry[5] }
            }
        } else {
            guard let entry = passwd.first(where: { $0.count > 3 && $0[0] == userPart }) else {
                throw Error(description: "unable to find user \(userPart): no matching entries in passwd file")
            }
            uid = try id(entry[2], of: entry[0])
            gid = try id(entry[3], of: entry[0])
            name = entry[0]
            if entry.count > 5, !entry[5].isEmpty { home = entry[5] }
        }
        if parts.count == 2 {
            gid = try groupID(parts[1], in: group)
        }
        var groups: [UInt32] = []
        if let name, parts.count == 1 {
            for entry in group where entry.count > 3 {
                let members = entry[3].split(separator: ",").map(String.init)
                if members.contains(name), let id = UInt32(entry[2]), id <= 2_147_483_647, id != gid,
                    !groups.contains(id)
                {
                    groups.append(id)
                }
            }
        }
        for extra in extraGroups {
            let id = try groupID(extra, in: group)
            if !groups.contains(id) { groups.append(id) }
        }
        if !groups.contains(gid) { groups.insert(gid, at: 0) }
        return User(uid: uid, gid: gid, groups: groups, home: home)
    }

    private static func groupID(_ text: String, in group: [[String]]) throws -> UInt32 {
        if let number = UInt32(text) { return try checked(number) }
        guard let entry = group.first(where: { $0.count > 2 && $0[0] == text }) else {
            throw Error(description: "unable to find group \(text): no matching entries in group file")
        }
        return try id(entry[2], of: entry[0])
    }

    /// runc's range: 4294967295 is (uid_t)-1, which setresuid reads as "leave unchanged", so the
    /// process would stay root; and the kernel refuses ids above 2^31 - 1 in places.
    private static func checked(_ id: UInt32) throws -> UInt32 {
        guard id <= 2_147_483_647 else { throw Error(description: "uids and gids must be in range 0-2147483647") }
        return id
    }

    /// A numeric field of a passwd or group entry: a bad one is an error, never root.
    private static func id(_ text: String, of name: String) throws -> UInt32 {
        guard let value = UInt32(text) else {
            throw Error(description: "invalid id \"\(text)\" for \(name) in the image's user files")
        }
        return try checked(value)
    }

    private static func parse(_ text: String?) -> [[String]] {
        guard let text else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let trimmed = line.trimmingWhitespace()
            if trimmed.isEmpty || trimmed.hasPrefix("#") { return nil }
            return trimmed.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        }
    }
}
