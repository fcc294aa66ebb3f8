/// A here-document of RUN, COPY or ADD (`<<EOF` ... `EOF`).
public struct Heredoc: Equatable, Sendable {
    /// The delimiter word without its quotes, e.g. "EOF".
    public var name: String
    /// The body, each line followed by "\n" as written (for `<<-` without its leading tabs).
    public var content: String
    /// True when the delimiter was unquoted: the body is then subject to expansion (by the shell
    /// for RUN, by the builder for COPY/ADD); `<<"EOF"` and `<<'EOF'` keep it literal.
    public var expand: Bool
    /// `<<-EOF`: leading tabs were removed from the body lines and from the delimiter line.
    public var chomp: Bool

    public init(name: String, content: String, expand: Bool = true, chomp: Bool = false) {
        self.name = name
        self.content = content
        self.expand = expand
        self.chomp = chomp
    }
}

/// A command as RUN, CMD, ENTRYPOINT and HEALTHCHECK write it: the JSON form (`["a", "b"]`, run
/// as is) or the shell form (text handed to the stage's SHELL).
public enum CommandLine: Equatable, Sendable {
    case exec([String])
    case shell(String)
}

/// One instruction as written: keyword, flags and argument text, nothing substituted yet. Typing
/// it (`command(escape:lookup:)`) needs the variables in scope, which only the builder knows.
public struct Instruction: Equatable, Sendable {
    /// Upper-cased: "RUN".
    public var keyword: String
    /// Where the keyword is.
    public var position: SourcePosition
    /// The instruction as written, continuation lines joined (Docker's Node.Original): what
    /// history and step display show.
    public var original: String
    /// The leading `--name=value` / `--name` words, quotes removed, not substituted.
    public var flags: [String]
    /// The rest after the flags, continuation lines joined, not substituted.
    public var arguments: String
    /// Bodies of the here-documents the line opened (RUN, COPY and ADD only), in order.
    public var heredocs: [Heredoc]

    public init(
        keyword: String, position: SourcePosition, original: String, flags: [String] = [], arguments: String,
        heredocs: [Heredoc] = []
    ) {
        self.keyword = keyword
        self.position = position
        self.original = original
        self.flags = flags
        self.arguments = arguments
        self.heredocs = heredocs
    }
}

/// A build stage: a FROM and what follows it up to the next FROM.
public struct Stage: Equatable, Sendable {
    public var index: Int
    /// The `AS` name, lower-cased as Docker does.
    public var name: String?
    public var from: Instruction
    public var instructions: [Instruction]

    public init(index: Int, name: String?, from: Instruction, instructions: [Instruction]) {
        self.index = index
        self.name = name
        self.from = from
        self.instructions = instructions
    }
}

/// A parsed Dockerfile: its parser directives, the ARGs before the first FROM, and its stages.
public struct Dockerfile: Equatable, Sendable {
    public var path: String
    /// "\\" or "`" (`# escape=`): escapes in arguments and the line-continuation character.
    public var escape: Character
    /// `# syntax=`: recorded, otherwise ignored (berth has one frontend).
    public var syntax: String?
    /// `# check=`: recorded, otherwise ignored.
    public var check: String?
    /// ARG instructions before the first FROM; they are in scope for every FROM line.
    public var globalArgs: [Instruction]
    public var stages: [Stage]

    public init(
        path: String, escape: Character = "\\", syntax: String? = nil, check: String? = nil,
        globalArgs: [Instruction] = [], stages: [Stage]
    ) {
        self.path = path
        self.escape = escape
        self.syntax = syntax
        self.check = check
        self.globalArgs = globalArgs
        self.stages = stages
    }
}
