import CNetlink
import NIOCore
import NIOPosix
import Network
import Support
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The embedded DNS server of a root's networks, as Docker's: one UDP and one TCP listener on
/// port 53 of the gateway of each network with `embeddedDNS`. A container asks its gateway;
/// the server finds the container by its source address among that network's endpoints and
/// answers A questions for the names of endpoints on every network the container is attached
/// to (all of them: replicas sharing an alias get one record each), NODATA for other types of
/// such names, and forwards the rest to the container's own DNS servers, berth's configured
/// ones (ROOT/config.json `dns`) or the host's (/etc/resolv.conf), SERVFAIL when none answers.
///
/// The networks and endpoints are a snapshot (`Records`) taken on `reload()`; a name it does not
/// know makes it read the store again once before forwarding, so a container whose endpoint was
/// just written resolves before anyone told the server.
public final class NameServer: Sendable {
    public let root: String
    let group: any EventLoopGroup
    let forwarder: Forwarder
    let log: @Sendable (String) -> Void
    private let state = Mutex(State())
    /// Questions being forwarded; over `maxForwarding` new ones are refused, as Docker does.
    private let forwarding = Mutex(0)
    /// When "no upstream answered" was last logged (CLOCK_MONOTONIC seconds): once a minute at
    /// most, so a resolver that is down does not fill the log.
    private let lastUpstreamLog = Mutex(-60)
    /// The store's directories' change times when it was last read on a miss.
    private let lastStamp = Mutex([Int64]())
    static let maxForwarding = 100
    /// Docker's embedded DNS answers with this TTL.
    static let ttl: UInt32 = 600

    struct State {
        var records = Records()
        var configuredServers: [String] = []
        var hostServers: [String] = []
        var searchDomains: [String] = []
        var listeners: [String: Listener] = [:]
    }

    struct Listener {
        var gateway: IPv4Address
        var udp: any Channel
        var tcp: any Channel
    }

    public struct Error: Swift.Error, CustomStringConvertible {
        public var description: String
        /// False when only networks the caller did not ask for failed (logged, not its problem).
        public var concernsCaller = true
    }

    public init(root: String, group: any EventLoopGroup, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.root = root
        self.group = group
        self.forwarder = Forwarder(group: group)
        self.log = log
    }

    /// Whether any served network has an endpoint (as of the last reload or re-read).
    public var hasEndpoints: Bool { state.withLock { $0.records.hasEndpoints } }

    /// The gateways listened on, by network.
    public var listening: [String: String] { state.withLock { $0.listeners.mapValues { $0.gateway.description } } }

    /// Reads networks, endpoints, ROOT/config.json and /etc/resolv.conf again, then binds
    /// listeners for networks that have none (or whose gateway changed) and closes those of
    /// networks that are gone or no longer use the server. Returns once every listener is bound;
    /// the networks whose listeners failed are in the error (the others are served all the same).
    /// Not from an event loop thread; reloads must not run concurrently (berth-netd serializes them).
    /// `networks`: the networks whose listeners the caller needs (a container joining them);
    /// only their problems (and the config's) are thrown, the others' are logged by the caller.
    public func reload(networks wanted: Set<String> = []) throws {
        let records = Records(store: NetworkStore(root: root))
        var problems: [String] = []
        var others: [String] = []
        var configured: [String] = []
        do { configured = try NetworkConfig.load(root: root).dns ?? [] } catch { problems.append("\(error)") }
        let host = Upstreams.resolvConf(Files.readText("/etc/resolv.conf") ?? "")

        let current = state.withLock { state in
            state.records = records
            state.configuredServers = configured
            (state.hostServers, state.searchDomains) = (host.servers, host.search)
            return state.listeners
        }
        var listeners: [String: Listener] = [:]
        for (name, listener) in current {
            if records.networks[name]?.record.gateway == listener.gateway {
                listeners[name] = listener
            } else {
                close(listener)
            }
        }
        for (name, network) in records.networks.sorted(by: { $0.key < $1.key }) where listeners[name] == nil {
            do {
                listeners[name] = try bind(network: name, gateway: network.record.gateway)
            } catch {
                let problem = "network \(name): listen on \(network.record.gateway):53: \(error)"
                if wanted.isEmpty || wanted.contains(name) { problems.append(problem) } else { others.append(problem) }
            }
        }
        state.withLock { $0.listeners = listeners }
        if !problems.isEmpty || !others.isEmpty {
            throw Error(description: (problems + others).joined(separator: "; "), concernsCaller: !problems.isEmpty)
        }
    }

    /// Closes every listener.
    public func shutdown() {
        let listeners = state.withLock { state in
            defer { state.listeners = [:] }
            return state.listeners
        }
        for listener in listeners.values { close(listener) }
    }

