import CNetlink
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Asks an upstream resolver a question the server does not answer itself: the client's bytes
/// as they came, under an ID of our own (a fresh socket and ID per question, so an answer
/// cannot be confused with another's or spoofed by guessing one), and the answer's bytes back
/// under the client's ID. Over UDP for UDP questions, over TCP for TCP ones.
struct Forwarder: Sendable {
    let group: any EventLoopGroup
    var timeout: TimeAmount = .seconds(2)

    struct Timeout: Error {}

    /// The upstream's answer, or nil when it gave none in time (or could not be reached).
    func exchange(_ query: [UInt8], with upstream: SocketAddress, overTCP: Bool) async -> [UInt8]? {
        guard query.count >= 12 else { return nil }
        let id = UInt16.random(in: 0...UInt16.max)
        var ours = query
        ours[0] = UInt8(id >> 8)
        ours[1] = UInt8(id & 0xff)
        let loop = group.next()
        let promise = loop.makePromise(of: [UInt8].self)
        let timer = loop.scheduleTask(in: timeout) { promise.fail(Timeout()) }
        defer { timer.cancel() }
        var channel: (any Channel)?
        do {
            if overTCP {
                channel = try await ClientBootstrap(group: loop).connectTimeout(timeout)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSFrameDecoder()))
                            try channel.pipeline.syncOperations.addHandler(
                                AnswerHandler<ByteBuffer>(id: id, from: nil, promise: promise))
                        }
                    }.connect(to: upstream).get()
                channel?.writeAndFlush(DNSFrameDecoder.frame(ours), promise: nil)
            } else {
                channel = try await DatagramBootstrap(group: loop)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(
                                AnswerHandler<AddressedEnvelope<ByteBuffer>>(id: id, from: upstream, promise: promise))
                        }
                    }.bind(host: upstream.protocol == .inet6 ? "::" : "0.0.0.0", port: 0).get()
                channel?.writeAndFlush(
                    AddressedEnvelope(remoteAddress: upstream, data: ByteBuffer(bytes: ours)), promise: nil)
            }
            var answer = try await promise.futureResult.get()
            channel?.close(promise: nil)
            answer[0] = query[0]
            answer[1] = query[1]
            return answer
        } catch {
            promise.fail(error)
            channel?.close(promise: nil)
            return nil
        }
    }
}

/// Takes the first message that answers our ID: over UDP (`from` set) only from the upstream
/// asked; with QR set.
private final class AnswerHandler<Message>: ChannelInboundHandler {
    typealias InboundIn = Message

    let id: UInt16
    let from: SocketAddress?
    let promise: EventLoopPromise<[UInt8]>

    init(id: UInt16, from: SocketAddress?, promise: EventLoopPromise<[UInt8]>) {
        self.id = id
        self.from = from
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        let bytes: [UInt8]
        if let envelope = message as? AddressedEnvelope<ByteBuffer> {
            guard let from, envelope.remoteAddress.ipAddress == from.ipAddress, envelope.remoteAddress.port == from.port
            else { return }
            bytes = Array(envelope.data.readableBytesView)
        } else if let buffer = message as? ByteBuffer {
            bytes = Array(buffer.readableBytesView)
        } else {
            return
        }
        guard DNSMessage.id(of: bytes) == id, bytes[2] & 0x80 != 0 else { return }
        promise.succeed(bytes)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Over UDP an ICMP "port unreachable" comes back as a read error: no server there.
        promise.fail(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
    }
}

/// DNS over TCP: each message preceded by its length in two bytes (RFC 1035 4.2.2).
struct DNSFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
            buffer.readableBytes >= 2 + Int(length)
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }

    static func frame(_ message: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt16(message.count))
        buffer.writeBytes(message)
        return buffer
    }
}

/// Where questions go that the server does not answer itself, from the host's point of view
/// (the server runs in the host's namespace, so a loopback resolver such as systemd-resolved's
/// 127.0.0.53 works).
enum Upstreams {
    /// "IP" (port 53), "IP:PORT", or "[IPv6]:PORT"; nil for anything else.
    static func parse(_ text: String) -> SocketAddress? {
        var host = text
        var port = 53
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let value = Int(rest.dropFirst()) else { return nil }
            port = value
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            host = String(text[..<colon])
            guard let value = Int(text[text.index(after: colon)...]) else { return nil }
            port = value
        }
        guard (1...65535).contains(port) else { return nil }
        return try? SocketAddress(ipAddress: host, port: port)
    }

    /// The host's resolv.conf: its nameservers and search domains.
    static func resolvConf(_ text: String) -> (servers: [String], search: [String]) {
        var servers: [String] = []
        var search: [String] = []
        for line in text.split(whereSeparator: { $0 == "\n" }) {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let keyword = words.first, !keyword.hasPrefix("#"), !keyword.hasPrefix(";") else { continue }
            switch keyword {
            case "nameserver" where words.count >= 2: servers.append(words[1])
            case "search", "domain": search = Array(words.dropFirst())
            default: break
            }
        }
        return (servers, search)
    }
}
