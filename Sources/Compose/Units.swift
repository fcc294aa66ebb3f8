/// Value syntaxes of the compose format that are more than a YAML scalar: durations, byte sizes,
/// the short syntax of ports and volumes. Each parser mirrors what `docker compose` (compose-go,
/// go-units, go-connections) accepts, and each formatter prints what it prints.

// MARK: - Durations

/// A duration as compose-go keeps it (Go's `time.Duration`, nanoseconds), printed the way Go
/// prints one ("1m30s", "500ms", "1h0m0s").
public struct ComposeDuration: Hashable, Sendable, CustomStringConvertible, Comparable {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    public init(seconds: Double) { self.nanoseconds = Int64(seconds * 1e9) }

    public var seconds: Double { Double(nanoseconds) / 1e9 }

    public static func < (a: ComposeDuration, b: ComposeDuration) -> Bool { a.nanoseconds < b.nanoseconds }

    /// Parses Go duration syntax plus `d` and `w` (str2duration): "1h30m", "10s", "1.5s", "0".
    public static func parse(_ text: String) -> ComposeDuration? {
        let b = Array(text.utf8)
        var i = 0
        var negative = false
        if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") {
            negative = b[i] == UInt8(ascii: "-")
            i += 1
        }
        if b.count - i == 1 && b[i] == UInt8(ascii: "0") { return ComposeDuration(nanoseconds: 0) }
        if i == b.count { return nil }
        var total: Double = 0
        func isNumberByte(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || c == 46 }
        while i < b.count {
            let numberStart = i
            var digits = 0
            var dots = 0
            while i < b.count, isNumberByte(b[i]) {
                if b[i] == 46 { dots += 1 } else { digits += 1 }
                i += 1
            }
            guard digits > 0, dots <= 1 else { return nil }
            var numberText = String(decoding: b[numberStart..<i], as: UTF8.self)
            if numberText.hasPrefix(".") { numberText = "0" + numberText }
            guard let value = Double(numberText) else { return nil }
            let unitStart = i
            while i < b.count, !isNumberByte(b[i]) { i += 1 }
            let scale: Double
            switch String(decoding: b[unitStart..<i], as: UTF8.self) {
            case "ns": scale = 1
            case "us", "µs", "μs": scale = 1e3
            case "ms": scale = 1e6
            case "s": scale = 1e9
            case "m": scale = 60e9
            case "h": scale = 3600e9
            case "d": scale = 86400e9
            case "w": scale = 7 * 86400e9
            default: return nil
            }
            total += value * scale
            if !(total < 9.2e18) { return nil }
        }
        let ns = Int64(total.rounded(.towardZero))
        return ComposeDuration(nanoseconds: negative ? -ns : ns)
    }

    /// Go's `time.Duration.String()`.
    public var description: String {
        var u = nanoseconds.magnitude
        let negative = nanoseconds < 0
        var out: String
        if u < 1_000_000_000 {
            if u == 0 { return "0s" }
            let unit: String
            let precision: Int
            if u < 1_000 {
                unit = "ns"
                precision = 0
            } else if u < 1_000_000 {
                unit = "µs"
                precision = 3
            } else {
                unit = "ms"
                precision = 6
            }
            let (int, frac) = Self.split(u, precision)
            out = String(int) + frac + unit
        } else {
            let (secs, frac) = Self.split(u, 9)
            u = secs
            out = String(u % 60) + frac + "s"
            u /= 60
            if u > 0 {
                out = String(u % 60) + "m" + out
                u /= 60
                if u > 0 { out = String(u) + "h" + out }
            }
        }
        return negative ? "-" + out : out
    }

    /// Splits v / 10^precision into its integer part and ".fraction" without trailing zeros.
    private static func split(_ v: UInt64, _ precision: Int) -> (UInt64, String) {
        var pow: UInt64 = 1
        for _ in 0..<precision { pow *= 10 }
        let int = v / pow
        var frac = v % pow
        if frac == 0 || precision == 0 { return (int, "") }
        var digits = String(frac)
        digits = String(repeating: "0", count: precision - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        frac = 0
        return (int, "." + digits)
    }
}

// MARK: - Byte sizes

