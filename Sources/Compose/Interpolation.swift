import YAML

/// Variable substitution in compose values, as the Compose Specification's interpolation section
/// and `docker compose` (compose-go's template package) define it:
///
///     $VAR  ${VAR}          value of VAR ("" and a warning when unset)
///     ${VAR:-default}       default when VAR is unset or empty;  ${VAR-default} only when unset
///     ${VAR:?message}       error when VAR is unset or empty;    ${VAR?message} only when unset
///     ${VAR:+alternative}   alternative when VAR is set and non-empty; ${VAR+alternative} when set
///     $$                    a literal "$"
///
/// Defaults, messages and alternatives are themselves templates (`${A:-${B:-x}}`) and are only
/// evaluated when used, so an unset variable inside an unused default is not reported.
/// A `$` that starts neither a name nor `{` nor `$` is kept as written (`$1`, `$ `, a trailing `$`);
/// a malformed `${...}` is an error.
///
/// One interpolator serves a whole project load, so `unsetVariables` collects every variable that
/// was substituted by "" (in first-seen order, once each) for the loader to warn about.
public final class Interpolator {
    private let lookup: (String) -> String?
    public private(set) var unsetVariables: [String] = []
    private var reported: Set<String> = []

    public init(lookup: @escaping (String) -> String?) {
        self.lookup = lookup
    }

    /// Substitutes every variable in `text`. `mark` is where the scalar starts; errors name it.
    public func interpolate(_ text: String, at mark: Mark) throws -> String {
        // Most scalars have no "$": hand them back untouched without copying.
        guard text.utf8.contains(dollar) else { return text }
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        try substitute(bytes, 0..<bytes.count, into: &out, context: Context(text: text, mark: mark))
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Implementation

    private struct Context {
        let text: String
        let mark: Mark

        func invalid(_ reason: String) -> ComposeError {
            ComposeError(
                "invalid interpolation format in \"\(text)\": \(reason); use \"$$\" for a literal \"$\"", at: mark)
        }
    }

    private enum Operator: String {
        case defaultIfUnsetOrEmpty = ":-"
        case defaultIfUnset = "-"
        case requiredNonEmpty = ":?"
        case required = "?"
        case alternativeIfNonEmpty = ":+"
        case alternativeIfSet = "+"
    }

    /// Appends the substituted form of `bytes[range]` to `out`.
    private func substitute(_ bytes: [UInt8], _ range: Range<Int>, into out: inout [UInt8], context: Context) throws {
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let byte = bytes[i]
            guard byte == dollar, i + 1 < end else {
                out.append(byte)
                i += 1
                continue
            }
            let next = bytes[i + 1]
            if next == dollar {
                out.append(dollar)
                i += 2
            } else if isNameStart(next) {
                var j = i + 2
                while j < end, isNameContinue(bytes[j]) { j += 1 }
                appendValue(of: name(bytes, i + 1..<j), into: &out)
                i = j
            } else if next == openBrace {
                i = try substituteBraced(bytes, from: i, end: end, into: &out, context: context)
            } else {
                out.append(byte)
                i += 1
            }
        }
    }

