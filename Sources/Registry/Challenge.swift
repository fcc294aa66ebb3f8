/// What a registry's 401 asks for, from its WWW-Authenticate header.
enum Challenge: Equatable {
    case basic
    /// Docker's token flow: get a token from `realm` for `service` and a scope, then send it as a bearer.
    case bearer(realm: String, service: String?, scope: String?)

    /// Parses `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"` or
    /// `Basic realm="..."`; nil for anything else. Quoted values may hold commas
    /// (`scope="repository:a:pull,push"`).
    init?(header: String) {
        let scheme = header.prefix { $0 != " " }.lowercased()
        var parameters: [String: String] = [:]
        var rest = header.dropFirst(scheme.count)[...]
        while true {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = rest[..<equals].lowercased()
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let c = rest.first, c != "\"" {
                    if c == "\\", let next = rest.dropFirst().first {
                        value.append(next)
                        rest = rest.dropFirst(2)
                    } else {
                        value.append(c)
                        rest = rest.dropFirst()
                    }
                }
                rest = rest.dropFirst()
            } else {
                value = String(rest.prefix { $0 != "," })
                rest = rest.drop { $0 != "," }
            }
            parameters[key] = value
        }
        switch scheme {
        case "basic": self = .basic
        case "bearer":
            guard let realm = parameters["realm"], !realm.isEmpty else { return nil }
            self = .bearer(realm: realm, service: parameters["service"], scope: parameters["scope"])
        default: return nil
        }
    }
}
