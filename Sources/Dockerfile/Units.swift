/// The value syntaxes Docker borrows from Go: durations, byte sizes and booleans.
enum Units {
    /// Go's time.ParseDuration in nanoseconds: "300ms", "1.5h", "2h45m", "-1s", "0".
    static func duration(_ text: String) -> Int64? {
        var scalars = Substring(text)
        var negative = false
        if scalars.first == "-" || scalars.first == "+" {
            negative = scalars.first == "-"
            scalars = scalars.dropFirst()
        }
        if scalars == "0" { return 0 }
        guard !scalars.isEmpty else { return nil }
        let units: [(String, Double)] = [
            ("ns", 1), ("us", 1e3), ("µs", 1e3), ("μs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
        ]
        var total = 0.0
        while !scalars.isEmpty {
            let number = scalars.prefix(while: { $0.isASCII && ($0.isNumber || $0 == ".") })
            guard !number.isEmpty, number != ".", number.filter({ $0 == "." }).count <= 1,
                let value = Double(number.hasPrefix(".") ? "0" + number : String(number))
            else { return nil }
            scalars = scalars.dropFirst(number.count)
            let unit = scalars.prefix(while: { !($0.isASCII && ($0.isNumber || $0 == ".")) })
            guard let multiplier = units.first(where: { $0.0 == unit })?.1 else { return nil }
            scalars = scalars.dropFirst(unit.count)
            total += value * multiplier
        }
        guard total < 9.2e18 else { return nil }
        let nanoseconds = Int64(total.rounded())
        return negative ? -nanoseconds : nanoseconds
    }

    /// docker/go-units' RAMInBytes: "64m", "1g", "512", "1.5 GiB" (binary multiples).
    static func bytes(_ text: String) -> Int64? {
        var rest = Substring(text)
        let number = rest.prefix(while: { $0.isASCII && ($0.isNumber || $0 == ".") })
        guard let first = number.first, first.isNumber, number.last?.isNumber == true, let value = Double(number)
        else { return nil }
        rest = rest.dropFirst(number.count)
        if rest.first == " " { rest = rest.dropFirst() }
        var multiplier = 1.0
        if let unit = rest.first, let power = "kmgtp".firstIndex(of: Character(unit.lowercased())) {
            multiplier = pow1024("kmgtp".distance(from: "kmgtp".startIndex, to: power) + 1)
            rest = rest.dropFirst()
        }
        if rest.first?.lowercased() == "i" { rest = rest.dropFirst() }
        if rest.first?.lowercased() == "b" { rest = rest.dropFirst() }
        guard rest.isEmpty else { return nil }
        let bytes = value * multiplier
        guard bytes < 9.2e18 else { return nil }
        return Int64(bytes)
    }

    private static func pow1024(_ power: Int) -> Double {
        (0..<power).reduce(1.0) { result, _ in result * 1024 }
    }

    /// Go's strconv.ParseBool.
    static func bool(_ text: String) -> Bool? {
        switch text {
        case "1", "t", "T", "true", "TRUE", "True": true
        case "0", "f", "F", "false", "FALSE", "False": false
        default: nil
        }
    }

    /// An unsigned number in `radix` that fits 32 bits (Go's strconv.ParseUint(text, radix, 32)).
    static func uint32(_ text: String, radix: Int) -> UInt32? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isHexDigit }) else { return nil }
        return UInt32(text, radix: radix)
    }
}
