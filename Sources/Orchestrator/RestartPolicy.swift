/// A service's restart policy, as Docker applies it to a container that exits by itself (never to
/// one a person stopped): compose's `restart:` or `deploy.restart_policy`.
public enum RestartPolicy: Codable, Equatable, Sendable {
    case no
    case always
    case unlessStopped
    /// `maxRetries` nil or 0: no limit.
    case onFailure(maxRetries: Int?)

    /// `no`, `always`, `unless-stopped`, `on-failure[:N]`, as Docker parses them.
    public init(parsing text: String) throws {
        switch text {
        case "", "no": self = .no
        case "always": self = .always
        case "unless-stopped": self = .unlessStopped
        case "on-failure": self = .onFailure(maxRetries: nil)
        default:
            guard text.hasPrefix("on-failure:"), let n = Int(text.dropFirst("on-failure:".count)), n >= 0 else {
                throw OrchestratorError(
                    "invalid restart policy \"\(text)\": use no, always, unless-stopped or on-failure[:N]")
            }
            self = .onFailure(maxRetries: n)
        }
    }

    /// Swarm's `deploy.restart_policy` (condition none|on-failure|any, max_attempts), which
    /// docker compose maps onto a container's policy when `restart:` is not given.
    public init(condition: String?, maxAttempts: UInt64?) {
        switch condition {
        case "none": self = .no
        case "on-failure": self = .onFailure(maxRetries: maxAttempts.map { Int(clamping: $0) })
        default: self = .always
        }
    }

    /// Whether a container that exited with `code` after `restarts` restarts goes again.
    public func restarts(exitCode code: Int32, restarts: Int) -> Bool {
        switch self {
        case .no: return false
        case .always, .unlessStopped: return true
        case .onFailure(let max):
            guard code != 0 else { return false }
            guard let max, max > 0 else { return true }
            return restarts < max
        }
    }

    /// Docker's delay before restart number `n` (0-based): 100 ms doubling, at most a minute; the
    /// count starts again once a run lasted 10 s (`RestartBackoff`).
    public static func delay(afterRestarts n: Int) -> Double {
        min(0.1 * Double(1 << min(n, 20)), 60)
    }
}
