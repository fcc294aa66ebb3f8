import Foundation
import TestSupport
import Testing

@Suite struct CLIBasicsTests {
    @Test func versionPrints() throws {
        let result = try BerthProcess.run(["version", "--short"])
        #expect(result.status == 0)
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
    }

    /// `container run` is parsed on its own when it parses cleanly (Berth.parse, for start-up
    /// time); help and usage errors still come from the whole command tree, so they read as
    /// every other command's do.
    @Test func containerRunHelpAndUsageErrorsComeFromTheWholeTree() throws {
        let help = try BerthProcess.run(["container", "run", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("USAGE: berth container run"))
        let viaHelpCommand = try BerthProcess.run(["help", "container", "run"])
        #expect(help.stdout == viaHelpCommand.stdout)
        let bad = try BerthProcess.run(["container", "run", "--no-such-flag", "busybox"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("Unknown option '--no-such-flag'"))
        #expect(bad.stderr.contains("berth container run"))
    }

    @Test func unknownCommandIsAUsageError() throws {
        let result = try BerthProcess.run(["frobnicate"])
        #expect(result.status != 0)
        #expect(!result.stderr.isEmpty)
    }
}
