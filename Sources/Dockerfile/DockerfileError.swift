/// A place in a Dockerfile, 1-based. Columns count characters, as an editor shows them.
public struct SourcePosition: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "\(line):\(column)" }
}

/// Every problem this module reports: a Dockerfile that does not parse, an instruction whose
/// arguments or flags are wrong, a substitution that fails (`${X:?}`), a bad ignore pattern.
///
/// `description` is `file:line:column: message` as compilers print it, leaving out what is absent
/// (a substitution on its own knows no file; a file-wide problem has no position).
public struct DockerfileError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    public var position: SourcePosition?
    public var message: String

    public init(_ message: String, file: String = "", at position: SourcePosition? = nil) {
        self.file = file
        self.position = position
        self.message = message
    }

    public var description: String {
        var prefix = file
        if let position {
            prefix += prefix.isEmpty ? position.description : ":\(position)"
        }
        return prefix.isEmpty ? message : "\(prefix): \(message)"
    }

    /// The same error placed at an instruction, unless it already knows where it is.
    func located(file: String, at position: SourcePosition) -> DockerfileError {
        var copy = self
        if copy.file.isEmpty { copy.file = file }
        if copy.position == nil { copy.position = position }
        return copy
    }
}
