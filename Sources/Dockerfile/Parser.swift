/// Reading a Dockerfile into instructions and stages, as BuildKit's parser does:
///
/// - Parser directives (`# syntax=`, `# escape=`, `# check=`) count only in the comment lines at
///   the very top; the first other line (a blank one too) ends them.
/// - A line whose first non-blank character is `#` is a comment, also between continuation lines.
/// - The escape character at the end of a line (blanks may follow it) continues the instruction
///   on the next line; the pieces are joined with nothing between them, and blank continuation
///   lines are skipped.
/// - RUN, COPY and ADD may open here-documents (`<<EOF`); their bodies follow the instruction's
///   last line, read as is (no comments, no continuations).
/// - Every instruction is checked as far as it can be before any variable is known (keyword,
///   flags, argument shapes, stage names), so mistakes show before a build starts.
extension Dockerfile {
    static let keywords: Set<String> = [
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "MAINTAINER",
        "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    ]

    public static func parse(_ text: String, path: String = "Dockerfile") throws -> Dockerfile {
        let lines = lines(of: text)

        var dockerfile = Dockerfile(path: path, stages: [])
        var index = 0
        try readDirectives(lines, &index, into: &dockerfile)
        let instructions = try readInstructions(lines, from: index, escape: dockerfile.escape, path: path)
        try dockerfile.assemble(instructions)
        return dockerfile
    }

    private static func error(_ message: String, _ path: String, _ line: Int, _ column: Int = 1) -> DockerfileError {
        DockerfileError(message, file: path, at: SourcePosition(line: line, column: column))
    }

    /// `#` blanks name blanks `=` blanks value: a directive when name is one BuildKit knows.
    private static func readDirectives(_ lines: [String], _ index: inout Int, into dockerfile: inout Dockerfile)
        throws
    {
        var seen: Set<String> = []
        while index < lines.count {
            let line = lines[index]
            guard line.hasPrefix("#") else { return }
            let body = line.dropFirst()
            guard let equals = body.firstIndex(of: "=") else { return }
            let name = body[..<equals].trimmingBlanks
            let value = body[body.index(after: equals)...].trimmingBlanks
            guard let first = name.first, first.isASCII, first.isLetter,
                name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }), !value.isEmpty
            else { return }
            let key = name.lowercased()
            guard key == "syntax" || key == "escape" || key == "check" else { return }
            guard seen.insert(key).inserted else {
                throw error("only one \(key) parser directive can be used", dockerfile.path, index + 1)
            }
            switch key {
            case "escape":
                guard value == "\\" || value == "`" else {
                    throw error(
                        "invalid escape token '\(value)' does not match ` or \\", dockerfile.path, index + 1)
                }
                dockerfile.escape = Character(value)
            case "syntax": dockerfile.syntax = value
            default: dockerfile.check = value
            }
            index += 1
        }
    }

    private static func isComment(_ line: String) -> Bool {
        line.drop(while: { $0.isWhitespace }).hasPrefix("#")
    }

    /// Removes a continuation (the escape character and blanks after it) from the line's end.
    private static func continuation(_ line: String, escape: Character) -> (text: String, continues: Bool) {
        let trimmed = line.reversed().drop(while: { $0 == " " || $0 == "\t" })
        guard trimmed.first == escape else { return (line, false) }
        return (String(trimmed.dropFirst().reversed()), true)
    }

    private static func readInstructions(_ lines: [String], from start: Int, escape: Character, path: String) throws
        -> [Instruction]
    {
        var instructions: [Instruction] = []
        var index = start
        while index < lines.count {
            let raw = lines[index]
            index += 1
            let leading = raw.prefix(while: { $0.isWhitespace })
            let first = raw.dropFirst(leading.count)
            if first.hasPrefix("#") { continue }
            let lineNumber = index
            var (line, continues) = continuation(String(first), escape: escape)
            if !continues && line.allSatisfy(\.isWhitespace) { continue }
            while continues && index < lines.count {
                let next = lines[index]
                index += 1
                if isComment(next) || next.allSatisfy(\.isWhitespace) { continue }
                let piece: String
                (piece, continues) = continuation(next, escape: escape)
                line += piece
            }
            let position = SourcePosition(line: lineNumber, column: leading.count + 1)
            let trimmed = line.trimmingBlanks
            let (word, rest) = Words.first(trimmed)
            let keyword = word.uppercased()
            guard keywords.contains(keyword) else {
                throw DockerfileError("unknown instruction: \(word)", file: path, at: position)
            }
            let (flags, arguments) = Words.flags(rest)
            var instruction = Instruction(
                keyword: keyword, position: position, original: trimmed, flags: flags,
                arguments: arguments.trimmingBlanks)
            if keyword == "RUN" || keyword == "COPY" || keyword == "ADD" {
                for marker in HeredocMarker.all(in: trimmed, escape: escape) {
                    var content = ""
                    var terminated = false
                    while index < lines.count {
                        var body = lines[index]
                        index += 1
                        if marker.chomp { body = String(body.drop(while: { $0 == "\t" })) }
                        if body == marker.name {
                            terminated = true
                            break
                        }
                        content += body + "\n"
                    }
                    guard terminated else {
                        throw DockerfileError("unterminated heredoc \(marker.name)", file: path, at: position)
                    }
                    instruction.heredocs.append(
                        Heredoc(name: marker.name, content: content, expand: marker.expand, chomp: marker.chomp))
                }
            }
            instructions.append(instruction)
        }
        return instructions
    }

    /// Splits the instructions into global ARGs and stages, checking each.
    private mutating func assemble(_ instructions: [Instruction]) throws {
        guard !instructions.isEmpty else { throw DockerfileError("file with no instructions", file: path) }
        var names: Set<String> = []
        for instruction in instructions {
            try instruction.validate(file: path, escape: escape)
            if instruction.keyword == "FROM" {
                let words = Words.plain(instruction.arguments)
                let name = words.count == 3 ? words[2].lowercased() : nil
                if let name, !names.insert(name).inserted {
                    throw DockerfileError(
                        "duplicate stage name \"\(name)\"", file: path, at: instruction.position)
                }
                stages.append(Stage(index: stages.count, name: name, from: instruction, instructions: []))
            } else if stages.isEmpty {
                guard instruction.keyword == "ARG" else {
                    throw DockerfileError(
                        "no build stage in current context: \(instruction.keyword) before the first FROM",
                        file: path, at: instruction.position)
                }
                globalArgs.append(instruction)
            } else {
                stages[stages.count - 1].instructions.append(instruction)
            }
        }
        if stages.isEmpty { throw DockerfileError("no build stage in current context", file: path) }
    }
}

