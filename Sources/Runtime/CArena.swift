import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Owns the C memory behind a berth_container/berth_process: strings, pointer arrays and
/// tables. Swift builds everything here before clone(); the child only reads it.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit {
        for block in blocks { free(block) }
    }

    func string(_ s: String) -> UnsafePointer<CChar> {
        let p = strdup(s)!
        blocks.append(UnsafeMutableRawPointer(p))
        return UnsafePointer(p)
    }

    func optionalString(_ s: String?) -> UnsafePointer<CChar>? {
        s.map { string($0) }
    }

    /// A NULL-terminated array of C strings (argv, envp).
    func stringArray(_ list: [String]) -> UnsafePointer<UnsafePointer<CChar>?> {
        let p = array(of: UnsafePointer<CChar>?.self, count: list.count + 1)
        for (i, s) in list.enumerated() { p[i] = string(s) }
        p[list.count] = nil
        return UnsafePointer(p)
    }

    func array<T>(of type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = calloc(max(count, 1), MemoryLayout<T>.stride)!
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    func copy<T>(_ list: [T]) -> UnsafePointer<T> {
        let p = array(of: T.self, count: list.count)
        for (i, v) in list.enumerated() { (p + i).initialize(to: v) }
        return UnsafePointer(p)
    }

    func bytes(_ list: [UInt8]) -> UnsafeRawPointer {
        let p = array(of: UInt8.self, count: list.count)
        list.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: list.count) }
        return UnsafeRawPointer(p)
    }
}
