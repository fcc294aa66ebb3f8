import Foundation
import TestSupport
import Testing

/// Bridge networks, names and published ports end to end, as a user types them: real bridges,
/// veths, nftables rules and the embedded DNS server (berth-netd). Root; each test has its own
/// BERTH_ROOT (ContainerCLITests.World), its own names, and removes what it made. Traffic goes
/// only to loopback, to the host's own address, and to containers the test made.
@Suite(.serialized) struct NetworkCLITests {
    typealias World = ContainerCLITests.World

    /// `sh -c SCRIPT` with BERTH, BERTH_ROOT and OUT set; fails the test with its stderr when the
    /// script fails.
    @discardableResult
    static func sh(_ script: String, _ world: World, expect status: Int32 = 0) throws -> String {
        let result = try LifecycleCLITests.shell("set -eu\n" + prelude + script, world: world)
        #expect(result.status == status, "\(script)\n\(result.stderr)")
        return result.stdout
    }

    /// For the scripts: `fetch HOST PORT` prints the last line of an HTTP answer, asking again
    /// (5 s at most) until a server that was just started answers; the same function is in
    /// $FETCH for a container's shell. `nc` is busybox's on the host too.
    static let prelude = #"""
        FETCH='fetch() { i=0; while [ $i -lt 100 ]; do out=$(printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 "$1" "$2" 2>/dev/null | tail -1); [ -n "$out" ] && { echo "$out"; return 0; }; i=$((i+1)); sleep 0.05; done; echo unanswered; return 1; }'
        eval "$FETCH"
        nc() { busybox nc "$@"; }

