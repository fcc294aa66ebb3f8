/// A project-level failure, in words a person can act on: which service or container, what was
/// being done, and why (the runtime's or network's own error, with its step and errno, is kept
/// in the text). The CLI prints it after "berth: " and exits 1.
public struct OrchestratorError: Error, CustomStringConvertible, Equatable {
    public var description: String
    /// Docker compose's exit status for it (1 for most problems).
    public var status: Int32

    public init(_ description: String, status: Int32 = 1) {
        self.description = description
        self.status = status
    }

    static func noSuchService(_ name: String) -> OrchestratorError { OrchestratorError("no such service: \(name)") }
}
