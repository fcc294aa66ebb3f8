import Synchronization

/// A position in a source file, 1-based, as a person reads it in an editor.
///
/// Every node carries one, so it is kept small and free of reference counting: the file name is
/// stored as an index into a process-wide table of names (each name is stored once), and line and
/// column as 32-bit numbers. Copying a node therefore retains nothing for its position.
public struct Mark: Hashable, Sendable, CustomStringConvertible {
    @usableFromInline var fileID: UInt32
    @usableFromInline var storedLine: Int32
    @usableFromInline var storedColumn: Int32

    public init(file: String, line: Int, column: Int) {
        self.fileID = FileNames.shared.id(file)
        self.storedLine = Int32(truncatingIfNeeded: line)
        self.storedColumn = Int32(truncatingIfNeeded: column)
    }

    /// A mark in a file already registered (the parser registers its file once).
    init(fileID: UInt32, line: Int, column: Int) {
        self.fileID = fileID
        self.storedLine = Int32(truncatingIfNeeded: line)
        self.storedColumn = Int32(truncatingIfNeeded: column)
    }

    public var file: String {
        get { FileNames.shared.name(fileID) }
        set { fileID = FileNames.shared.id(newValue) }
    }

    public var line: Int {
        get { Int(storedLine) }
        set { storedLine = Int32(truncatingIfNeeded: newValue) }
    }

    public var column: Int {
        get { Int(storedColumn) }
        set { storedColumn = Int32(truncatingIfNeeded: newValue) }
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// The file names marks refer to: registered once, never removed (a process reads few files).
final class FileNames: Sendable {
    static let shared = FileNames()

    private struct Table {
        var names: [String] = [""]
        var ids: [String: UInt32] = ["": 0]
    }
    private let table = Mutex(Table())

    func id(_ name: String) -> UInt32 {
        if name.isEmpty { return 0 }
        return table.withLock { t in
            if let id = t.ids[name] { return id }
            let id = UInt32(t.names.count)
            t.names.append(name)
            t.ids[name] = id
            return id
        }
    }

    func name(_ id: UInt32) -> String {
        table.withLock { $0.names[Int(id)] }
    }
}

/// How a scalar was written. Only plain scalars are resolved to booleans, numbers and null
/// (YAML 1.2 core schema, as compose-go does); a quoted "true" stays a string.
public enum ScalarStyle: Sendable, Hashable {
    case plain, singleQuoted, doubleQuoted, literal, folded
}

/// A YAML node with the position it came from. Aliases are already expanded and merge keys
/// (`<<`) already applied, so consumers see plain trees.
public struct Node: Sendable, Hashable {
    public enum Value: Sendable, Hashable {
        case scalar(String, ScalarStyle)
        case sequence([Node])
        case mapping([Pair])
    }

    public struct Pair: Sendable, Hashable {
        public var key: Node
        public var value: Node
        public init(key: Node, value: Node) {
            self.key = key
            self.value = value
        }
    }

    public var value: Value
    public var mark: Mark
    /// Explicit tag as written (`!reset`, `!override`, `!!str`...), nil when untagged.
    public var tag: String?

    public init(_ value: Value, mark: Mark, tag: String? = nil) {
        self.value = value
        self.mark = mark
        self.tag = tag
    }
}

// MARK: - Convenience accessors

extension Node {
    public static func scalar(_ text: String, at mark: Mark, style: ScalarStyle = .plain) -> Node {
        Node(.scalar(text, style), mark: mark)
    }

    public var isReset: Bool { tag == "!reset" }
    public var isOverride: Bool { tag == "!override" }

    /// The scalar text, nil for collections.
    public var text: String? {
        if case .scalar(let s, _) = value { return s }
        return nil
    }

    public var isPlain: Bool {
        if case .scalar(_, .plain) = value { return tag == nil }
        return false
    }

    public var isNull: Bool {
        guard isPlain, let t = text else { return false }
        return t == "" || t == "~" || t == "null" || t == "Null" || t == "NULL"
    }

    public var bool: Bool? {
        guard isPlain, let t = text else { return nil }
        switch t {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: return nil
        }
    }

    public var int: Int? {
        guard isPlain, let t = text else { return nil }
        if t.hasPrefix("0x") { return Int(t.dropFirst(2), radix: 16) }
        if t.hasPrefix("0o") { return Int(t.dropFirst(2), radix: 8) }
        return Int(t)
    }

    public var double: Double? {
        guard isPlain, let t = text else { return nil }
        switch t {
        case ".inf", ".Inf", ".INF", "+.inf": return .infinity
        case "-.inf", "-.Inf", "-.INF": return -.infinity
        case ".nan", ".NaN", ".NAN": return .nan
        default:
            // Reject things Double() accepts but YAML does not ("infinity", "nan", hex floats).
            guard t.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true,
                !t.lowercased().contains("n"), !t.lowercased().contains("x")
            else { return nil }
            return Double(t)
        }
    }

    public var sequence: [Node]? {
        if case .sequence(let items) = value { return items }
        return nil
    }

    public var mapping: [Pair]? {
        if case .mapping(let pairs) = value { return pairs }
        return nil
    }

    /// Value for a string key in a mapping.
    public subscript(key: String) -> Node? {
        mapping?.first(where: { $0.key.text == key })?.value
    }

    /// The pair (with the key's position) for a string key.
    public func pair(_ key: String) -> Pair? {
        mapping?.first(where: { $0.key.text == key })
    }

    /// A short word for error messages: "a string", "a mapping", ...
    public var kindDescription: String {
        switch value {
        case .mapping: return "a mapping"
        case .sequence: return "a sequence"
        case .scalar:
            if isNull { return "null" }
            if bool != nil { return "a boolean" }
            if int != nil { return "an integer" }
            if double != nil { return "a number" }
            return "a string"
        }
    }
}