    /// Handles one `${...}` starting at `start` (the `$`); returns the index after its `}`.
    private func substituteBraced(
        _ bytes: [UInt8], from start: Int, end: Int, into out: inout [UInt8], context: Context
    ) throws -> Int {
        let nameStart = start + 2
        guard nameStart < end else { throw context.invalid("\"${\" is not closed") }
        guard isNameStart(bytes[nameStart]) else {
            throw context.invalid(
                "\"${\" must be followed by a variable name ([A-Za-z_][A-Za-z0-9_]*), found \"\(snippet(bytes, nameStart, end))\""
            )
        }
        var j = nameStart + 1
        while j < end, isNameContinue(bytes[j]) { j += 1 }
        let variable = name(bytes, nameStart..<j)
        guard j < end else { throw context.invalid("\"${\(variable)\" is not closed with \"}\"") }
        if bytes[j] == closeBrace {
            appendValue(of: variable, into: &out)
            return j + 1
        }

        let op: Operator
        var argStart = j + 1
        switch bytes[j] {
        case colon:
            let symbol = j + 1 < end ? bytes[j + 1] : 0
            switch symbol {
            case minus: op = .defaultIfUnsetOrEmpty
            case question: op = .requiredNonEmpty
            case plus: op = .alternativeIfNonEmpty
            default:
                throw context.invalid(
                    "unexpected \"\(snippet(bytes, j, end))\" after \"${\(variable)\" (expected \"}\", \":-\", \"-\", \":?\", \"?\", \":+\" or \"+\")"
                )
            }
            argStart = j + 2
        case minus: op = .defaultIfUnset
        case question: op = .required
        case plus: op = .alternativeIfSet
        default:
            throw context.invalid(
                "unexpected \"\(snippet(bytes, j, end))\" after \"${\(variable)\" (expected \"}\", \":-\", \"-\", \":?\", \"?\", \":+\" or \"+\")"
            )
        }

        // The argument runs to the "}" that balances the opening one; braces inside it nest.
        var depth = 0
        var k = argStart
        while k < end {
            if bytes[k] == openBrace {
                depth += 1
            } else if bytes[k] == closeBrace {
                if depth == 0 { break }
                depth -= 1
            }
            k += 1
        }
        guard k < end else { throw context.invalid("\"${\(variable)\(op.rawValue)\" is not closed with \"}\"") }
        let argument = argStart..<k

        let value = lookup(variable)
        let isSet = value != nil
        let isNonEmpty = !(value ?? "").isEmpty
        switch op {
        case .defaultIfUnsetOrEmpty, .defaultIfUnset:
            if op == .defaultIfUnset ? isSet : isNonEmpty {
                out.append(contentsOf: value!.utf8)
            } else {
                try substitute(bytes, argument, into: &out, context: context)
            }
        case .requiredNonEmpty, .required:
            if op == .required ? isSet : isNonEmpty {
                out.append(contentsOf: value!.utf8)
            } else {
                var message: [UInt8] = []
                try substitute(bytes, argument, into: &message, context: context)
                var text = "required variable \(variable) is missing a value"
                if !message.isEmpty { text += ": " + String(decoding: message, as: UTF8.self) }
                throw ComposeError(text, at: context.mark)
            }
        case .alternativeIfNonEmpty, .alternativeIfSet:
            if op == .alternativeIfSet ? isSet : isNonEmpty {
                try substitute(bytes, argument, into: &out, context: context)
            } else if let value {
                out.append(contentsOf: value.utf8)  // set but empty: stays empty
            }
        }
        return k + 1
    }

    private func appendValue(of variable: String, into out: inout [UInt8]) {
        if let value = lookup(variable) {
            out.append(contentsOf: value.utf8)
        } else if reported.insert(variable).inserted {
            unsetVariables.append(variable)
        }
    }

    private func name(_ bytes: [UInt8], _ range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self)
    }

    /// A few characters from `start` for an error message.
    private func snippet(_ bytes: [UInt8], _ start: Int, _ end: Int) -> String {
        String(decoding: bytes[start..<min(end, start + 10)], as: UTF8.self)
    }
}

private let dollar = UInt8(ascii: "$")
private let openBrace = UInt8(ascii: "{")
private let closeBrace = UInt8(ascii: "}")
private let colon = UInt8(ascii: ":")
private let minus = UInt8(ascii: "-")
private let question = UInt8(ascii: "?")
private let plus = UInt8(ascii: "+")

private func isNameStart(_ b: UInt8) -> Bool {
    (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F
}

private func isNameContinue(_ b: UInt8) -> Bool {
    isNameStart(b) || (b >= 0x30 && b <= 0x39)
}