public enum ByteSize {
    /// A byte count: a plain (possibly negative) integer, or go-units' RAMInBytes syntax
    /// ("512m", "1.5g", "2 GB", "100k"), binary multiples; with `decimal`, go-units'
    /// FromHumanSize (the same syntax, powers of 1000: what the json-file log's max-size uses).
    public static func parse(_ text: String, decimal: Bool = false) -> Int64? {
        if let n = Int64(text) { return n }
        var s = Substring(text)
        var number = ""
        while let c = s.first, c.isASCII, c.isNumber || c == "." {
            number.append(c)
            s = s.dropFirst()
        }
        guard !number.isEmpty, number.first!.isNumber, !number.hasSuffix("."),
            !number.contains(".."), let value = Double(number)
        else { return nil }
        if s.first == " " { s = s.dropFirst() }
        var multiplier: Double = 1
        let unit: Double = decimal ? 1000 : 1024
        if let c = s.first {
            switch c {
            case "k", "K": multiplier = unit
            case "m", "M": multiplier = unit * unit
            case "g", "G": multiplier = unit * unit * unit
            case "t", "T": multiplier = unit * unit * unit * unit
            case "p", "P": multiplier = unit * unit * unit * unit * unit
            default: multiplier = 0
            }
            if multiplier != 0 { s = s.dropFirst() } else { multiplier = 1 }
        }
        if let c = s.first, c == "i" || c == "I" { s = s.dropFirst() }
        if let c = s.first, c == "b" || c == "B" { s = s.dropFirst() }
        guard s.isEmpty else { return nil }
        let bytes = value * multiplier
        guard bytes < Double(Int64.max) else { return nil }
        return Int64(bytes)
    }
}

// MARK: - Ports

public enum PortSpec {
    /// Parses `[[ip:]host:]container[/proto]` with ranges (`8000-8010:80-90`) the way
    /// go-connections' ParsePortSpecs does; returns one entry per container port, sorted as
    /// docker compose sorts them ("port/proto" as strings).
    public static func parse(_ raw: String) throws -> [ServicePort] {
        let parts = splitBytes(raw, 58)
        var ip = ""
        var host = ""
        var container = ""
        switch parts.count {
        case 1: container = parts[0]
        case 2:
            host = parts[0]
            container = parts[1]
        case 3:
            ip = parts[0]
            host = parts[1]
            container = parts[2]
        default:
            ip = parts[0..<(parts.count - 2)].joined(separator: ":")
            host = parts[parts.count - 2]
            container = parts[parts.count - 1]
        }
        var proto = "tcp"
        if let slash = container.firstIndex(of: "/") {
            proto = String(container[container.index(after: slash)...])
            container = String(container[..<slash])
            if proto.isEmpty { proto = "tcp" }
        }
        if ip.hasPrefix("[") {
            guard ip.hasSuffix("]") else { throw PortError("invalid IP address \(ip)") }
            ip = String(ip.dropFirst().dropLast())
        }
        if !ip.isEmpty && !isIPAddress(ip) { throw PortError("invalid IP address: \(ip)") }
        if container.isEmpty { throw PortError("no port specified: \(raw)<empty>") }
        guard let (start, end) = range(container) else { throw PortError("invalid containerPort: \(container)") }
        var hostStart = 0
        var hostEnd = 0
        if !host.isEmpty {
            guard let r = range(host) else { throw PortError("invalid hostPort: \(host)") }
            (hostStart, hostEnd) = r
        }
        if !host.isEmpty && (end - start) != (hostEnd - hostStart) && end != start {
            throw PortError("invalid ranges specified for container and host Ports: \(container) and \(host)")
        }
        let lowerProto = proto.lowercased()
        guard ["tcp", "udp", "sctp"].contains(lowerProto) else { throw PortError("invalid proto: \(proto)") }
        var result: [(key: String, port: ServicePort)] = []
        for i in 0...(end - start) {
            var published: String? = nil
            if !host.isEmpty {
                published = String(hostStart + i)
                if start == end && hostStart != hostEnd {
                    published = "\(hostStart)-\(hostEnd)"
                }
            }
            let port = ServicePort(
                mode: "ingress", hostIP: ip.isEmpty ? nil : ip, target: start + i,
                published: published, protocol: lowerProto)
            result.append(("\(start + i)/\(lowerProto)", port))
        }
        result.sort { $0.key < $1.key }
        return result.map(\.port)
    }

