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
public final class BackgroundWork<Value> {
    private var thread = pthread_t()
    private var running = false
    private var outcome: Result<Value, Swift.Error>?

    public init(_ work: @escaping () throws -> Value) {
        // The thread entry is a C function pointer, which cannot capture the generic Value: it
        // runs a plain closure that stores the outcome here.
        let body = ThreadBody { [unowned(unsafe) self] in self.outcome = Result { try work() } }
        let context = Unmanaged.passRetained(body).toOpaque()
        running = pthread_create(&thread, nil, { context in
            Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context) == 0
        if !running {
            // No thread to be had (a resource limit): do the work here, in order.
            Unmanaged<ThreadBody>.fromOpaque(context).release()
            outcome = Result { try work() }
        }
    }

    /// The work's value, or its error; waits for the thread first.
    public func wait() throws -> Value {
        if running {
            pthread_join(thread, nil)
            running = false
        }
        return try outcome!.get()
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
