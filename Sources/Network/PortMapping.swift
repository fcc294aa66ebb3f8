import CNetlink

/// One published port: `-p [HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTO]`, one value per
/// container port of a range.
///
/// Parsed as docker/cli hands `-p` to go-connections' nat.ParsePortSpec, with its error texts,
/// except where berth publishes less than Docker: IPv4 host addresses only (an IPv6 one, `[::]`
/// included, is refused), and tcp and udp only (sctp is refused here rather than accepted and
/// then not served).
public struct PortMapping: Codable, Equatable, Sendable {
    /// The host address to listen on; nil for all of them (0.0.0.0).
    public var hostIP: IPv4Address?
    /// 0 for an ephemeral port, chosen by the kernel when the port is bound.
    public var hostPort: UInt16
    /// The end of a host range to choose from, for one container port (`-p 8000-8010:80`): the
    /// first free port of hostPort...hostPortEnd is taken when bound. nil for one port.
    public var hostPortEnd: UInt16?
    public var containerPort: UInt16
    /// "tcp" or "udp".
    public var proto: String

    public init(
        hostIP: IPv4Address? = nil, hostPort: UInt16, hostPortEnd: UInt16? = nil, containerPort: UInt16,
        proto: String = "tcp"
    ) {
        self.hostIP = hostIP
        self.hostPort = hostPort
        self.hostPortEnd = hostPortEnd
        self.containerPort = containerPort
        self.proto = proto
    }

    /// A spec that does not parse; the text is Docker's where Docker refuses it too.
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Docker's `-p 127.0.0.1:8080:80/tcp`-style text (a range as `8000-8010`).
    public var spec: String {
        let host = hostPortEnd.map { "\(hostPort)-\($0)" } ?? (hostPort == 0 ? "" : "\(hostPort)")
        return "\(hostIP?.description ?? "0.0.0.0"):\(host):\(containerPort)/\(proto)"
    }

    /// The mappings of one `-p` value, in container port order.
    public static func parse(_ spec: String) throws -> [PortMapping] {
        // nat.splitParts: the container port is after the last colon, the host port before it,
        // and whatever precedes those (colons and all) is the address.
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var ip = parts.count > 2 ? parts[0..<(parts.count - 2)].joined(separator: ":") : ""
        let hostPort = parts.count > 1 ? parts[parts.count - 2] : ""
        let (proto, containerPort) = splitProto(parts[parts.count - 1])

        if ip.hasPrefix("[") {
            guard ip.hasSuffix("]") else {
                throw Error(description: "invalid IP address \(ip): missing ']' in address")
            }
            ip = String(ip.dropFirst().dropLast())
        }
        var hostIP: IPv4Address?
        if !ip.isEmpty {
            if ip.contains(":") {
                throw Error(description: "IPv6 host addresses are not supported: \(ip) (berth publishes on IPv4 only)")
            }
            guard let address = IPv4Address(ip) else { throw Error(description: "invalid IP address: \(ip)") }
            // 0.0.0.0 is "all addresses", as no address is.
            hostIP = address == IPv4Address(0, 0, 0, 0) ? nil : address
        }
        guard !containerPort.isEmpty else { throw Error(description: "no port specified: \(spec)<empty>") }
        guard let container = portRange(containerPort), container.lowerBound > 0 else {
            throw Error(description: "invalid containerPort: \(containerPort)")
        }
        var host: ClosedRange<UInt16>?
        if !hostPort.isEmpty {
            guard let range = portRange(hostPort) else { throw Error(description: "invalid hostPort: \(hostPort)") }
            host = range
        }
        // A host range for a single container port is a range to choose from; otherwise the
        // lengths must match.
        if let host, host.count != container.count, container.count != 1 {
            throw Error(
                description: "invalid ranges specified for container and host Ports: \(containerPort) and \(hostPort)")
        }
        let lowered = proto.lowercased()
        if lowered == "sctp" {
            throw Error(description: "invalid proto: \(proto) (berth publishes tcp and udp ports only)")
        }
        guard lowered == "tcp" || lowered == "udp" else { throw Error(description: "invalid proto: \(proto)") }

        if let host, container.count == 1, host.count > 1 {
            return [
                PortMapping(
                    hostIP: hostIP, hostPort: host.lowerBound, hostPortEnd: host.upperBound,
                    containerPort: container.lowerBound, proto: lowered)
            ]
        }
        return container.enumerated().map { offset, port in
            PortMapping(
                hostIP: hostIP, hostPort: host.map { $0.lowerBound + UInt16(offset) } ?? 0, containerPort: port,
                proto: lowered)
        }
    }

    /// nat.SplitProtoPort: "80/udp" is ("udp", "80"); no protocol, or an empty one, is tcp.
    private static func splitProto(_ text: String) -> (String, String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !text.isEmpty, !parts[0].isEmpty else { return ("", "") }
        if parts.count == 1 || parts[1].isEmpty { return ("tcp", parts[0]) }
        return (parts[1], parts[0])
    }

    /// nat.ParsePortRange: "80" or "8000-8010" (decimal, 0...65535, start <= end); nil otherwise.
    private static func portRange(_ text: String) -> ClosedRange<UInt16>? {
        func port(_ s: Substring) -> UInt16? {
            guard !s.isEmpty, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return UInt16(s)
        }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count <= 2, let start = port(parts[0]) else { return nil }
        guard parts.count == 2 else { return start...start }
        guard let end = port(parts[1]), start <= end else { return nil }
        return start...end
    }
}
