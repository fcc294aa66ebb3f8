import ArgumentParser
import Compose
import FoundationEssentials
import Images
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Docker's CLI rules for flag values (docker/cli's opts package and its flag parser, pflag), so
/// `container run` takes and refuses what `docker run` does, with the same messages.
enum DockerFlags {
    /// Go's %q: in quotes, with quotes, backslashes and control characters escaped, so a message
    /// naming what the user typed stays on one line.
    static func quoted(_ text: String) -> String {
        "\"" + escaped(text, quotes: true) + "\""
    }

    /// Control characters escaped as Go writes them (and quotes and backslashes, for `quoted`).
    static func escaped(_ text: String, quotes: Bool = false) -> String {
        var out = ""
        for c in text.unicodeScalars {
            switch c {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\"" where quotes: out += "\\\""
            case "\\" where quotes: out += "\\\\"
            default:
                if c.value < 0x20 || c.value == 0x7f {
                    let hex = String(c.value, radix: 16)
                    out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out
    }

    /// pflag's message for a value the flag's type cannot take.
    static func invalidArgument(_ value: String, flag: String, _ reason: String) -> ContainerCommandError {
        ContainerCommandError(description: "invalid argument \(quoted(value)) for \(quoted(flag)) flag: \(reason)")
    }

    /// An integer flag as pflag reads one, Go's strconv.ParseInt(text, 0, 64): a sign, then
    /// decimal digits, or 0x/0o/0b or a leading 0 (octal). (Go's digit separators, "1_000", are
    /// refused.)
    static func integer(_ text: String, flag: String) throws -> Int64 {
        var body = Substring(text)
        var negative = false
        if let sign = body.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            body = body.dropFirst()
        }
        let parsing = "strconv.ParseInt: parsing \(quoted(text)): "
        guard let magnitude = BigUInt(goInteger: body, leadingZeroIsOctal: true) else {
            throw invalidArgument(text, flag: flag, parsing + "invalid syntax")
        }
        if let m = magnitude.uint64 {
            if !negative, m <= UInt64(Int64.max) { return Int64(m) }
            if negative, m <= UInt64(Int64.max) { return -Int64(m) }
            if negative, m == UInt64(Int64.max) + 1 { return .min }
        }
        throw invalidArgument(text, flag: flag, parsing + "value out of range")
    }

    /// A size flag: go-units' RAMInBytes ("64m", "1.5g", "512k", bytes), as docker/cli's
    /// MemBytes reads it. Negative sizes are refused unless `allowNegative`.
    static func size(_ text: String, flag: String, allowNegative: Bool = false) throws -> Int64 {
        guard let value = ByteSize.parse(text), allowNegative || value >= 0 else {
            throw invalidArgument(text, flag: flag, "invalid size: '\(escaped(text))'")
        }
        return value
    }

    /// `--cpus` as docker/cli's opts.ParseCPUs reads it: the text is a rational number (Go's
    /// big.Rat.SetString: a decimal such as "1.5", "-2", ".25" or "25e-2", or a fraction "a/b"
    /// whose parts may be 0x/0o/0b or 0-prefixed (octal) integers), times 10^9, which must come
    /// out whole (at most 9 decimals). The result is nanoCPUs; a value beyond Int64 saturates to
    /// Int64.max or .min, which CgroupLimits.validate refuses with Docker's range message, so no
    /// value, however large, is ever converted to an integer unchecked. (Go also reads
    /// hexadecimal and binary fractions and "p" exponents; berth refuses those as not a number.)
    static func nanoCPUs(_ text: String) throws -> Int64 {
        let notANumber = invalidArgument(text, flag: "--cpus", "failed to parse \(escaped(text)) as a rational number")
        let tooPrecise = invalidArgument(text, flag: "--cpus", "value is too precise")
        func signed(_ magnitude: Int64?, _ negative: Bool) -> Int64 {
            guard let magnitude else { return negative ? .min : .max }
            return negative ? -magnitude : magnitude
        }
        var body = Substring(text)
        var negative = false
        if let slash = body.firstIndex(of: "/") {
            // a/b: the numerator signed (Go's Int.SetString, base 0), the denominator not.
            var numerator = body[..<slash]
            if let sign = numerator.first, sign == "+" || sign == "-" {
                negative = sign == "-"
                numerator = numerator.dropFirst()
            }
            guard var n = BigUInt(goInteger: numerator, leadingZeroIsOctal: true),
                let d = BigUInt(goInteger: body[body.index(after: slash)...], leadingZeroIsOctal: true),
                !d.isZero
            else { throw notANumber }
            n.multiply(by: 1_000_000_000)
            let (q, r) = n.quotientAndRemainder(dividingBy: d)
            guard r.isZero else { throw tooPrecise }
            return signed(q.int64, negative)
        }
        if let sign = body.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            body = body.dropFirst()
        }
        let lower = body.lowercased()
        if lower.hasPrefix("0x") || lower.hasPrefix("0o") || lower.hasPrefix("0b") {
            // A prefixed integer (in a decimal's place, a leading 0 alone is not octal).
            guard var n = BigUInt(goInteger: body, leadingZeroIsOctal: false) else { throw notANumber }
            n.multiply(by: 1_000_000_000)
            return signed(n.int64, negative)
        }
        // Decimal: digits with at most one point, at least one digit, then an optional exponent.
        var digits: [UInt8] = []
        var decimals = 0
        var point = false
        var rest = body.utf8[...]
        while let c = rest.first, (c >= 0x30 && c <= 0x39) || (c == 0x2e && !point) {
            if c == 0x2e {
                point = true
            } else {
                digits.append(c - 0x30)
                if point { decimals += 1 }
            }
            rest = rest.dropFirst()
        }
        guard !digits.isEmpty else { throw notANumber }
        var exponent = 0
        if let e = rest.first, e == 0x65 || e == 0x45 {
            rest = rest.dropFirst()
            var exponentNegative = false
            if let sign = rest.first, sign == 0x2b || sign == 0x2d {
                exponentNegative = sign == 0x2d
                rest = rest.dropFirst()
            }
            guard let first = rest.first, first >= 0x30 && first <= 0x39 else { throw notANumber }
            while let c = rest.first, c >= 0x30 && c <= 0x39 {
                exponent = min(exponent * 10 + Int(c - 0x30), 100_000_000)
                rest = rest.dropFirst()
            }
            if exponentNegative { exponent = -exponent }
        }
        guard rest.isEmpty else { throw notANumber }
        guard let firstNonZero = digits.firstIndex(where: { $0 != 0 }) else { return 0 }
        digits.removeFirst(firstNonZero)
        // value = digits × 10^scale; Go refuses |scale| above 10^6 rather than compute it.
        let scale = exponent - decimals
        guard abs(scale) <= 1_000_000 else { throw notANumber }
        var shift = scale + 9  // nanoCPUs = digits × 10^shift
        if shift < 0 {
            // Whole only if the last -shift digits are zeros (the leading one is not).
            guard -shift < digits.count, digits.suffix(-shift).allSatisfy({ $0 == 0 }) else { throw tooPrecise }
            digits.removeLast(-shift)
            shift = 0
        }
        guard digits.count + shift <= 19 else { return signed(nil, negative) }
        var value: Int64 = 0
        for d in digits + [UInt8](repeating: 0, count: shift) {
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(Int64(d))
            if o1 || o2 { return signed(nil, negative) }
            value = sum
        }
        return signed(value, negative)
    }
}
