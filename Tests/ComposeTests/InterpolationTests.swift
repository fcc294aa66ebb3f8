import Testing
import YAML

@testable import Compose

/// Cases follow the Compose Specification's interpolation section; the environment below has a
/// set variable, a set-but-empty one and leaves everything else unset.
@Suite struct InterpolationTests {
    static let environment = ["FOO": "first", "EMPTY": "", "lower": "small", "PORT": "8080", "UNICODE": "ü€"]
    static let mark = Mark(file: "compose.yaml", line: 7, column: 12)

    func interpolator() -> Interpolator {
        Interpolator { Self.environment[$0] }
    }

    @Test(arguments: [
        // Direct substitution, braced and not; names are [_A-Za-z][_A-Za-z0-9]*, case-sensitive.
        ("$FOO", "first"),
        ("${FOO}", "first"),
        ("pre-$FOO-post", "pre-first-post"),
        ("${FOO}_suffix", "first_suffix"),
        ("$FOO_suffix", ""),  // the name runs on: FOO_suffix is unset
        ("$lower ${lower}", "small small"),
        ("${PORT}:80", "8080:80"),
        ("héllo ${UNICODE} ü", "héllo ü€ ü"),
        ("no variables at all", "no variables at all"),
        // $$ is a literal dollar and stops interpolation.
        ("$$", "$"),
        ("$$FOO", "$FOO"),
        ("$$$FOO", "$first"),
        ("$${FOO}", "${FOO}"),
        ("echo $$HOME", "echo $HOME"),
        // A "$" that starts no name is kept as written.
        ("$1 and $ and 5$", "$1 and $ and 5$"),
        ("{$FOO}", "{first}"),
        ("${FOO}}", "first}"),
        // Defaults: ":-" for unset or empty, "-" for unset only.
        ("${UNSET:-default}", "default"),
        ("${EMPTY:-default}", "default"),
        ("${FOO:-default}", "first"),
        ("${UNSET-default}", "default"),
        ("${EMPTY-default}", ""),
        ("${FOO-default}", "first"),
        ("${UNSET:-}", ""),
        ("${UNSET:-a:b-c?d+e}", "a:b-c?d+e"),
        ("${UNSET:-with space}", "with space"),
        ("${UNSET:-{braces}}", "{braces}"),
        ("${UNSET:-$$literal}", "$literal"),
        // Alternatives: ":+" when set and non-empty, "+" when set.
        ("${FOO:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${UNSET:+alt}", ""),
        ("${FOO+alt}", "alt"),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        // Required values that are present.
        ("${FOO:?must be set}", "first"),
        ("${FOO?must be set}", "first"),
        ("${EMPTY?must be set}", ""),
        // Nesting inside defaults and alternatives.
        ("${UNSET:-${FOO}}", "first"),
        ("${UNSET:-${OTHER:-deep}}", "deep"),
        ("${UNSET:-a${FOO}b}", "afirstb"),
        ("${UNSET:-$FOO}", "first"),
        ("${FOO:+${PORT:-0}/tcp}", "8080/tcp"),
        ("${UNSET-${EMPTY:-${FOO}}}!", "first!"),
        ("${FOO:-${NOPE:?never evaluated}}", "first"),
        ("x${UNSET:-1}y${FOO}z${EMPTY:-2}", "x1yfirstz2"),
    ])
    func substitutes(template: String, expected: String) throws {
        #expect(try interpolator().interpolate(template, at: Self.mark) == expected)
    }

    @Test(arguments: [
        "${", "${A", "${A:x}", "${1A}", "${}", "${A:-x", "${A x}", "${-}", "a ${ b", "${A:}", "${A:-${B}", "${ A}",
    ])
    func rejectsInvalidTemplates(template: String) {
        let error = #expect(throws: ComposeError.self) { try interpolator().interpolate(template, at: Self.mark) }
        #expect(error?.mark == Self.mark)
        #expect(error?.message.contains("invalid interpolation format") == true)
        #expect(error?.description.hasPrefix("compose.yaml:7:12: ") == true)
    }

    @Test(arguments: [
        ("${UNSET:?please set UNSET in .env}", "required variable UNSET is missing a value: please set UNSET in .env"),
        ("${EMPTY:?EMPTY must not be empty}", "required variable EMPTY is missing a value: EMPTY must not be empty"),
        ("${UNSET?}", "required variable UNSET is missing a value"),
        ("${UNSET:?needed by $FOO}", "required variable UNSET is missing a value: needed by first"),
        (
            "prefix ${UNSET:-${INNER:?inner is required}}",
            "required variable INNER is missing a value: inner is required"
        ),
    ])
    func requiredVariablesFailWithTheUsersMessage(template: String, message: String) {
        let error = #expect(throws: ComposeError.self) { try interpolator().interpolate(template, at: Self.mark) }
        #expect(error?.message == message)
        #expect(error?.mark == Self.mark)
    }

    @Test func recordsUnsetVariablesOnceInOrder() throws {
        let interpolator = interpolator()
        #expect(try interpolator.interpolate("$B ${A} $B", at: Self.mark) == "  ")
        // Defaults, alternatives and unused nested templates do not count as unset uses.
        #expect(
            try interpolator.interpolate("${C:-x} ${D-y} ${E:+z} ${F+w} ${FOO:-$G}", at: Self.mark) == "x y   first")
        #expect(try interpolator.interpolate("${H:-$A$I}", at: Self.mark) == "")
        #expect(interpolator.unsetVariables == ["B", "A", "I"])
    }

    @Test func setButEmptyIsNotUnset() throws {
        let interpolator = interpolator()
        #expect(try interpolator.interpolate("[$EMPTY]", at: Self.mark) == "[]")
        #expect(interpolator.unsetVariables.isEmpty)
    }

    @Test func leavesTextWithoutDollarUntouched() throws {
        var looked = 0
        let interpolator = Interpolator { _ in
            looked += 1
            return nil
        }
        #expect(try interpolator.interpolate("plain: {value} - ?", at: Self.mark) == "plain: {value} - ?")
        #expect(looked == 0)
    }
}
