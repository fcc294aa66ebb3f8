import Foundation
import Testing

@testable import Compose

/// Feeds the whole loader thousands of damaged copies of the samples' files: lines deleted,
/// duplicated, swapped, re-indented, characters flipped, YAML specials (anchors, aliases, merge
/// keys, tags, flow brackets, tabs) and interpolation fragments inserted. Each load must end in a
/// project or a thrown error; a crash or a hang fails the run.
///
/// The cases are the same on every run (seeded PRNG). If one crashes the process, its input is
/// still in the directory printed at the start, and the case number is in `last-case.txt` there.
@Suite struct RobustnessTests {
    static let cases = 3000

    /// SplitMix64: tiny, fast, and the same sequence everywhere for a seed.
    struct SplitMix64 {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
        mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
        mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    }

    static let specials = [
        "&a ", "*a", "<<: *a", "<<: [*a, *b]", "!reset ", "!override ", "!!str ", "!!binary ", "!custom ",
        "{", "}", "[", "]", "{}", "[]", "- ", "-", ":", ": ", "? ", "\t", "  ", "\"", "'", "|", ">-", "%YAML 1.2",
        "---", "...", "#", "@", "`", ",", "${", "$", "$$", "${A:-", "${X:?boom}", "${1}", "}", "\\", "\u{0}",
        "null", "~", "true", "0x1F", "1e400", "-1", "99999999999999999999", "é", "💥", "&anchor *anchor",
    ]

    static func mutate(_ text: String, rng: inout SplitMix64) -> String {
        var lines = text.components(separatedBy: "\n")
        for _ in 0..<(1 + rng.below(3)) {
            guard !lines.isEmpty else {
                lines = [""]
                continue
            }
            let i = rng.below(lines.count)
            switch rng.below(9) {
            case 0:  // delete a line
                lines.remove(at: i)
            case 1:  // duplicate a line
                lines.insert(lines[i], at: i)
            case 2:  // swap two lines
                lines.swapAt(i, rng.below(lines.count))
            case 3:  // flip a character
                var chars = Array(lines[i])
                if !chars.isEmpty {
                    chars[rng.below(chars.count)] = rng.pick(Array(" :-{}[]&*!|>'\"#\t$%,?az09"))
                    lines[i] = String(chars)
                }
            case 4, 5:  // insert a YAML special
                var chars = Array(lines[i])
                chars.insert(contentsOf: rng.pick(specials), at: rng.below(chars.count + 1))
                lines[i] = String(chars)
            case 6:  // change indentation
                if rng.chance(50) {
                    lines[i] = String(repeating: " ", count: 1 + rng.below(4)) + lines[i]
                } else {
                    lines[i] = String(lines[i].drop { $0 == " " })
                    if rng.chance(50) { lines[i] = "\t" + lines[i] }
                }
            case 7:  // replace a value with another kind of node
                if let colon = lines[i].firstIndex(of: ":") {
                    lines[i] =
                        String(lines[i][...colon]) + " "
                        + rng.pick(["null", "[]", "{}", "~", "yes", "-3", "[a, {b: c}]", "*a", "!reset", "''", "|"])
                }
            default:  // truncate the file
                lines = Array(lines.prefix(i))
                if let last = lines.last, !last.isEmpty {
                    lines[lines.count - 1] = String(last.prefix(rng.below(last.count + 1)))
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    @Test func damagedSamplesLoadOrFailCleanly() throws {
        let fm = FileManager.default
        let samples = SamplesTests.sampleNames
        try #require(!samples.isEmpty)
        // Every file of every sample, read once.
        var sources: [(sample: String, files: [String: String])] = []
        for sample in samples {
            let directory = SamplesTests.samplesDirectory.appendingPathComponent(sample)
            var files: [String: String] = [:]
            for name in try fm.contentsOfDirectory(atPath: directory.path)
            where name.hasSuffix(".yaml") || name == ".env" {
                files[name] = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            }
            sources.append((sample, files))
        }

        // Memory-backed /dev/shm where there is one: rewriting a file costs milliseconds on some
        // disks, and this test writes about 10,000 of them.
        let base = fm.isWritableFile(atPath: "/dev/shm") ? URL(fileURLWithPath: "/dev/shm") : fm.temporaryDirectory
        let work = base.appendingPathComponent("berth-robustness-\(UUID().uuidString)")
        try fm.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: work) }
        print("RobustnessTests: inputs are written to \(work.path)")

        var rng = SplitMix64(state: 0x6265_7274_6821)
        var loaded = 0
        var failed = 0
        var otherErrors: [String] = []
        var unplaced = 0
        var unplacedExamples: [String] = []
        var slowest = (case: -1, seconds: 0.0)
        for n in 0..<Self.cases {
            let source = sources[n % sources.count]
            let directory = work.appendingPathComponent(source.sample)
            try? fm.removeItem(at: directory)
            try fm.createDirectory(at: directory, withIntermediateDirectories: true)
            // Damage the main file always, the others now and then.
            for (name, text) in source.files.sorted(by: { $0.key < $1.key }) {  // fixed order: same cases every run
                let damaged = name == "compose.yaml" || rng.chance(20) ? Self.mutate(text, rng: &rng) : text
                try damaged.write(to: directory.appendingPathComponent(name), atomically: false, encoding: .utf8)
            }
            try "\(n)\n".write(to: work.appendingPathComponent("last-case.txt"), atomically: false, encoding: .utf8)

            var options = ProjectOptions()
            options.workingDirectory = directory.path
            options.environment = [:]
            let started = Date()
            defer {
                let seconds = Date().timeIntervalSince(started)
                if seconds > slowest.seconds { slowest = (n, seconds) }
            }
            do {
                let project = try ComposeLoader.load(options)
                _ = try? project.dependencyGraph.startLevels()
                loaded += 1
            } catch let error as ComposeError {
                failed += 1
                // The promise of every rejection: it says where, in one of this case's files. One
                // is about no file in particular: all of them together hold nothing (compose-go's
                // words for it, too).
                let file = error.mark.map { URL(fileURLWithPath: $0.file).lastPathComponent }
                let projectWide = error.mark == nil && error.message == "empty compose file"
                if !projectWide && (file == nil || source.files[file!] == nil) {
                    unplaced += 1
                    if unplacedExamples.count < 5 { unplacedExamples.append("case \(n): \(error)") }
                }
            } catch {
                // Anything but a ComposeError lacks file:line:column; keep a few to show.
                failed += 1
                if otherErrors.count < 5 { otherErrors.append("case \(n): \(type(of: error)): \(error)") }
            }
        }
        print(
            "RobustnessTests: \(Self.cases) damaged projects: \(loaded) loaded, \(failed) rejected; slowest: case \(slowest.case), \(Int(slowest.seconds * 1000)) ms"
        )
        #expect(unplaced == 0, "\(unplaced) rejections do not name a place in the case's files: \(unplacedExamples)")
        #expect(loaded > 0)
        #expect(failed > 0)
        #expect(otherErrors.isEmpty, "errors that are not ComposeError: \(otherErrors)")
    }
}