    /// "80" or "80-90", each a 16-bit port, end not below start.
    static func range(_ s: String) -> (Int, Int)? {
        if let dash = s.firstIndex(of: "-") {
            guard let a = port(String(s[..<dash])), let b = port(String(s[s.index(after: dash)...])), b >= a else {
                return nil
            }
            return (a, b)
        }
        guard let p = port(s) else { return nil }
        return (p, p)
    }

    static func port(_ s: String) -> Int? {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let v = Int(s), v <= 65535 else { return nil }
        return v
    }

    static func isIPAddress(_ s: String) -> Bool {
        if s.contains(":") {
            // IPv6: hex groups, at most one "::", optional trailing IPv4.
            let allowed = Set("0123456789abcdefABCDEF:.")
            guard s.allSatisfy({ allowed.contains($0) }) else { return false }
            let doubleColons = s.ranges(of: "::").count
            guard doubleColons <= 1 else { return false }
            let groups = s.split(separator: ":", omittingEmptySubsequences: true)
            guard groups.count <= 8,
                doubleColons == 1 || groups.count == 8 || (groups.last?.contains(".") == true && groups.count == 7)
            else { return false }
            for g in groups {
                if g.contains(".") { if !isIPv4(String(g)) { return false } } else if g.count > 4 { return false }
            }
            return true
        }
        return isIPv4(s)
    }

    static func isIPv4(_ s: String) -> Bool {
        var parts = 0
        var digits = 0
        var value = 0
        for c in s.utf8 {
            if c == 46 {
                guard digits > 0 else { return false }
                parts += 1
                digits = 0
                value = 0
            } else if c >= 48 && c <= 57 {
                digits += 1
                value = value * 10 + Int(c - 48)
                guard digits <= 3, value <= 255 else { return false }
            } else {
                return false
            }
        }
        return parts == 3 && digits > 0
    }

    /// `s` split at every `separator` byte, empty parts kept.
    static func splitBytes(_ s: String, _ separator: UInt8) -> [String] {
        var parts: [String] = []
        var current: [UInt8] = []
        for c in s.utf8 {
            if c == separator {
                parts.append(String(decoding: current, as: UTF8.self))
                current.removeAll(keepingCapacity: true)
            } else {
                current.append(c)
            }
        }
        parts.append(String(decoding: current, as: UTF8.self))
        return parts
    }
}

struct PortError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

// MARK: - Volumes

/// The short syntax of a volume, `[SOURCE:]TARGET[:MODE]`, split into its fields, and its modes
/// read: the one parser for a compose file's `volumes:` entries (`VolumeSpec`) and the CLI's
/// `-v`. Docker has two parsers of it, compose-go's ParseVolume and the engine's ParseMountRaw,
/// which agree on the plain cases and differ at the edges; berth follows each where Docker uses
/// it, and the differences are this type's `Dialect`:
/// - compose: `${...}` is not split (interpolation may come later), a Windows drive letter (`c:`)
///   stays part of its path, a spec of one or two characters is a target, and an empty field or
///   a fourth field is an error;
/// - engine: split at every colon into at most three fields; two fields whose second reads as a
///   mode are a volume with a mode, which is invalid, as are an empty first field and four fields.
/// What a field may hold (an absolute target, a volume name, which modes go with which type) is
/// the caller's to check, with its own messages.
public struct VolumeShortSyntax: Equatable, Sendable {
    /// nil for an anonymous volume (a target alone).
    public var source: String?
    public var target: String
    /// The text after the second colon; nil when there is none.
    public var mode: String?

    public enum Dialect: Sendable {
        case compose, engine
    }

    public enum Failure: Error, Equatable, Sendable {
        /// compose: "".
        case empty
        /// compose: "a::b".
        case emptySection
        /// compose: a fourth field.
        case tooManyColons
        /// engine: any spec it refuses (moby's errInvalidSpec).
        case invalid
    }

    public init(source: String?, target: String, mode: String? = nil) {
        self.source = source
        self.target = target
        self.mode = mode
    }

    public static func parse(_ spec: String, dialect: Dialect) throws(Failure) -> VolumeShortSyntax {
        switch dialect {
        case .compose: return try composeFields(spec)
        case .engine: return try engineFields(spec)
        }
    }

