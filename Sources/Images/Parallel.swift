import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Runs `body(0..<count)` on up to `width` threads of its own and waits for all of them. Layer
/// downloads block in libcurl, so they get real threads (as Docker's three concurrent downloads),
/// not the cooperative pool's two. The first error is rethrown; once one is seen, no new item starts.
func runInParallel(_ count: Int, width: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
    final class Work: @unchecked Sendable {
        let body: @Sendable (Int) throws -> Void
        let count: Int
        let next = Mutex(0)
        let firstError = Mutex<(any Error)?>(nil)
        init(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) {
            self.count = count
            self.body = body
        }
        func drain() {
            while true {
                let i: Int? = next.withLock { n in
                    guard n < count, firstError.withLock({ $0 == nil }) else { return nil }
                    n += 1
                    return n - 1
                }
                guard let i else { return }
                do { try body(i) } catch { firstError.withLock { if $0 == nil { $0 = error } } }
            }
        }
    }
    let work = Work(count, body)
    var threads: [pthread_t] = []
    for _ in 1..<min(max(width, 1), max(count, 1)) {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(work).toOpaque()
        let started = pthread_create(
            &thread, nil,
            { context in
                let work = Unmanaged<Work>.fromOpaque(context!).takeRetainedValue()
                work.drain()
                return nil
            }, context)
        if started == 0 { threads.append(thread) } else { Unmanaged<Work>.fromOpaque(context).release() }
    }
    work.drain()
    for thread in threads { pthread_join(thread, nil) }
    if let error = work.firstError.withLock({ $0 }) { throw error }
}

/// A counting semaphore: at most `width` holders at once (downloads at a time, while the unpacks
/// that follow them need no permit).
final class Gate: @unchecked Sendable {
    private let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)

    init(width: Int) { sem_init(semaphore, 0, UInt32(max(width, 1))) }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    /// Runs `body` holding a permit; `waiting` is called first when none is free at once.
    func through<T>(waiting: () -> Void = {}, _ body: () throws -> T) rethrows -> T {
        if sem_trywait(semaphore) != 0 {
            waiting()
            while sem_wait(semaphore) != 0 && errno == EINTR {}
        }
        defer { sem_post(semaphore) }
        return try body()
    }
}
