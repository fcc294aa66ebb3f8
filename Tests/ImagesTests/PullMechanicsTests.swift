import Foundation
import Support
import Testing

@testable import Images

/// The pieces of a pull that the registry tests cannot pin down: the download gate's "Waiting",
/// collection that steps aside while gc.lock is held, and what error messages print of names.
@Suite struct PullMechanicsTests {
    /// A holder past the gate's width makes the next caller wait, and say so first.
    @Test func gateSaysWaitingOnlyWhenFull() throws {
        let gate = Gate(width: 1)
        var waited = false
        gate.through(waiting: { waited = true }, {})
        #expect(!waited, "a free permit means no wait")

        let held = Gate(width: 1)
        let release = DispatchSemaphore(value: 0)
        let entered = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            held.through {
                entered.signal()
                release.wait()
            }
        }
        entered.wait()
        let reported = DispatchSemaphore(value: 0)
        DispatchQueue.global().asyncAfter(deadline: .now()) {
            // Let the holder go once the second caller has said it waits.
            reported.wait()
            release.signal()
        }
        var said = false
        held.through(
            waiting: {
                said = true
                reported.signal()
            }, {})
        #expect(said)
    }

    /// After a pull, collection does not wait behind a holder of gc.lock (a long `image save`);
    /// what it skipped, the next one does.
    @Test(.timeLimit(.minutes(1))) func collectionIfIdleStepsAsideWhileTheLockIsHeld() throws {
        let scratch = try Scratch()
        let store = try ImageStore(root: scratch.root)
        let leftover = store.tmpDir + "/blob-leftover"
        FileManager.default.createFile(atPath: leftover, contents: Data("x".utf8))
        try FileLock.with(store.gcLockPath, exclusive: false) {
            try store.collectGarbageIfIdle()
            #expect(FileManager.default.fileExists(atPath: leftover))
        }
        try store.collectGarbageIfIdle()
        #expect(!FileManager.default.fileExists(atPath: leftover))
    }

    /// Names from archives and images reach error messages without their control characters.
    @Test func displayedNamesCarryNoControlCharacters() {
        #expect(DisplayPath.of(Array("a\u{1B}[2J\u{07}b\nc".utf8)) == "a?[2J?b?c")
        let long = String(repeating: "x", count: 300) + "\u{1B}"
        #expect(!DisplayPath.of(Array(long.utf8)).contains("\u{1B}"))
    }
}