    /// moby's ParseMountRaw (daemon/volume/mounts/linux_parser.go).
    private static func engineFields(_ spec: String) throws(Failure) -> VolumeShortSyntax {
        let fields = spec.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        guard !fields[0].isEmpty else { throw .invalid }
        switch fields.count {
        case 1:
            return VolumeShortSyntax(source: nil, target: fields[0])
        case 2:
            // "/data:ro": a volume cannot carry a mode.
            if VolumeModes(fields[1]).isValidForEngine { throw .invalid }
            return VolumeShortSyntax(source: fields[0], target: fields[1])
        case 3:
            return VolumeShortSyntax(source: fields[0], target: fields[1], mode: fields[2])
        default:
            throw .invalid
        }
    }

    /// compose-go's ParseVolume (format/volume.go).
    private static func composeFields(_ spec: String) throws(Failure) -> VolumeShortSyntax {
        switch spec.count {
        case 0: throw .empty
        case 1, 2: return VolumeShortSyntax(source: nil, target: spec)
        default: break
        }
        let bytes = Array(spec.utf8)
        var fields = VolumeShortSyntax(source: nil, target: "")
        var source: String? = nil
        var target: String? = nil
        var start = 0
        var depth = 0
        var i = 0
        while i <= bytes.count {
            let end = i == bytes.count
            let c: UInt8 = end ? 0 : bytes[i]
            defer { i += 1 }
            if !end && c == UInt8(ascii: "$") && i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "{") {
                depth += 1
                continue
            }
            if !end && c == UInt8(ascii: "}") && depth > 0 {
                depth -= 1
                continue
            }
            if !end && c == UInt8(ascii: ":") && i - start == 1 && VolumeSpec.isLetter(bytes[start]) {
                continue  // Windows drive letter
            }
            guard (end || c == UInt8(ascii: ":")) && depth == 0 else { continue }
            if i == start { throw .emptySection }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            start = i + 1
            if source == nil && end {
                target = text
            } else if source == nil {
                source = text
            } else if target == nil {
                target = text
            } else if !end {
                throw .tooManyColons
            } else {
                fields.mode = text
            }
        }
        fields.source = source
        fields.target = target ?? ""
        return fields
    }
}

/// The modes of a volume's short syntax (`ro,rslave,z`), read as both of Docker's parsers read
/// them: compose-go takes the last of each kind and ignores what it does not know; the engine
/// (moby's linuxValidMountMode) wants each kind at most once and nothing unknown.
public struct VolumeModes: Equatable, Sendable {
    /// The last of ro/rw; nil when neither was given.
    public var readOnly: Bool?
    /// rprivate, private, rshared, shared, rslave or slave.
    public var propagation: String?
    /// z or Z (SELinux relabelling).
    public var selinux: String?
    public var noCopy = false
    /// consistent, cached or delegated (macOS's; nothing on Linux).
    public var consistency: String?
    /// Options neither parser knows, "" included (a stray comma).
    public var unknown: [String] = []
    /// True when a kind came more than once ("ro,rw").
    public var repeated = false

    public static let propagations: Set<String> = ["rprivate", "private", "rshared", "shared", "rslave", "slave"]

    public init(_ text: String) {
        guard !text.isEmpty else { return }
        var seen: [String: Int] = [:]
        for option in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            let kind: String
            switch option {
            case "ro", "rw":
                kind = "rw"
                readOnly = option == "ro"
            case "z", "Z":
                kind = "label"
                selinux = option
            case "nocopy":
                kind = "copy"
                noCopy = true
            case "consistent", "cached", "delegated":
                kind = "consistency"
                consistency = option
            default:
                guard Self.propagations.contains(option) else {
                    unknown.append(option)
                    continue
                }
                kind = "propagation"
                propagation = option
            }
            seen[kind, default: 0] += 1
            if seen[kind]! > 1 { repeated = true }
        }
    }

    /// What the engine accepts.
    public var isValidForEngine: Bool { unknown.isEmpty && !repeated }
}

