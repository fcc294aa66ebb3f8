import CNetlink

/// The little of DNS (RFC 1035) the embedded server needs: the header, questions, and resource
/// records read from bytes (names may use compression pointers), and answers with A records
/// built. Record data is kept as bytes, not decoded (names inside it are not followed): forwarded
/// queries and upstream answers travel as their own bytes anyway.
public struct DNSMessage: Equatable, Sendable {
    public var id: UInt16
    /// QR, opcode, AA, TC, RD, RA, Z and RCODE as on the wire.
    public var flags: UInt16
    public var questions: [Question]
    public var answers: [Record]
    public var authority: [Record]
    /// Where EDNS's OPT record travels.
    public var additional: [Record]

    public init(
        id: UInt16, flags: UInt16, questions: [Question], answers: [Record] = [], authority: [Record] = [],
        additional: [Record] = []
    ) {
        self.id = id
        self.flags = flags
        self.questions = questions
        self.answers = answers
        self.authority = authority
        self.additional = additional
    }

    public static let typeA: UInt16 = 1
    public static let typeAAAA: UInt16 = 28
    public static let typeOPT: UInt16 = 41
    public static let classIN: UInt16 = 1

    public enum ResponseCode: UInt16, Sendable {
        case noError = 0
        case formatError = 1
        case serverFailure = 2
        case nameError = 3
        case notImplemented = 4
        case refused = 5
    }

    public var isResponse: Bool { flags & 0x8000 != 0 }
    public var opcode: UInt16 { flags >> 11 & 0xf }
    public var isTruncated: Bool { flags & 0x0200 != 0 }
    public var recursionDesired: Bool { flags & 0x0100 != 0 }
    public var responseCode: UInt16 { flags & 0xf }

    /// A domain name as its labels, bytes kept as they came (so a question is echoed exactly).
    public struct Name: Equatable, Sendable, CustomStringConvertible {
        public var labels: [[UInt8]]

        public init(labels: [[UInt8]]) { self.labels = labels }

        /// "web", "web.example.com" or "web." (the trailing dot is the root and is dropped);
        /// nil for an empty label or a name too long for the wire.
        public init?(_ text: String) {
            var trimmed = Substring(text)
            if trimmed.hasSuffix(".") { trimmed = trimmed.dropLast() }
            labels =
                trimmed.isEmpty
                ? []
                : trimmed.split(separator: ".", omittingEmptySubsequences: false).map {
                    Array($0.utf8)
                }
            guard labels.allSatisfy({ !$0.isEmpty && $0.count <= 63 }), encodedCount <= 255 else { return nil }
        }

        /// Dotted, without the root's trailing dot ("" for the root itself).
        public var description: String { labels.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".") }

        /// What names are compared by: ASCII letters folded, as DNS compares them.
        public var key: String { description.lowercased() }

        var encodedCount: Int { labels.reduce(1) { $0 + 1 + $1.count } }
    }

    public struct Question: Equatable, Sendable {
        public var name: Name
        public var type: UInt16
        public var `class`: UInt16

        public init(name: Name, type: UInt16, class: UInt16 = DNSMessage.classIN) {
            self.name = name
            self.type = type
            self.class = `class`
        }
    }

    public struct Record: Equatable, Sendable {
        public var name: Name
        public var type: UInt16
        public var `class`: UInt16
        public var ttl: UInt32
        public var data: [UInt8]

        public init(name: Name, type: UInt16, class: UInt16 = DNSMessage.classIN, ttl: UInt32, data: [UInt8]) {
            self.name = name
            self.type = type
            self.class = `class`
            self.ttl = ttl
            self.data = data
        }

        /// The address of an A record.
        public var ipv4: [UInt8]? { type == DNSMessage.typeA && data.count == 4 ? data : nil }
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var description: String
    }
}

// MARK: Reading

extension DNSMessage {
    /// The ID of a message, when it has at least a header: what a FORMERR answer echoes.
    public static func id(of bytes: [UInt8]) -> UInt16? {
        bytes.count >= 12 ? UInt16(bytes[0]) << 8 | UInt16(bytes[1]) : nil
    }

    /// Reads every section; bytes after the last record are ignored.
    public init(parsing bytes: [UInt8]) throws(ParseError) {
        var reader = Reader(bytes: bytes)
        id = try reader.u16()
        flags = try reader.u16()
        let questionCount = try reader.u16()
        let answerCount = try reader.u16()
        let authorityCount = try reader.u16()
        let additionalCount = try reader.u16()
        questions = []
        for _ in 0..<questionCount {
            let name = try reader.name()
            questions.append(Question(name: name, type: try reader.u16(), class: try reader.u16()))
        }
        answers = try reader.records(answerCount)
        authority = try reader.records(authorityCount)
        additional = try reader.records(additionalCount)
    }

