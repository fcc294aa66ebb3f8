import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Docker's human-readable sizes, durations and tables.
enum HumanFormat {
    /// Decimal units with three significant digits: `4.26MB`, `1.23kB`, `512B` (`image ls`);
    /// `system df` and the prunes' totals use four, as Docker's units.HumanSize.
    static func size(_ bytes: Int64, precision: Int = 3) -> String {
        let units = ["B", "kB", "MB", "GB", "TB", "PB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        var text = printfString("%.\(precision)g", value)
        if text.contains("e") { text = printfString("%.0f", value) }
        return text + units[unit]
    }

    /// One number through C's printf formats, as Foundation's `String(format:)` formatted it
    /// (that initializer is not in FoundationEssentials).
    private static func printfString(_ format: String, _ value: Double) -> String {
        withVaList([value]) { arguments in
            // Any double fits: "%.0f" of the largest one has 309 digits.
            var buffer = [CChar](repeating: 0, count: 512)
            _ = vsnprintf(&buffer, buffer.count, format, arguments)
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// `Less than a second`, `5 seconds`, `About a minute`, `3 hours`, `2 weeks`, ...
    static func duration(_ interval: TimeInterval) -> String {
        let seconds = Int(interval)
        let minutes = seconds / 60
        let hours = minutes / 60
        switch true {
        case seconds < 1: return "Less than a second"
        case seconds == 1: return "1 second"
        case seconds < 60: return "\(seconds) seconds"
        case minutes == 1: return "About a minute"
        case minutes < 60: return "\(minutes) minutes"
        case hours == 1: return "About an hour"
        case hours < 48: return "\(hours) hours"
        case hours < 24 * 7 * 2: return "\(hours / 24) days"
        case hours < 24 * 30 * 2: return "\(hours / 24 / 7) weeks"
        case hours < 24 * 365 * 2: return "\(hours / 24 / 30) months"
        default: return "\(hours / 24 / 365) years"
        }
    }

    /// Columns padded to the widest cell plus three spaces, like docker's tabwriter output.
    static func table(_ rows: [[String]]) -> String {
        guard let columns = rows.first?.count else { return "" }
        var widths = [Int](repeating: 0, count: columns)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var out = ""
        for row in rows {
            var line = ""
            for (i, cell) in row.enumerated() {
                line += i == columns - 1 ? cell : cell + String(repeating: " ", count: widths[i] + 3 - cell.count)
            }
            out += line + "\n"
        }
        return out
    }
}
