import CYAML

/// A problem in a YAML document, with the position it was found at.
public struct YAMLError: Error, CustomStringConvertible, Equatable {
    public var mark: Mark?
    public var message: String

    public init(_ message: String, at mark: Mark?) {
        self.message = message
        self.mark = mark
    }

    public var description: String {
        if let mark { return "\(mark): \(message)" }
        return message
    }
}

/// Parses one YAML document into a `Node` tree through libyaml's event API.
///
/// Aliases are expanded and merge keys (`<<`) applied while building, so consumers only ever see
/// plain trees with positions. The expansion is bounded: a document whose aliases would expand past
/// `aliasLimit` nodes (the "billion laughs" attack) is rejected instead of eating the machine.
public enum YAMLParser {
    public static let defaultAliasLimit = 200_000
    /// Deep enough for any real compose file, shallow enough for every recursive pass over it.
    public static let maximumDepth = 200

    /// Returns nil for an empty document (no content, or only comments).
    public static func parse(_ text: String, file: String, aliasLimit: Int = defaultAliasLimit) throws -> Node? {
        var bytes = Array(text.utf8)
        if bytes.isEmpty { bytes = [0x0a] }
        return try bytes.withUnsafeBufferPointer { buffer in
            var builder = TreeBuilder(file: file, aliasLimit: aliasLimit)
            try builder.run(buffer)
            return builder.root
        }
    }
}

/// Drives libyaml and builds nodes. One per parse.
private struct TreeBuilder {
    let file: String
    let fileID: UInt32
    let aliasLimit: Int
    var root: Node?

    private var parser = yaml_parser_t()
    /// Anchored nodes and how many nodes each expands to, for the alias limit.
    private var anchors: [String: (node: Node, size: Int)] = [:]
    private var expanded = 0

    init(file: String, aliasLimit: Int) {
        self.file = file
        self.fileID = FileNames.shared.id(file)
        self.aliasLimit = aliasLimit
    }

