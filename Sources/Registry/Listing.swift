import FoundationEssentials
import Support

extension RegistryClient {
    /// Every tag of a repository, following the registry's pagination (`Link: <...>; rel="next"`).
    public func tags(_ repository: String) throws -> [String] {
        struct Page: Decodable { var tags: [String]? }
        return try paginated("/v2/\(repository)/tags/list", scope: Self.pullScope(repository)) { data in
            try JSONDecoder().decode(Page.self, from: data).tags ?? []
        }
    }

    /// Every repository of the registry (`/v2/_catalog`), for `search` on private registries.
    public func catalog() throws -> [String] {
        struct Page: Decodable { var repositories: [String]? }
        return try paginated("/v2/_catalog", scope: Self.catalogScope) { data in
            try JSONDecoder().decode(Page.self, from: data).repositories ?? []
        }
    }

    /// A registry's list, page by page; a page that links back to one already read, more than
    /// `pageLimit` pages or more than `itemLimit` names is the registry's fault, not a reason to go
    /// on (and grow) for ever.
    private func paginated(_ first: String, scope: String, _ items: (Data) throws -> [String]) throws -> [String] {
        var all: [String] = []
        var next: String? = first
        var seen = Set<String>()
        while let path = next {
            guard seen.insert(path).inserted, seen.count <= Self.pageLimit, all.count <= Self.itemLimit else {
                throw RegistryError.response(
                    "\(registry.name)\(first)", status: 200, "its pages do not end (a loop, or over the limits)")
            }
            let (response, data) = try document(path, scope: scope, what: "\(registry.name)\(first)")
            do { all += try items(data) } catch {
                throw RegistryError.response("\(registry.name)\(first)", status: response.status, "not a JSON list")
            }
            next = response.header("link").flatMap(Self.nextLink)
        }
        return all
    }

    static let pageLimit = 10_000
    static let itemLimit = 1_000_000

    /// The target of `<...>; rel="next"`.
    static func nextLink(_ header: String) -> String? {
        guard header.contains("rel=\"next\""), let open = header.firstIndex(of: "<"),
            let close = header[open...].firstIndex(of: ">")
        else { return nil }
        return String(header[header.index(after: open)..<close])
    }
}

/// One answer of `berth search`.
public struct SearchResult: Decodable, Sendable {
    public var name: String
    public var description: String?
    public var starCount: Int?
    public var isOfficial: Bool?

    enum CodingKeys: String, CodingKey {
        case name
        case description
        case starCount = "star_count"
        case isOfficial = "is_official"
    }

    public init(name: String) { self.name = name }
}

extension RegistryClient {
    /// Docker Hub's search API (`/v1/search` on index.docker.io), as `docker search` uses.
    public static func searchDockerHub(_ term: String, limit: Int, root: String) throws -> [SearchResult] {
        let connection = try HTTPConnection(tls: try Registry("index.docker.io", root: root).tlsSettings())
        let url = "https://index.docker.io/v1/search?q=\(percentEncoded(term))&n=\(limit)"
        var data = Data()
        let response: HTTPResponse
        do {
            response = try connection.perform("GET", url) { bytes in
                data.append(contentsOf: bytes)
                return data.count <= Int(documentLimit)
            }
        } catch let failure {
            throw RegistryError.unreachable(registry: "index.docker.io", failure.message)
        }
        guard response.isSuccess else {
            throw RegistryError.response("search on Docker Hub", status: response.status, statusText(response.status))
        }
        struct Answer: Decodable { var results: [SearchResult] }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: data) else {
            throw RegistryError.response("search on Docker Hub", status: response.status, "not a search answer")
        }
        return answer.results
    }
}
