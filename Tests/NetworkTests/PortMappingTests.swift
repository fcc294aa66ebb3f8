import Foundation
import Testing

@testable import Network

/// `-p` specs, each against what docker/cli (go-connections nat.ParsePortSpec) makes of it: the
/// same mappings, or the same error text where Docker refuses it too.
@Suite struct PortMappingTests {
    static let localhost = IPv4Address(127, 0, 0, 1)

    @Test(
        "Specs Docker accepts give Docker's mappings",
        arguments: [
            // docker run -p 80: an ephemeral host port on all addresses.
            ("80", [PortMapping(hostPort: 0, containerPort: 80)]),
            ("8080:80", [PortMapping(hostPort: 8080, containerPort: 80)]),
            ("8080:80/udp", [PortMapping(hostPort: 8080, containerPort: 80, proto: "udp")]),
            // Docker lowercases the protocol; an empty one is tcp.
            ("8080:80/UDP", [PortMapping(hostPort: 8080, containerPort: 80, proto: "udp")]),
            ("8080:80/", [PortMapping(hostPort: 8080, containerPort: 80)]),
            ("127.0.0.1:8080:80", [PortMapping(hostIP: localhost, hostPort: 8080, containerPort: 80)]),
            // An empty host port with an address: ephemeral on that address.
            ("127.0.0.1::80", [PortMapping(hostIP: localhost, hostPort: 0, containerPort: 80)]),
            ("127.0.0.1::80/udp", [PortMapping(hostIP: localhost, hostPort: 0, containerPort: 80, proto: "udp")]),
            // 0.0.0.0 is all addresses, as no address is.
            ("0.0.0.0:8080:80", [PortMapping(hostPort: 8080, containerPort: 80)]),
            // A host port of 0 is ephemeral too; leading zeros read as decimal (strconv.ParseUint).
            ("0:80", [PortMapping(hostPort: 0, containerPort: 80)]),
            ("08080:080", [PortMapping(hostPort: 8080, containerPort: 80)]),
            ("65535:65535", [PortMapping(hostPort: 65535, containerPort: 65535)]),
            // Ranges of equal length pair up in order.
            (
                "8000-8002:80-82/udp",
                [
                    PortMapping(hostPort: 8000, containerPort: 80, proto: "udp"),
                    PortMapping(hostPort: 8001, containerPort: 81, proto: "udp"),
                    PortMapping(hostPort: 8002, containerPort: 82, proto: "udp"),
                ]
            ),
            // A container range alone: an ephemeral host port each.
            ("80-81", [PortMapping(hostPort: 0, containerPort: 80), PortMapping(hostPort: 0, containerPort: 81)]),
            (
                "10.1.2.3::80-81",
                [
                    PortMapping(hostIP: IPv4Address(10, 1, 2, 3), hostPort: 0, containerPort: 80),
                    PortMapping(hostIP: IPv4Address(10, 1, 2, 3), hostPort: 0, containerPort: 81),
                ]
            ),
            // A host range for one container port: Docker picks a free port of the range.
            ("8000-8010:80", [PortMapping(hostPort: 8000, hostPortEnd: 8010, containerPort: 80)]),
            // A one-port range is a port.
            ("8000-8000:80-80", [PortMapping(hostPort: 8000, containerPort: 80)]),
        ])
    func dockerAcceptsTheseAndSoDoesBerth(spec: String, expected: [PortMapping]) throws {
        #expect(try PortMapping.parse(spec) == expected)
    }

    @Test(
        "Specs Docker refuses give Docker's error text",
        arguments: [
            ("", "no port specified: <empty>"),
            ("8080:", "no port specified: 8080:<empty>"),
            ("127.0.0.1:8080:", "no port specified: 127.0.0.1:8080:<empty>"),
            ("/udp", "no port specified: /udp<empty>"),
            ("abc", "invalid containerPort: abc"),
            ("8080:abc", "invalid containerPort: abc"),
            ("70000", "invalid containerPort: 70000"),
            ("8080:+80", "invalid containerPort: +80"),
            ("8080:-80", "invalid containerPort: -80"),
            ("8080:80-", "invalid containerPort: 80-"),
            ("8080:81-80", "invalid containerPort: 81-80"),
            ("abc:80", "invalid hostPort: abc"),
            ("70000:80", "invalid hostPort: 70000"),
            ("8001-8000:80", "invalid hostPort: 8001-8000"),
            ("8000-8001:80-82", "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"),
            ("8000:80-82", "invalid ranges specified for container and host Ports: 80-82 and 8000"),
            ("8080:80/icmp", "invalid proto: icmp"),
            ("1.2.3:8080:80", "invalid IP address: 1.2.3"),
            ("localhost:8080:80", "invalid IP address: localhost"),
            ("300.1.1.1:8080:80", "invalid IP address: 300.1.1.1"),
        ])
    func dockerRefusesTheseWithTheSameText(spec: String, message: String) {
        #expect(throws: PortMapping.Error(description: message)) { try PortMapping.parse(spec) }
    }

    /// Docker accepts these; berth says plainly that it does not publish them.
    @Test(
        "IPv6 host addresses and sctp are refused clearly",
        arguments: [
            ("[::]:8080:80", "IPv6 host addresses are not supported: :: (berth publishes on IPv4 only)"),
            ("[::1]::80", "IPv6 host addresses are not supported: ::1 (berth publishes on IPv4 only)"),
            ("::1:8080:80", "IPv6 host addresses are not supported: ::1 (berth publishes on IPv4 only)"),
            ("8080:80/sctp", "invalid proto: sctp (berth publishes tcp and udp ports only)"),
        ])
    func unsupportedButValidForDocker(spec: String, message: String) {
        #expect(throws: PortMapping.Error(description: message)) { try PortMapping.parse(spec) }
    }

    @Test func specTextAndJSONRoundTrip() throws {
        let mappings = try PortMapping.parse("127.0.0.1:8000-8010:80/udp") + PortMapping.parse("9090")
        #expect(mappings.map(\.spec) == ["127.0.0.1:8000-8010:80/udp", "0.0.0.0::9090/tcp"])
        let json = try JSONEncoder().encode(mappings)
        #expect(try JSONDecoder().decode([PortMapping].self, from: json) == mappings)
    }
}