    private func close(_ listener: Listener) {
        try? listener.udp.close().wait()
        try? listener.tcp.close().wait()
    }

    /// IP_FREEBIND: the gateway's address may not be on its bridge yet (a network whose bridge
    /// comes back with its first container after a reboot); the listener answers once it is.
    private static let freeBind = ChannelOptions.Types.SocketOption(level: .ip, name: .init(rawValue: IP_FREEBIND))

    private func bind(network: String, gateway: IPv4Address) throws -> Listener {
        let address = try SocketAddress(ipAddress: gateway.description, port: 53)
        let udp = try DatagramBootstrap(group: group)
            .channelOption(Self.freeBind, value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UDPQueryHandler(server: self, network: network))
                }
            }.bind(to: address).wait()
        do {
            let tcp = try ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(Self.freeBind, value: 1)
                .childChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        // A connection idle for 10 s is closed (RFC 7766 suggests seconds).
                        try pipeline.addHandler(IdleStateHandler(readTimeout: .seconds(10)))
                        try pipeline.addHandler(ByteToMessageHandler(DNSFrameDecoder()))
                        try pipeline.addHandler(TCPQueryHandler(server: self, network: network))
                    }
                }.bind(to: address).wait()
            return Listener(gateway: gateway, udp: udp, tcp: tcp)
        } catch {
            try? udp.close().wait()
            throw error
        }
    }

    // MARK: Answering

    /// What a message gets: an answer made here at once, nothing, or a question for upstream.
    enum Outcome {
        case reply([UInt8])
        case nothing
        case forward(question: DNSMessage.Question, asker: EndpointRecord?)
    }

    /// The answer to one message from `source` on `network`'s listener; nil when there is
    /// nothing to send (a response, or bytes too short to have an ID).
    func answer(_ bytes: [UInt8], from source: SocketAddress, network: String, overTCP: Bool) async -> [UInt8]? {
        switch outcome(bytes, from: source, network: network, overTCP: overTCP) {
        case .reply(let reply): return reply
        case .nothing: return nil
        case .forward(let question, let asker):
            return await forward(bytes, question: question, asker: asker, network: network, overTCP: overTCP)
        }
    }

    /// Everything but forwarding, synchronously: the listeners answer from the event loop and
    /// start a task only for a question that goes upstream.
    func outcome(_ bytes: [UInt8], from source: SocketAddress, network: String, overTCP: Bool) -> Outcome {
        let query: DNSMessage
        do { query = try DNSMessage(parsing: bytes) } catch {
            guard let id = DNSMessage.id(of: bytes), bytes[2] & 0x80 == 0 else { return .nothing }
            return .reply(DNSMessage.failure(id: id, code: .formatError))
        }
        guard !query.isResponse else { return .nothing }
        guard query.opcode == 0 else { return .reply(DNSMessage.response(to: query, code: .notImplemented).bytes) }
        guard query.questions.count == 1, let question = query.questions.first else {
            return .reply(DNSMessage.response(to: query, code: .formatError).bytes)
        }
        let limit = overTCP ? 65535 : query.udpLimit
        let address = source.ipAddress.flatMap(IPv4Address.init)

        var records = state.withLock { $0.records }
        if records.networks[network] == nil, let fresh = rereadIfChanged() { records = fresh }
        // Only the network's own containers ask here (its listener is on the host, reachable
        // from other networks and other hosts): no answers and no open resolver for the rest.
        guard let address, records.networks[network]?.record.subnet.contains(address) == true else {
            return .reply(DNSMessage.response(to: query, code: .refused).bytes)
        }
        let search = state.withLock { $0.searchDomains }
        var found = lookup(question, records: records, from: address, network: network, search: search)
        if found == nil, let fresh = rereadIfChanged() {
            // A container started since the last reload (a start reloads before the container
            // runs, so this is a fallback): read again only when the store changed, so that a
            // stream of unknown names does not read it for each.
            records = fresh
            found = lookup(question, records: records, from: address, network: network, search: search)
        }
        if let found {
            let answers =
                question.type == DNSMessage.typeA
                ? found.shuffled().map { DNSMessage.aRecord(question.name, address: $0.bytes, ttl: Self.ttl) } : []
            return .reply(DNSMessage.response(to: query, code: .noError, answers: answers, limit: limit).bytes)
        }

        let asker = records.asker(address: address, network: network)
        guard records.mayForward(asker: asker, network: network) else {
            return .reply(DNSMessage.response(to: query, code: .serverFailure).bytes)
        }
        return .forward(question: question, asker: asker)
    }

    /// The question asked of the asker's upstreams in turn; SERVFAIL when none answers.
    private func forward(
        _ bytes: [UInt8], question: DNSMessage.Question, asker: EndpointRecord?, network: String, overTCP: Bool
    ) async -> [UInt8] {
        guard let query = try? DNSMessage(parsing: bytes) else { return [] }
        let admitted = forwarding.withLock { count in
            guard count < Self.maxForwarding else { return false }
            count += 1
            return true
        }
        guard admitted else { return DNSMessage.response(to: query, code: .refused).bytes }
        defer { forwarding.withLock { $0 -= 1 } }
        let servers = upstreams(for: asker)
        for upstream in servers {
            guard let reply = await forwarder.exchange(bytes, with: upstream, overTCP: overTCP) else { continue }
            // SERVFAIL or REFUSED: maybe the next one knows better (as Docker goes on).
            let code = reply[3] & 0xf
            if code == DNSMessage.ResponseCode.serverFailure.rawValue
                || code == DNSMessage.ResponseCode.refused.rawValue
            {
                continue
            }
            return reply
        }
        let now = Self.monotonicSeconds()
        let logNow = lastUpstreamLog.withLock { last in
            guard now - last >= 60 else { return false }
            last = now
            return true
        }
        if logNow { log("no DNS server answered \(question.name) (asked: \(servers.map { "\($0)" }))") }
        return DNSMessage.response(to: query, code: .serverFailure).bytes
    }

    /// The store read again, when a network or endpoint came or went since the last time
    /// (the change times of ROOT/networks and of each network's endpoints directory).
    private func rereadIfChanged() -> Records? {
        let store = NetworkStore(root: root)
        var stamp: [Int64] = []
        for path in [store.directory] + Files.names(in: store.directory).sorted().map(store.endpointsDirectory) {
            var info = stat()
            if stat(path, &info) == 0 { stamp += [Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec)] }
        }
        let changed = lastStamp.withLock { last in
            guard last != stamp else { return false }
            last = stamp
            return true
        }
        guard changed else { return nil }
        let records = Records(store: store)
        state.withLock { $0.records = records }
        return records
    }

    private static func monotonicSeconds() -> Int {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return time.tv_sec
    }

    /// Our addresses for the question's name, nil when it is no name of ours (or not class IN).
    private func lookup(
        _ question: DNSMessage.Question, records: Records, from address: IPv4Address, network: String,
        search: [String]
    ) -> [IPv4Address]? {
        guard question.class == DNSMessage.classIN || question.class == 255 else { return nil }
        let asker = records.asker(address: address, network: network)
        return records.lookup(question.name, asker: asker, network: network, searchDomains: search)
    }

    /// The resolvers to ask for this asker, in order: its own (`--dns`), berth's configured
    /// ones, or the host's; never one of our own listeners (a loop).
    func upstreams(for asker: EndpointRecord?) -> [SocketAddress] {
        let (configured, host, ours) = state.withLock { state in
            (state.configuredServers, state.hostServers, Set(state.listeners.values.map { $0.gateway.description }))
        }
        var texts = asker?.dnsServers ?? []
        if texts.isEmpty { texts = configured }
        if texts.isEmpty { texts = host }
        return texts.compactMap { text in
            guard let address = Upstreams.parse(text) else {
                log("ignoring DNS server \"\(text)\": not IP or IP:PORT")
                return nil
            }
            if let ip = address.ipAddress, address.port == 53, ours.contains(ip) { return nil }
            return address
        }
    }
}

