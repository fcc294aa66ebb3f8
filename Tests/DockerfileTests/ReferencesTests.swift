import Testing

@testable import Dockerfile

/// Which variables an instruction uses at build time (for the build cache key).
@Suite struct ReferencesTests {
    func references(_ text: String, escape: Character = "\\") throws -> Set<String> {
        let prefix = escape == "`" ? "# escape=`\n" : ""
        let file = try Dockerfile.parse(prefix + "FROM scratch\n" + text)
        return file.stages[0].instructions[0].referencedVariables(escape: escape)
    }

    @Test func builderInstructions() throws {
        #expect(try references("ENV A=$B C=${D:-$E} F='$G' H=\"$I\"") == ["B", "D", "E", "I"])
        #expect(
            try references("COPY --from=$STAGE --chown=${USER}:${GROUP} $SRC /dst") == [
                "STAGE", "USER", "GROUP", "SRC",
            ])
        #expect(try references("WORKDIR /app/$VERSION") == ["VERSION"])
        #expect(try references("ARG A=$B") == ["B"])
        #expect(try references("USER \\$NOT_ME") == [])
        #expect(try references("EXPOSE $1 $ ${#}") == [])
        #expect(try references("LABEL a=${X/y/$Z}") == ["X", "Z"])
    }

    @Test func fromSeesItsFlagsToo() throws {
        let file = try Dockerfile.parse("ARG B\nFROM --platform=$P $B:${T}\n")
        #expect(file.stages[0].from.referencedVariables(escape: "\\") == ["P", "B", "T"])
    }

    @Test func runSeesWhatTheShellSees() throws {
        #expect(
            try references("RUN echo $HOME ${PATH} \"$USER\" '$NOT' \\$ESCAPED ${#LEN}") == [
                "HOME", "PATH", "USER", "LEN",
            ])
        #expect(try references("RUN --mount=type=cache,target=$CACHE make") == ["CACHE"])
        #expect(try references("RUN <<EOF\necho $IN_BODY\nEOF") == ["IN_BODY"])
        #expect(try references("RUN <<'EOF'\necho $QUOTED\nEOF") == [])
        // The shell's escape is a backslash even with the backtick escape.
        #expect(try references("RUN echo \\$A `$B", escape: "`") == ["B"])
    }

    @Test func copyHeredocBodies() throws {
        #expect(try references("COPY <<EOF /x\n$A\nEOF") == ["A"])
        #expect(try references("COPY <<\"EOF\" /x\n$A\nEOF") == [])
    }

    @Test func runtimeOnlyInstructions() throws {
        #expect(try references("CMD echo $HOME") == [])
        #expect(try references("ENTRYPOINT [\"$X\"]") == [])
        #expect(try references("HEALTHCHECK CMD test $X") == [])
        #expect(try references("ONBUILD RUN $X") == [])
    }
}
