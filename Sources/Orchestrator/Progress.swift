/// What the orchestrator tells its caller as it goes: one event per resource and step, as docker
/// compose's progress lines (`Network webstack_default  Created`, `Container webstack-db-1
/// Healthy`). The CLI renders them (a terminal's live lines, plain lines, JSON, or nothing).
public struct ProgressEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case network = "Network"
        case volume = "Volume"
        case container = "Container"
        case image = "Image"
    }
    public var kind: Kind
    public var name: String
    /// "Creating", "Created", "Starting", "Started", "Waiting", "Healthy", "Exited", "Stopping",
    /// "Stopped", "Removing", "Removed", "Recreate", "Recreated", "Running", "Pulling", "Pulled",
    /// "Error" (docker compose's words).
    public var status: String
    /// Done (✔), going on, or failed.
    public var state: State
    public enum State: Sendable { case working, done, failed }
    public var detail: String?

    public init(_ kind: Kind, _ name: String, _ status: String, _ state: State = .done, detail: String? = nil) {
        self.kind = kind
        self.name = name
        self.status = status
        self.state = state
        self.detail = detail
    }
}

/// The caller's sink for events; called from several threads (a level's services start in
/// parallel), so it must be thread-safe.
public typealias ProgressSink = @Sendable (ProgressEvent) -> Void
