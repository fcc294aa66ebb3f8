/// Just enough of an unbounded unsigned integer for Go's integer syntax and ParseCPUs's exact
/// fractions: limbs of 32 bits, least significant first, no zero limb on top.
struct BigUInt {
    private(set) var limbs: [UInt32] = []

    init() {}

    /// Go's integer literal in base 0 (no sign): decimal, 0x/0X, 0o/0O, 0b/0B, or, when
    /// `leadingZeroIsOctal`, a leading 0 for octal. nil when it is not one.
    init?(goInteger text: Substring, leadingZeroIsOctal: Bool) {
        var digits = text
        var base: UInt32 = 10
        let lower = text.lowercased()
        if lower.hasPrefix("0x") {
            base = 16
        } else if lower.hasPrefix("0o") {
            base = 8
        } else if lower.hasPrefix("0b") {
            base = 2
        } else if leadingZeroIsOctal, text.count > 1, text.first == "0" {
            base = 8
            digits = text.dropFirst()
        }
        if base != 10 && digits == text { digits = text.dropFirst(2) }
        guard !digits.isEmpty else { return nil }
        for c in digits.unicodeScalars {
            let value: UInt32
            switch c {
            case "0"..."9": value = c.value - 0x30
            case "a"..."f": value = c.value - 0x61 + 10
            case "A"..."F": value = c.value - 0x41 + 10
            default: return nil
            }
            guard value < base else { return nil }
            multiply(by: base, adding: value)
        }
    }

    var isZero: Bool { limbs.isEmpty }

    var uint64: UInt64? {
        guard limbs.count <= 2 else { return nil }
        return UInt64(limbs.first ?? 0) | (limbs.count == 2 ? UInt64(limbs[1]) << 32 : 0)
    }

    var int64: Int64? {
        guard let value = uint64, value <= UInt64(Int64.max) else { return nil }
        return Int64(value)
    }

    mutating func multiply(by factor: UInt32, adding addend: UInt32 = 0) {
        var carry = UInt64(addend)
        for i in limbs.indices {
            let v = UInt64(limbs[i]) * UInt64(factor) + carry
            limbs[i] = UInt32(truncatingIfNeeded: v)
            carry = v >> 32
        }
        if carry != 0 { limbs.append(UInt32(carry)) }
        while limbs.last == 0 { limbs.removeLast() }
    }

    private var bitWidth: Int { limbs.isEmpty ? 0 : limbs.count * 32 - limbs[limbs.count - 1].leadingZeroBitCount }

    private func bit(_ i: Int) -> Bool { (limbs[i >> 5] >> UInt32(i & 31)) & 1 == 1 }

    private static func isLess(_ a: BigUInt, _ b: BigUInt) -> Bool {
        if a.limbs.count != b.limbs.count { return a.limbs.count < b.limbs.count }
        for i in a.limbs.indices.reversed() where a.limbs[i] != b.limbs[i] { return a.limbs[i] < b.limbs[i] }
        return false
    }

    /// Binary long division.
    func quotientAndRemainder(dividingBy divisor: BigUInt) -> (quotient: BigUInt, remainder: BigUInt) {
        precondition(!divisor.isZero)
        var quotient = BigUInt()
        var remainder = BigUInt()
        var i = bitWidth - 1
        while i >= 0 {
            // remainder = remainder * 2 + bit i
            var carry: UInt32 = bit(i) ? 1 : 0
            for j in remainder.limbs.indices {
                let v = remainder.limbs[j]
                remainder.limbs[j] = (v << 1) | carry
                carry = v >> 31
            }
            if carry != 0 { remainder.limbs.append(carry) }
            if !Self.isLess(remainder, divisor) {
                var borrow: UInt64 = 0
                for j in remainder.limbs.indices {
                    let subtrahend = UInt64(j < divisor.limbs.count ? divisor.limbs[j] : 0) + borrow
                    let v = UInt64(remainder.limbs[j])
                    remainder.limbs[j] = UInt32(truncatingIfNeeded: v &- subtrahend)
                    borrow = v < subtrahend ? 1 : 0
                }
                while remainder.limbs.last == 0 { remainder.limbs.removeLast() }
                while quotient.limbs.count <= i >> 5 { quotient.limbs.append(0) }
                quotient.limbs[i >> 5] |= 1 << UInt32(i & 31)
            }
            i -= 1
        }
        return (quotient, remainder)
    }
}
