import Testing

@testable import Dockerfile

/// Cases from Go's path/filepath match tests.
@Suite struct PathPatternTests {
    @Test(arguments: [
        ("abc", "abc", true),
        ("*", "abc", true),
        ("*c", "abc", true),
        ("a*", "a", true),
        ("a*", "abc", true),
        ("a*", "ab/c", false),
        ("a*/b", "abc/b", true),
        ("a*/b", "a/c/b", false),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
        ("a*b?c*x", "abxbbxdbxebxczzx", true),
        ("a*b?c*x", "abxbbxdbxebxczzy", false),
        ("ab[c]", "abc", true),
        ("ab[b-d]", "abc", true),
        ("ab[e-g]", "abc", false),
        ("ab[^c]", "abc", false),
        ("ab[^b-d]", "abc", false),
        ("ab[^e-g]", "abc", true),
        ("a\\*b", "a*b", true),
        ("a\\*b", "ab", false),
        ("a?b", "a☺b", true),
        ("a[^a]b", "a☺b", true),
        ("a???b", "a☺b", false),
        ("a[^a][^a][^a]b", "a☺b", false),
        ("[a-ζ]*", "α", true),
        ("*[a-ζ]", "A", false),
        ("a?b", "a/b", false),
        ("a*b", "a/b", false),
        ("[\\]a]", "]", true),
        ("[\\-]", "-", true),
        ("[x\\-]", "x", true),
        ("[x\\-]", "-", true),
        ("[x\\-]", "z", false),
        ("[\\-x]", "x", true),
        ("[\\-x]", "-", true),
        ("[\\-x]", "a", false),
        ("*x", "xxx", true),
        ("*.txt", "notes.txt", true),
        ("*.txt", "dir/notes.txt", false),
        ("", "", true),
        ("", "a", false),
    ])
    func matches(_ pattern: String, _ name: String, _ expected: Bool) throws {
        #expect(try PathPattern.matches(pattern, name) == expected)
    }

    @Test(arguments: [
        "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "a/b[", "[z-a]",
    ])
    func badPatterns(_ pattern: String) {
        #expect(throws: DockerfileError.self) { try PathPattern.matches(pattern, "a") }
    }

    @Test func wildcards() {
        #expect(PathPattern.hasWildcards("*.go"))
        #expect(PathPattern.hasWildcards("file?.txt"))
        #expect(PathPattern.hasWildcards("[ab].txt"))
        #expect(!PathPattern.hasWildcards("plain/path.txt"))
        #expect(!PathPattern.hasWildcards("escaped\\*star"))
        #expect(PathPattern.hasWildcards("escaped\\*but*"))
    }

    /// Go's filepath.Clean: what a COPY source, a destination and a .dockerignore pattern become.
    @Test(arguments: [
        ("", "."), (".", "."), ("a/./b/", "a/b"), ("a/../../b", "../b"), ("/../a", "/a"), ("/a/b/../..", "/"),
        ("a//b", "a/b"), ("../..", "../.."),
    ])
    func clean(_ path: String, _ expected: String) {
        #expect(PathPattern.clean(path) == expected)
    }
}
