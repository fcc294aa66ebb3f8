/// Lines drawn in place at the bottom of a terminal (compose's, a build's and a pull's progress):
/// each drawing goes up over the last one and clears every line it writes, so it needs only to
/// know how many lines it drew before.
struct TerminalBlock {
    private var drawn = 0

    /// The escape sequences and text that replace the last drawing with `lines`.
    mutating func redraw(_ lines: [String]) -> String {
        let up = drawn > 0 ? "\u{1B}[\(drawn)A" : ""
        drawn = lines.count
        // The cursor ends below the block; "\e[J" clears what a longer drawing left under it.
        return up + lines.map { "\r\u{1B}[2K" + $0 + "\n" }.joined() + "\u{1B}[J"
    }

    /// Leaves the last drawing where it is: the next one starts below it.
    mutating func detach() { drawn = 0 }

    /// Erases the last drawing (its lines, then the cursor back where it began).
    mutating func erase() -> String {
        defer { drawn = 0 }
        return drawn > 0 ? "\u{1B}[\(drawn)A\r\u{1B}[J" : ""
    }

    /// `text` in the SGR colour `code` when colours are on.
    static func paint(_ text: String, _ code: Int, colour: Bool) -> String {
        colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }
}
