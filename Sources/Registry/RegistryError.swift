/// What went wrong talking to a registry, each as one line a person can act on.
public enum RegistryError: Swift.Error, CustomStringConvertible, Equatable {
    /// libcurl could not be loaded or set up.
    case library(String)
    /// Not a host[:port].
    case invalidName(String)
    /// No HTTP answer: the registry, what was being done, and curl's reason.
    case unreachable(registry: String, String)
    /// An answer berth will not follow or could not take (a redirect to file://, a redirect loop,
    /// a transfer it stopped itself): not retried.
    case transfer(registry: String, String)
    /// The registry's TLS certificate is not trusted.
    case certificate(registry: String, String)
    /// Credentials were refused (or are needed): what was asked, and the registry's words.
    case unauthorized(String, String)
    /// The registry answered with an error: what was asked, the HTTP status and its message.
    case response(String, status: Int, String)
    /// The token service answered with something that is not a token.
    case badToken(String)
    /// Content did not match its digest or announced size.
    case digestMismatch(what: String, expected: String, actual: String)
    case tooLarge(String, limit: Int64)
    /// A blob of another size than its descriptor says.
    case sizeMismatch(String, expected: Int64, actual: Int64)
    /// A file berth reads or writes (the credentials file, a download) could not be used.
    case file(String, String)

    public var description: String {
        switch self {
        case .library(let reason): return reason
        case .invalidName(let name): return "invalid registry name \"\(name)\": expected HOST[:PORT]"
        case .unreachable(let registry, let reason):
            return "cannot reach registry \(registry): \(reason)"
        case .transfer(let registry, let reason):
            return "registry \(registry): \(reason)"
        case .certificate(let registry, let reason):
            return "registry \(registry) has an untrusted TLS certificate (\(reason)); trust its CA by putting it in "
                + "/etc/docker/certs.d/\(registry)/ca.crt"
        case .unauthorized(let what, let message):
            return "\(what): unauthorized: \(message)"
        case .response(let what, let status, let message):
            return "\(what): \(message) (HTTP \(status))"
        case .badToken(let reason): return "the registry's token service: \(reason)"
        case .digestMismatch(let what, let expected, let actual):
            return "\(what) has digest \(actual) but \(expected) was expected; the content is damaged"
        case .sizeMismatch(let what, let expected, let actual):
            return "\(what) has \(actual) bytes but its descriptor says \(expected); the content is damaged"
        case .tooLarge(let what, let limit):
            return "\(what) is larger than \(limit) bytes"
        case .file(let path, let reason): return "\(path): \(reason)"
        }
    }
}
