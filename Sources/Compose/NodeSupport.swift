import Dispatch
import YAML

// Small helpers over YAML.Node used by every loader stage.

extension Node {
    static func string(_ s: String, at mark: Mark) -> Node {
        Node(.scalar(s, .doubleQuoted), mark: mark)
    }

    static func plain(_ s: String, at mark: Mark) -> Node {
        Node(.scalar(s, .plain), mark: mark)
    }

    static func null(at mark: Mark) -> Node {
        Node(.scalar("null", .plain), mark: mark)
    }

    static func map(_ pairs: [(String, Node)], at mark: Mark, tag: String? = nil) -> Node {
        Node(.mapping(pairs.map { Pair(key: .string($0.0, at: $0.1.mark), value: $0.1) }), mark: mark, tag: tag)
    }

    static func seq(_ items: [Node], at mark: Mark, tag: String? = nil) -> Node {
        Node(.sequence(items), mark: mark, tag: tag)
    }

    /// True for a scalar that reads as a string (quoted, or plain but not null/bool/number).
    var isStringScalar: Bool {
        if case .string? = scalarKind { return true }
        return false
    }

    enum ScalarKind {
        case null
        case bool(Bool)
        case int(Int)
        case double(Double)
        case string(String)
    }

    /// What a scalar means (YAML 1.2 core schema for plain scalars, as `Node`'s accessors
    /// resolve them), nil for collections. Most plain scalars start with a letter that cannot
    /// begin a null, boolean or number: those are told apart without parsing.
    var scalarKind: ScalarKind? {
        guard case .scalar(let s, let style) = value else { return nil }
        guard style == .plain, tag == nil else { return .string(s) }
        guard let first = s.utf8.first else { return .null }
        switch first {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
            switch first {
            case UInt8(ascii: "n"), UInt8(ascii: "N"), UInt8(ascii: "t"), UInt8(ascii: "T"), UInt8(ascii: "f"),
                UInt8(ascii: "F"):
                break
            default:
                return .string(s)
            }
        case UInt8(ascii: "/"), UInt8(ascii: "$"), UInt8(ascii: "_"), UInt8(ascii: "\""), UInt8(ascii: "'"):
            return .string(s)
        default:
            break
        }
        if isNull { return .null }
        if let b = bool { return .bool(b) }
        if let i = int { return .int(i) }
        // Only digits, signs, dots, "e" and the letters of .inf/.nan can make a float.
        let floatish = s.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || c == 43 || c == 45 || c == 46 || c == 101 || c == 69 || c == 105 || c == 73
                || c == 110 || c == 78 || c == 102 || c == 70 || c == 97 || c == 65
        }
        if floatish, let d = double { return .double(d) }
        return .string(s)
    }

    var isMapping: Bool {
        if case .mapping = value { return true }
        return false
    }
    var isSequence: Bool {
        if case .sequence = value { return true }
        return false
    }
    var isScalar: Bool {
        if case .scalar = value { return true }
        return false
    }

    /// The pairs of a mapping as a dictionary from key text to index (first occurrence).
    func keyIndex() -> [String: Int] {
        guard let pairs = mapping else { return [:] }
        var index: [String: Int] = [:]
        index.reserveCapacity(pairs.count)
        for (i, p) in pairs.enumerated() where index[p.key.text ?? ""] == nil {
            index[p.key.text ?? ""] = i
        }
        return index
    }

    /// A copy with the value of `key` replaced (appended when absent), or removed when nil.
    func setting(_ key: String, _ newValue: Node?) -> Node {
        guard var pairs = mapping else { return self }
        if let i = pairs.firstIndex(where: { $0.key.text == key }) {
            if let newValue { pairs[i].value = newValue } else { pairs.remove(at: i) }
        } else if let newValue {
            pairs.append(Pair(key: .string(key, at: newValue.mark), value: newValue))
        }
        var copy = self
        copy.value = .mapping(pairs)
        return copy
    }

    func withValue(_ v: Value) -> Node {
        var copy = self
        copy.value = v
        return copy
    }

    /// Scalar text with YAML's meaning for plain scalars: "" for null.
    var scalarString: String? {
        guard case .scalar(let s, _) = value else { return nil }
        if isNull { return "" }
        return s
    }

    /// The value as RawValue (plain scalars resolved to null/bool/int/float).
    var raw: RawValue {
        switch value {
        case .scalar:
            switch scalarKind! {
            case .null: return .null
            case .bool(let b): return .bool(b)
            case .int(let i): return .int(i)
            case .double(let d): return .double(d)
            case .string(let s): return .string(s)
            }
        case .sequence(let items):
            return .list(items.map(\.raw))
        case .mapping(let pairs):
            var m: [String: RawValue] = [:]
            for p in pairs { m[p.key.text ?? ""] = p.value.raw }
            return .map(m)
        }
    }

    /// Whether this node or one below it carries a tag.
    var hasTags: Bool {
        if tag != nil { return true }
        switch value {
        case .scalar: return false
        case .sequence(let items):
            for item in items where item.hasTags { return true }
            return false
        case .mapping(let pairs):
            for p in pairs where p.value.hasTags { return true }
            return false
        }
    }

    /// Removes `!reset` entries and clears `!override` tags, for a tree that is not merged onto
    /// anything (the first file, a new service).
    func strippingTags() -> Node {
        guard hasTags else { return self }
        var copy = self
        if copy.tag == "!override" { copy.tag = nil }
        switch value {
        case .scalar: return copy
        case .sequence(let items):
            copy.value = .sequence(items.filter { !$0.isReset }.map { $0.strippingTags() })
        case .mapping(let pairs):
            copy.value = .mapping(
                pairs.filter { !$0.value.isReset }.map { Pair(key: $0.key, value: $0.value.strippingTags()) })
        }
        return copy
    }
}

