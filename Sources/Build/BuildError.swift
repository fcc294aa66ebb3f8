#if canImport(Glibc)
    import Glibc
#endif

/// What stopped a build, and where: the step as the progress shows it ("[build 3/6] RUN make"),
/// the Dockerfile position, what was being done and the errno or the command's exit status.
///
///     Dockerfile:7:1: [build 3/6] RUN make: exit code 2
///     make: *** No rule to make target 'al'.  Stop.
public struct BuildError: Error, CustomStringConvertible, Sendable {
    /// "Dockerfile:7:1", when the failure belongs to an instruction.
    public var location: String?
    /// The step as displayed.
    public var step: String?
    public var message: String
    /// A failing RUN's exit status.
    public var exitCode: Int32?
    /// A failing RUN's last lines of output, oldest first.
    public var lastOutput: [String]

    public init(
        location: String? = nil, step: String? = nil, message: String, exitCode: Int32? = nil,
        lastOutput: [String] = []
    ) {
        self.location = location
        self.step = step
        self.message = message
        self.exitCode = exitCode
        self.lastOutput = lastOutput
    }

    /// `what` failed with `err` (an errno): "copy app/main.c: Permission denied".
    init(_ what: String, errno err: Int32) {
        self.init(message: "\(what): \(String(cString: strerror(err)))")
    }

    public var description: String {
        var text = [location, step].compactMap { $0 }.joined(separator: ": ")
        text += text.isEmpty ? message : ": " + message
        if !lastOutput.isEmpty { text += "\n" + lastOutput.joined(separator: "\n") }
        return text
    }

    /// The same failure placed at a step (kept when it has a place already).
    func at(_ location: String, step: String) -> BuildError {
        var placed = self
        if placed.location == nil { placed.location = location }
        if placed.step == nil { placed.step = step }
        return placed
    }
}