/// The lines of a text file as Go's line scanner reads them: split at "\n", a "\r" before it
/// dropped, no empty last line for a final "\n", and a byte-order mark at the start dropped.
/// (Cut by scalars: as Characters, "\r\n" is one and would not split at "\n".)
func lines(of text: String) -> [String] {
    var lines: [String] = []
    var current = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
        if scalar == "\n" {
            if current.last == "\r" { current.removeLast() }
            lines.append(String(current))
            current = String.UnicodeScalarView()
        } else {
            current.append(scalar)
        }
    }
    if !current.isEmpty {
        if current.last == "\r" { current.removeLast() }
        lines.append(String(current))
    }
    if let first = lines.first, first.unicodeScalars.first == "\u{FEFF}" {
        lines[0] = String(first.unicodeScalars.dropFirst())
    }
    return lines
}

extension StringProtocol {
    /// Without leading and trailing whitespace.
    var trimmingBlanks: String {
        let start = drop(while: { $0.isWhitespace })
        return String(start.reversed().drop(while: { $0.isWhitespace }).reversed())
    }
}

/// A `<<EOF`, `<<-EOF`, `<<"EOF"` or `<<'EOF'` word on an instruction line (an optional file
/// descriptor may come first, `3<<EOF`, as in a shell).
struct HeredocMarker: Equatable {
    var name: String
    var expand: Bool
    var chomp: Bool

    /// The markers of a line in order: its words (quotes kept, so that "<<EOF" in quotes is no
    /// marker) that have the shape `digits<<[-]delimiter`.
    static func all(in line: String, escape: Character) -> [HeredocMarker] {
        guard line.contains("<<") else { return [] }
        var lexer = ShellLexer(line, escape: escape, lookup: { _ in nil })
        lexer.rawQuotes = true
        lexer.rawEscapes = true
        // A line the lexer cannot read (an apostrophe in a shell comment) has no markers.
        guard let words = try? lexer.run().words else { return [] }
        return words.compactMap { parse($0, escape: escape) }
    }

    static func parse(_ word: String, escape: Character) -> HeredocMarker? {
        let afterDigits = word.drop(while: { $0.isASCII && $0.isNumber })
        guard afterDigits.hasPrefix("<<") else { return nil }
        var rest = afterDigits.dropFirst(2)
        let chomp = rest.hasPrefix("-")
        if chomp { rest = rest.dropFirst() }
        guard !rest.contains("<") else { return nil }
        var lexer = ShellLexer(String(rest), escape: escape, lookup: { _ in nil })
        guard let words = try? lexer.run().words, words.count == 1 else { return nil }
        // Quoting any part of the delimiter (or escaping it) turns expansion off, as in sh.
        return HeredocMarker(name: words[0], expand: words[0] == rest, chomp: chomp)
    }
}