        """#

    /// A tiny static UDP program (busybox has no UDP server): `udp serve PORT` answers each
    /// datagram with "got-" and it; `udp ask ADDRESS PORT TEXT` prints the answer (2 s at most).
    static func buildUDPProgram(_ world: World) throws -> String {
        let source = world.dir.path + "/udp.c"
        try """
        #include <arpa/inet.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/socket.h>
        #include <sys/time.h>
        int main(int argc, char **argv) {
            int s = socket(AF_INET, SOCK_DGRAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET};
            char buf[512];
            if (argc == 3 && strcmp(argv[1], "serve") == 0) {
                a.sin_port = htons(atoi(argv[2]));
                if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) return 1;
                for (;;) {
                    struct sockaddr_in from; socklen_t len = sizeof from;
                    ssize_t n = recvfrom(s, buf + 4, sizeof buf - 4, 0, (struct sockaddr *)&from, &len);
                    if (n < 0) continue;
                    memcpy(buf, "got-", 4);
                    sendto(s, buf, n + 4, 0, (struct sockaddr *)&from, len);
                }
            }
            if (argc != 5) return 2;
            a.sin_port = htons(atoi(argv[3]));
            inet_pton(AF_INET, argv[2], &a.sin_addr);
            struct timeval t = {2, 0};
            setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
            sendto(s, argv[4], strlen(argv[4]), 0, (struct sockaddr *)&a, sizeof a);
            ssize_t n = recv(s, buf, sizeof buf - 1, 0);
            if (n < 0) return 3;
            buf[n] = 0;
            printf("%s\\n", buf);
            return 0;
        }
        """.write(toFile: source, atomically: false, encoding: .utf8)
        try sh("cc -static -O1 -o \"$OUT/udp\" \"$OUT/udp.c\"", world)
        return world.dir.path + "/udp"
    }

    /// A container on two networks reaches both; one on a single network cannot reach the other
    /// network (by TCP or ping), although the host routes between the bridges.
    @Test func networksAreWalledOffFromEachOther() throws {
        let world = try World()
        try Self.sh(
            """
            $BERTH network create front >/dev/null
            $BERTH network create back >/dev/null
            for c in both:--network=front:--network=back fonly:--network=front bonly:--network=back; do
              name=${c%%:*}; flags=$(echo ${c#*:} | tr ':' ' ')
              $BERTH container run -d --name $name $flags busybox \\
                sh -c "mkdir /w && echo I-am-$name > /w/index.html && exec httpd -f -p 80 -h /w" >/dev/null
            done
            """, world)
        func address(_ container: String, _ network: String) throws -> String {
            let json = try world.berth(["container", "inspect", container]).stdout
            let all = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
            let settings = try #require(all.first?["NetworkSettings"] as? [String: Any])
            let networks = try #require(settings["Networks"] as? [String: [String: Any]])
            return try #require(networks[network]?["IPAddress"] as? String)
        }
        let bonly = try address("bonly", "back")
        let fetch = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2"
        let fromBoth = try Self.sh(
            "$BERTH container exec both sh -c \"$FETCH; fetch fonly 80; fetch bonly 80\"", world)
        #expect(fromBoth == "I-am-fonly\nI-am-bonly\n")
        // By address, so that no name lookup can be what fails.
        let walled = try Self.sh(
            """
            $BERTH container exec fonly sh -c "\(fetch) \(bonly) 80" && echo reached || echo walled
            $BERTH container exec fonly ping -c 1 -W 1 \(bonly) >/dev/null 2>&1 && echo reached || echo walled
            $BERTH container exec fonly ping -c 1 -W 1 \(try address("fonly", "front").split(separator: ".").prefix(3).joined(separator: ".")).1 >/dev/null && echo gateway
            """, world)
        #expect(walled == "walled\nwalled\ngateway\n")
    }

    /// Names through /etc/hosts (the container itself, --add-host with host-gateway) and through
    /// the embedded DNS server: names, aliases shared by two containers (both answers), AAAA of a
    /// known name (no answer), a container started a moment ago, and other names forwarded to
    /// the upstream berth's config names (dnsmasq on loopback, never the host's resolver).
    @Test func namesResolveThroughHostsAndTheEmbeddedServer() throws {
        let world = try World()
        let upstream = "127.0.\(Int.random(in: 2...250)).\(Int.random(in: 2...250))"
        try "{\"dns\": [\"\(upstream):5399\"]}".write(
            toFile: world.root + "/config.json", atomically: true, encoding: .utf8)
        let dnsmasq = Process()
        dnsmasq.executableURL = URL(fileURLWithPath: "/usr/sbin/dnsmasq")
        dnsmasq.arguments = [
            "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=\(upstream)",
            "--port=5399", "--address=/outside.test/10.1.2.3", "--pid-file=", "--user=root", "--conf-file=/dev/null",
        ]
        try dnsmasq.run()
        defer {
            // SIGKILL: a child of the test runner inherits its blocked SIGTERM.
            kill(dnsmasq.processIdentifier, SIGKILL)
            dnsmasq.waitUntilExit()
        }
        let output = try Self.sh(
            """
            $BERTH network create app >/dev/null
            $BERTH container run -d --name one --network app --network-alias svc busybox sleep 600 >/dev/null
            $BERTH container run -d --name two --network app --network-alias svc busybox sleep 600 >/dev/null
            one=$($BERTH container inspect one | grep '"IPAddress"' | head -1 | tr -d ' ",' | cut -d: -f2)
            two=$($BERTH container inspect two | grep '"IPAddress"' | head -1 | tr -d ' ",' | cut -d: -f2)
            $BERTH container run --rm --network app -h asker --add-host gw:host-gateway busybox sh -c '
              grep -q "asker" /etc/hosts && echo self-in-hosts
              grep -w gw /etc/hosts | cut -f1
              nslookup one | grep -A1 "^Name:" | grep Address | cut -d" " -f2
              nslookup svc | grep "^Address: " | cut -d" " -f2 | sort
              nslookup -type=AAAA one | grep -c "^Address: " || true
              nslookup outside.test | grep "^Address: " | cut -d" " -f2
              nslookup -type=A nowhere.invalid >/dev/null 2>&1 || echo unknown-fails
            ' > "$OUT/answers"
            echo "one=$one two=$two"
            cat "$OUT/answers"
            $BERTH container run -d --name late --network app busybox sleep 600 >/dev/null
            $BERTH container exec one nslookup late | grep -c "^Address: 1"
            """, world)
        let lines = output.split(separator: "\n").map(String.init)
        try #require(lines.count >= 8, "\(output)")
        let one = String(lines[0].split(separator: " ")[0].dropFirst(4))
        let two = String(lines[0].split(separator: " ")[1].dropFirst(4))
        let gateway = one.split(separator: ".").prefix(3).joined(separator: ".") + ".1"
        #expect(lines[1] == "self-in-hosts")
        #expect(lines[2] == gateway)
        #expect(lines[3] == one)
        #expect(Set(lines[4...5]) == [one, two])
        #expect(lines[6] == "0")
        #expect(lines[7] == "10.1.2.3")
        #expect(lines[8] == "unknown-fails")
        #expect(lines[9] == "1")
    }

    /// -p publishes TCP and UDP ports on 127.0.0.1 (the userland proxy) and on the host's other
    /// addresses (nftables DNAT and the proxy); an ephemeral host port is reported by `port`; a
    /// port already taken is an error before anything is made.
    @Test func publishedPortsAnswerOnLoopbackAndTheHostsAddresses() throws {
        let world = try World()
        let udp = try Self.buildUDPProgram(world)
        let output = try Self.sh(
            """
            $BERTH container run -d --name web -p 127.0.0.1::80 -p 18093:80 -p 18094:5000/udp \\
              -v \(udp):/bin/udp:ro busybox \\
              sh -c "mkdir /w && echo published > /w/index.html && httpd -p 80 -h /w && exec udp serve 5000" >/dev/null
            $BERTH container port web
            ephemeral=$($BERTH container port web 80/tcp | grep 127.0.0.1 | cut -d: -f2)
            fetch 127.0.0.1 $ephemeral
            fetch 127.0.0.1 18093
            host=$(ip -o -4 addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1)
            fetch $host 18093
            for i in 1 2 3 4 5; do "$OUT/udp" ask 127.0.0.1 18094 one && break; done
            for i in 1 2 3 4 5; do "$OUT/udp" ask $host 18094 two && break; done
            $BERTH container ps | tail -1
            """, world)
        let lines = output.split(separator: "\n").map(String.init)
        try #require(lines.count >= 8, "\(output)")
        #expect(lines[0].hasPrefix("80/tcp -> 127.0.0.1:") && lines[0] != "80/tcp -> 127.0.0.1:0")
        #expect(lines[1] == "80/tcp -> 0.0.0.0:18093" && lines[2] == "5000/udp -> 0.0.0.0:18094")
        #expect(Array(lines[3...5]) == ["published", "published", "published"])
        #expect(lines[6] == "got-one" && lines[7] == "got-two")
        #expect(output.contains("0.0.0.0:18093->80/tcp"))

        // Taken (by web): refused before a container is made, nothing left of it.
        let taken = try world.berth(["container", "run", "-d", "--name", "second", "-p", "18093:80", "busybox", "true"])
        #expect(taken.status == 125)
        #expect(taken.stderr.contains("port is already allocated"), "\(taken.stderr)")
        #expect(try world.berth(["container", "inspect", "second"]).status != 0)
    }

    /// The network verbs as Docker's: ls (the default network is listed once it was first used:
    /// berth makes it then), inspect, connect (a second interface, resolvable there at once),
    /// disconnect, rm refused while a container is attached, prune; --dns-search and
    /// --dns-option reach resolv.conf, with Docker's ndots:0 unless set.
    @Test func networkVerbsAndResolvConf() throws {
        let world = try World()
        let output = try Self.sh(
            """
            $BERTH network create verbs-a >/dev/null
            $BERTH network create verbs-b >/dev/null
            $BERTH network create verbs-unused >/dev/null
            $BERTH network ls | awk 'NR > 1 {print $2}' | sort | tr '\n' ' '
            echo
            $BERTH container run -d --name verbs-one --network verbs-a busybox sleep 600 >/dev/null
            $BERTH container run -d --name verbs-two --network verbs-b busybox sleep 600 >/dev/null
            $BERTH network connect --alias second-name verbs-b verbs-one
            $BERTH container exec verbs-one sh -c 'ls /sys/class/net | tr "\n" " "'
            echo
            $BERTH container exec verbs-two nslookup second-name | grep -c "^Address: "
            $BERTH network inspect verbs-b | grep -c '"Name" : "verbs-one"'
            $BERTH network rm verbs-b 2>&1 >/dev/null | grep -c "has active endpoints" || true
            $BERTH network disconnect verbs-b verbs-one
            $BERTH container exec verbs-one sh -c 'ls /sys/class/net | tr "\n" " "'
            echo
            $BERTH network prune -f
            $BERTH container run --rm --network verbs-a --dns-search corp.example --dns-option timeout:2 busybox \
              sh -c 'grep -E "^(search|options)" /etc/resolv.conf'
            """, world)
        #expect(
            output == """
                verbs-a verbs-b verbs-unused \neth0 eth1 lo \n1\n1\n1\neth0 lo \nDeleted Networks:\nverbs-unused\n
                search corp.example\noptions timeout:2 ndots:0

                """, "\(output)")
    }

    /// Names from the command line never become paths or lines of their own: a network name
    /// that is no name (a path) is no network, and a host name with a newline (it goes into
    /// /etc/hosts) is refused, as Docker validates both; nothing is made.
    @Test func hostileNamesAreRefused() throws {
        let world = try World()
        for (arguments, message) in [
            (["network", "create", "../escape"], "invalid network name"),
            (["network", "inspect", "../../etc"], "network ../../etc not found"),
            (["network", "rm", "../ipam"], "invalid network name"),
            (["container", "run", "--rm", "--network", "../ipam", "busybox", "true"], "network ../ipam not found"),
            (["container", "run", "--rm", "-h", "evil\n1.2.3.4 bank", "busybox", "true"], "invalid hostname format"),
            (
                ["container", "run", "--rm", "--network", "bridge", "--network", "none", "busybox", "true"],
                "conflicting options"
            ),
        ] {
            let result = try world.berth(arguments)
            #expect(result.status != 0 && result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        #expect(try world.berth(["container", "ps", "-a", "-q"]).stdout.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: world.root + "/escape"))
        #expect(try world.berth(["network", "ls", "-q"]).stdout.isEmpty)
    }

    /// A static address and MAC are honoured; an internal network has no default route; an
    /// address outside the subnet, a bad --ip and an unknown network are refused with nothing
    /// made.
    @Test func staticAddressesAndInternalNetworks() throws {
        let world = try World()
        let output = try Self.sh(
            """
            $BERTH network create --internal --subnet 10.240.7.0/24 --ip-range 10.240.7.128/25 walled >/dev/null
            $BERTH container run --rm --network walled --ip 10.240.7.9 --mac-address 02:00:00:aa:bb:cc busybox \\
              sh -c 'ip -o -4 addr show eth0 | awk "{print \\$4}"; cat /sys/class/net/eth0/address; ip route | grep -c default || true'
            $BERTH container run --rm --network walled busybox ip -o -4 addr show eth0 | awk '{print $4}'
            """, world)
        #expect(output == "10.240.7.9/24\n02:00:00:aa:bb:cc\n0\n10.240.7.128/24\n")
        for (flags, message) in [
            (["--network", "walled", "--ip", "10.240.8.9"], "is not in network walled's subnet"),
            (["--network", "walled", "--ip", "10.240.7.999"], "invalid IPv4 address"),
            (["--network", "nowhere"], "network nowhere not found"),
            (["--ip", "172.17.0.9"], "user specified IP address is supported on user defined networks only"),
        ] {
            let run = try world.berth(["container", "run", "--rm"] + flags + ["busybox", "true"])
            #expect(run.status == 125 && run.stderr.contains(message), "\(flags): \(run.stderr)")
        }
        #expect(try world.berth(["container", "ps", "-a", "-q"]).stdout.isEmpty)
        let overlap = try world.berth(["network", "create", "--subnet", "10.240.7.0/25", "again"])
        #expect(overlap.status != 0 && overlap.stderr.contains("overlaps"), "\(overlap.stderr)")
    }

    /// A stopped container gives its network back (endpoint, address, port rules; berth-shim runs
    /// the release once the exit is recorded, as Docker releases a stopped container's
    /// endpoints), and gets it again when it starts: its published port answers, and /etc/hosts
    /// has one line for it however often it restarts.
    @Test func stoppedContainersReleaseTheirNetworkAndStartAgain() throws {
        let world = try World()
        try Self.sh(
            """
            $BERTH network create again >/dev/null
            $BERTH container run -d --name back-again --network again -p 18096:80 busybox \\
              sh -c "mkdir -p /w && echo served > /w/index.html && exec httpd -f -p 80 -h /w" >/dev/null
            $BERTH container stop back-again >/dev/null
            """, world)
        let endpoints = world.root + "/networks/again/endpoints"
        let released = eventually {
            ((try? FileManager.default.contentsOfDirectory(atPath: endpoints)) ?? ["?"]).isEmpty
                && ((try? FileManager.default.contentsOfDirectory(atPath: world.root + "/ports")) ?? ["?"]).isEmpty
        }
        #expect(released, "the stopped container kept its endpoint or ports")
        let output = try Self.sh(
            """
            $BERTH container start back-again >/dev/null
            fetch 127.0.0.1 18096
            $BERTH container restart back-again >/dev/null
            fetch 127.0.0.1 18096
            $BERTH container exec back-again sh -c 'grep -c "$(hostname)" /etc/hosts'
            """, world)
        #expect(output == "served\nserved\n1\n")
    }

    /// Everything a project's networking makes on the host (bridges, veths, addresses, routes,
    /// nftables rules, kept namespaces, berth-netd, IPAM entries) is gone after `rm -f` and
    /// `network rm`, also when berth-netd and the containers' berth-shims were SIGKILLed first.
    @Test func teardownLeavesNothingEvenAfterKills() throws {
        let world = try World()
        let before = try Self.hostState()
        let made = try Self.sh(
            """
            $BERTH network create left >/dev/null
            $BERTH network create right --internal >/dev/null
            $BERTH container run -d --name ta --network left --network right -p 18095:80 busybox sleep 600 >/dev/null
            $BERTH container run -d --name tb --network left busybox sleep 600 >/dev/null
            $BERTH container exec tb nslookup ta >/dev/null
            $BERTH network inspect left right | grep -E '"com.docker.network.bridge.name"|"EndpointID"' | cut -d'"' -f4
            """, world)
        let names = made.split(separator: "\n").map(String.init)
        try #require(names.count == 5, "\(made)")
        let during = try Self.hostState()
        for name in names {
            let seen = during.contains { $0.contains(name) }
            #expect(seen, "\(name) not made")
        }
        // The supervising processes die without a word: the DNS server and the reapers.
        try Self.sh(
            """
            for pid in $(cat "$BERTH_ROOT/netd.pid") $(pgrep -f "berth-shim --dir $BERTH_ROOT/" || true); do
              kill -9 $pid 2>/dev/null || true
            done
            $BERTH container rm -f ta tb >/dev/null
            $BERTH network rm left right >/dev/null
            """, world)
        // The kernel takes the veths down with their namespaces, in the background (see
        // BridgeNetworks.tearDown): wait for that, 10 s at most.
        var after = try Self.hostState()
        _ = eventually {
            after = (try? Self.hostState()) ?? after
            return !after.contains { line in names.contains { line.contains($0) } }
        }
        for name in names {
            let left = after.filter { $0.contains(name) }
            #expect(left.isEmpty, "\(name) left behind: \(left)")
        }
        let mounts = after.filter { $0.contains(world.root) }
        #expect(mounts.isEmpty, "\(mounts)")
        // Whatever else changed meanwhile is another test's (suites run side by side).
        let new = Set(after).subtracting(before).filter { line in names.contains { line.contains($0) } }
        #expect(new.isEmpty, "\(new)")
        let ipam = try String(contentsOfFile: world.root + "/ipam/ipam.json", encoding: .utf8)
        #expect(!ipam.contains("left") && !ipam.contains("right"), "\(ipam)")
        let left = try Self.sh(
            "ls -A \"$BERTH_ROOT/netns\"; ls -A \"$BERTH_ROOT/ports\"; pgrep -f \"berth-netd --root $BERTH_ROOT\" || true",
            world)
        #expect(left.isEmpty, "\(left)")
    }

    /// What the host has that networking makes: links, addresses, routes, the nftables ruleset
    /// and mounts, a line each.
    static func hostState() throws -> [String] {
        var lines: [String] = []
        for command in [["ip", "-o", "link"], ["ip", "-o", "addr"], ["ip", "route"], ["nft", "list", "ruleset"]] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/" + command[0])
            process.arguments = Array(command.dropFirst())
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            lines += String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        }
        lines += try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8).split(separator: "\n").map(
            String.init)
        return lines
    }
}
