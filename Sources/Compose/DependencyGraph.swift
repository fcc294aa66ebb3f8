import YAML

/// Which services must start before which: built by the loader from `depends_on`, `links`,
/// `network_mode: service:X` and `volumes_from`, used to order `up` (level by level, services of one
/// level in parallel) and `down` (the reverse).
///
/// Every algorithm here is linear in services + edges, plus sorting names.
/// Edges that name a service not in `services` are ignored: reporting them is the loader's job.
public struct DependencyGraph {
    public struct Edge: Hashable {
        public enum Kind: String {
            case dependsOn = "depends_on"
            case link = "links"
            case networkMode = "network_mode"
            case volumesFrom = "volumes_from"
        }

        /// `from` depends on `to`: `to` starts first.
        public var from: String
        public var to: String
        public var kind: Kind
        /// Where the edge was written (for a cycle error).
        public var mark: Mark?

        public init(from: String, to: String, kind: Kind = .dependsOn, mark: Mark? = nil) {
            self.from = from
            self.to = to
            self.kind = kind
            self.mark = mark
        }
    }

    public let services: [String]
    public let edges: [Edge]

    /// Service name -> index into `names`.
    private let index: [String: Int]
    private let names: [String]
    /// For each service, the indices of its distinct dependencies, sorted by name.
    private let dependencyIndices: [[Int]]
    /// For each service, the indices of the distinct services that depend on it.
    private let dependentIndices: [[Int]]

    public init(services: [String], edges: [Edge]) {
        self.services = services
        self.edges = edges
        var index: [String: Int] = [:]
        var names: [String] = []
        for name in services where index[name] == nil {
            index[name] = names.count
            names.append(name)
        }
        var dependencies = Array(repeating: [Int](), count: names.count)
        for edge in edges {
            guard let from = index[edge.from], let to = index[edge.to] else { continue }
            dependencies[from].append(to)
        }
        // Sort each list by name and drop repeats (one pair may come from depends_on and links).
        var dependents = Array(repeating: [Int](), count: names.count)
        for from in dependencies.indices where !dependencies[from].isEmpty {
            dependencies[from].sort { names[$0] < names[$1] }
            var unique: [Int] = []
            for to in dependencies[from] where unique.last != to {
                unique.append(to)
                dependents[to].append(from)
            }
            dependencies[from] = unique
        }
        self.index = index
        self.names = names
        self.dependencyIndices = dependencies
        self.dependentIndices = dependents
    }

    /// The direct dependencies of a service, sorted by name (empty for an unknown name).
    public func dependencies(of service: String) -> [String] {
        guard let i = index[service] else { return [] }
        return dependencyIndices[i].map { names[$0] }
    }

    /// Start order: level 0 holds the services that depend on nothing, level n those whose
    /// dependencies are all in earlier levels. Each level is sorted by name.
    /// Throws `dependency cycle: a -> b -> a` when the services cannot be ordered.
    public func startLevels() throws -> [[String]] {
        // Kahn's algorithm, one level per round.
        var waitingOn = dependencyIndices.map(\.count)
        var level = names.indices.filter { waitingOn[$0] == 0 }
        var levels: [[String]] = []
        var placed = 0
        while !level.isEmpty {
            placed += level.count
            levels.append(level.map { names[$0] }.sorted())
            var next: [Int] = []
            for service in level {
                for dependent in dependentIndices[service] {
                    waitingOn[dependent] -= 1
                    if waitingOn[dependent] == 0 { next.append(dependent) }
                }
            }
            level = next
        }
        if placed < names.count {
            throw cycleError(unplaced: waitingOn)
        }
        return levels
    }

    /// Stop order: the start levels reversed, so a service stops before what it depends on.
    public func teardownLevels() throws -> [[String]] {
        try startLevels().reversed()
    }

    /// The named services (unknown names are dropped) and, with `includeDependencies`, everything
    /// they depend on, transitively: what `up web` has to start.
    public func subgraph(_ roots: [String], includeDependencies: Bool = true) -> Set<String> {
        var visited = Array(repeating: false, count: names.count)
        var stack = roots.compactMap { index[$0] }
        var result = Set<String>()
        while let i = stack.popLast() {
            guard !visited[i] else { continue }
            visited[i] = true
            result.insert(names[i])
            if includeDependencies { stack.append(contentsOf: dependencyIndices[i]) }
        }
        return result
    }

    /// Every service Kahn's algorithm could not place still waits on another unplaced one, so
    /// following dependencies among them from any of them must come back to a service already
    /// seen: that loop is the cycle to report.
    private func cycleError(unplaced waitingOn: [Int]) -> ComposeError {
        let stuck = waitingOn.map { $0 > 0 }
        let start = names.indices.filter { stuck[$0] }.min { names[$0] < names[$1] }!
        var positionInPath: [Int: Int] = [:]
        var path: [Int] = []
        var current = start
        while positionInPath[current] == nil {
            positionInPath[current] = path.count
            path.append(current)
            current = dependencyIndices[current].first { stuck[$0] }!
        }
        var cycle = Array(path[positionInPath[current]!...])
        // Start the report at the smallest name, so the same cycle always reads the same way.
        let smallest = cycle.indices.min { names[cycle[$0]] < names[cycle[$1]] }!
        cycle = Array(cycle[smallest...] + cycle[..<smallest])
        let closingFrom = names[cycle.last!]
        let closingTo = names[cycle[0]]
        let closing =
            edges.first { $0.from == closingFrom && $0.to == closingTo && $0.mark != nil }
            ?? edges.first { $0.from == closingFrom && $0.to == closingTo }
        let route = (cycle + [cycle[0]]).map { names[$0] }.joined(separator: " -> ")
        var message = "dependency cycle: \(route)"
        if let kind = closing?.kind, kind != .dependsOn {
            message += " (the last step comes from \(kind.rawValue))"
        }
        return ComposeError(message, at: closing?.mark)
    }
}
