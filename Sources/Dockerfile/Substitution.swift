/// Docker's variable substitution for builder instructions (BuildKit's shell lexer), which is
/// also where their quotes and escapes are removed:
///
///     $NAME ${NAME}            the value, "" when unset
///     ${NAME:-word}            word when NAME is unset or empty;   ${NAME-word} only when unset
///     ${NAME:+word}            word when NAME is set and non-empty; ${NAME+word} when set
///     ${NAME:?message}         error when NAME is unset or empty;  ${NAME?message} when unset
///     ${NAME#pat} ${NAME##pat} ${NAME%pat} ${NAME%%pat}   shortest / longest prefix or suffix removed
///     ${NAME/pat/s} ${NAME//pat/s}                        first / every match replaced
///     'single'                 literal, no escapes
///     "double"                 substitutes; the escape character escapes only " $ and itself
///     <escape>c                c literally (outside quotes)
///
/// Unlike a shell, the words inside `${NAME:-word}` are always evaluated, used or not: BuildKit
/// does so, and it is why every variable they name counts as referenced.
public enum Substitution {
    public static func expand(_ word: String, escape: Character, lookup: (String) -> String?) throws -> String {
        try withoutActuallyEscaping(lookup) { lookup in
            var lexer = ShellLexer(word, escape: escape, lookup: lookup)
            return try lexer.run().result
        }
    }

    /// Like `expand`, then split into words on whitespace that was not quoted or escaped, the
    /// values of variables included (BuildKit's ProcessWords).
    public static func expandWords(_ text: String, escape: Character, lookup: (String) -> String?) throws
        -> [String]
    {
        try withoutActuallyEscaping(lookup) { lookup in
            var lexer = ShellLexer(text, escape: escape, lookup: lookup)
            return try lexer.run().words
        }
    }
}

/// The lexer behind `Substitution`, with BuildKit's switches: `rawQuotes` and `rawEscapes` keep
/// quotes and escape characters in the result (heredoc detection needs the word as written), and
/// `skipUnset` leaves references to unset variables as written (parse-time validation, when no
/// variable is known yet).
struct ShellLexer {
    private let scalars: [Unicode.Scalar]
    private let escape: Unicode.Scalar
    private let lookup: (String) -> String?
    private var position = 0
    /// How many `${...}` enclose the one being read: each level is a recursion, so a hostile
    /// Dockerfile's thousands would overflow the stack (a stage's thread has half a megabyte).
    private var depth = 0
    static let maxDepth = 64
    var rawQuotes = false
    var rawEscapes = false
    var skipUnset = false

    init(_ text: String, escape: Character, lookup: @escaping (String) -> String?) {
        scalars = Array(text.unicodeScalars)
        self.escape = escape.unicodeScalars.first ?? "\\"
        self.lookup = lookup
    }

    mutating func run() throws -> (result: String, words: [String]) {
        position = 0
        do {
            return try process(stopAt: nil, rawEscapes: rawEscapes)
        } catch let error as DockerfileError {
            let text = String(String.UnicodeScalarView(scalars))
            throw DockerfileError("failed to process \"\(text)\": \(error.message)")
        }
    }

    private var peek: Unicode.Scalar? { position < scalars.count ? scalars[position] : nil }

    private mutating func next() -> Unicode.Scalar? {
        guard position < scalars.count else { return nil }
        defer { position += 1 }
        return scalars[position]
    }

    /// BuildKit's word splitting: whitespace ends a word unless it came quoted or escaped.
    private struct Words {
        var word = ""
        var words: [String] = []
        var inWord = false

        mutating func add(_ scalar: Unicode.Scalar) {
            if scalar.properties.isWhitespace {
                if inWord && !word.isEmpty {
                    words.append(word)
                    word = ""
                    inWord = false
                }
            } else {
                addRaw(scalar)
            }
        }

        mutating func addRaw(_ scalar: Unicode.Scalar) {
            word.unicodeScalars.append(scalar)
            inWord = true
        }

        mutating func add(_ text: String) {
            for scalar in text.unicodeScalars { add(scalar) }
        }

        mutating func addRaw(_ text: String) {
            word += text
            inWord = true
        }

        mutating func finish() -> [String] {
            if !word.isEmpty {
                words.append(word)
                word = ""
                inWord = false
            }
            return words
        }
    }

    private mutating func process(stopAt stop: Unicode.Scalar?, rawEscapes: Bool) throws -> (
        result: String, words: [String]
    ) {
        let saved = self.rawEscapes
        self.rawEscapes = rawEscapes
        defer { self.rawEscapes = saved }
        var result = ""
        var words = Words()
        while let scalar = peek {
            if let stop, scalar == stop {
                position += 1
                return (result, words.finish())
            }
            switch scalar {
            case "$":
                let value = try dollar()
                result += value
                // A variable's value is split into words like unquoted text.
                words.add(value)
            case "'":
                let value = try singleQuoted()
                result += value
                words.addRaw(value)
            case "\"":
                let value = try doubleQuoted()
                result += value
                words.addRaw(value)
            default:
                position += 1
                var literal = scalar
                if scalar == escape {
                    if self.rawEscapes {
                        words.addRaw(scalar)
                        result.unicodeScalars.append(scalar)
                    }
                    // An escape at the very end escapes nothing and disappears.
                    guard let escaped = next() else { break }
                    literal = escaped
                    words.addRaw(escaped)
                } else {
                    words.add(scalar)
                }
                result.unicodeScalars.append(literal)
            }
        }
        if let stop {
            throw DockerfileError("unexpected end of statement while looking for matching \(Character(stop))")
        }
        return (result, words.finish())
    }

