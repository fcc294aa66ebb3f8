#if canImport(Glibc)
    import Glibc
#endif

/// One piece of work on a thread of its own while the caller goes on; `wait()` joins it.
///
/// Starting and removing a container are mostly system calls, and some of them do not depend on
/// each other: the cgroup's directories and limits against the spawn configuration, the cgroup's
/// removal against the container's files. Run side by side they use the host's second core
/// instead of waiting for one. A plain pthread: it starts in microseconds, where a dispatch
/// queue's first use spins up its worker pool. Every clone() happens after `wait()`, so the
/// child is always forked from a single-threaded parent.
public final class BackgroundWork<Value: ~Copyable> {
    private var thread = pthread_t()
    private var running = false
    /// Until `wait()` or `leftover()` hands it over; a value never handed over (a
    /// `FileDescriptor`, say) ends with this object, as any owner's would.
    private var outcome: Result<Value, Swift.Error>?

    public init(_ work: @escaping () throws -> Value) {
        // The thread entry is a C function pointer, which cannot capture the generic Value: it
        // runs a plain closure that stores the outcome here.
        let body = ThreadBody { [unowned(unsafe) self] in self.outcome = Self.run(work) }
        let context = Unmanaged.passRetained(body).toOpaque()
        running =
            pthread_create(
                &thread, nil,
                { context in
                    Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().run()
                    return nil
                }, context) == 0
        if !running {
            // No thread to be had (a resource limit): do the work here, in order.
            Unmanaged<ThreadBody>.fromOpaque(context).release()
            outcome = Self.run(work)
        }
    }

    private static func run(_ work: () throws -> Value) -> Result<Value, Swift.Error> {
        do { return .success(try work()) } catch { return .failure(error) }
    }

    /// The work's value, or its error; waits for the thread first. Call it once: the value is
    /// handed over.
    public func wait() throws -> Value {
        join()
        guard let outcome = outcome.take() else { preconditionFailure("BackgroundWork waited for twice") }
        switch consume outcome {
        case .success(let value): return value
        case .failure(let error): throw error
        }
    }

    /// For the cleanup after a failure elsewhere: waits for the thread and returns the value
    /// unless the work failed or `wait()` already took it.
    public func leftover() -> Value? {
        join()
        guard let outcome = outcome.take() else { return nil }
        switch consume outcome {
        case .success(let value): return value
        case .failure: return nil
        }
    }

    private func join() {
        if running {
            pthread_join(thread, nil)
            running = false
        }
    }

    deinit {
        // Never waited for: join here, since the thread writes into this object.
        if running { pthread_join(thread, nil) }
    }
}

private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}
