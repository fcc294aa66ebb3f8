import Testing

@testable import Compose

/// Durations, byte sizes and the short syntax of ports and volumes, parsed and printed as
/// docker compose does.
@Suite struct UnitsTests {
    @Test func durationsPrintLikeGo() {
        let cases: [(String, String)] = [
            ("0", "0s"), ("90s", "1m30s"), ("1h", "1h0m0s"), ("1.5s", "1.5s"), ("500ms", "500ms"),
            ("1m30s", "1m30s"), ("2h45m", "2h45m0s"), ("100us", "100µs"), ("1500us", "1.5ms"), ("3ns", "3ns"),
            ("1d", "24h0m0s"), ("1w", "168h0m0s"), ("-5s", "-5s"), (".5s", "500ms"),
        ]
        for (input, printed) in cases {
            #expect(ComposeDuration.parse(input)?.description == printed, "\(input)")
        }
        for bad in ["", "10", "s", "1x", "1.2.3s", "abc", "1 s"] {
            #expect(ComposeDuration.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func byteSizes() {
        let cases: [(String, Int64)] = [
            ("100", 100), ("-1", -1), ("1k", 1024), ("1kb", 1024), ("1KiB", 1024), ("512m", 536_870_912),
            ("1g", 1_073_741_824), ("1.5g", 1_610_612_736), ("2 GB", 2_147_483_648), ("10b", 10),
            ("1t", 1_099_511_627_776),
        ]
        for (input, bytes) in cases {
            #expect(ByteSize.parse(input) == bytes, "\(input)")
        }
        for bad in ["", "g", "1zb", "1.g", "ten", "1..5m"] {
            #expect(ByteSize.parse(bad) == nil, "\(bad)")
        }
        // go-units' FromHumanSize (the json-file log's max-size): powers of 1000, "i" or not.
        let decimal: [(String, Int64)] = [("10m", 10_000_000), ("1k", 1000), ("1KiB", 1000), ("1.5g", 1_500_000_000)]
        for (input, bytes) in decimal {
            #expect(ByteSize.parse(input, decimal: true) == bytes, "\(input)")
        }
    }

    @Test func portRangesExpandAndSortLikeDockerCompose() throws {
        let ports = try PortSpec.parse("9-11:9-11")
        // docker compose sorts the expanded ports as "port/proto" strings
        #expect(ports.map(\.target) == [10, 11, 9])
        let hostRange = try PortSpec.parse("8000-8010:80")
        #expect(hostRange.map(\.published) == ["8000-8010"])
        #expect(hostRange.map(\.target) == [80])
    }

    @Test func volumeShortSyntax() throws {
        let bind = try VolumeSpec.parse("./data:/data:ro,z")
        #expect(bind.type == "bind")
        #expect(bind.readOnly)
        #expect(bind.bind?.selinux == "z")
        #expect(bind.bind?.createHostPath == true)
        let named = try VolumeSpec.parse("data:/data:nocopy")
        #expect(named.type == "volume")
        #expect(named.volume?.nocopy == true)
        let anonymous = try VolumeSpec.parse("/cache")
        #expect(anonymous.type == "volume")
        #expect(anonymous.source == nil)
        #expect(throws: (any Error).self) { try VolumeSpec.parse("ab:cd:ro:x") }
        #expect(throws: (any Error).self) { try VolumeSpec.parse("ab::cd") }
        // a one-letter source followed by ":" is a Windows drive, as in compose-go
        #expect(try VolumeSpec.parse("c:/data:/data").source == "c:/data")
    }

    /// The one short-syntax parser, with the rules of each of Docker's: compose-go's for compose
    /// files, the engine's (moby's ParseMountRaw) for the CLI's `-v`.
    @Test func volumeShortSyntaxDialects() throws {
        func fields(_ spec: String, _ dialect: VolumeShortSyntax.Dialect) throws -> VolumeShortSyntax {
            try VolumeShortSyntax.parse(spec, dialect: dialect)
        }
        for dialect in [VolumeShortSyntax.Dialect.compose, .engine] {
            #expect(
                try fields("/src:/dst:ro,rslave", dialect)
                    == VolumeShortSyntax(source: "/src", target: "/dst", mode: "ro,rslave"))
            #expect(try fields("data:/dst", dialect) == VolumeShortSyntax(source: "data", target: "/dst"))
            #expect(try fields("/anonymous", dialect) == VolumeShortSyntax(source: nil, target: "/anonymous"))
        }
        // Where they differ: interpolation braces and drive letters are compose-go's alone, a
        // mode without a destination is the engine's refusal.
        #expect(try fields("${A:-/x}:/dst", .compose).source == "${A:-/x}")
        #expect(try fields("${A:-/x}:/dst", .engine) == VolumeShortSyntax(source: "${A", target: "-/x}", mode: "/dst"))
        #expect(try fields("c:/data:/dst", .compose).source == "c:/data")
        #expect(try fields("/data:ro", .compose) == VolumeShortSyntax(source: "/data", target: "ro"))
        #expect(throws: VolumeShortSyntax.Failure.invalid) { try fields("/data:ro", .engine) }
        #expect(throws: VolumeShortSyntax.Failure.invalid) { try fields("a:b:c:d", .engine) }
        #expect(throws: VolumeShortSyntax.Failure.tooManyColons) { try fields("ab:cd:ro:x", .compose) }
        #expect(throws: VolumeShortSyntax.Failure.emptySection) { try fields("ab::cd", .compose) }
        #expect(try fields("/src::ro", .engine) == VolumeShortSyntax(source: "/src", target: "", mode: "ro"))
        // Modes: the last of a kind and nothing unknown for compose-go; each kind once for the engine.
        let repeated = VolumeModes("ro,rw,cached,z")
        #expect(repeated.readOnly == false && repeated.selinux == "z" && !repeated.isValidForEngine)
        #expect(!VolumeModes("ro,exec").isValidForEngine && VolumeModes("ro,exec").unknown == ["exec"])
        #expect(VolumeModes("ro,rshared,nocopy").isValidForEngine)
    }

