import Testing

@testable import Dockerfile

/// `.dockerignore` with the examples of Docker's documentation and moby/patternmatcher's tests.
@Suite struct DockerIgnoreTests {
    @Test func documentedExample() {
        let ignore = DockerIgnore(
            """
            # comment
            */temp*
            */*/temp*
            temp?
            """)
        #expect(ignore.patterns == ["*/temp*", "*/*/temp*", "temp?"])
        #expect(ignore.excludes("somedir/temporary.txt"))
        #expect(ignore.excludes("somedir/temp"))
        #expect(ignore.excludes("somedir/temp/inside.txt"))
        #expect(ignore.excludes("somedir/subdir/temporary.txt"))
        #expect(ignore.excludes("tempa"))
        #expect(ignore.excludes("tempb"))
        #expect(!ignore.excludes("temp"))
        #expect(!ignore.excludes("temporary.txt"))
        #expect(!ignore.excludes("a/b/c/temp.txt"))
        #expect(!ignore.excludes("somedir/other.txt"))
    }

    @Test func doubleStar() {
        let ignore = DockerIgnore("**/*.go\n")
        #expect(ignore.excludes("main.go"))
        #expect(ignore.excludes("cmd/tool/main.go"))
        #expect(!ignore.excludes("main.gox"))
        #expect(!ignore.excludes("README.md"))

        let under = DockerIgnore("docs/**\nsrc/**/test\n")
        #expect(under.excludes("docs/a"))
        #expect(under.excludes("docs/a/b/c.txt"))
        #expect(!under.excludes("docsx/a"))
        #expect(under.excludes("src/test"))
        #expect(under.excludes("src/a/b/test"))
        #expect(under.excludes("src/a/b/test/file"))
        #expect(!under.excludes("src/a/b/testing"))

        #expect(DockerIgnore("**").excludes("anything/at/all"))
    }

    @Test func starDoesNotCrossDirectories() {
        let ignore = DockerIgnore("*.md\n")
        #expect(ignore.excludes("README.md"))
        #expect(!ignore.excludes("docs/guide.md"))
    }

    @Test func exceptions() {
        let ignore = DockerIgnore("*.md\n!README.md\n")
        #expect(ignore.excludes("CHANGELOG.md"))
        #expect(!ignore.excludes("README.md"))
        #expect(ignore.patterns == ["*.md", "!README.md"])
    }

    @Test func lastMatchWins() {
        // Docker's documentation: no markdown files but the README files, and README-secret.md
        // excluded after all...
        let first = DockerIgnore("*.md\n!README*.md\nREADME-secret.md\n")
        #expect(first.excludes("CONTRIBUTING.md"))
        #expect(!first.excludes("README.md"))
        #expect(!first.excludes("README-public.md"))
        #expect(first.excludes("README-secret.md"))
        // ...while the other order includes every README file, README-secret.md too.
        let second = DockerIgnore("*.md\nREADME-secret.md\n!README*.md\n")
        #expect(!second.excludes("README-secret.md"))
        #expect(second.excludes("CONTRIBUTING.md"))
    }

    @Test func directoryExcludesItsContents() {
        let ignore = DockerIgnore("node_modules\nbuild/\n.git\n")
        #expect(ignore.patterns == ["node_modules", "build", ".git"])
        #expect(ignore.excludes("node_modules"))
        #expect(ignore.excludes("node_modules/left-pad/index.js"))
        #expect(ignore.excludes("build/out/app"))
        #expect(ignore.excludes(".git/HEAD"))
        #expect(!ignore.excludes("src/node_modules"))
        #expect(!ignore.excludes("buildfile"))
    }

    @Test func exceptionInsideExcludedDirectory() {
        let ignore = DockerIgnore("vendor\n!vendor/keep/**\n")
        #expect(ignore.excludes("vendor"))
        #expect(ignore.excludes("vendor/other/x.go"))
        #expect(!ignore.excludes("vendor/keep/x.go"))
        #expect(ignore.mayIncludeUnder("vendor"))
        #expect(ignore.mayIncludeUnder("vendor/keep"))
        #expect(!ignore.mayIncludeUnder("vendor/other"))
        #expect(!ignore.mayIncludeUnder("elsewhere"))
        #expect(!DockerIgnore("vendor\n").mayIncludeUnder("vendor"))
        #expect(DockerIgnore("*\n!**/*.go\n").mayIncludeUnder("any/dir"))
        #expect(DockerIgnore("a\n!a/b/*.txt\n").mayIncludeUnder("a/b"))
        #expect(!DockerIgnore("a\n!a/b/*.txt\n").mayIncludeUnder("a/c"))
    }

    @Test func cleaningAndLeadingSlash() {
        let ignore = DockerIgnore("/secret.txt\n  ./logs//old/../*.log  \n! /keep.log\n/\n")
        #expect(ignore.patterns == ["secret.txt", "logs/*.log", "!keep.log", "/"])
        #expect(ignore.excludes("secret.txt"))
        #expect(ignore.excludes("logs/a.log"))
        #expect(!ignore.excludes("logs/sub/a.log"))
        #expect(!ignore.excludes("keep.log"))
    }

    @Test func commentsAndBlankLines() {
        let ignore = DockerIgnore("\u{FEFF}# first\n\n   \n#*.txt\n  # not a comment when indented\r\nfile\n")
        #expect(ignore.patterns == ["# not a comment when indented", "file"])
        #expect(!ignore.excludes("a.txt"))
        #expect(ignore.excludes("file"))
    }

    @Test func classesQuestionMarksAndEscapes() {
        let ignore = DockerIgnore("log[0-9].txt\nfile?.c\nweird\\*name\n")
        #expect(ignore.excludes("log1.txt"))
        #expect(!ignore.excludes("logx.txt"))
        #expect(ignore.excludes("file1.c"))
        #expect(!ignore.excludes("file12.c"))
        #expect(ignore.excludes("weird*name"))
        #expect(!ignore.excludes("weirdXname"))
    }

    @Test func emptyIgnoresNothing() {
        let ignore = DockerIgnore("")
        #expect(ignore.patterns.isEmpty)
        #expect(!ignore.excludes("anything"))
        #expect(!ignore.mayIncludeUnder("anything"))
    }
}
