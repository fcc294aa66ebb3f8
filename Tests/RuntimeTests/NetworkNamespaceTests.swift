import Foundation
import Testing

@testable import Runtime

/// The default network (and `none`) is a namespace of the container's own with only `lo`, up —
/// whether the clone makes it, create() makes it beforehand, or the caller hands one in — and
/// host mode shares the host's.
@Suite struct NetworkNamespaceTests {
    static let probe = ["sh", "-c", "readlink /proc/self/ns/net; ls /sys/class/net; cat /sys/class/net/lo/flags"]

    func output(_ f: RuntimeFixture, _ container: Container) throws -> (code: Int32, lines: [String]) {
        defer { try? container.remove(force: true) }
        let process = try container.start(stdio: .pipes(stdin: false))
        let code = process.wait()
        let text = ContainerLogReader.entries(path: container.logPath).map(\.log).joined()
        return (code, text.split(separator: "\n").map(String.init))
    }

    /// How /proc/PID/ns/net reads for the namespace open on `fd`: its inode names it.
    static func name(ofNamespace fd: Int32) throws -> String {
        var st = stat()
        try #require(fstat(fd, &st) == 0)
        return "net:[\(st.st_ino)]"
    }

    @Test func defaultNetworkIsIsolatedWithLoopbackUpHowEverItIsMade() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let host = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        // The caller's namespace, known by its inode: the container must be in that very one.
        guard let callers = NetworkNamespace.make() else {
            Issue.record("no network namespace: \(String(cString: strerror(errno)))")
            return
        }
        let callersName = try Self.name(ofNamespace: callers.rawValue)
        var none = f.spec(Self.probe)
        none.network = .none
        let made = [
            try Container.create(spec: f.spec(Self.probe), root: f.root),  // by the clone
            try Container.create(spec: f.spec(Self.probe), root: f.root, startingNow: true),  // by create()
            try Container.create(
                spec: f.spec(Self.probe), root: f.root, startingNow: true,
                networkNamespace: consume callers),  // by the caller
            try Container.create(spec: none, root: f.root, startingNow: true),  // `none`, alike
        ]
        var namespaces: [String] = []
        for container in made {
            let run = try output(f, container)
            #expect(run.code == 0)
            #expect(run.lines.count == 3)
            guard run.lines.count == 3 else { continue }
            #expect(run.lines[0].hasPrefix("net:[") && run.lines[0] != host)
            #expect(run.lines[1] == "lo")
            // IFF_UP | IFF_LOOPBACK
            #expect(run.lines[2] == "0x9")
            namespaces.append(run.lines[0])
        }
        #expect(namespaces.count == made.count && Set(namespaces).count == made.count, "\(namespaces)")
        #expect(namespaces.count > 2 && namespaces[2] == callersName, "the caller's namespace was not the one used")
        #expect(RuntimeFixture.leftovers(id: made[0].id, root: f.root).isEmpty)
    }

    /// config.json of containers made before the modes had Docker's names: `none` was berth's
    /// default then, and reads back as `none` (the same namespace, loopback only).
    @Test func recordsOfEarlierModesStillRead() throws {
        let decoder = JSONDecoder()
        for (json, mode) in [
            (#"{"none":{}}"#, NetworkMode.none), (#"{"host":{}}"#, .host),
            (#"{"namespace":{"path":"/run/netns/x"}}"#, .namespace(path: "/run/netns/x")),
        ] {
            #expect(try decoder.decode(NetworkMode.self, from: Data(json.utf8)) == mode)
        }
        for mode in [NetworkMode.none, .host, .default, .container(id: "abc"), .namespace(path: "/x")] {
            #expect(try decoder.decode(NetworkMode.self, from: JSONEncoder().encode(mode)) == mode)
        }
        // A spec written without the fields added since (exposed ports) reads too.
        let current = try JSONEncoder().encode(ContainerSpec(image: "x", layerPaths: []))
        var written = try #require(try JSONSerialization.jsonObject(with: current) as? [String: Any])
        written["network"] = ["none": [String: Any]()]
        written["exposedPorts"] = nil
        let old = try decoder.decode(ContainerSpec.self, from: JSONSerialization.data(withJSONObject: written))
        #expect(old.network == .none && old.exposedPorts == nil)
    }

    @Test func hostNetworkSharesTheHostsNamespace() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var spec = f.spec(["readlink", "/proc/self/ns/net"])
        spec.network = .host
        // A namespace handed in for a host-network container is closed, not used.
        let container = try Container.create(
            spec: spec, root: f.root, startingNow: true,
            networkNamespace: NetworkNamespace.make())
        let run = try output(f, container)
        #expect(run.code == 0)
        #expect(run.lines == [try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")])
    }
}
