import Testing

@testable import Dockerfile

/// Typing each instruction, with the substitution rules Docker applies to it.
@Suite struct CommandTests {
    static let variables = [
        "IMAGE": "alpine", "TAG": "3.20", "PORT": "8080", "DIR": "/srv", "NAME": "web", "SPACED": "a b",
        "EMPTY": "", "MODE": "755", "PLATFORM": "linux/arm64",
    ]

    /// The one instruction after a FROM (or the FROM itself when `text` is one).
    func instruction(_ text: String, escape: Character = "\\") throws -> Instruction {
        let prefix = escape == "`" ? "# escape=`\n" : ""
        let file = try Dockerfile.parse(prefix + (text.uppercased().hasPrefix("FROM") ? text : "FROM scratch\n" + text))
        return file.stages[0].instructions.first ?? file.stages[0].from
    }

    func command(_ text: String, escape: Character = "\\") throws -> Command {
        try instruction(text, escape: escape).command(escape: escape, lookup: { Self.variables[$0] })
    }

    func buildError(_ text: String) -> DockerfileError? {
        do {
            _ = try command(text)
            return nil
        } catch let error as DockerfileError {
            return error
        } catch {
            return nil
        }
    }

    // MARK: - FROM

    @Test func from() throws {
        #expect(try command("FROM alpine") == .from(image: "alpine", platform: nil, alias: nil))
        #expect(
            try command("FROM $IMAGE:${TAG} AS Build") == .from(image: "alpine:3.20", platform: nil, alias: "build"))
        #expect(
            try command("FROM --platform=$PLATFORM ${IMAGE} as b")
                == .from(image: "alpine", platform: "linux/arm64", alias: "b"))
        #expect(try command("FROM ${MISSING:-busybox}") == .from(image: "busybox", platform: nil, alias: nil))
        #expect(buildError("FROM $MISSING")?.message == "base name ($MISSING) should not be blank")
    }

    // MARK: - RUN, CMD, ENTRYPOINT, SHELL

    @Test func runShellForm() throws {
        // RUN is not substituted: the shell does it.
        #expect(try command("RUN echo $PORT \"$NAME\"") == .run(Run(command: .shell("echo $PORT \"$NAME\""))))
    }

    @Test func runExecForm() throws {
        #expect(try command(#"RUN ["echo", "$PORT", "a\"b"]"#) == .run(Run(command: .exec(["echo", "$PORT", "a\"b"]))))
        #expect(try command("RUN [ \"a\" ]  ") == .run(Run(command: .exec(["a"]))))
        // Not JSON: the shell form, brackets and all.
        #expect(try command("RUN [echo, hi]") == .run(Run(command: .shell("[echo, hi]"))))
        #expect(try command("RUN [\"a\"] && b") == .run(Run(command: .shell("[\"a\"] && b"))))
        #expect(try command(#"RUN ["\u00e9\n"]"#) == .run(Run(command: .exec(["é\n"]))))
    }

    @Test func runFlags() throws {
        let run = try command("RUN --network=none --security=insecure make")
        #expect(run == .run(Run(command: .shell("make"), network: "none", security: "insecure")))
        #expect(buildError("RUN --security=other x")?.message == "unsupported security mode \"other\"")
        #expect(buildError("RUN")?.message == "RUN requires at least one argument")
    }

    @Test func runHeredoc() throws {
        let run = try command("RUN <<EOF\necho $HOME\nEOF")
        #expect(run == .run(Run(command: .shell("<<EOF"), heredocs: [Heredoc(name: "EOF", content: "echo $HOME\n")])))
    }

    @Test func cmdAndEntrypoint() throws {
        #expect(try command("CMD [\"nginx\", \"-g\", \"daemon off;\"]") == .cmd(.exec(["nginx", "-g", "daemon off;"])))
        #expect(try command("CMD nginx -g 'daemon off;'") == .cmd(.shell("nginx -g 'daemon off;'")))
        #expect(try command("ENTRYPOINT [\"/init\"]") == .entrypoint(.exec(["/init"])))
        #expect(try command("ENTRYPOINT exec top -b") == .entrypoint(.shell("exec top -b")))
        #expect(try command("ENTRYPOINT []") == .entrypoint(.exec([])))
        #expect(try command("CMD $NAME") == .cmd(.shell("$NAME")))
    }

    @Test func shell() throws {
        #expect(
            try command("SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]")
                == .shell(["/bin/bash", "-o", "pipefail", "-c"]))
        #expect(buildError("SHELL []")?.message == "SHELL requires at least one argument")
    }

    // MARK: - ENV, LABEL, ARG

    @Test func env() throws {
        #expect(
            try command("ENV A=1 B=\"two words\" C=$PORT D='$PORT' E=a\\ b F=")
                == .env([
                    KeyValue(key: "A", value: "1"), KeyValue(key: "B", value: "two words"),
                    KeyValue(key: "C", value: "8080"), KeyValue(key: "D", value: "$PORT"),
                    KeyValue(key: "E", value: "a b"), KeyValue(key: "F", value: ""),
                ]))
        // The legacy form: one pair, the value the rest of the line.
        #expect(
            try command("ENV GREETING hello   big $NAME") == .env([KeyValue(key: "GREETING", value: "hello   big web")])
        )
        #expect(try command("ENV A \"x y\"") == .env([KeyValue(key: "A", value: "x y")]))
        #expect(try command("ENV A 1=2") == .env([KeyValue(key: "A", value: "1=2")]))
        // Keys are substituted too; values with variables are not split.
        #expect(try command("ENV ${NAME}_HOME=$SPACED") == .env([KeyValue(key: "web_HOME", value: "a b")]))
    }

    @Test func envOverContinuations() throws {
        #expect(
            try command("ENV A=1 \\\n    B=2")
                == .env([KeyValue(key: "A", value: "1"), KeyValue(key: "B", value: "2")]))
    }

    @Test func label() throws {
        #expect(
            try command("LABEL org.opencontainers.image.title=\"My App\" version=$TAG")
                == .label([
                    KeyValue(key: "org.opencontainers.image.title", value: "My App"),
                    KeyValue(key: "version", value: "3.20"),
                ]))
        #expect(try command("LABEL \"key with space\"=v") == .label([KeyValue(key: "key with space", value: "v")]))
        #expect(try command("LABEL maintainer someone") == .label([KeyValue(key: "maintainer", value: "someone")]))
    }

    @Test func arg() throws {
        #expect(try command("ARG A") == .arg([ArgDefinition(name: "A")]))
        #expect(try command("ARG A=") == .arg([ArgDefinition(name: "A", defaultValue: "")]))
        #expect(
            try command("ARG A=1 B C=\"x y\" D=$NAME")
                == .arg([
                    ArgDefinition(name: "A", defaultValue: "1"), ArgDefinition(name: "B"),
                    ArgDefinition(name: "C", defaultValue: "x y"), ArgDefinition(name: "D", defaultValue: "web"),
                ]))
    }

    // MARK: - EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, MAINTAINER, ONBUILD

    @Test func expose() throws {
        #expect(
            try command("EXPOSE 80 443/tcp 53/UDP 7000-7010/sctp $PORT")
                == .expose(["80", "443/tcp", "53/UDP", "7000-7010/sctp", "8080"]))
        #expect(buildError("EXPOSE 70000")?.position == SourcePosition(line: 2, column: 1))
        #expect(buildError("EXPOSE 80/http") != nil)
        #expect(buildError("EXPOSE 90-80") != nil)
        #expect(buildError("EXPOSE -") != nil)
        #expect(buildError("EXPOSE") != nil)
    }

    @Test func volume() throws {
        #expect(try command("VOLUME /data $DIR/logs") == .volume(["/data", "/srv/logs"]))
        #expect(try command("VOLUME [\"/a\", \"$DIR\"]") == .volume(["/a", "/srv"]))
        #expect(buildError("VOLUME $EMPTY")?.message == "VOLUME specified can not be an empty string")
    }

    @Test func singleValues() throws {
        #expect(try command("USER ${NAME}:staff") == .user("web:staff"))
        #expect(try command("WORKDIR $DIR/app dir") == .workdir("/srv/app dir"))
        #expect(try command("WORKDIR \"/quoted path\"") == .workdir("/quoted path"))
        #expect(try command("STOPSIGNAL SIG$NAME") == .stopSignal("SIGweb"))
        #expect(try command("MAINTAINER Jane <jane@example.com> $NAME") == .maintainer("Jane <jane@example.com> $NAME"))
    }

    @Test func onbuild() throws {
        #expect(try command("ONBUILD RUN echo $NAME") == .onbuild("RUN echo $NAME"))
        #expect(try command("ONBUILD copy . /app") == .onbuild("copy . /app"))
        #expect(buildError("ONBUILD FROM x")?.message == "FROM isn't allowed as an ONBUILD trigger")
        #expect(buildError("ONBUILD MAINTAINER x")?.message == "MAINTAINER isn't allowed as an ONBUILD trigger")
        #expect(buildError("ONBUILD BOGUS x")?.message == "unknown instruction: BOGUS")
        #expect(buildError("ONBUILD")?.message == "ONBUILD requires at least one argument")
    }

    // MARK: - HEALTHCHECK

    @Test func healthcheck() throws {
        #expect(try command("HEALTHCHECK NONE") == .healthcheck(nil))
        #expect(try command("HEALTHCHECK none") == .healthcheck(nil))
        #expect(
            try command(
                "HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --start-interval=1.5s --retries=3 CMD curl -f http://localhost/ || exit 1"
            )
                == .healthcheck(
                    Healthcheck(
                        test: ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], interval: 90_000_000_000,
                        timeout: 500_000_000, startPeriod: 2_000_000_000, startInterval: 1_500_000_000, retries: 3)))
        #expect(
            try command("HEALTHCHECK CMD [\"/check\", \"-q\"]")
                == .healthcheck(Healthcheck(test: ["CMD", "/check", "-q"])))
        #expect(
            try command("HEALTHCHECK --interval=0 CMD true")
                == .healthcheck(Healthcheck(test: ["CMD-SHELL", "true"], interval: 0)))
        #expect(
            buildError("HEALTHCHECK --interval=10us CMD true")?.message
                == "Interval \"interval\" cannot be less than 1ms")
        #expect(buildError("HEALTHCHECK --timeout=-1s CMD true")?.message == "Interval \"timeout\" cannot be negative")
        #expect(buildError("HEALTHCHECK --retries=-1 CMD true")?.message == "--retries cannot be negative (-1)")
        #expect(buildError("HEALTHCHECK --interval=5s NONE")?.message == "HEALTHCHECK NONE takes no arguments")
        #expect(buildError("HEALTHCHECK CMD")?.message == "Missing command after HEALTHCHECK CMD")
        #expect(buildError("HEALTHCHECK RUN x")?.message == "Unknown type \"RUN\" in HEALTHCHECK (try CMD)")
        #expect(buildError("HEALTHCHECK --bogus=1 CMD x")?.message == "unknown flag: bogus")
    }

    @Test func durations() {
        #expect(Units.duration("30s") == 30_000_000_000)
        #expect(Units.duration("1h2m3s") == 3_723_000_000_000)
        #expect(Units.duration("1.5m") == 90_000_000_000)
        #expect(Units.duration(".5s") == 500_000_000)
        #expect(Units.duration("100ns") == 100)
        #expect(Units.duration("2µs") == 2000)
        #expect(Units.duration("0") == 0)
        #expect(Units.duration("-2s") == -2_000_000_000)
        #expect(Units.duration("30") == nil)
        #expect(Units.duration("s") == nil)
        #expect(Units.duration("") == nil)
        #expect(Units.duration("1d") == nil)
    }

    // MARK: - COPY and ADD

    @Test func copy() throws {
        #expect(
            try command(
                "COPY --from=$NAME --chown=$NAME:$NAME --chmod=$MODE --link --parents --exclude=*.md --exclude=$NAME a $DIR/b \"c d\" /dst/"
            )
                == .copy(
                    Copy(
                        sources: ["a", "/srv/b", "c d"], destination: "/dst/", from: "web", chown: "web:web",
                        chmod: "755", link: true, parents: true, excludes: ["*.md", "web"])))
        #expect(
            try command("COPY [\"a b\", \"$DIR\", \"/dst\"]")
                == .copy(Copy(sources: ["a b", "/srv"], destination: "/dst")))
        #expect(try command("COPY --link=false x y") == .copy(Copy(sources: ["x"], destination: "y")))
        // A variable's value is one source, spaces and all.
        #expect(try command("COPY $SPACED /d") == .copy(Copy(sources: ["a b"], destination: "/d")))
    }

    @Test func copyErrors() {
        #expect(
            buildError("COPY onlyone")?.message
                == "COPY requires at least two arguments, but only one was provided. Destination could not be determined."
        )
        #expect(
            buildError("COPY --chmod=u+x a b")?.message
                == "invalid chmod \"u+x\": only octal modes such as 755 are supported")
        #expect(buildError("COPY --chmod=0999 a b") != nil)
        #expect(buildError("COPY --keep-git-dir a b")?.message == "unknown flag: keep-git-dir")
        #expect(buildError("ADD --parents a b")?.message == "unknown flag: parents")
    }

    @Test func add() throws {
        #expect(
            try command("ADD --keep-git-dir=true --checksum=sha256:$NAME --chmod=0644 https://example.com/x.git /src")
                == .add(
                    Copy(
                        sources: ["https://example.com/x.git"], destination: "/src", chmod: "0644", keepGitDir: true,
                        checksum: "sha256:web")))
    }

    @Test func copyHeredocs() throws {
        #expect(
            try command("COPY <<EOF /etc/motd\nhello $NAME\nEOF")
                == .copy(
                    Copy(
                        sources: [], destination: "/etc/motd",
                        heredocs: [Heredoc(name: "EOF", content: "hello $NAME\n")])))
        #expect(
            try command("COPY <<A <<\"B\" /dir/\na\nA\nb\nB")
                == .copy(
                    Copy(
                        sources: [], destination: "/dir/",
                        heredocs: [
                            Heredoc(name: "A", content: "a\n"), Heredoc(name: "B", content: "b\n", expand: false),
                        ])))
        #expect(
            try command("COPY file <<-EOF /dir/\n\t\tbody\n\tEOF")
                == .copy(
                    Copy(
                        sources: ["file"], destination: "/dir/",
                        heredocs: [Heredoc(name: "EOF", content: "body\n", chomp: true)])))
    }

    @Test func backtickEscapeInCommands() throws {
        #expect(
            try command("COPY C:\\src `$DIR D:\\", escape: "`")
                == .copy(Copy(sources: ["C:\\src", "$DIR"], destination: "D:\\")))
        #expect(try command("ENV A=x` y", escape: "`") == .env([KeyValue(key: "A", value: "x y")]))
    }

    // MARK: - Errors carry the instruction's place

    @Test func errorsAreLocated() throws {
        let instruction = try self.instruction("\n\nUSER ${NAME:?no user}")
        #expect {
            _ = try instruction.command(file: "build/Dockerfile", escape: "\\", lookup: { _ in nil })
        } throws: { error in
            (error as? DockerfileError)?.description
                == "build/Dockerfile:4:1: failed to process \"${NAME:?no user}\": NAME: no user"
        }
    }
}
