import Testing
import YAML

@testable import Compose

/// One test per rule of the .env syntax that `docker compose` reads.
@Suite struct DotEnvTests {
    func parse(_ text: String, environment: [String: String] = [:]) throws -> [(key: String, value: String)] {
        try DotEnv.parse(text, file: "/p/.env", lookup: { environment[$0] })
    }

    func values(_ text: String, environment: [String: String] = [:]) throws -> [String: String] {
        Dictionary(try parse(text, environment: environment).map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
    }

    func failure(_ text: String) -> ComposeError? {
        #expect(throws: ComposeError.self) { try parse(text) }
    }

    @Test func keepsOrderOfKeys() throws {
        let pairs = try parse("B=2\nA=1\nC=3\n")
        #expect(pairs.map(\.key) == ["B", "A", "C"])
        #expect(pairs.map(\.value) == ["2", "1", "3"])
    }

    @Test func skipsCommentsAndBlankLines() throws {
        let text = "# leading comment\n\n   \n\t# indented comment\nA=1\n\n# trailing"
        #expect(try values(text) == ["A": "1"])
    }

    @Test func emptyTextHasNoKeys() throws {
        #expect(try parse("").isEmpty)
        #expect(try parse("\n\n# only a comment\n").isEmpty)
    }

    @Test func exportPrefixIsIgnored() throws {
        #expect(try values("export A=1\nexport   B=two\nexportC=3") == ["A": "1", "B": "two", "exportC": "3"])
    }

    @Test func hashRightAfterTheSeparatorIsPartOfTheValue() throws {
        #expect(try values("A=#not-a-comment") == ["A": "#not-a-comment"])
    }

    @Test func emptyValues() throws {
        #expect(
            try values("A=\nB=   \nC= # comment only\nD=''\nE=\"\"") == ["A": "", "B": "", "C": "", "D": "", "E": ""])
    }