    /// A cursor over a message; every read is bounds-checked, so garbage throws and never traps.
    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func u8() throws(ParseError) -> UInt8 {
            guard offset < bytes.count else { throw ParseError(description: "message ends at byte \(offset)") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func u16() throws(ParseError) -> UInt16 { UInt16(try u8()) << 8 | UInt16(try u8()) }

        mutating func records(_ count: UInt16) throws(ParseError) -> [Record] {
            var records: [Record] = []
            for _ in 0..<count {
                let name = try name()
                let type = try u16()
                let `class` = try u16()
                let ttl = UInt32(try u16()) << 16 | UInt32(try u16())
                let length = Int(try u16())
                records.append(Record(name: name, type: type, class: `class`, ttl: ttl, data: try take(length)))
            }
            return records
        }

        mutating func take(_ count: Int) throws(ParseError) -> [UInt8] {
            guard count <= bytes.count - offset else { throw ParseError(description: "message ends at byte \(offset)") }
            defer { offset += count }
            return Array(bytes[offset..<offset + count])
        }

        /// A name at the cursor: labels, ended by a zero byte or a pointer (two bytes whose top
        /// bits are 11) to the rest of the name earlier in the message. Pointers must point
        /// backwards, which also rules out loops.
        mutating func name() throws(ParseError) -> Name {
            var labels: [[UInt8]] = []
            var length = 1
            var position = offset
            var jumped = false
            while true {
                guard position < bytes.count else { throw ParseError(description: "name runs past the message") }
                let count = bytes[position]
                switch count >> 6 {
                case 0:
                    if count == 0 {
                        if !jumped { offset = position + 1 }
                        return Name(labels: labels)
                    }
                    let start = position + 1
                    guard start + Int(count) <= bytes.count else {
                        throw ParseError(description: "name runs past the message")
                    }
                    length += 1 + Int(count)
                    guard length <= 255 else { throw ParseError(description: "name longer than 255 bytes") }
                    labels.append(Array(bytes[start..<start + Int(count)]))
                    position = start + Int(count)
                case 3:
                    guard position + 1 < bytes.count else {
                        throw ParseError(description: "name runs past the message")
                    }
                    let target = Int(count & 0x3f) << 8 | Int(bytes[position + 1])
                    guard target < position else { throw ParseError(description: "compression pointer forwards") }
                    if !jumped { offset = position + 2 }
                    jumped = true
                    position = target
                default:
                    throw ParseError(description: "unknown label type")
                }
            }
        }
    }
}

// MARK: Writing

extension DNSMessage {
    /// The message on the wire. Answer names equal to the first question's are written as a
    /// pointer to it (offset 12), as servers do; other names in full.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        let counts = [questions.count, answers.count, authority.count, additional.count].map { UInt16($0) }
        for value in [id, flags] + counts { out.append(u16: value) }
        for question in questions {
            out.append(name: question.name)
            out.append(u16: question.type)
            out.append(u16: question.class)
        }
        for record in answers + authority + additional {
            if let first = questions.first, first.name == record.name {
                out.append(u16: 0xc00c)
            } else {
                out.append(name: record.name)
            }
            out.append(u16: record.type)
            out.append(u16: record.class)
            out.append(u16: UInt16(record.ttl >> 16))
            out.append(u16: UInt16(record.ttl & 0xffff))
            out.append(u16: UInt16(record.data.count))
            out += record.data
        }
        return out
    }

    /// An answer to `query`: its ID, opcode, RD and question; QR and RA set, AA as asked.
    /// `limit` (512 over UDP without EDNS) drops answers that do not fit and sets TC, so
    /// the client asks again over TCP.
    public static func response(
        to query: DNSMessage, code: ResponseCode, answers: [Record] = [], authoritative: Bool = false,
        limit: Int = 65535
    ) -> DNSMessage {
        var flags: UInt16 = 0x8000 | 0x0080 | (query.flags & 0x7900) | code.rawValue
        if authoritative { flags |= 0x0400 }
        var response = DNSMessage(id: query.id, flags: flags, questions: query.questions, answers: answers)
        while response.bytes.count > limit, !response.answers.isEmpty {
            response.answers.removeLast()
            response.flags |= 0x0200
        }
        return response
    }

    /// FORMERR (or another code) for bytes that did not parse: the header only, with their ID.
    public static func failure(id: UInt16, code: ResponseCode) -> [UInt8] {
        var out: [UInt8] = []
        for value in [id, 0x8080 | code.rawValue, 0, 0, 0, 0] { out.append(u16: value) }
        return out
    }

    /// An A record's data.
    public static func aRecord(_ name: Name, address: (UInt8, UInt8, UInt8, UInt8), ttl: UInt32) -> Record {
        Record(name: name, type: typeA, ttl: ttl, data: [address.0, address.1, address.2, address.3])
    }

    /// The largest UDP answer the asker takes: the size in its EDNS OPT record (the record's
    /// class field), else 512 (RFC 6891).
    public var udpLimit: Int {
        guard let opt = additional.first(where: { $0.type == DNSMessage.typeOPT }) else { return 512 }
        return min(max(Int(opt.class), 512), 65535)
    }
}

extension [UInt8] {
    fileprivate mutating func append(u16 value: UInt16) {
        append(UInt8(value >> 8))
        append(UInt8(value & 0xff))
    }

    fileprivate mutating func append(name: DNSMessage.Name) {
        for label in name.labels {
            append(UInt8(label.count))
            self += label
        }
        append(0)
    }
}
