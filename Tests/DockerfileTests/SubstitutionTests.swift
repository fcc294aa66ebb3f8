import Testing

@testable import Dockerfile

/// Substitution as BuildKit's shell lexer does it (cases after frontend/dockerfile/shell's tests).
@Suite struct SubstitutionTests {
    static let environment = [
        "PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "EMPTY": "", "FOO": "/a/b/c", "V": "aXbXc",
        "SPACED": "a b  c",
    ]

    func expand(_ word: String, escape: Character = "\\") throws -> String {
        try Substitution.expand(word, escape: escape, lookup: { Self.environment[$0] })
    }

    func words(_ text: String) throws -> [String] {
        try Substitution.expandWords(text, escape: "\\", lookup: { Self.environment[$0] })
    }

    @Test(arguments: [
        // Quotes and escapes.
        ("hello", "hello"),
        ("he'll'o", "hello"),
        (#"he\'llo"#, "he'llo"),
        (#"abc\\def"#, #"abc\def"#),
        (#""abc\\def""#, #"abc\def"#),
        (#""abc\def""#, #"abc\def"#),
        (#"'abc\\def'"#, #"abc\\def"#),
        (#"hello\"#, "hello"),
        (#"hello\\"#, #"hello\"#),
        (#""hel'lo""#, "hel'lo"),
        (#"'hello\'"#, #"hello\"#),
        (#"'hello\there'"#, #"hello\there"#),
        (#""''""#, "''"),
        (#""a\"b""#, #"a"b"#),
        // Names: a "$" that starts none stays; digits are a name of their own.
        ("$.", "$."),
        ("x$", "x$"),
        ("$", "$"),
        ("he$1x", "hex"),
        ("he$.x", "he$.x"),
        ("he$pwd.", "he."),
        ("he$PWD", "he/home"),
        ("he$PWD.x", "he/home.x"),
        ("he$PWD_x", "he"),
        (#"he\$PWD"#, "he$PWD"),
        (#"he\\$PWD"#, #"he\/home"#),
        (#""he\$PWD""#, "he$PWD"),
        (#"'he\$PWD'"#, #"he\$PWD"#),
        ("'$PWD'", "$PWD"),
        ("\"$PWD\"", "/home"),
        ("${KOREAN}", "한국어"),
        ("$KOREAN!", "한국어!"),
        // Braces and modifiers.
        ("he${PWD}xx", "he/homexx"),
        ("he${UNSET}xx", "hexx"),
        ("he${PWD:+${PWD}}xx", "he/homexx"),
        ("he${PWD:+x${PWD}y}xx", "hex/homeyxx"),
        ("he${XXX:-000}xx", "he000xx"),
        ("he${PWD:-000}xx", "he/homexx"),
        ("he${XXX:-$PWD}xx", "he/homexx"),
        ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
        ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
        ("he${XXX:-'a b'}", "hea b"),
        ("he${XXX:-\"}\"}", "he}"),
        ("he${PWD?}", "he/home"),
        ("he${PWD:?msg}", "he/home"),
        ("${EMPTY?}", ""),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${EMPTY:+a}", ""),
        ("${EMPTY+a}", "a"),
        ("${UNSET+a}", ""),
        ("${PWD+a}", "a"),
        // Prefix and suffix removal, replacement.
        ("${PWD#/}", "home"),
        ("${PWD%me}", "/ho"),
        ("${FOO#*/}", "a/b/c"),
        ("${FOO##*/}", "c"),
        ("${FOO%/*}", "/a/b"),
        ("${FOO%%/*}", ""),
        ("${FOO#x}", "/a/b/c"),
        ("${V/X/-}", "a-bXc"),
        ("${V//X/-}", "a-b-c"),
        ("${V//?X/_}", "__c"),
        ("${UNSET//X/-}", ""),
    ])
    func expands(_ word: String, _ expected: String) throws {
        #expect(try expand(word) == expected)
    }

    @Test(arguments: [
        ("he'llo", "unexpected end of statement while looking for matching single-quote"),
        (#"he\\'llo"#, "unexpected end of statement while looking for matching single-quote"),
        ("\"hello", "unexpected end of statement while looking for matching double-quote"),
        (#""hello\""#, "unexpected end of statement while looking for matching double-quote"),
        ("he${PWD", "syntax error: missing '}'"),
        ("he${", "syntax error: missing '}'"),
        ("he${XXX:-000", "syntax error: missing '}'"),
        ("he${PWD:=000}xx", "unsupported modifier (:=) in substitution"),
        ("he${XXX:YYY}", "unsupported modifier (:Y) in substitution"),
        ("${}", "syntax error: bad substitution"),
        ("${:x}", "syntax error: bad substitution"),
        ("${{x}", "syntax error: bad substitution"),
        ("he${XXX?}", "XXX: is not allowed to be unset"),
        ("he${XXX:?}", "XXX: is not allowed to be unset"),
        ("he${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("${EMPTY:?set it}", "EMPTY: set it"),
        ("${XXX?needs $PWD}", "XXX: needs /home"),
    ])
    func fails(_ word: String, _ message: String) {
        #expect {
            _ = try expand(word)
        } throws: { error in
            guard let error = error as? DockerfileError else { return false }
            return error.message == "failed to process \"\(word)\": \(message)"
        }
    }

    @Test func backtickEscape() throws {
        #expect(try expand("he`$PWD", escape: "`") == "he$PWD")
        #expect(try expand(#"he\$PWD"#, escape: "`") == #"he\/home"#)
        #expect(try expand(#"C:\dir\"#, escape: "`") == #"C:\dir\"#)
        #expect(try expand("\"a`\"b\"", escape: "`") == "a\"b")
    }

    @Test func splitsIntoWords() throws {
        #expect(try words("hello") == ["hello"])
        #expect(try words("  hello   world  ") == ["hello", "world"])
        #expect(try words("\"hello world\" foo") == ["hello world", "foo"])
        #expect(try words("'a b'c d") == ["a bc", "d"])
        #expect(try words(#"a\ b c"#) == ["a b", "c"])
        #expect(try words("x$SPACED") == ["xa", "b", "c"])
        #expect(try words("\"$SPACED\"") == ["a b  c"])
        #expect(try words("a \"\" b") == ["a", "b"])
        #expect(try words("") == [])
        #expect(try words("${UNSET:-one two}") == ["one", "two"])
    }

    @Test func skipUnsetKeepsReferences() throws {
        var lexer = ShellLexer("a $X ${Y} ${Z:-d} ${W:?m} $PWD", escape: "\\", lookup: { Self.environment[$0] })
        lexer.skipUnset = true
        #expect(try lexer.run().result == "a $X ${Y} ${Z:-d} ${W:?m} /home")
    }
}