    @Test func shellWords() {
        #expect(ShellWords.split(#"echo "hello world" 'a b' c\ d"#) == ["echo", "hello world", "a b", "c d"])
        #expect(ShellWords.split("  ") == [])
        #expect(ShellWords.split("echo \"open") == nil)
    }

    @Test func goFloats() {
        #expect(formatGoFloat(0.5, bits: 32) == "0.5")
        #expect(formatGoFloat(2, bits: 32) == "2")
        #expect(formatGoFloat(0.1, bits: 32) == "0.1")
        #expect(formatGoFloat(0.00001, bits: 64) == "0.00001")
        #expect(formatGoFloat(1e-7, bits: 64) == "1e-7")
        #expect(formatGoFloat(1e21, bits: 64) == "1e+21")
    }
}

@Suite struct PathTests {
    @Test func cleanMatchesGo() {
        let cases: [(String, String)] = [
            ("", "."), ("/", "/"), ("a/b", "a/b"), ("a//b", "a/b"), ("a/./b", "a/b"), ("a/../b", "b"), ("../a", "../a"),
            ("a/b/../../..", ".."), ("/../a", "/a"), ("/a/b/", "/a/b"), ("./", "."), ("a/..", "."),
            ("/x/./y/../z", "/x/z"),
            ("../../a/b/../c", "../../a/c"), ("/a/../..", "/"), ("..a/b", "..a/b"), ("a/...", "a/..."),
        ]
        for (input, clean) in cases {
            #expect(PathUtil.clean(input) == clean, "\(input)")
        }
        #expect(PathUtil.absolute("./data", base: "/p", home: nil) == "/p/data")
        #expect(PathUtil.absolute("~/x", base: "/p", home: "/home/me") == "/home/me/x")
        #expect(PathUtil.absolute("/abs/./kept/", base: "/p", home: nil) == "/abs/./kept/")
    }
}