/// Whether the UTF-8 of `s` contains `byte` (a fast scan of the contiguous storage).
@inline(__always)
func containsByte(_ s: String, _ byte: UInt8) -> Bool {
    if let found = s.utf8.withContiguousStorageIfAvailable({ buffer -> Bool in
        for c in buffer where c == byte { return true }
        return false
    }) {
        return found
    }
    return s.utf8.contains(byte)
}

/// Key paths as compose-go prints them: `services.web.ports[0].target`.
func joinPath(_ base: String, _ key: String) -> String {
    base.isEmpty ? key : base + "." + key
}

func indexPath(_ base: String, _ i: Int) -> String {
    base + "[\(i)]"
}

/// A float as Go's encoding/json prints it: shortest digits, plain notation for magnitudes in
/// [1e-6, 1e21), else exponent notation like "1e-7".
func formatGoFloat(_ value: Double, bits: Int) -> String {
    let d = bits == 32 ? Double(Float(value)) : value
    if d.isNaN || d.isInfinite { return "0" }
    if d == 0 { return "0" }
    let text = bits == 32 ? Float(d).description : d.description
    var negative = false
    var body = Substring(text)
    if body.hasPrefix("-") {
        negative = true
        body = body.dropFirst()
    }
    var exponent = 0
    if let e = body.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        exponent = Int(body[body.index(after: e)...]) ?? 0
        body = body[..<e]
    }
    // digits and the position of the decimal point within them
    var digits = ""
    var point = 0
    if let dot = body.firstIndex(of: ".") {
        digits = String(body[..<dot]) + String(body[body.index(after: dot)...])
        point = body.distance(from: body.startIndex, to: dot)
    } else {
        digits = String(body)
        point = digits.count
    }
    point += exponent
    // strip leading zeros
    while digits.hasPrefix("0") && digits.count > 1 {
        digits.removeFirst()
        point -= 1
    }
    while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
    let magnitude = abs(d)
    var out: String
    if magnitude < 1e-6 || magnitude >= 1e21 {
        let exp = point - 1
        out = String(digits.first!)
        if digits.count > 1 { out += "." + digits.dropFirst() }
        out += "e" + (exp < 0 ? "-" : "+") + (abs(exp) < 10 && exp >= 0 ? "0" : "") + String(abs(exp))
    } else if point <= 0 {
        out = "0." + String(repeating: "0", count: -point) + digits
    } else if point >= digits.count {
        out = digits + String(repeating: "0", count: point - digits.count)
    } else {
        let idx = digits.index(digits.startIndex, offsetBy: point)
        out = digits[..<idx] + "." + digits[idx...]
    }
    return negative ? "-" + out : out
}

/// `transform` applied to every element, on all cores when there are many elements (each call
/// must be independent). The first error, in element order, is thrown.
func parallelMap<T, R>(_ items: [T], minimumCount: Int = 48, _ transform: (T) throws -> R) throws -> [R] {
    if items.count < minimumCount { return try items.map(transform) }
    let count = items.count
    // Results are moved (not copied) out of this buffer: they can be large structs.
    let results = UnsafeMutablePointer<Result<R, Error>>.allocate(capacity: count)
    defer { results.deallocate() }
    withoutActuallyEscaping(transform) { transform in
        let chunks = min(count, 8)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            var i = chunk
            while i < count {
                (results + i).initialize(to: Result { try transform(items[i]) })
                i += chunks
            }
        }
    }
    var out: [R] = []
    out.reserveCapacity(count)
    var firstError: Error? = nil
    for i in 0..<count {
        switch (results + i).move() {
        case .success(let r): if firstError == nil { out.append(r) }
        case .failure(let e): if firstError == nil { firstError = e }
        }
    }
    if let firstError { throw firstError }
    return out
}
