import YAML

/// A problem in a compose project a person can act on: where it is (file:line:column), which key
/// (a dotted path such as `services.web.ports[0]`), and what is wrong.
///
/// `description` is `file:line:col: key.path: message`, leaving out the parts that are absent.
public struct ComposeError: Error, CustomStringConvertible, Equatable, Sendable {
    public var mark: Mark?
    public var keyPath: String?
    public var message: String

    public init(_ message: String, at mark: Mark? = nil, key keyPath: String? = nil) {
        self.message = message
        self.mark = mark
        self.keyPath = keyPath
    }

    public var description: String {
        var parts: [String] = []
        if let mark { parts.append(mark.description) }
        if let keyPath, !keyPath.isEmpty { parts.append(keyPath) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }
}
