extension Instruction {
    /// The names of the variables this instruction's text refers to when it is built: what the
    /// builder substitutes (its arguments, its substituted flags, the bodies of unquoted COPY/ADD
    /// heredocs), and for RUN what its shell would see (the command, the --mount values, the
    /// bodies of unquoted heredocs). A build cache key needs these: which build args a step
    /// uses. CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and ONBUILD use none at build time.
    ///
    /// The scan is deliberately generous (every `$NAME` and `${NAME...}` outside single quotes,
    /// also inside the words of `${A:-$B}` that may go unused): a name too many costs a cache
    /// miss, a name too few a stale image.
    public func referencedVariables(escape: Character) -> Set<String> {
        var names: Set<String> = []
        switch keyword {
        case "RUN":
            // The shell's escape is always a backslash, whatever the Dockerfile's is.
            for text in flags + [arguments] + heredocs.filter(\.expand).map(\.content) {
                VariableScanner.scan(text, escape: "\\", into: &names)
            }
        case "ADD", "COPY":
            for text in flags + [arguments] {
                VariableScanner.scan(text, escape: escape, into: &names)
            }
            for heredoc in heredocs where heredoc.expand {
                VariableScanner.scan(heredoc.content, escape: escape, into: &names)
            }
        case "FROM", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "ARG":
            for text in flags + [arguments] {
                VariableScanner.scan(text, escape: escape, into: &names)
            }
        default:
            break
        }
        return names
    }
}

/// Finds variable references in text the way the shell lexer would substitute them.
enum VariableScanner {
    static func scan(_ text: String, escape: Character, into names: inout Set<String>) {
        let escape = escape.unicodeScalars.first ?? "\\"
        let scalars = Array(text.unicodeScalars)
        var index = 0
        var inDouble = false
        func isNameStart(_ scalar: Unicode.Scalar) -> Bool {
            scalar.properties.isAlphabetic || scalar == "_"
        }
        func isNamePart(_ scalar: Unicode.Scalar) -> Bool {
            isNameStart(scalar) || scalar.properties.numericType == .decimal
        }
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            switch scalar {
            case escape:
                index += 1
            case "'" where !inDouble:
                // Single quotes: literal up to the closing one.
                while index < scalars.count && scalars[index] != "'" { index += 1 }
                index += 1
            case "\"":
                inDouble.toggle()
            case "$":
                var start = index
                if start < scalars.count && scalars[start] == "{" {
                    start += 1
                    // ${#NAME} (length) and ${!NAME} (indirection) in a shell still read NAME.
                    if start < scalars.count && (scalars[start] == "#" || scalars[start] == "!") { start += 1 }
                }
                guard start < scalars.count, isNameStart(scalars[start]) else { continue }
                var end = start
                while end < scalars.count && isNamePart(scalars[end]) { end += 1 }
                var name = ""
                name.unicodeScalars.append(contentsOf: scalars[start..<end])
                names.insert(name)
                index = end
            default:
                break
            }
        }
    }
}
