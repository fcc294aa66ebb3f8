import Testing
import YAML

@testable import Compose

@Suite struct DependencyGraphTests {
    typealias Edge = DependencyGraph.Edge

    func mark(_ line: Int) -> Mark { Mark(file: "compose.yaml", line: line, column: 7) }

    @Test func independentServicesShareLevelZeroSortedByName() throws {
        let graph = DependencyGraph(services: ["web", "db", "cache"], edges: [])
        #expect(try graph.startLevels() == [["cache", "db", "web"]])
        #expect(try graph.teardownLevels() == [["cache", "db", "web"]])
    }

    @Test func noServicesNoLevels() throws {
        #expect(try DependencyGraph(services: [], edges: []).startLevels() == [])
    }

    @Test func chainStartsFromTheBottomAndStopsFromTheTop() throws {
        let graph = DependencyGraph(
            services: ["web", "api", "db"],
            edges: [
                Edge(from: "web", to: "api"), Edge(from: "api", to: "db"),
            ])
        #expect(try graph.startLevels() == [["db"], ["api"], ["web"]])
        #expect(try graph.teardownLevels() == [["web"], ["api"], ["db"]])
    }

    @Test func diamondPutsBothMiddlesOnOneLevel() throws {
        // top depends on left and right, which both depend on base.
        let graph = DependencyGraph(
            services: ["top", "right", "left", "base"],
            edges: [
                Edge(from: "top", to: "left"), Edge(from: "top", to: "right"),
                Edge(from: "left", to: "base"), Edge(from: "right", to: "base"),
            ])
        #expect(try graph.startLevels() == [["base"], ["left", "right"], ["top"]])
        #expect(try graph.teardownLevels() == [["top"], ["left", "right"], ["base"]])
        #expect(graph.dependencies(of: "top") == ["left", "right"])
        #expect(graph.dependencies(of: "base") == [])
    }

    @Test func levelIsTheLongestPathToALeaf() throws {
        // web needs db directly and through api, so it waits for api's level.
        let graph = DependencyGraph(
            services: ["web", "api", "db", "tool"],
            edges: [
                Edge(from: "web", to: "db"), Edge(from: "web", to: "api"), Edge(from: "api", to: "db"),
            ])
        #expect(try graph.startLevels() == [["db", "tool"], ["api"], ["web"]])
    }

    @Test func duplicateEdgesOfDifferentKindsCountOnce() throws {
        let graph = DependencyGraph(
            services: ["app", "db"],
            edges: [
                Edge(from: "app", to: "db", kind: .dependsOn), Edge(from: "app", to: "db", kind: .link),
                Edge(from: "app", to: "db", kind: .volumesFrom),
            ])
        #expect(try graph.startLevels() == [["db"], ["app"]])
        #expect(graph.dependencies(of: "app") == ["db"])
    }

    @Test func edgesToUnknownServicesAreIgnored() throws {
        let graph = DependencyGraph(
            services: ["app", "app"],
            edges: [
                Edge(from: "app", to: "ghost"), Edge(from: "ghost", to: "app"),
            ])
        #expect(try graph.startLevels() == [["app"]])
        #expect(graph.subgraph(["app", "ghost"]) == ["app"])
        #expect(graph.dependencies(of: "ghost") == [])
    }

    @Test func cycleNamesThePathAndTheClosingEdge() {
        let graph = DependencyGraph(
            services: ["a", "b", "c", "d"],
            edges: [
                Edge(from: "d", to: "a", mark: mark(1)),
                Edge(from: "a", to: "b", mark: mark(2)),
                Edge(from: "b", to: "c", mark: mark(3)),
                Edge(from: "c", to: "a", mark: mark(4)),
            ])
        let error = #expect(throws: ComposeError.self) { try graph.startLevels() }
        #expect(error?.message == "dependency cycle: a -> b -> c -> a")
        #expect(error?.mark == mark(4))
        #expect(error?.description == "compose.yaml:4:7: dependency cycle: a -> b -> c -> a")
        #expect(throws: ComposeError.self) { try graph.teardownLevels() }
    }

    @Test func cycleReachedFromOutsideIsReportedAlone() {
        // "entry" is stuck behind the cycle but is not part of it.
        let graph = DependencyGraph(
            services: ["entry", "x", "y", "free"],
            edges: [
                Edge(from: "entry", to: "y"), Edge(from: "y", to: "x", mark: mark(9)),
                Edge(from: "x", to: "y", mark: mark(8)),
            ])
        let error = #expect(throws: ComposeError.self) { try graph.startLevels() }
        #expect(error?.message == "dependency cycle: x -> y -> x")
        #expect(error?.mark == mark(9))
    }

    @Test func selfDependencyIsACycle() {
        let graph = DependencyGraph(
            services: ["solo"], edges: [Edge(from: "solo", to: "solo", kind: .dependsOn, mark: mark(3))])
        let error = #expect(throws: ComposeError.self) { try graph.startLevels() }
        #expect(error?.message == "dependency cycle: solo -> solo")
        #expect(error?.mark == mark(3))
    }

    @Test func cycleThroughAnotherKindSaysWhere() {
        let graph = DependencyGraph(
            services: ["a", "b"],
            edges: [
                Edge(from: "a", to: "b"), Edge(from: "b", to: "a", kind: .networkMode),
            ])
        let error = #expect(throws: ComposeError.self) { try graph.startLevels() }
        #expect(error?.message.hasPrefix("dependency cycle: a -> b -> a") == true)
        #expect(error?.message.contains("network_mode") == true)
    }

    @Test func subgraphWithAndWithoutDependencies() {
        let graph = DependencyGraph(
            services: ["web", "api", "db", "cache", "worker", "docs"],
            edges: [
                Edge(from: "web", to: "api"), Edge(from: "api", to: "db"), Edge(from: "api", to: "cache"),
                Edge(from: "worker", to: "db"),
            ])
        #expect(graph.subgraph(["web"]) == ["web", "api", "db", "cache"])
        #expect(graph.subgraph(["web"], includeDependencies: false) == ["web"])
        #expect(graph.subgraph(["api", "worker"]) == ["api", "db", "cache", "worker"])
        #expect(graph.subgraph(["docs"]) == ["docs"])
        #expect(graph.subgraph([]) == [])
    }

    @Test func subgraphTerminatesOnCycles() {
        let graph = DependencyGraph(
            services: ["a", "b", "c"], edges: [Edge(from: "a", to: "b"), Edge(from: "b", to: "a")])
        #expect(graph.subgraph(["a"]) == ["a", "b"])
    }

    @Test func largeChainStaysFast() throws {
        // 20,000 services in one chain plus a fan-in: linear algorithms finish at once.
        let names = (0..<20_000).map { "s\($0)" }
        var edges = (1..<names.count).map { Edge(from: names[$0], to: names[$0 - 1]) }
        edges += (1..<names.count).map { Edge(from: "hub", to: names[$0]) }
        let graph = DependencyGraph(services: names + ["hub"], edges: edges)
        let levels = try graph.startLevels()
        #expect(levels.count == names.count + 1)
        #expect(levels.last == ["hub"])
        #expect(graph.subgraph(["s19999"]).count == names.count)
    }
}