    /// Everything up to the next single quote, as is: nothing escapes inside.
    private mutating func singleQuoted() throws -> String {
        var result = ""
        let open = next()!
        if rawQuotes { result.unicodeScalars.append(open) }
        while true {
            guard let scalar = next() else {
                throw DockerfileError("unexpected end of statement while looking for matching single-quote")
            }
            if scalar == "'" {
                if rawQuotes { result.unicodeScalars.append(scalar) }
                return result
            }
            result.unicodeScalars.append(scalar)
        }
    }

    /// Up to the next unescaped double quote, substituting; the escape character escapes only
    /// `"`, `$` and itself (as `\` does in sh), and stays otherwise.
    private mutating func doubleQuoted() throws -> String {
        var result = ""
        let open = next()!
        if rawQuotes { result.unicodeScalars.append(open) }
        while true {
            guard let scalar = peek else {
                throw DockerfileError("unexpected end of statement while looking for matching double-quote")
            }
            switch scalar {
            case "\"":
                position += 1
                if rawQuotes { result.unicodeScalars.append(scalar) }
                return result
            case "$":
                result += try dollar()
            default:
                position += 1
                var literal = scalar
                if scalar == escape {
                    if rawEscapes { result.unicodeScalars.append(scalar) }
                    guard let following = peek else { continue }
                    if following == "\"" || following == "$" || following == escape {
                        position += 1
                        literal = following
                    }
                }
                result.unicodeScalars.append(literal)
            }
        }
    }

    private func value(of name: String) -> String? {
        lookup(name)
    }

    private mutating func dollar() throws -> String {
        position += 1  // the "$"
        guard peek == "{" else {
            let name = self.name()
            if name.isEmpty { return "$" }
            guard let value = value(of: name) else { return skipUnset ? "$" + name : "" }
            return value
        }
        position += 1  // the "{"
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else {
            throw DockerfileError("syntax error: substitutions nested more than \(Self.maxDepth) deep")
        }
        switch peek {
        case nil: throw DockerfileError("syntax error: missing '}'")
        case "{", "}", ":": throw DockerfileError("syntax error: bad substitution")
        default: break
        }
        let name = self.name()
        guard var modifier = next() else { throw DockerfileError("syntax error: missing '}'") }
        var spelled = String(Character(modifier))
        switch modifier {
        case "}":
            guard let value = value(of: name) else { return skipUnset ? "${\(name)}" : "" }
            return value
        case ":", "+", "-", "?", "#", "%":
            var nullIsUnset = false
            if modifier == ":" {
                nullIsUnset = true
                guard let following = next() else { throw DockerfileError("syntax error: missing '}'") }
                modifier = following
                spelled.unicodeScalars.append(following)
            }
            let rawWord = modifier == "#" || modifier == "%"
            let word: String
            do {
                word = try process(stopAt: "}", rawEscapes: rawWord).result
            } catch {
                if peek == nil { throw DockerfileError("syntax error: missing '}'") }
                throw error
            }
            let value = self.value(of: name)
            if value == nil && skipUnset { return "${\(name)\(spelled)\(word)}" }
            let unset = value == nil || (nullIsUnset && value == "")
            switch modifier {
            case "-":
                return unset ? word : value!
            case "+":
                return unset ? "" : word
            case "?":
                guard let value else {
                    throw DockerfileError("\(name): \(word.isEmpty ? "is not allowed to be unset" : word)")
                }
                if nullIsUnset && value.isEmpty {
                    throw DockerfileError("\(name): \(word.isEmpty ? "is not allowed to be empty" : word)")
                }
                return value
            case "#", "%":
                if nullIsUnset { throw DockerfileError("unsupported modifier (\(spelled)) in substitution") }
                var pattern = word
                var longest = false
                if pattern.unicodeScalars.first == modifier {
                    longest = true
                    pattern.unicodeScalars.removeFirst()
                }
                let glob = try ShellGlob(pattern)
                return modifier == "#"
                    ? glob.removingPrefix(of: value ?? "", longest: longest)
                    : glob.removingSuffix(of: value ?? "", longest: longest)
            default:
                throw DockerfileError("unsupported modifier (\(spelled)) in substitution")
            }
        case "/":
            let all = peek == "/"
            if all { position += 1 }
            let pattern: String
            let replacement: String
            do {
                pattern = try process(stopAt: "/", rawEscapes: true).result
            } catch {
                if peek == nil { throw DockerfileError("syntax error: missing '/' in ${}") }
                throw error
            }
            do {
                replacement = try process(stopAt: "}", rawEscapes: true).result
            } catch {
                if peek == nil { throw DockerfileError("syntax error: missing '}'") }
                throw error
            }
            let value = self.value(of: name)
            if value == nil && skipUnset { return "${\(name)/\(pattern)/\(replacement)}" }
            return try ShellGlob(pattern).replacing(in: value ?? "", with: replacement, all: all)
        default:
            throw DockerfileError("unsupported modifier (\(spelled)) in substitution")
        }
    }

