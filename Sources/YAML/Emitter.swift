import CYAML

/// Writes YAML through libyaml's emitter, so layout, quoting and escaping are libyaml's.
public enum YAMLEmitter {
    public static func emit(_ node: Node) throws -> String {
        String(decoding: try emitBytes(node), as: UTF8.self)
    }

    /// The YAML text of a node tree as UTF-8 bytes.
    public static func emitBytes(_ node: Node) throws -> [UInt8] {
        let writer = try YAMLWriter()
        try writer.write(node)
        return try writer.finish()
    }
}

/// One YAML document written event by event (block style, indent 2, no line folding), for callers
/// that walk their own trees and need not build a `Node` tree first.
public final class YAMLWriter {
    private let emitter = UnsafeMutablePointer<yaml_emitter_t>.allocate(capacity: 1)
    private let output = OutputBuffer()

    public init() throws {
        guard yaml_emitter_initialize(emitter) == 1 else {
            emitter.deallocate()
            throw YAMLError("cannot initialize the YAML emitter", at: nil)
        }
        yaml_emitter_set_unicode(emitter, 1)
        yaml_emitter_set_indent(emitter, 2)
        yaml_emitter_set_width(emitter, -1)
        yaml_emitter_set_output(
            emitter,
            { context, buffer, size in
                guard let context, let buffer else { return 0 }
                let output = Unmanaged<OutputBuffer>.fromOpaque(context).takeUnretainedValue()
                output.bytes.append(contentsOf: UnsafeBufferPointer(start: buffer, count: size))
                return 1
            }, Unmanaged.passUnretained(output).toOpaque())
        try emit { event in yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING) }
        try emit { event in yaml_document_start_event_initialize(&event, nil, nil, nil, 1) }
    }

    deinit {
        yaml_emitter_delete(emitter)
        emitter.deallocate()
    }

    public func beginMapping() throws {
        try emit { event in yaml_mapping_start_event_initialize(&event, nil, nil, 1, YAML_BLOCK_MAPPING_STYLE) }
    }

    public func endMapping() throws {
        try emit { event in yaml_mapping_end_event_initialize(&event) }
    }

    public func beginSequence() throws {
        try emit { event in yaml_sequence_start_event_initialize(&event, nil, nil, 1, YAML_BLOCK_SEQUENCE_STYLE) }
    }

    public func endSequence() throws {
        try emit { event in yaml_sequence_end_event_initialize(&event) }
    }

    /// A scalar. `.plain` is for values meant as what they read as (numbers, booleans, null); any
    /// other style marks a string, which is quoted when it would read back as another type.
    public func scalar(_ text: String, style: ScalarStyle) throws {
        let chosen = Self.outputStyle(text, style)
        // A native Swift string is already NUL-terminated UTF-8: hand libyaml its storage as is.
        let count = Int32(text.utf8.count)
        try text.withCString { base in
            let value = UnsafeMutableRawPointer(mutating: base).assumingMemoryBound(to: yaml_char_t.self)
            try emit { event in yaml_scalar_event_initialize(&event, nil, nil, value, count, 1, 1, chosen) }
        }
    }

    public func write(_ node: Node) throws {
        switch node.value {
        case .scalar(let text, let style):
            try scalar(text, style: style)
        case .sequence(let items):
            try beginSequence()
            for item in items { try write(item) }
            try endSequence()
        case .mapping(let pairs):
            try beginMapping()
            for pair in pairs {
                try write(pair.key)
                try write(pair.value)
            }
            try endMapping()
        }
    }

    /// Ends the document and returns everything written.
    public func finish() throws -> [UInt8] {
        try emit { event in yaml_document_end_event_initialize(&event, 1) }
        try emit { event in yaml_stream_end_event_initialize(&event) }
        _ = yaml_emitter_flush(emitter)
        return output.bytes
    }

    private func emit(_ initialize: (inout yaml_event_t) -> Int32) throws {
        var event = yaml_event_t()
        guard initialize(&event) == 1 else { throw YAMLError("cannot build a YAML event", at: nil) }
        // yaml_emitter_emit takes ownership of the event, success or not.
        guard yaml_emitter_emit(emitter, &event) == 1 else {
            let problem = emitter.pointee.problem.map { String(cString: $0) } ?? "unknown error"
            throw YAMLError("YAML emitter: \(problem)", at: nil)
        }
    }

    /// A string that would read back as something else when plain (true, 12, null, "") is quoted;
    /// plain scalars meant as booleans and numbers stay plain.
    private static func outputStyle(_ text: String, _ style: ScalarStyle) -> yaml_scalar_style_t {
        if style == .plain { return YAML_ANY_SCALAR_STYLE }
        if mayReadAsNonString(text) { return YAML_DOUBLE_QUOTED_SCALAR_STYLE }
        return text.utf8.contains(0x0a) ? YAML_LITERAL_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE
    }

    private static func mayReadAsNonString(_ text: String) -> Bool {
        guard let first = text.utf8.first else { return true }
        // Most strings start with a letter that begins no keyword: decide those without parsing.
        if !keywordStarts.contains(first) { return false }
        if yaml11Booleans.contains(text) || looksNumeric(text) { return true }
        let probe = Node(.scalar(text, .plain), mark: nowhere)
        return probe.isNull || probe.bool != nil || probe.int != nil || probe.double != nil
    }
}

private let yaml11Booleans: Set<String> = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
]

/// YAML 1.1 also reads 1_000, 12:30 (base 60) and 2001-12-14 (a timestamp) as non-strings; quote
/// anything that starts like a number and holds only number-ish characters.
private func looksNumeric(_ text: String) -> Bool {
    guard let first = text.utf8.first, numberStarts.contains(first) else { return text == "<<" || text == "=" }
    return text.utf8.allSatisfy { numberCharacters.contains($0) }
}

private let numberStarts = Set("0123456789+-.".utf8)
private let numberCharacters = Set("0123456789_:.+-xXoObBabcdefABCDEFtTzZ ".utf8)

private let nowhere = Mark(file: "", line: 0, column: 0)
/// First bytes of null, booleans (1.1 and 1.2), numbers, .inf/.nan and "<<" / "=".
private let keywordStarts = Set("~nNtTfFyYoO0123456789+-.<=".utf8)

private final class OutputBuffer {
    var bytes: [UInt8] = []
}