/// Questions over UDP: each answered in a task of its own, so a slow upstream holds up no one.
private final class UDPQueryHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let server: NameServer
    let network: String

    init(server: NameServer, network: String) {
        self.server = server
        self.network = network
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = Array(envelope.data.readableBytesView)
        let (channel, server, network) = (context.channel, server, network)
        switch server.outcome(bytes, from: envelope.remoteAddress, network: network, overTCP: false) {
        case .nothing: return
        case .reply(let reply):
            // Our own names: answered here, on the event loop, without a task.
            context.writeAndFlush(
                wrapOutboundOut(
                    AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(bytes: reply))),
                promise: nil)
        case .forward:
            Task {
                guard
                    let reply = await server.answer(
                        bytes, from: envelope.remoteAddress, network: network, overTCP: false)
                else { return }
                channel.writeAndFlush(
                    AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(bytes: reply)),
                    promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A datagram socket's errors (an ICMP error for an earlier answer) do not end it.
    }
}

/// Questions over TCP, length-framed; answers go back as they are ready (RFC 7766 allows any order).
private final class TCPQueryHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let server: NameServer
    let network: String

    init(server: NameServer, network: String) {
        self.server = server
        self.network = network
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(unwrapInboundIn(data).readableBytesView)
        guard let remote = context.channel.remoteAddress else { return }
        let (channel, server, network) = (context.channel, server, network)
        Task {
            guard let reply = await server.answer(bytes, from: remote, network: network, overTCP: true) else { return }
            channel.writeAndFlush(DNSFrameDecoder.frame(reply), promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
