#if canImport(Glibc)
    import Glibc
#endif

/// Unbuffered reads and writes of the standard streams with read(2) and write(2), in place of
/// Foundation's `FileHandle` (which FoundationEssentials lacks). Writes go out at once, as
/// `FileHandle` wrote them, so they keep their order with respect to each other.
public enum StandardStreams {
    /// Writes `text` to standard error.
    public static func writeError(_ text: String) {
        write(text, to: 2)
    }

    /// Writes `text` to `fd` (1 or 2); false when the reader is gone (see below).
    @discardableResult
    public static func write(_ text: String, to fd: Int32) -> Bool {
        var text = text
        return text.withUTF8 { write(UnsafeRawBufferPointer($0), to: fd) }
    }

    /// Writes all of `bytes` to `fd`, across partial writes and EINTR. An error (EPIPE when the
    /// reader is gone: berth ignores SIGPIPE) drops the rest, as `print` does, and returns false:
    /// a follower (`logs -f`) then knows there is nobody left to write for.
    @discardableResult
    public static func write(_ bytes: UnsafeRawBufferPointer, to fd: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    /// Everything on standard input, up to end of file.
    public static func readInput() -> [UInt8] {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(0, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return data }
            data += buffer[0..<n]
        }
    }
}
