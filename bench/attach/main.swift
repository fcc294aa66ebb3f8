// Attaching a network namespace to a bridge (veth pair with its inner end made inside, address,
// loopback and interface up, default route, bridge port up): berth's Netlink against the same
// steps done by `ip` commands, side by side in one run, on a bridge and namespaces of its own.
// Each round makes a fresh namespace (not timed), times the attach, then removes the veth.
//
//   swift run -c release berth-bench-attach [ROUNDS]     (as root; needs iproute2's ip)
import CNetlink
import Foundation
import Network

let rounds = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 200 : 200
let bridge = "br-bench-\(getpid() % 100_000)"
let gateway = IPv4Address(10, 233, 0, 1)
let host = try Netlink()
try host.ensureBridge(bridge, gateway: gateway, prefixLength: 16)
defer { try? host.deleteLink(bridge) }

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

/// A new namespace bound to a file, so that `ip -n`-style paths and berth both reach it.
func namespace(_ name: String) throws -> String {
    let fd = berth_netlink_new_namespace()
    guard fd >= 0 else { throw Netlink.Error(operation: "make a namespace", errno: -fd) }
    defer { close(fd) }
    let path = "/run/netns/" + name
    try NamespaceFile.keep("/proc/self/fd/\(fd)", at: path)
    return path
}

/// posix_spawn (vfork-like) and wait: what a shell does, without Foundation's Process overhead.
func ip(_ arguments: [String]) throws {
    let argv = (["ip"] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, "/usr/sbin/ip", nil, nil, argv, environ) == 0 else {
        throw Netlink.Error(operation: "spawn ip", errno: errno)
    }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    guard status == 0 else { throw Netlink.Error(operation: "ip \(arguments.joined(separator: " "))", errno: EIO) }
}

var berth: [Double] = []
var ipTimes: [Double] = []
for round in 0..<rounds {
    let address = IPv4Address(10, 233, UInt8(1 + round / 250), UInt8(2 + round % 250))
    let name = "bench-\(getpid())-\(round)"
    // berth
    let path = try namespace(name)
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    var start = now()
    try host.attach(
        namespace: fd, to: bridge,
        Attachment(hostInterface: "vb\(round)", interface: "eth0", address: address, prefixLength: 16, gateway: gateway)
    )
    berth.append(Double(now() - start) / 1e6)
    close(fd)
    try host.deleteLink("vb\(round)")
    // ip: the same steps, one command each (as a shell script of CNI's era would)
    start = now()
    try ip(["link", "add", "vi\(round)", "type", "veth", "peer", "name", "eth1", "netns", name])
    try ip(["link", "set", "vi\(round)", "master", bridge, "up"])
    try ip(["-n", name, "link", "set", "lo", "up"])
    try ip(["-n", name, "addr", "add", "\(address)/16", "dev", "eth1"])
    try ip(["-n", name, "link", "set", "eth1", "up"])
    try ip(["-n", name, "route", "add", "default", "via", "\(gateway)"])
    ipTimes.append(Double(now() - start) / 1e6)
    try host.deleteLink("vi\(round)")
    try NamespaceFile.release(path)
}
let (b, i) = (median(berth), median(ipTimes))
print(String(format: "attach, median of %d: berth %.3f ms, ip commands %.3f ms, ratio %.3f", rounds, b, i, b / i))