    /// A name: letters, digits and "_"; or a run of digits ($1); or one special parameter ($@).
    private mutating func name() -> String {
        var name = ""
        while let scalar = peek {
            if name.isEmpty && scalar.properties.numericType == .decimal {
                while let digit = peek, digit.properties.numericType == .decimal {
                    name.unicodeScalars.append(digit)
                    position += 1
                }
                return name
            }
            if name.isEmpty && "@*#?-$!0".unicodeScalars.contains(scalar) {
                position += 1
                return String(Character(scalar))
            }
            guard scalar.properties.isAlphabetic || scalar.properties.numericType == .decimal || scalar == "_"
            else { break }
            name.unicodeScalars.append(scalar)
            position += 1
        }
        return name
    }
}

/// The shell patterns of `${NAME#pat}`, `${NAME%pat}` and `${NAME/pat/s}`: `*` any string, `?`
/// any character, `\` escaping the next one (bracket expressions are not supported, as in
/// BuildKit).
struct ShellGlob {
    private enum Token: Equatable {
        case literal(Unicode.Scalar)
        case any
        case one
    }

    private let tokens: [Token]

    init(_ pattern: String) throws {
        var tokens: [Token] = []
        var scalars = pattern.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            switch scalar {
            case "*": tokens.append(.any)
            case "?": tokens.append(.one)
            case "\\":
                guard let escaped = scalars.next() else {
                    throw DockerfileError("invalid pattern (\(pattern)) in substitution: trailing backslash")
                }
                tokens.append(.literal(escaped))
            default: tokens.append(.literal(scalar))
            }
        }
        self.tokens = tokens
    }

    /// Whether the whole of `text` matches. Iterative, backtracking only to the last `*` (a later
    /// star can take whatever an earlier one would): O(pattern × text), where trying every split
    /// for every star was exponential (`${A#*a*a*a*a*a*a*a*a*a*a*a*a*b}` ran for hours), and
    /// no recursion per character to overflow a stage thread's stack.
    private func matches(_ text: ArraySlice<Unicode.Scalar>) -> Bool {
        var t = 0
        var i = text.startIndex
        var star: (token: Int, index: Int)? = nil
        while i < text.endIndex {
            if t < tokens.count {
                switch tokens[t] {
                case .any:
                    star = (t, i)
                    t += 1
                    continue
                case .one:
                    t += 1
                    i += 1
                    continue
                case .literal(let scalar) where text[i] == scalar:
                    t += 1
                    i += 1
                    continue
                default:
                    break
                }
            }
            guard let last = star else { return false }
            star = (last.token, last.index + 1)
            t = last.token + 1
            i = last.index + 1
        }
        while t < tokens.count, case .any = tokens[t] { t += 1 }
        return t == tokens.count
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var result = ""
        result.unicodeScalars.append(contentsOf: scalars)
        return result
    }

    func removingPrefix(of value: String, longest: Bool) -> String {
        let scalars = Array(value.unicodeScalars)
        let lengths = longest ? Array((0...scalars.count).reversed()) : Array(0...scalars.count)
        for length in lengths where matches(scalars[0..<length]) {
            return Self.string(scalars[length...])
        }
        return value
    }

    func removingSuffix(of value: String, longest: Bool) -> String {
        let scalars = Array(value.unicodeScalars)
        let starts = longest ? Array(0...scalars.count) : Array((0...scalars.count).reversed())
        for start in starts where matches(scalars[start...]) {
            return Self.string(scalars[..<start])
        }
        return value
    }

    /// Replaces the leftmost-longest match (and, with `all`, every later one) by `replacement`.
    func replacing(in value: String, with replacement: String, all: Bool) -> String {
        let scalars = Array(value.unicodeScalars)
        var result = ""
        var start = 0
        var copied = 0
        while start <= scalars.count {
            var matchedEnd: Int?
            for end in (start...scalars.count).reversed() where matches(scalars[start..<end]) {
                matchedEnd = end
                break
            }
            if let end = matchedEnd, !(end == start && tokens.isEmpty) {
                result += Self.string(scalars[copied..<start]) + replacement
                copied = end
                if !all { break }
                start = end > start ? end : start + 1
            } else {
                start += 1
            }
        }
        return result + Self.string(scalars[min(copied, scalars.count)...])
    }
}