    @Test func unquotedValuesAreTrimmedAndCutAtInlineComments() throws {
        let text =
            "A=  spaced value   \nB=value # comment\nC=value#not-a-comment\nD=a=b=c\nE=http://x/#frag\nF=tab\t# comment"
        #expect(
            try values(text) == [
                "A": "spaced value", "B": "value", "C": "value#not-a-comment", "D": "a=b=c", "E": "http://x/#frag",
                "F": "tab",
            ])
    }

    @Test func spacesAroundTheSeparator() throws {
        #expect(try values("  A = 1\nB\t=\t2") == ["A": "1", "B": "2"])
    }

    @Test func yamlStyleColonSeparator() throws {
        #expect(try values("A: 1\nB:two") == ["A": "1", "B": "two"])
    }

    @Test func keyCharacters() throws {
        #expect(try values("a.b-c_d[0]=1\n_X9=2") == ["a.b-c_d[0]": "1", "_X9": "2"])
    }

    @Test func bareKeyTakesTheEnvironmentValueOrIsSkipped() throws {
        let pairs = try parse(
            "PRESENT\nABSENT\nAFTER=1\n  INDENTED  \nLAST",
            environment: ["PRESENT": "from-env", "LAST": "end", "INDENTED": "i"])
        #expect(pairs.map(\.key) == ["PRESENT", "AFTER", "INDENTED", "LAST"])
        #expect(pairs.map(\.value) == ["from-env", "1", "i", "end"])
    }

    @Test func singleQuotesAreLiteral() throws {
        let text = #"A='$FOO ${BAR} \n # not a comment'"# + "\nB='it\\'s'\nC='  padded  '"
        #expect(
            try values(text, environment: ["FOO": "x"]) == [
                "A": #"$FOO ${BAR} \n # not a comment"#, "B": "it's", "C": "  padded  ",
            ])
    }

    @Test func doubleQuotesProcessEscapes() throws {
        let text = #"A="line1\nline2\ttab\\back \"quoted\" \$NOT cr\r""# + "\n" + #"B="\0101\a\x""#
        let v = try values(text, environment: ["NOT": "x"])
        #expect(v["A"] == "line1\nline2\ttab\\back \"quoted\" $NOT cr\r")
        #expect(v["B"] == "A\u{07}\\x")
    }

    @Test func quotedValuesMaySpanLines() throws {
        let text = "A=\"first\nsecond\n  third\"\nB='one\ntwo'\nC=after"
        #expect(try values(text) == ["A": "first\nsecond\n  third", "B": "one\ntwo", "C": "after"])
    }

    @Test func commentAfterAQuotedValue() throws {
        #expect(try values("A=\"x # inside\" # outside\nB='y'   # outside") == ["A": "x # inside", "B": "y"])
    }

    @Test func interpolatesUnquotedAndDoubleQuotedValues() throws {
        let text = """
            HOST=db
            PORT=5432
            URL=postgres://$HOST:${PORT}/app
            QUOTED="${HOST}:${PORT:-1}"
            DEFAULTED=${MISSING:-fallback}
            ALT=${HOST:+has-host}
            FROM_ENV=${HOME_DIR}/data
            LITERAL='${HOST}'
            ESCAPED=$$HOST
            """
        let v = try values(text, environment: ["HOME_DIR": "/home/me"])
        #expect(v["URL"] == "postgres://db:5432/app")
        #expect(v["QUOTED"] == "db:5432")
        #expect(v["DEFAULTED"] == "fallback")
        #expect(v["ALT"] == "has-host")
        #expect(v["FROM_ENV"] == "/home/me/data")
        #expect(v["LITERAL"] == "${HOST}")
        #expect(v["ESCAPED"] == "$HOST")
    }

    @Test func interpolationSeesOnlyEarlierKeysAndTheEnvironmentWins() throws {
        let v = try values("A=${B:-unset}\nB=b\nC=$B\nD=$E", environment: ["E": "env", "B": "from-env"])
        // compose-go asks the caller's environment before the file's own earlier keys.
        #expect(v == ["A": "from-env", "B": "b", "C": "from-env", "D": "env"])
        let w = try values("A=${B:-unset}\nB=b\nC=$B")
        #expect(w == ["A": "unset", "B": "b", "C": "b"])
    }

    @Test func laterDefinitionWinsAndKeepsFirstPosition() throws {
        let pairs = try parse("A=1\nB=2\nA=3")
        #expect(pairs.map(\.key) == ["A", "B"])
        #expect(pairs.map(\.value) == ["3", "2"])
    }

    @Test func windowsLineEndingsAndByteOrderMark() throws {
        #expect(try values("\u{FEFF}A=1\r\nB=\"two\"\r\nC\r\n") == ["A": "1", "B": "two"])
    }

    @Test func errorsNameTheFileLineAndColumn() {
        let unterminated = failure("A=1\n\nB=\"never closed\nC=3")
        #expect(unterminated?.mark == Mark(file: "/p/.env", line: 3, column: 3))
        #expect(unterminated?.message.contains("unterminated") == true)

        let space = failure("A=1\nMY KEY=2")
        #expect(space?.mark?.line == 2)
        #expect(space?.message.contains("cannot contain a space") == true)

        let character = failure("GOOD=1\n  BAD!=2")
        #expect(character?.mark == Mark(file: "/p/.env", line: 2, column: 6))
        #expect(character?.description.hasPrefix("/p/.env:2:6: unexpected character \"!\"") == true)

        let noName = failure("=value")
        #expect(noName?.mark == Mark(file: "/p/.env", line: 1, column: 1))

        let trailing = failure("A=\"x\" y")
        #expect(trailing?.mark == Mark(file: "/p/.env", line: 1, column: 7))
    }

    @Test func interpolationErrorsNameTheValue() {
        let invalid = failure("A=1\nB=${A:x}")
        #expect(invalid?.mark == Mark(file: "/p/.env", line: 2, column: 3))
        let required = failure("A=1\n\nB=\"${MISSING:?set MISSING first}\"")
        #expect(required?.mark == Mark(file: "/p/.env", line: 3, column: 3))
        #expect(required?.message.contains("set MISSING first") == true)
    }

    @Test func lineNumbersCountLinesInsideQuotedValues() {
        let error = failure("A=\"one\ntwo\nthree\"\nB='x\ny'\nC D=1")
        #expect(error?.mark?.line == 6)
    }
}