/// A compose file's short volume syntax as compose-go turns it into its long form.
enum VolumeSpec {
    /// Parses `[SOURCE:]TARGET[:MODE]` the way compose-go's format.ParseVolume does.
    static func parse(_ spec: String) throws -> ServiceVolume {
        let fields: VolumeShortSyntax
        do throws(VolumeShortSyntax.Failure) { fields = try VolumeShortSyntax.parse(spec, dialect: .compose) } catch {
            switch error {
            case .empty: throw PortError("invalid empty volume spec")
            case .emptySection: throw PortError("invalid spec: \(spec): empty section between colons")
            case .tooManyColons, .invalid: throw PortError("invalid spec: \(spec): too many colons")
            }
        }
        var volume = ServiceVolume(type: "volume", target: fields.target)
        volume.source = fields.source
        let modes = VolumeModes(fields.mode ?? "")
        volume.readOnly = modes.readOnly ?? false
        var bind: BindOptions? = nil
        if modes.propagation != nil || modes.selinux != nil {
            var options = BindOptions()
            options.propagation = modes.propagation
            options.selinux = modes.selinux
            bind = options
        }
        if let s = fields.source, isFilePath(s) {
            volume.type = "bind"
            var b = bind ?? BindOptions()
            b.createHostPath = true
            volume.bind = b
        } else {
            volume.type = "volume"
            volume.volume = VolumeOptions(nocopy: modes.noCopy)
            // Bind options given to a named volume are kept, as compose-go keeps them.
            volume.bind = bind
        }
        return volume
    }

    static func isLetter(_ c: UInt8) -> Bool {
        (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
    }

    static func isFilePath(_ source: String) -> Bool {
        guard let first = source.first else { return false }
        if first == "." || first == "/" || first == "~" { return true }
        if source.hasPrefix("\\\\") { return true }
        let chars = Array(source)
        return chars.count >= 2 && chars[0].isLetter && chars[1] == ":"
    }
}

// MARK: - Paths

enum PathUtil {
    static func isAbsolute(_ p: String) -> Bool { p.hasPrefix("/") }

    /// Go's path.Clean.
    static func clean(_ path: String) -> String {
        if path.isEmpty { return "." }
        if isClean(path) { return path }
        let bytes = Array(path.utf8)
        let rooted = bytes.first == 47
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        if rooted { out.append(47) }
        let base = out.count  // where the first segment starts
        var i = 0
        while i < bytes.count {
            while i < bytes.count && bytes[i] == 47 { i += 1 }
            let start = i
            while i < bytes.count && bytes[i] != 47 { i += 1 }
            let length = i - start
            if length == 0 || (length == 1 && bytes[start] == 46) { continue }
            if length == 2 && bytes[start] == 46 && bytes[start + 1] == 46 {
                // drop the last segment unless it is ".." itself (or there is none)
                var j = out.count
                while j > base && out[j - 1] != 47 { j -= 1 }
                let last = out[j..<out.count]
                if out.count > base && !(last.count == 2 && last.first == 46 && last.last == 46) {
                    out.removeSubrange((j > base ? j - 1 : j)..<out.count)
                    continue
                }
                if rooted { continue }
            }
            if out.count > base { out.append(47) }
            out.append(contentsOf: bytes[start..<i])
        }
        if out.isEmpty { return "." }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `clean` would return `path` unchanged: no empty, "." or ".." segment and no
    /// trailing slash (the root "/" aside).
    static func isClean(_ path: String) -> Bool {
        var previous: UInt8 = 0
        var segmentLength = 0
        var dots = 0
        for c in path.utf8 {
            if c == 47 {  // "/"
                if previous == 47 { return false }
                if segmentLength > 0 && dots == segmentLength && dots <= 2 { return false }
                segmentLength = 0
                dots = 0
            } else {
                segmentLength += 1
                if c == 46 { dots += 1 }
            }
            previous = c
        }
        if previous == 47 { return path.utf8.count == 1 }
        if segmentLength > 0 && dots == segmentLength && dots <= 2 { return false }
        return true
    }

    static func join(_ base: String, _ rel: String) -> String {
        if rel.isEmpty { return clean(base) }
        return clean(base + "/" + rel)
    }

    static func dirname(_ p: String) -> String {
        let c = clean(p)
        guard let slash = c.lastIndex(of: "/") else { return "." }
        if slash == c.startIndex { return "/" }
        return String(c[..<slash])
    }

    static func basename(_ p: String) -> String {
        let c = clean(p)
        if c == "/" { return "/" }
        guard let slash = c.lastIndex(of: "/") else { return c }
        return String(c[c.index(after: slash)...])
    }

    /// Absolute form of `p` against `base`, expanding a leading `~` with `home`.
    static func absolute(_ p: String, base: String, home: String?) -> String {
        var p = p
        if let home, p == "~" || p.hasPrefix("~/") {
            p = home + p.dropFirst()
        }
        if isAbsolute(p) { return p }  // compose-go keeps absolute paths as written
        return join(base, p)
    }
}
