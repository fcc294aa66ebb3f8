import FoundationEssentials

/// An image reference such as `busybox`, `nginx:1.25`, `ghcr.io/org/app@sha256:...`,
/// normalized the way Docker does: `busybox` means `docker.io/library/busybox:latest`.
///
/// The store keeps the normalized form (so `busybox` and `docker.io/library/busybox` are the
/// same image); people see the familiar short form, as `docker images` shows it.
public struct ImageReference: Equatable, Hashable, CustomStringConvertible {
    /// The registry host, with port if any: `docker.io`, `localhost:5000`.
    public var domain: String
    /// The repository path inside the registry: `library/busybox`.
    public var path: String
    /// The tag; nil only when the reference names a digest without a tag.
    public var tag: String?
    /// `sha256:<hex>` when the reference pins a manifest digest.
    public var digest: String?

    public static let defaultDomain = "docker.io"
    public static let defaultTag = "latest"

    /// Parses and normalizes `text`; throws `ImageStore.Error.invalidReference` with the reason.
    public init(parsing text: String) throws {
        func invalid(_ reason: String) -> ImageStore.Error {
            ImageStore.Error.invalidReference(text, reason)
        }
        if text.isEmpty { throw invalid("the reference is empty") }
        if text.count > 255 + 128 + 72 { throw invalid("the reference is too long") }
        var rest = Substring(text)

        var digest: String?
        if let at = rest.firstIndex(of: "@") {
            let d = String(rest[rest.index(after: at)...])
            guard Self.isDigest(d) else {
                throw invalid("the digest must be sha256: followed by 64 lowercase hex digits")
            }
            digest = d
            rest = rest[..<at]
        }

        // A tag follows the last ':' that comes after the last '/' (a ':' before it is a port).
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            let t = String(rest[rest.index(after: colon)...])
            guard Self.isTag(t) else {
                throw invalid(
                    "the tag must be 1 to 128 characters of letters, digits, '_', '.' or '-', not starting with '.' or '-'"
                )
            }
            tag = t
            rest = rest[..<colon]
        }

        var name = String(rest)
        if name.isEmpty { throw invalid("the repository name is empty") }
        if Self.isFullHexID(name) && tag == nil && digest == nil {
            throw invalid("a 64-character hexadecimal string is an image ID, not a repository name")
        }

        var domain = Self.defaultDomain
        if let slash = name.firstIndex(of: "/") {
            let first = String(name[..<slash])
            if first.contains(".") || first.contains(":") || first == "localhost" || first.lowercased() != first {
                domain = first
                name = String(name[name.index(after: slash)...])
            }
        }
        if domain == "index.docker.io" { domain = Self.defaultDomain }
        guard Self.isDomain(domain) else { throw invalid("the registry host \(domain) is not a valid host[:port]") }
        if domain == Self.defaultDomain && !name.contains("/") { name = "library/" + name }

        if name.lowercased() != name { throw invalid("the repository name must be lowercase") }
        for component in name.split(separator: "/", omittingEmptySubsequences: false) {
            guard Self.isPathComponent(component) else {
                throw invalid(
                    "each part of the repository name must be lowercase letters and digits, separated by '.', '_', '__' or '-'"
                )
            }
        }
        if digest == nil && tag == nil { tag = Self.defaultTag }
        self.domain = domain
        self.path = name
        self.tag = tag
        self.digest = digest
    }

    /// `docker.io/library/busybox`
    public var repository: String { domain + "/" + path }

    /// `busybox` for Docker Hub official images, `user/app` for other Hub images, else the full name.
    public var familiarRepository: String {
        guard domain == Self.defaultDomain else { return repository }
        if path.hasPrefix("library/") && path.split(separator: "/").count == 2 {
            return String(path.dropFirst("library/".count))
        }
        return path
    }

    /// `docker.io/library/busybox:latest` (the key the store keeps).
    public var normalized: String { repository + suffix }

    /// `busybox:latest` (what people see).
    public var familiar: String { familiarRepository + suffix }

    public var description: String { familiar }

    private var suffix: String {
        var s = ""
        if let tag { s += ":" + tag }
        if let digest { s += "@" + digest }
        return s
    }

    // MARK: grammar (the distribution reference grammar, written out by hand)

    static func isDigest(_ s: String) -> Bool {
        guard s.hasPrefix("sha256:") else { return false }
        let hex = s.dropFirst(7)
        return hex.count == 64 && hex.allSatisfy(isLowerHex)
    }

    static func isFullHexID(_ s: String) -> Bool {
        s.count == 64 && s.allSatisfy(isLowerHex)
    }

    static func isLowerHex(_ c: Character) -> Bool {
        ("0"..."9").contains(c) || ("a"..."f").contains(c)
    }

    /// Docker's tag grammar: 1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'.
    public static func isTag(_ t: String) -> Bool {
        guard let first = t.first, t.count <= 128 else { return false }
        if first == "." || first == "-" { return false }
        return t.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-") }
    }

    private static func isDomain(_ d: String) -> Bool {
        var host = Substring(d)
        if let colon = d.lastIndex(of: ":") {
            let port = d[d.index(after: colon)...]
            guard !port.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
            host = d[..<colon]
        }
        guard !host.isEmpty else { return false }
        return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard let f = label.first, let l = label.last, f != "-", l != "-" else { return false }
            return label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    private static func isPathComponent(_ c: Substring) -> Bool {
        let chars = Array(c)
        guard let first = chars.first, let last = chars.last, isAlnum(first), isAlnum(last) else { return false }
        var i = 0
        while i < chars.count {
            if isAlnum(chars[i]) {
                i += 1
                continue
            }
            // A separator run: '.', '_', '__', or any number of '-'.
            var j = i
            while j < chars.count && !isAlnum(chars[j]) { j += 1 }
            let sep = String(chars[i..<j])
            let ok = sep == "." || sep == "_" || sep == "__" || sep.allSatisfy { $0 == "-" }
            if !ok { return false }
            i = j
        }
        return true
    }

    private static func isAlnum(_ c: Character) -> Bool {
        ("a"..."z").contains(c) || ("0"..."9").contains(c)
    }
}
