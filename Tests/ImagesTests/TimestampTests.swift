import Foundation
import Testing

@testable import Images

/// The image config's `created`, parsed by hand (see Timestamp.parse for why).
@Suite struct TimestampTests {
    @Test func parsesUTCWithAndWithoutFraction() throws {
        #expect(Timestamp.parse("1970-01-01T00:00:00Z")?.timeIntervalSince1970 == 0)
        #expect(Timestamp.parse("2024-01-02T03:04:05Z")?.timeIntervalSince1970 == 1_704_164_645)
        #expect(Timestamp.parse("2000-02-29T12:00:00Z")?.timeIntervalSince1970 == 951_825_600)
        #expect(Timestamp.parse("1999-12-31T23:59:59z")?.timeIntervalSince1970 == 946_684_799)
        let ms = try #require(Timestamp.parse("2024-01-02T03:04:05.250Z"))
        #expect(abs(ms.timeIntervalSince1970 - 1_704_164_645.25) < 1e-6)
    }

    @Test func acceptsGoNanosecondsAndOffsets() throws {
        let nanos = try #require(Timestamp.parse("2024-01-02T03:04:05.123456789Z"))
        #expect(abs(nanos.timeIntervalSince1970 - 1_704_164_645.123456789) < 1e-6)
        #expect(Timestamp.parse("2024-01-02T05:04:05+02:00")?.timeIntervalSince1970 == 1_704_164_645)
        #expect(Timestamp.parse("2024-01-01T22:34:05-04:30")?.timeIntervalSince1970 == 1_704_164_645)
    }

    @Test func roundTripsWhatImportWrites() throws {
        let now = Date()
        let parsed = try #require(Timestamp.parse(Timestamp.format(now)))
        #expect(abs(parsed.timeIntervalSince(now)) < 0.001)
    }

    @Test func rejectsWhatIsNotRFC3339() {
        for text in [
            "", "2024-01-02", "2024-01-02T03:04:05", "2024-13-02T03:04:05Z", "2024-01-02T25:04:05Z",
            "2024-01-02T03:04:05.Z", "2024-01-02T03:04:05Zjunk", "2024-01-02 03:04:05Z", "yesterday",
        ] {
            #expect(Timestamp.parse(text) == nil, "\(text)")
        }
    }
}
