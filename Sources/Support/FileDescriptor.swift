#if canImport(Glibc)
    import Glibc
#endif

/// A file descriptor with exactly one owner, which closes it exactly once: when the value ends
/// (its deinit), or never if it is handed on with `release()`. It cannot be copied, so passing
/// it moves it, and the compiler rejects a use after the move: no flag says who closes what, and
/// no path forgets or doubles a close (a double close may close a descriptor another thread has
/// just been given, under the same number).
///
/// Optional is the "maybe none" form (`FileDescriptor?`); `take()` moves one out of a stored
/// optional, leaving nil behind.
public struct FileDescriptor: ~Copyable, Sendable {
    /// The number, for system calls while this value lives; never close it directly.
    public let rawValue: Int32

    /// Owns `rawValue` from now on; nil when it is negative (a failed open, or a -errno that a C
    /// helper returned), so a failure never becomes a descriptor to close.
    public init?(taking rawValue: Int32) {
        guard rawValue >= 0 else { return nil }
        self.rawValue = rawValue
    }

    /// Gives the descriptor up without closing it, to an owner that closes it itself.
    public consuming func release() -> Int32 {
        let fd = rawValue
        discard self
        return fd
    }

    deinit {
        _ = Glibc.close(rawValue)
    }
}

extension Optional where Wrapped == FileDescriptor {
    /// The number, or -1 when there is none (the C structs' "no descriptor").
    public var rawValue: Int32 {
        switch self {
        case .some(let fd): return fd.rawValue
        case .none: return -1
        }
    }
}

/// An flock(2) held through a descriptor of its own, let go explicitly (LOCK_UN) when the value
/// ends: a child forked meanwhile shares the open file, and its copy would otherwise keep the
/// lock until it execs or exits.
public struct HeldLock: ~Copyable {
    public let descriptor: FileDescriptor

    /// Opens `path` (made if missing) and waits for the lock; nil when it cannot be opened.
    public init?(path: String, exclusive: Bool) {
        guard let fd = FileDescriptor(taking: open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o600)) else { return nil }
        while flock(fd.rawValue, exclusive ? LOCK_EX : LOCK_SH) != 0 && errno == EINTR {}
        descriptor = fd
    }

    /// Says where the lock is still needed (`defer { lock?.keep() }`): the value, and so the
    /// lock, lives at least until then.
    public borrowing func keep() {}

    deinit {
        flock(descriptor.rawValue, LOCK_UN)
    }
}
