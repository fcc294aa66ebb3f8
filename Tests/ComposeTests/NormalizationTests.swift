import Foundation
import Testing
import YAML

@testable import Compose

/// The canonical model: each fixture under Fixtures/normalize/NAME has a compose.yaml and the
/// expected.json `docker compose config --format json` prints for it ({{DIR}} stands for the
/// fixture's folder).
@Suite struct NormalizationTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/normalize").path

    func check(_ name: String, environment: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation)
        throws
    {
        let dir = Self.fixtures + "/" + name
        var o = ProjectOptions()
        o.workingDirectory = dir
        o.environment = environment
        o.warn = { _ in }
        let project = try ComposeLoader.load(o)
        let expected = try String(contentsOfFile: dir + "/expected.json", encoding: .utf8)
            .replacingOccurrences(of: "{{DIR}}", with: dir)
        let actual = project.canonicalJSON() + "\n"
        if actual != expected {
            // Show the first differing line.
            let a = actual.components(separatedBy: "\n")
            let e = expected.components(separatedBy: "\n")
            let i = (0..<min(a.count, e.count)).first { a[$0] != e[$0] } ?? min(a.count, e.count)
            Issue.record(
                "\(name): line \(i + 1): got \(i < a.count ? a[i] : "<end>"), expected \(i < e.count ? e[i] : "<end>")",
                sourceLocation: sourceLocation)
        }
    }

    @Test func shortSyntaxBecomesLongSyntax() throws { try check("short-syntax", environment: ["FROM_SHELL": "hello"]) }
    @Test func topLevelResources() throws { try check("resources") }
    @Test func durationsAndByteSizes() throws { try check("units") }
    @Test func implicitDependencies() throws { try check("dependencies") }

    @Test func defaultNetworkOnlyWhenUsed() throws {
        let project = try loadCompose("services:\n  a:\n    image: x\n    network_mode: none\n")
        #expect(project.networks.isEmpty)
        let joined = try loadCompose(
            "services:\n  a:\n    image: x\n    networks: [default, other]\nnetworks:\n  other: {}\n")
        #expect(joined.networks["default"]?.name == "test_default")
        #expect(joined.networks["other"]?.name == "test_other")
    }

    @Test func envFileContentsAreMergedUnderEnvironment() throws {
        let project = try loadCompose(
            """
            services:
              app:
                image: x
                env_file: [one.env, two.env]
                environment:
                  B: from-environment
                  D:
            """, files: ["one.env": "A=1\nB=1\nD=from-file\n", "two.env": "A=2\nC=${A}-${HOME_X:-none}\n"])
        // later files win; `environment` wins, even an unresolved D
        #expect(project.service("app")?.environment == ["A": "2", "B": "from-environment", "C": "2-none", "D": nil])
    }

    @Test func dollarsAreEscapedInTheOutput() throws {
        let project = try loadCompose("services:\n  app:\n    image: x\n    command: echo $$HOME\n")
        #expect(project.service("app")?.command == ["echo", "$HOME"])
        #expect(project.canonicalJSON().contains("\"$$HOME\""))
    }

    @Test func yamlOutputFollowsDockerComposeOrder() throws {
        let project = try loadCompose(
            """
            services:
              web:
                image: nginx
                ports: ["8080:80"]
                environment: {A: "1"}
                x-note: kept
            volumes:
              data: {}
            """)
        let yaml = try project.canonicalYAML()
        #expect(
            yaml == """
                name: test
                services:
                  web:
                    environment:
                      A: "1"
                    image: nginx
                    networks:
                      default: null
                    ports:
                    - mode: ingress
                      target: 80
                      published: "8080"
                      protocol: tcp
                    x-note: kept
                networks:
                  default:
                    name: test_default
                volumes:
                  data:
                    name: test_data

                """)
    }

    @Test func yamlScalarsReadBackAsTheSameStrings() throws {
        let project = try loadCompose(
            """
            services:
              app:
                image: x
                command: ["sh", "-c", "echo one two three four five six seven eight nine ten eleven twelve thirteen fourteen"]
                labels:
                  number: "42"
                  yes: "yes"
                  star: "*.example.com"
                  colon: "a: b"
                  tab: "a\\tb"
                  time: "12:30"
                  multi: "line one\\nline two\\n"
                  empty: ""
                  hash: "a #b"
            """)
        let yaml = try project.canonicalYAML()
        // Strings that a YAML 1.1 or 1.2 reader would take for another type are quoted.
        #expect(yaml.contains("      number: \"42\"\n"))
        #expect(yaml.contains("      empty: \"\"\n"))
        #expect(yaml.contains("      \"yes\": \"yes\"\n"))
        let back = try #require(try YAMLParser.parse(yaml, file: "out.yaml"))
        let labels = try #require(back["services"]?["app"]?["labels"])
        let expected = [
            "number": "42", "yes": "yes", "star": "*.example.com", "colon": "a: b", "tab": "a\tb",
            "time": "12:30", "multi": "line one\nline two\n", "empty": "", "hash": "a #b",
        ]
        for (key, value) in expected {
            #expect(labels[key]?.text == value, "label \(key)")
            #expect(labels[key]?.isPlain == false || labels[key]?.int == nil, "label \(key) must stay a string")
        }
        #expect(
            back["services"]?["app"]?["command"]?.sequence?.last?.text
                == "echo one two three four five six seven eight nine ten eleven twelve thirteen fourteen")
    }

    @Test func jsonStringsAreEscapedAsGoDoes() throws {
        let project = try loadCompose(
            "services:\n  app:\n    image: x\n    labels:\n      html: \"<a href='x'>&</a>\"\n      tab: \"a\\tb\"\n")
        let json = project.canonicalJSON()
        #expect(json.contains(#""html": "\u003ca href='x'\u003e\u0026\u003c/a\u003e""#))
        #expect(json.contains(#""tab": "a\tb""#))
    }
}
