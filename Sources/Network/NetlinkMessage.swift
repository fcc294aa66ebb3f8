import CNetlink

/// One rtnetlink request as bytes: the header, the family header (ifinfomsg, ifaddrmsg, rtmsg)
/// and attributes, nested ones included, each padded to 4 bytes as the kernel reads them.
struct NetlinkMessage {
    private(set) var bytes: [UInt8]
    private var nests: [Int] = []

    /// `family`: the fixed header after nlmsghdr, as the kernel's struct.
    init<Header>(type: Int32, flags: Int32, family: Header) {
        bytes = [UInt8](repeating: 0, count: MemoryLayout<nlmsghdr>.size)
        var header = family
        withUnsafeBytes(of: &header) { bytes += $0 }
        pad()
        var nl = nlmsghdr()
        nl.nlmsg_type = UInt16(type)
        nl.nlmsg_flags = UInt16(flags | NLM_F_REQUEST)
        withUnsafeBytes(of: &nl) { raw in bytes.replaceSubrange(0..<raw.count, with: raw) }
    }

    mutating func attribute(_ type: Int32, _ payload: [UInt8]) {
        var header = rtattr()
        header.rta_len = UInt16(MemoryLayout<rtattr>.size + payload.count)
        header.rta_type = UInt16(type)
        withUnsafeBytes(of: &header) { bytes += $0 }
        bytes += payload
        pad()
    }

    mutating func attribute(_ type: Int32, string: String) {
        attribute(type, Array(string.utf8) + [0])
    }

    mutating func attribute(_ type: Int32, uint32 value: UInt32) {
        var v = value
        attribute(type, withUnsafeBytes(of: &v) { Array($0) })
    }

    /// Attributes added until `end()` go inside this one.
    mutating func begin(_ type: Int32) {
        nests.append(bytes.count)
        attribute(type, [])
    }

    mutating func end() {
        let start = nests.removeLast()
        let length = UInt16(bytes.count - start)
        bytes[start] = UInt8(length & 0xff)
        bytes[start + 1] = UInt8(length >> 8)
    }

    /// The finished message with its length and sequence number.
    func finished(sequence: UInt32) -> [UInt8] {
        var out = bytes
        var length = UInt32(out.count)
        var seq = sequence
        withUnsafeBytes(of: &length) { out.replaceSubrange(0..<4, with: $0) }
        withUnsafeBytes(of: &seq) { out.replaceSubrange(8..<12, with: $0) }
        return out
    }

    mutating func appendPadded(_ raw: [UInt8]) {
        bytes += raw
        pad()
    }

    private mutating func pad() {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }
}

/// A message the kernel sent: its type, the family header's bytes and its attributes by type.
struct NetlinkReply {
    let type: UInt16
    let body: [UInt8]
    let attributes: [UInt16: [UInt8]]

    /// The family header (ifinfomsg, ...) at the start of the body.
    func header<Header>(_: Header.Type) -> Header? {
        guard body.count >= MemoryLayout<Header>.size else { return nil }
        return body.withUnsafeBytes { $0.loadUnaligned(as: Header.self) }
    }

    /// Splits `bytes` (several messages, as one recv returns them).
    static func parse(_ bytes: [UInt8], headerSize: (UInt16) -> Int) -> [NetlinkReply] {
        var replies: [NetlinkReply] = []
        var at = 0
        while at + MemoryLayout<nlmsghdr>.size <= bytes.count {
            let nl = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: nlmsghdr.self) }
            let length = Int(nl.nlmsg_len)
            guard length >= MemoryLayout<nlmsghdr>.size, at + length <= bytes.count else { break }
            let body = Array(bytes[(at + MemoryLayout<nlmsghdr>.size)..<(at + length)])
            let fixed = min(align(headerSize(nl.nlmsg_type)), body.count)
            replies.append(
                NetlinkReply(type: nl.nlmsg_type, body: body, attributes: attributes(Array(body[fixed...]))))
            at += align(length)
        }
        return replies
    }

    static func attributes(_ bytes: [UInt8]) -> [UInt16: [UInt8]] {
        var found: [UInt16: [UInt8]] = [:]
        var at = 0
        while at + 4 <= bytes.count {
            let length = Int(bytes[at]) | Int(bytes[at + 1]) << 8
            let type = (UInt16(bytes[at + 2]) | UInt16(bytes[at + 3]) << 8) & ~UInt16(NLA_F_NESTED)
            guard length >= 4, at + length <= bytes.count else { break }
            found[type] = Array(bytes[(at + 4)..<(at + length)])
            at += align(length)
        }
        return found
    }

    static func align(_ n: Int) -> Int { (n + 3) & ~3 }
}
