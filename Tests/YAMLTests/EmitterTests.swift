import Testing

@testable import YAML

@Suite struct EmitterTests {
    let here = Mark(file: "t", line: 1, column: 1)

    func string(_ s: String) -> Node { Node(.scalar(s, .doubleQuoted), mark: here) }
    func plain(_ s: String) -> Node { Node(.scalar(s, .plain), mark: here) }

    @Test func emitsBlockStyleInOrder() throws {
        let node = Node(
            .mapping([
                .init(key: plain("name"), value: string("demo")),
                .init(
                    key: plain("services"),
                    value: Node(
                        .mapping([
                            .init(
                                key: plain("web"),
                                value: Node(
                                    .mapping([
                                        .init(
                                            key: plain("command"),
                                            value: Node(.sequence([string("echo"), string("hi")]), mark: here))
                                    ]), mark: here))
                        ]), mark: here)),
            ]), mark: here)
        let text = try YAMLEmitter.emit(node)
        // libyaml writes sequences inside mappings without extra indentation (valid YAML, its only style).
        #expect(text == "name: demo\nservices:\n  web:\n    command:\n    - echo\n    - hi\n")
    }

    @Test func stringsThatLookLikeOtherTypesAreQuoted() throws {
        let node = Node(
            .sequence([string("true"), string("8080"), string(""), string("null"), plain("true"), plain("3")]),
            mark: here)
        let text = try YAMLEmitter.emit(node)
        #expect(text == "- \"true\"\n- \"8080\"\n- \"\"\n- \"null\"\n- true\n- 3\n")
    }

    @Test func yaml11AmbiguitiesAreQuotedToo() throws {
        for text in ["yes", "Off", "12:30", "1_000", "2024-01-31", "<<", "0o17", ".5"] {
            #expect(try YAMLEmitter.emit(string(text)) == "\"\(text)\"\n", "\(text)")
        }
        for text in ["abc", "8080:80/tcp", "nginx:1.25", "a b"] {
            #expect(try YAMLEmitter.emit(string(text)) == "\(text)\n", "\(text)")
        }
    }

    @Test func roundTripKeepsValues() throws {
        let source = "a: \"x: y\"\nb: \"multi\\nline\"\nc: 'it''s'\nd: [1, 2]\ne: \"#hash\"\n"
        let parsed = try #require(try YAMLParser.parse(source, file: "r"))
        let again = try #require(try YAMLParser.parse(try YAMLEmitter.emit(parsed), file: "r2"))
        for key in ["a", "b", "c", "e"] {
            #expect(again[key]?.text == parsed[key]?.text)
        }
        #expect(again["d"]?.sequence?.compactMap(\.int) == [1, 2])
    }
}
