import Testing

@testable import NameServer

/// Messages read and written as bytes on the wire.
struct DNSMessageTests {
    /// A query for "web" (A, IN) with RD set, ID 0x1234, as dig would send it without EDNS.
    static let webQuery: [UInt8] =
        [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0] + [3] + Array("web".utf8) + [0, 0, 1, 0, 1]

    @Test func readsAQuery() throws {
        let message = try DNSMessage(parsing: Self.webQuery)
        #expect(message.id == 0x1234)
        #expect(!message.isResponse)
        #expect(message.opcode == 0)
        #expect(message.recursionDesired)
        #expect(message.questions.count == 1)
        #expect(message.questions[0].name.description == "web")
        #expect(message.questions[0].type == DNSMessage.typeA)
        #expect(message.questions[0].class == DNSMessage.classIN)
        #expect(message.answers.isEmpty)
        #expect(message.udpLimit == 512)
        // And writes it back byte for byte.
        #expect(message.bytes == Self.webQuery)
    }

    @Test func writesAnAnswerWithTwoARecords() throws {
        let query = try DNSMessage(parsing: Self.webQuery)
        let name = query.questions[0].name
        let response = DNSMessage.response(
            to: query, code: .noError,
            answers: [
                DNSMessage.aRecord(name, address: (10, 0, 0, 2), ttl: 600),
                DNSMessage.aRecord(name, address: (10, 0, 0, 3), ttl: 600),
            ])
        let record: (UInt8, UInt8) -> [UInt8] = { c, d in
            // Name as a pointer to the question (offset 12), A, IN, TTL 600, 4 bytes.
            [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x02, 0x58, 0, 4, 10, 0, c, d]
        }
        let expected: [UInt8] =
            [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0] + [3] + Array("web".utf8) + [0, 0, 1, 0, 1]
            + record(0, 2) + record(0, 3)
        #expect(response.bytes == expected)

        let read = try DNSMessage(parsing: expected)
        #expect(read.isResponse)
        #expect(read.responseCode == 0)
        #expect(read.answers.map(\.name.description) == ["web", "web"])
        #expect(read.answers.compactMap(\.ipv4) == [[10, 0, 0, 2], [10, 0, 0, 3]])
        #expect(read.answers.allSatisfy { $0.ttl == 600 })
    }

    @Test func followsCompressionPointers() throws {
        // Question "mail.example.com"; the answer's name is "www" and a pointer to "example.com"
        // inside the question (offset 12 + 5 = 17), its data a pointer-terminated name too.
        var bytes: [UInt8] = [0, 7, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]
        bytes += [4] + Array("mail".utf8) + [7] + Array("example".utf8) + [3] + Array("com".utf8) + [0, 0, 1, 0, 1]
        bytes += [3] + Array("www".utf8) + [0xc0, 17] + [0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]
        let message = try DNSMessage(parsing: bytes)
        #expect(message.questions[0].name.description == "mail.example.com")
        #expect(message.answers.count == 1)
        #expect(message.answers[0].name.description == "www.example.com")
        #expect(message.answers[0].ipv4 == [192, 0, 2, 1])
        #expect(message.answers[0].ttl == 60)
    }

    @Test func refusesPointerLoopsAndForwardPointers() {
        let header: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        // A pointer to itself, and one pointing past itself.
        #expect(throws: DNSMessage.ParseError.self) { try DNSMessage(parsing: header + [0xc0, 12, 0, 1, 0, 1]) }
        #expect(throws: DNSMessage.ParseError.self) { try DNSMessage(parsing: header + [0xc0, 14, 0, 0, 1, 0, 1]) }
        // A label type that does not exist (01xxxxxx).
        #expect(throws: DNSMessage.ParseError.self) { try DNSMessage(parsing: header + [0x40, 0, 0, 1, 0, 1]) }
    }

    @Test func truncatedAndGarbageMessagesThrowAndNeverTrap() {
        // Every prefix of a valid message but itself is short.
        for length in 0..<Self.webQuery.count {
            #expect(throws: DNSMessage.ParseError.self) { try DNSMessage(parsing: Array(Self.webQuery.prefix(length))) }
        }
        #expect(DNSMessage.id(of: [1, 2, 3]) == nil)
        // Random bytes: any outcome but a crash.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let count = Int.random(in: 0..<80, using: &generator)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? DNSMessage(parsing: bytes)
        }
    }

    @Test func namesFromText() throws {
        #expect(DNSMessage.Name("web.")?.labels == [Array("web".utf8)])
        #expect(DNSMessage.Name("Web.Example")?.key == "web.example")
        #expect(DNSMessage.Name(".")?.labels == [])
        #expect(DNSMessage.Name("a..b") == nil)
        #expect(DNSMessage.Name(String(repeating: "x", count: 64)) == nil)
        let long = Array(repeating: String(repeating: "x", count: 60), count: 5).joined(separator: ".")
        #expect(DNSMessage.Name(long) == nil)
    }

    @Test func answersOverUDPLimitAreTruncatedWithTC() throws {
        let query = try DNSMessage(parsing: Self.webQuery)
        let name = query.questions[0].name
        let many = (0..<60).map { DNSMessage.aRecord(name, address: (10, 0, 0, UInt8($0)), ttl: 600) }
        let response = DNSMessage.response(to: query, code: .noError, answers: many, limit: 512)
        #expect(response.bytes.count <= 512)
        #expect(response.isTruncated)
        #expect(response.answers.count == (512 - 12 - 9) / 16)
        // With EDNS (an OPT record announcing 4096 bytes) all fit.
        var edns = query
        edns.additional = [
            DNSMessage.Record(name: DNSMessage.Name(labels: []), type: 41, class: 4096, ttl: 0, data: [])
        ]
        let reread = try DNSMessage(parsing: edns.bytes)
        #expect(reread.udpLimit == 4096)
        #expect(!DNSMessage.response(to: reread, code: .noError, answers: many, limit: reread.udpLimit).isTruncated)
    }

    @Test func formatErrorKeepsTheID() throws {
        let bytes = DNSMessage.failure(id: 0xbeef, code: .formatError)
        let message = try DNSMessage(parsing: bytes)
        #expect(message.id == 0xbeef)
        #expect(message.isResponse)
        #expect(message.responseCode == DNSMessage.ResponseCode.formatError.rawValue)
    }
}
