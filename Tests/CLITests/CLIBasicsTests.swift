import Foundation
import Testing

@Suite struct CLIBasicsTests {
    @Test func versionPrints() throws {
        let result = try BerthProcess.run(["version", "--short"])
        #expect(result.status == 0)
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
    }

    @Test func unknownCommandIsAUsageError() throws {
        let result = try BerthProcess.run(["frobnicate"])
        #expect(result.status != 0)
        #expect(!result.stderr.isEmpty)
    }
}
