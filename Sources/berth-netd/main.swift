import CNetlink
import NameServer

// berth-netd --root ROOT: the embedded DNS server of ROOT's networks (see NameServerDaemon).
// `berth` starts it through NameServerControl.reload(root:netd:) and never links swift-nio itself.
NameServerDaemon.main(Array(CommandLine.arguments.dropFirst()))
