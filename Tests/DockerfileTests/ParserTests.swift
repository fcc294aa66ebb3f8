import Testing

@testable import Dockerfile

/// The parser: directives, comments, continuations, keywords, flags, stages and the errors with
/// their positions. Expectations follow BuildKit's parser (frontend/dockerfile/parser).
@Suite struct ParserTests {
    func parse(_ text: String) throws -> Dockerfile {
        try Dockerfile.parse(text)
    }

    func error(_ text: String) -> DockerfileError? {
        do {
            _ = try Dockerfile.parse(text)
            return nil
        } catch let error as DockerfileError {
            return error
        } catch {
            return nil
        }
    }

    @Test func minimal() throws {
        let file = try parse("FROM alpine\nRUN echo hi\n")
        #expect(file.path == "Dockerfile")
        #expect(file.escape == "\\")
        #expect(file.syntax == nil)
        #expect(file.globalArgs.isEmpty)
        #expect(file.stages.count == 1)
        let stage = file.stages[0]
        #expect(stage.index == 0)
        #expect(stage.name == nil)
        #expect(stage.from.keyword == "FROM")
        #expect(stage.from.arguments == "alpine")
        #expect(stage.from.position == SourcePosition(line: 1, column: 1))
        #expect(
            stage.instructions == [
                Instruction(
                    keyword: "RUN", position: SourcePosition(line: 2, column: 1), original: "RUN echo hi",
                    arguments: "echo hi")
            ])
    }

    @Test func keywordsAreCaseInsensitive() throws {
        let file = try parse("from alpine AS Build\nrun echo\nCoPy a b\n")
        #expect(file.stages[0].name == "build")
        #expect(file.stages[0].instructions.map(\.keyword) == ["RUN", "COPY"])
        #expect(file.stages[0].instructions[0].original == "run echo")
    }

    @Test func stagesAndGlobalArgs() throws {
        let file = try parse(
            """
            # a comment
            ARG BASE=alpine
            ARG VERSION
            FROM $BASE AS builder
            RUN make
            FROM scratch
            COPY --from=builder /out /
            """)
        #expect(file.globalArgs.map(\.arguments) == ["BASE=alpine", "VERSION"])
        #expect(file.stages.map(\.name) == ["builder", nil])
        #expect(file.stages.map(\.index) == [0, 1])
        #expect(file.stages[1].instructions[0].flags == ["--from=builder"])
        #expect(file.stages[1].instructions[0].arguments == "/out /")
    }

    @Test func directives() throws {
        let file = try parse("# syntax=docker/dockerfile:1\n# ESCAPE = `\n# check=skip=all\nFROM a\n")
        #expect(file.syntax == "docker/dockerfile:1")
        #expect(file.escape == "`")
        #expect(file.check == "skip=all")
    }

    @Test func directivesOnlyAtTheTop() throws {
        // A blank line, a plain comment or an instruction ends the directives.
        #expect(try parse("\n# escape=`\nFROM a\n").escape == "\\")
        #expect(try parse("# hello\n# escape=`\nFROM a\n").escape == "\\")
        #expect(try parse("FROM a\n# escape=`\nRUN b\n").escape == "\\")
        // An unknown directive is a comment, and ends the directives too.
        #expect(try parse("# foo=bar\n# escape=`\nFROM a\n").escape == "\\")
    }

    @Test func badDirectives() {
        #expect(
            error("# escape=x\nFROM a\n")?.description
                == "Dockerfile:1:1: invalid escape token 'x' does not match ` or \\")
        #expect(error("# escape=\\\n# escape=`\nFROM a\n")?.message == "only one escape parser directive can be used")
        #expect(error("# escape=\\\n# escape=`\nFROM a\n")?.position == SourcePosition(line: 2, column: 1))
    }

    @Test func continuationsAreJoinedAsWritten() throws {
        let file = try parse("FROM a\nRUN echo one \\\n    two\\\nthree\n")
        let run = file.stages[0].instructions[0]
        #expect(run.arguments == "echo one     twothree")
        #expect(run.original == "RUN echo one     twothree")
        #expect(run.position == SourcePosition(line: 2, column: 1))
    }

    @Test func continuationWithTrailingBlanks() throws {
        let file = try parse("FROM a\nRUN a \\  \t\n b\n")
        #expect(file.stages[0].instructions[0].arguments == "a  b")
    }

    @Test func commentsAndBlankLinesInsideContinuations() throws {
        let file = try parse(
            "FROM a\nRUN apt-get update && \\\n  # install things\n\n   \n  apt-get install x\nUSER me\n")
        #expect(file.stages[0].instructions.map(\.arguments) == ["apt-get update &&   apt-get install x", "me"])
        #expect(file.stages[0].instructions[1].position == SourcePosition(line: 7, column: 1))
    }

    @Test func continuationAtEndOfFile() throws {
        let file = try parse("FROM a\nRUN a \\")
        #expect(file.stages[0].instructions[0].arguments == "a")
    }

    @Test func backtickEscape() throws {
        let file = try parse("# escape=`\nFROM a\nRUN dir C:\\ `\n  && echo\nCOPY a\\b c\n")
        #expect(file.stages[0].instructions[0].arguments == "dir C:\\   && echo")
        // A backslash is an ordinary character then.
        #expect(file.stages[0].instructions[1].arguments == "a\\b c")
    }

    @Test func indentedInstructionsAndComments() throws {
        let file = try parse("  FROM a\n\t# comment\n    RUN b   \n")
        #expect(file.stages[0].from.position == SourcePosition(line: 1, column: 3))
        #expect(file.stages[0].instructions[0].position == SourcePosition(line: 3, column: 5))
        #expect(file.stages[0].instructions[0].arguments == "b")
    }

    @Test func crlfAndByteOrderMark() throws {
        let file = try parse("\u{FEFF}FROM a\r\nRUN b \\\r\n c\r\n")
        #expect(file.stages[0].from.arguments == "a")
        #expect(file.stages[0].instructions[0].arguments == "b  c")
    }

    @Test func flagsAreSeparated() throws {
        let file = try parse(
            "FROM --platform=linux/amd64 a\nRUN --mount=type=cache,target=/x --network=none  echo --not-a-flag\n")
        #expect(file.stages[0].from.flags == ["--platform=linux/amd64"])
        #expect(file.stages[0].from.arguments == "a")
        let run = file.stages[0].instructions[0]
        #expect(run.flags == ["--mount=type=cache,target=/x", "--network=none"])
        #expect(run.arguments == "echo --not-a-flag")
    }

    @Test func flagQuotesAreRemoved() throws {
        let file = try parse("FROM a\nCOPY --chown=\"me:me\" x y\n")
        #expect(file.stages[0].instructions[0].flags == ["--chown=me:me"])
    }

    // MARK: - Errors with positions

    @Test func unknownInstruction() {
        let error = error("FROM a\nRUN b\nFROMM c\n")
        #expect(error?.description == "Dockerfile:3:1: unknown instruction: FROMM")
        #expect(error?.file == "Dockerfile")
        #expect(self.error("FROM a\n   bogus x\n")?.position == SourcePosition(line: 2, column: 4))
    }

    @Test func pathIsInErrors() {
        do {
            _ = try Dockerfile.parse("FROMM a", path: "docker/Dockerfile.dev")
            Issue.record("no error")
        } catch {
            #expect("\(error)" == "docker/Dockerfile.dev:1:1: unknown instruction: FROMM")
        }
    }

    @Test func unknownFlag() {
        let error = error("FROM a\nCOPY --form=x a b\n")
        #expect(error?.description == "Dockerfile:2:1: unknown flag: form")
        #expect(self.error("FROM a\nRUN --chown=x a\n")?.message == "unknown flag: chown")
        #expect(self.error("FROM a\nUSER --x me\n")?.message == "unknown flag: x")
        #expect(self.error("FROM --platform a\n")?.message == "missing a value on flag: platform")
        #expect(
            self.error("FROM a\nCOPY --link=maybe a b\n")?.message
                == "expecting boolean value for flag link, not: maybe")
        #expect(self.error("FROM a\nCOPY --from=a --from=b a b\n")?.message == "duplicate flag specified: from")
    }

    @Test func instructionBeforeFrom() {
        let error = error("ARG A\nRUN echo\nFROM a\n")
        #expect(error?.position == SourcePosition(line: 2, column: 1))
        #expect(error?.message.hasPrefix("no build stage in current context") == true)
    }

    @Test func noStage() {
        #expect(error("")?.message == "file with no instructions")
        #expect(error("# just a comment\n\n")?.message == "file with no instructions")
        #expect(error("ARG A=1\n")?.message == "no build stage in current context")
        #expect(error("ARG A=1\n")?.description == "Dockerfile: no build stage in current context")
    }

    @Test func badStageNames() {
        let error = error("FROM a AS 1st\n")
        #expect(error?.position == SourcePosition(line: 1, column: 1))
        #expect(
            error?.message
                == "invalid name for build stage: \"1st\", name can't start with a number or contain symbols")
        #expect(self.error("FROM a AS b@c\n") != nil)
        #expect(self.error("FROM a AS\n")?.message == "FROM requires either one or three arguments")
        #expect(self.error("FROM a b c\n")?.message == "FROM requires either one or three arguments")
        #expect(self.error("FROM\n")?.message == "FROM requires either one or three arguments")
        #expect(throws: Never.self) { try Dockerfile.parse("FROM a AS x-y_z.1\n") }
    }

    @Test func duplicateStageNames() {
        let error = error("FROM a AS one\nFROM b as ONE\n")
        #expect(error?.description == "Dockerfile:2:1: duplicate stage name \"one\"")
    }

    @Test func badEnvAndArg() {
        #expect(error("FROM a\nENV\n")?.description == "Dockerfile:2:1: ENV requires at least one argument")
        #expect(error("FROM a\nENV =x\n")?.description == "Dockerfile:2:1: ENV names can not be blank")
        #expect(error("FROM a\nENV A\n")?.message == "ENV must have two arguments")
        #expect(
            error("FROM a\nENV A=1 B\n")?.message
                == "Syntax error - can't find = in \"B\". Must be of the form: name=value")
        #expect(error("FROM a\n\n  ARG\n")?.description == "Dockerfile:3:3: ARG requires at least one argument")
        #expect(error("FROM a\nARG =x\n")?.description == "Dockerfile:2:1: ARG names can not be blank")
        #expect(error("FROM a\nLABEL\n")?.message == "LABEL requires at least one argument")
    }

    @Test func otherParseTimeChecks() {
        #expect(error("FROM a\nSHELL /bin/bash -c\n")?.message == "SHELL requires the arguments to be in JSON form")
        #expect(
            error("FROM a\nCMD [1, 2]\n")?.message
                == "when using JSON array syntax, arrays must be comprised of strings only")
        #expect(error("FROM a\nEXPOSE http\n")?.position == SourcePosition(line: 2, column: 1))
        #expect(
            error("FROM a\nONBUILD ONBUILD RUN x\n")?.message == "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        #expect(error("FROM a\nCOPY onlyone\n") != nil)
        #expect(error("FROM a\nHEALTHCHECK --interval=1x CMD true\n") != nil)
        #expect(error("FROM a\nRUN --network=bridge x\n")?.message == "unsupported network mode \"bridge\"")
        #expect(error("FROM a\nRUN --mount=type=nfs,target=/x x\n") != nil)
        #expect(error("FROM a\nWORKDIR\n")?.message == "WORKDIR requires exactly one argument")
    }

    @Test func valuesWithVariablesAreCheckedAtBuildTime() throws {
        // Nothing is known at parse time: a "$" value passes, the build checks it.
        let file = try parse("FROM a\nEXPOSE $PORT\nCOPY --chmod=$MODE a b\nRUN --mount=type=$T,target=/x y\n")
        let expose = file.stages[0].instructions[0]
        #expect(throws: DockerfileError.self) { try expose.command(escape: "\\", lookup: { _ in "http" }) }
        #expect(try expose.command(escape: "\\", lookup: { _ in "8080" }) == .expose(["8080"]))
    }

    @Test func heredocsInParse() throws {
        let file = try parse(
            """
            FROM a
            RUN <<EOF
            echo one
              echo two
            EOF
            RUN <<-"END" python3 - && cat <<'X'
            \t\tprint(1)
            \tEND
            raw $HOME
            X
            COPY <<A <<B /dir/
            a
            A
            b
            B
            USER me
            """)
        let instructions = file.stages[0].instructions
        #expect(instructions.map(\.keyword) == ["RUN", "RUN", "COPY", "USER"])
        #expect(instructions[0].heredocs == [Heredoc(name: "EOF", content: "echo one\n  echo two\n")])
        #expect(instructions[0].arguments == "<<EOF")
        #expect(
            instructions[1].heredocs == [
                Heredoc(name: "END", content: "print(1)\n", expand: false, chomp: true),
                Heredoc(name: "X", content: "raw $HOME\n", expand: false, chomp: false),
            ])
        #expect(instructions[1].arguments == "<<-\"END\" python3 - && cat <<'X'")
        #expect(instructions[2].heredocs.map(\.name) == ["A", "B"])
        #expect(instructions[2].heredocs.map(\.content) == ["a\n", "b\n"])
        #expect(instructions[3].position == SourcePosition(line: 16, column: 1))
    }

    @Test func heredocBodiesAreReadAsIs() throws {
        // Comments, blank lines and trailing escapes in a body are content.
        let file = try parse("FROM a\nRUN <<EOF\n# not a comment\n\nline \\\nEOF\n")
        #expect(file.stages[0].instructions[0].heredocs[0].content == "# not a comment\n\nline \\\n")
    }

    @Test func heredocAfterContinuation() throws {
        let file = try parse("FROM a\nRUN cat \\\n  <<EOF > /x\nhello\nEOF\n")
        let run = file.stages[0].instructions[0]
        #expect(run.arguments == "cat   <<EOF > /x")
        #expect(run.heredocs == [Heredoc(name: "EOF", content: "hello\n")])
    }

    @Test func heredocOnlyForRunCopyAdd() throws {
        let file = try parse("FROM a\nCMD cat <<EOF\nUSER x\n")
        #expect(file.stages[0].instructions.map(\.keyword) == ["CMD", "USER"])
        #expect(file.stages[0].instructions[0].heredocs.isEmpty)
    }

    @Test func quotedHeredocMarkerIsText() throws {
        let file = try parse("FROM a\nRUN echo \"<<EOF\"\nUSER x\n")
        #expect(file.stages[0].instructions[0].heredocs.isEmpty)
    }

    @Test func heredocWithFileDescriptorAndEmptyBody() throws {
        let file = try parse("FROM a\nRUN cat 3<<EOF\nEOF\n")
        #expect(file.stages[0].instructions[0].heredocs == [Heredoc(name: "EOF", content: "")])
    }

    @Test func unterminatedHeredoc() {
        let error = error("FROM a\nRUN <<EOF\nno end\n")
        #expect(error?.message == "unterminated heredoc EOF")
        #expect(error?.position == SourcePosition(line: 2, column: 1))
    }

    @Test func errorDescriptionParts() {
        #expect(DockerfileError("boom").description == "boom")
        #expect(DockerfileError("boom", file: "f").description == "f: boom")
        #expect(DockerfileError("boom", file: "f", at: SourcePosition(line: 2, column: 5)).description == "f:2:5: boom")
        #expect(DockerfileError("boom", at: SourcePosition(line: 2, column: 5)).description == "2:5: boom")
    }
}