    mutating func run(_ input: UnsafeBufferPointer<UInt8>) throws {
        guard yaml_parser_initialize(&parser) == 1 else {
            throw YAMLError("cannot initialize the YAML parser", at: nil)
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_input_string(&parser, input.baseAddress, input.count)

        var event = try next()
        guard event.type == YAML_STREAM_START_EVENT else { throw unexpected(event) }
        yaml_event_delete(&event)
        event = try next()
        if event.type == YAML_STREAM_END_EVENT {
            yaml_event_delete(&event)
            return
        }
        guard event.type == YAML_DOCUMENT_START_EVENT else { throw unexpected(event) }
        yaml_event_delete(&event)

        event = try next()
        root = try buildNode(from: &event).node
        event = try next()
        guard event.type == YAML_DOCUMENT_END_EVENT else { throw unexpected(event) }
        yaml_event_delete(&event)

        event = try next()
        defer { yaml_event_delete(&event) }
        if event.type == YAML_DOCUMENT_START_EVENT {
            throw YAMLError(
                "a compose file holds one YAML document; found a second one here", at: mark(event.start_mark))
        }
        guard event.type == YAML_STREAM_END_EVENT else { throw unexpected(event) }
    }

    // MARK: Events

    private mutating func next() throws -> yaml_event_t {
        var event = yaml_event_t()
        guard yaml_parser_parse(&parser, &event) == 1 else {
            let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
            var message = problem
            if let context = parser.context.map({ String(cString: $0) }) {
                message =
                    "\(problem) (\(context) at line \(parser.context_mark.line + 1), column \(parser.context_mark.column + 1))"
            }
            throw YAMLError(message, at: mark(parser.problem_mark))
        }
        return event
    }

    private func mark(_ m: yaml_mark_t) -> Mark {
        Mark(fileID: fileID, line: Int(m.line) + 1, column: Int(m.column) + 1)
    }

    private func unexpected(_ event: yaml_event_t) -> YAMLError {
        YAMLError("unexpected YAML structure", at: mark(event.start_mark))
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?, length: Int? = nil) -> String? {
        guard let pointer else { return nil }
        if let length {
            return String(decoding: UnsafeBufferPointer(start: pointer, count: length), as: UTF8.self)
        }
        return String(cString: pointer)
    }

    // MARK: Nodes

    /// Builds the node that starts with `event` (which this consumes), returning it and its size in nodes.
    /// `depth` counts enclosing collections: every pass over the tree recurses, so a document
    /// nested past `maximumDepth` is refused here rather than overflowing a stack later.
    private mutating func buildNode(from event: inout yaml_event_t, depth: Int = 0) throws -> (node: Node, size: Int) {
        defer { yaml_event_delete(&event) }
        let start = mark(event.start_mark)
        if depth > YAMLParser.maximumDepth {
            throw YAMLError("nested deeper than \(YAMLParser.maximumDepth) levels", at: start)
        }
        switch event.type {
        case YAML_ALIAS_EVENT:
            let name = Self.string(event.data.alias.anchor) ?? ""
            guard let anchored = anchors[name] else {
                throw YAMLError("unknown anchor '\(name)' referenced", at: start)
            }
            expanded += anchored.size
            if expanded > aliasLimit {
                throw YAMLError(
                    "aliases expand to more than \(aliasLimit) nodes; refusing a document that grows this much",
                    at: start)
            }
            return anchored

        case YAML_SCALAR_EVENT:
            let s = event.data.scalar
            let text = Self.string(s.value, length: Int(s.length)) ?? ""
            let style: ScalarStyle
            switch s.style {
            case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = .singleQuoted
            case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = .doubleQuoted
            case YAML_LITERAL_SCALAR_STYLE: style = .literal
            case YAML_FOLDED_SCALAR_STYLE: style = .folded
            default: style = .plain
            }
            let node = Node(.scalar(text, style), mark: start, tag: Self.string(s.tag))
            return remember(node, size: 1, anchor: Self.string(s.anchor))

        case YAML_SEQUENCE_START_EVENT:
            let anchor = Self.string(event.data.sequence_start.anchor)
            let tag = Self.string(event.data.sequence_start.tag)
            var items: [Node] = []
            var size = 1
            while true {
                var child = try next()
                if child.type == YAML_SEQUENCE_END_EVENT {
                    yaml_event_delete(&child)
                    break
                }
                let built = try buildNode(from: &child, depth: depth + 1)
                items.append(built.node)
                size += built.size
            }
            return remember(Node(.sequence(items), mark: start, tag: tag), size: size, anchor: anchor)

        case YAML_MAPPING_START_EVENT:
            let anchor = Self.string(event.data.mapping_start.anchor)
            let tag = Self.string(event.data.mapping_start.tag)
            var explicit: [Node.Pair] = []
            var merged: [Node.Pair] = []
            var seen = KeySet()
            var size = 1
            while true {
                var keyEvent = try next()
                if keyEvent.type == YAML_MAPPING_END_EVENT {
                    yaml_event_delete(&keyEvent)
                    break
                }
                let key = try buildNode(from: &keyEvent, depth: depth + 1)
                var valueEvent = try next()
                let value = try buildNode(from: &valueEvent, depth: depth + 1)
                size += key.size + value.size

                if key.node.isPlain, key.node.text == "<<" {
                    merged.append(contentsOf: try mergeSources(value.node, at: key.node.mark))
                    continue
                }
                let keyText = Self.keyIdentity(key.node)
                if let first = seen.index(of: keyText) {
                    throw YAMLError(
                        "duplicate key '\(key.node.text ?? keyText)' (first defined at \(explicit[first].key.mark))",
                        at: key.node.mark)
                }
                seen.insert(keyText)
                explicit.append(Node.Pair(key: key.node, value: value.node))
            }
            // Explicit keys win over merged ones; among merged maps the first listed wins.
            var pairs = explicit
            if !merged.isEmpty {
                pairs.reserveCapacity(explicit.count + merged.count)
                for pair in merged {
                    let keyText = Self.keyIdentity(pair.key)
                    if seen.index(of: keyText) == nil {
                        seen.insert(keyText)
                        pairs.append(pair)
                    }
                }
            }
            return remember(Node(.mapping(pairs), mark: start, tag: tag), size: size, anchor: anchor)

        default:
            throw unexpected(event)
        }
    }

    private mutating func remember(_ node: Node, size: Int, anchor: String?) -> (node: Node, size: Int) {
        if let anchor { anchors[anchor] = (node, size) }
        return (node, size)
    }

    /// The pairs a merge key brings in: one mapping, or a sequence of mappings.
    private func mergeSources(_ value: Node, at keyMark: Mark) throws -> [Node.Pair] {
        switch value.value {
        case .mapping(let pairs):
            return pairs
        case .sequence(let items):
            var pairs: [Node.Pair] = []
            for item in items {
                guard let itemPairs = item.mapping else {
                    throw YAMLError(
                        "merge key '<<' takes a mapping or a list of mappings, found \(item.kindDescription)",
                        at: item.mark)
                }
                pairs.append(contentsOf: itemPairs)
            }
            return pairs
        case .scalar:
            throw YAMLError(
                "merge key '<<' takes a mapping or a list of mappings, found \(value.kindDescription)", at: keyMark)
        }
    }

    /// Keys compare by their text; collection keys (rare, and not used by compose) by their shape.
    private static func keyIdentity(_ key: Node) -> String {
        key.text ?? "\(key.value)"
    }
}

/// The keys of one mapping, in order, for duplicate checks: a linear scan while the mapping is
/// small (most are), a dictionary once it grows.
private struct KeySet {
    private var keys: [String] = []
    private var index: [String: Int]? = nil

    func index(of key: String) -> Int? {
        if let index { return index[key] }
        let count = key.utf8.count
        for (i, k) in keys.enumerated() where k.utf8.count == count && k == key { return i }
        return nil
    }

    /// Adds a key known to be absent.
    mutating func insert(_ key: String) {
        if index != nil {
            index![key] = keys.count
        } else if keys.count == 16 {
            var built: [String: Int] = [:]
            built.reserveCapacity(64)
            for (i, k) in keys.enumerated() { built[k] = i }
            built[key] = keys.count
            index = built
        }
        keys.append(key)
    }
}
