import Testing

@testable import YAML

@Suite struct ParserTests {
    func parse(_ text: String) throws -> Node {
        try #require(try YAMLParser.parse(text, file: "test.yaml"))
    }

    @Test func positionsAreOneBased() throws {
        let root = try parse("services:\n  web:\n    image: nginx\n")
        let web = try #require(root["services"]?["web"])
        #expect(web.mark == Mark(file: "test.yaml", line: 3, column: 5))
        let image = try #require(web.pair("image"))
        #expect(image.key.mark.line == 3 && image.key.mark.column == 5)
        #expect(image.value.mark.column == 12)
        #expect(image.value.text == "nginx")
    }

    @Test func emptyDocumentIsNil() throws {
        #expect(try YAMLParser.parse("", file: "e.yaml") == nil)
        #expect(try YAMLParser.parse("# only a comment\n", file: "e.yaml") == nil)
    }

    @Test func scalarResolutionFollowsTheCoreSchema() throws {
        let root = try parse("a: true\nb: 'true'\nc: 12\nd: \"12\"\ne: ~\nf: 1.5\ng: yes\nh:\n")
        #expect(root["a"]?.bool == true)
        #expect(root["b"]?.bool == nil && root["b"]?.text == "true")
        #expect(root["c"]?.int == 12)
        #expect(root["d"]?.int == nil)
        #expect(root["e"]?.isNull == true)
        #expect(root["f"]?.double == 1.5)
        #expect(root["g"]?.bool == nil, "YAML 1.2: yes is a string")
        #expect(root["h"]?.isNull == true)
    }

    @Test func anchorsAndAliasesExpand() throws {
        let root = try parse(
            """
            base: &base
              image: busybox
              env: [A, B]
            copy: *base
            """)
        #expect(root["copy"]?["image"]?.text == "busybox")
        #expect(root["copy"]?["env"]?.sequence?.count == 2)
    }

    @Test func mergeKeyWithOneMapExplicitKeysWin() throws {
        let root = try parse(
            """
            x-base: &base
              image: busybox
              restart: always
            svc:
              <<: *base
              restart: "no"
            """)
        let svc = try #require(root["svc"])
        #expect(svc["image"]?.text == "busybox")
        #expect(svc["restart"]?.text == "no")
        #expect(svc.mapping?.count == 2)
        #expect(svc.pair("<<") == nil)
    }

    @Test func mergeKeyWithListFirstMapWins() throws {
        let root = try parse(
            """
            a: &a {k: from-a, x: 1}
            b: &b {k: from-b, y: 2}
            c:
              <<: [*a, *b]
            """)
        let c = try #require(root["c"])
        #expect(c["k"]?.text == "from-a")
        #expect(c["x"]?.int == 1 && c["y"]?.int == 2)
    }

    @Test func mergeKeyRejectsScalars() throws {
        #expect(throws: YAMLError.self) { try parse("a:\n  <<: 3\n") }
        #expect(throws: YAMLError.self) { try parse("a:\n  <<: [1]\n") }
    }

    @Test func tagsArePreserved() throws {
        let root = try parse("ports: !reset []\ncommand: !override [a]\nplain: [b]\n")
        #expect(root["ports"]?.isReset == true)
        #expect(root["command"]?.isOverride == true)
        #expect(root["plain"]?.tag == nil)
    }

    @Test func duplicateKeysNameBothPositions() throws {
        do {
            _ = try parse("services:\n  web:\n    image: a\n    image: b\n")
            Issue.record("expected an error")
        } catch let error as YAMLError {
            #expect(error.mark == Mark(file: "test.yaml", line: 4, column: 5))
            #expect(error.description == "test.yaml:4:5: duplicate key 'image' (first defined at test.yaml:3:5)")
        }
    }

    @Test func aliasBombIsRejected() throws {
        var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...9 {
            let refs = Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ")
            text += "a\(i): &a\(i) [\(refs)]\n"
        }
        #expect {
            try parse(text)
        } throws: { error in
            (error as? YAMLError)?.message.contains("aliases expand to more than") == true
        }
    }

    @Test func deepNestingIsAnErrorNotACrash() throws {
        let depth = 5000
        let text = "a: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
        #expect {
            try parse(text)
        } throws: { error in
            (error as? YAMLError)?.message == "nested deeper than \(YAMLParser.maximumDepth) levels"
        }
        let fine = "a: " + String(repeating: "[", count: 50) + String(repeating: "]", count: 50) + "\n"
        #expect(try parse(fine)["a"]?.sequence?.count == 1)
    }

    @Test func unknownAliasIsAnError() throws {
        #expect(throws: YAMLError.self) { try parse("a: *nothing\n") }
    }

    @Test func syntaxErrorNamesPosition() throws {
        do {
            _ = try parse("services:\n  web:\n    image: [unclosed\n  db: x\n")
            Issue.record("expected an error")
        } catch let error as YAMLError {
            #expect(error.mark?.file == "test.yaml")
            #expect((error.mark?.line ?? 0) >= 3)
        }
        do {
            _ = try parse("a: b\n\tc: d\n")
            Issue.record("expected an error for a tab")
        } catch let error as YAMLError {
            #expect(error.mark?.line == 2)
        }
    }

    @Test func severalDocumentsAreRejected() throws {
        do {
            _ = try parse("a: 1\n---\nb: 2\n")
            Issue.record("expected an error")
        } catch let error as YAMLError {
            #expect(error.mark?.line == 2)
            #expect(error.message.contains("one YAML document"))
        }
    }
}
