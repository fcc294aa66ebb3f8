import CRuntime
import Dockerfile
import FoundationEssentials
import Images
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// COPY and ADD: computed without a container. The sources are read from the context (through
/// .dockerignore) or a stage's or image's read-only overlay, written into a writable overlay of
/// the image so far, whose upper dir becomes the step's layer.
extension StageBuild {
    func copy(_ c: Copy, _ instruction: Instruction, isAdd: Bool) throws -> Bool {
        let keyword = isAdd ? "ADD" : "COPY"
        var key = parentKey
        key.add(keyword)
        // Where the sources are read from.
        var holders: [Descriptor] = []
        let root: Int32
        var ignore: DockerIgnore? = nil
        if let from = c.from {
            let source: Image?
            if let j = session.stageIndex(from) {
                guard j != index else { throw BuildError(message: "COPY --from=\(from) names its own stage") }
                guard j < index else {
                    throw BuildError(message: "COPY --from=\(from): the stage must be defined before this one")
                }
                source = try session.result(of: j)
            } else {
                source = try externalImage(from)
            }
            let overlay = try session.workspace.openReadOnly(layers: source?.layerPaths ?? [])
            root = overlay.fd
            holders.append(overlay)
            key.add("from " + (source?.id ?? "scratch"))
        } else {
            root = session.context.descriptor.fd
            ignore = session.context.ignore
        }
        // The sources: heredocs as files of their own, else paths and patterns.
        var sources: [SourceTree] = []
        var wildcard = false
        let scratch = try session.workspace.stepDirectory()
        defer { Workspace.remove(scratch) }
        if !c.heredocs.isEmpty {
            guard let dir = Descriptor(open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) else {
                throw BuildError("open \(scratch)", errno: errno)
            }
            holders.append(dir)
            for h in c.heredocs {
                try StageBuild.checkHeredocName(h.name)
                let content =
                    h.expand ? try Substitution.expand(h.content, escape: escape, lookup: lookup) : h.content
                try Self.writeFile(scratch + "/" + h.name, content, mode: 0o644)
                sources.append(SourceTree(root: dir.fd, path: h.name, ignore: nil, excludes: []))
            }
        }
        for text in c.sources {
            if text.contains("://") || text.hasPrefix("git@") {
                throw BuildError(
                    message: isAdd
                        ? "ADD from a URL (\(text)) is not supported: no network reaches it from berth's builds; download it into the context"
                        : "COPY source can't be a URL: \(text)")
            }
            let clean = Self.cleanRelative(text)
            guard clean != ".." && !clean.hasPrefix("../") else {
                throw BuildError(message: "forbidden path outside the build context: \(text)")
            }
            if PathPattern.hasWildcards(clean) {
                wildcard = true
                let found = try glob(clean, root: root, ignore: ignore)
                sources += found.map {
                    SourceTree(root: root, path: $0.path, ignore: ignore, excludes: c.excludes, bytes: $0.bytes)
                }
            } else {
                if let ignore, !clean.isEmpty, ignore.excludes(clean) {
                    throw BuildError(message: "\(keyword) failed: \"\(text)\": not found (excluded by .dockerignore)")
                }
                sources.append(SourceTree(root: root, path: clean, ignore: ignore, excludes: c.excludes))
            }
        }
        // A wildcard that matches nothing copies nothing (BuildKit's AllowEmptyWildcard: the
        // `COPY optional* ./` idiom).
        guard !sources.isEmpty || wildcard else {
            throw BuildError(message: "\(keyword) failed: no source files were specified")
        }
        let dest = c.destination.hasPrefix("/") ? c.destination : (config.workingDir ?? "/") + "/" + c.destination
        let destIsDirectory = c.destination.hasSuffix("/") || c.destination == "." || c.destination.hasSuffix("/.")
        if sources.count > 1 && !destIsDirectory {
            throw BuildError(
                message:
                    "When using \(keyword) with more than one source file, the destination must be a directory and end with a /"
            )
        }
        let destination = Self.cleanAbsolute(dest)
        for source in sources {
            key.add(source.path)
            do { key.add(try ContentDigest.of(source)) } catch let error as BuildError {
                throw BuildError(message: "\(keyword) failed: \(error.message)")
            }
        }
        key.add([destination, destIsDirectory ? "dir" : "", c.chown ?? "", c.chmod ?? "", c.parents ? "parents" : ""])
        key.add(c.excludes)
        if useCached(key) { return true }

        let mode = try c.chmod.map { text -> mode_t in
            guard let value = mode_t(text, radix: 8), value <= 0o7777 else {
                throw BuildError(message: "invalid chmod parameter \(text): only octal modes are supported")
            }
            return value
        }
        let layer = try withExtendedLifetime(holders) {
            try inOverlay { target in
                let owner = try c.chown.map { try self.owner($0, root: target) }
                let copier = FileCopy(owner: owner, keepsOwners: c.from != nil, mode: mode)
                for source in sources {
                    guard let (_, _, info) = try source.open() else {
                        throw BuildError(message: "\(keyword) failed: \"\(source.path)\": not found")
                    }
                    var to = destination
                    if c.parents, let slash = source.path.lastIndex(of: "/") {
                        to = Self.cleanAbsolute(destination + "/" + source.path[..<slash])
                    }
                    let isDirectory = info.st_mode & S_IFMT == S_IFDIR
                    if isAdd && !isDirectory && c.from == nil, let archive = try ArchiveExtract.open(source) {
                        // The destination exists even for an empty archive.
                        _ = try Self.directory(to, in: target, owner: owner)
                        try ArchiveExtract.extract(archive, into: target, at: to, owner: owner)
                        continue
                    }
                    if isDirectory {
                        let dir = try Self.directory(to, in: target, owner: owner)
                        try copier.copy(source, into: dir.fd, name: nil)
                    } else if destIsDirectory || c.parents || Self.isDirectory(to, in: target) {
                        let dir = try Self.directory(to, in: target, owner: owner)
                        let base = source.bytes.split(separator: UInt8(ascii: "/")).last.map(Array.init) ?? []
                        try copier.copy(source, into: dir.fd, name: SourceTree.cString(base))
                    } else {
                        if let slash = to.lastIndex(of: "/"), slash != to.startIndex {
                            _ = try Self.directory(String(to[..<slash]), in: target, owner: owner)
                        }
                        var name = [CChar](repeating: 0, count: Int(NAME_MAX) + 1)
                        guard let parent = Descriptor(berth_in_root_parent(target, to, &name, name.count)) else {
                            throw BuildError("make the directory of \(to)", errno: errno)
                        }
                        let cut = Array(name.prefix { $0 != 0 }) + [0]
                        try copier.copy(source, into: parent.fd, name: cut)
                    }
                }
            }
        }
        try commit(layer, instruction.original, key: key)
        return false
    }

    /// A directory in the step's tree, made (with its parents) when missing, resolved inside it.
    /// The ones made take `owner` (--chown), as BuildKit gives them; those there keep theirs.
    static func directory(_ path: String, in root: Int32, owner: (uid: UInt32, gid: UInt32)? = nil) throws
        -> Descriptor
    {
        var missing: [String] = []
        if owner != nil {
            var prefix = ""
            for part in path.split(separator: "/") {
                prefix += "/" + part
                if missing.isEmpty, Descriptor(berth_in_root_open(root, prefix, Int32(BERTH_O_PATH))) != nil {
                    continue
                }
                missing.append(prefix)
            }
        }
        guard let dir = Descriptor(berth_in_root(root, path, Int32(BERTH_IN_ROOT_MKDIR), 0o755)) else {
            throw BuildError("make the directory \(path)", errno: errno)
        }
        if let owner {
            for made in missing {
                guard let fd = Descriptor(berth_in_root_open(root, made, Int32(BERTH_O_PATH))),
                    fchownat(fd.fd, "", owner.uid, owner.gid, StageBuild.atEmptyPath) == 0
                else { throw BuildError("chown \(made)", errno: errno) }
            }
        }
        return dir
    }

    static func isDirectory(_ path: String, in root: Int32) -> Bool {
        guard let fd = Descriptor(berth_in_root_open(root, path, O_RDONLY | O_DIRECTORY)) else { return false }
        _ = fd
        return true
    }

    /// The paths under `root` a wildcard source names, component by component (Go's
    /// filepath.Match per name, as Docker's), in byte order, without .dockerignore's. Names are
    /// kept as bytes: one need not be UTF-8.
    func glob(_ pattern: String, root: Int32, ignore: DockerIgnore?) throws -> [(path: String, bytes: [UInt8])] {
        var matches: [(path: String, bytes: [UInt8])] = [("", [])]
        for component in pattern.split(separator: "/").map(String.init) {
            var next: [(path: String, bytes: [UInt8])] = []
            for prefix in matches {
                guard
                    let dir = Descriptor(
                        berth_in_root_open(root, SourceTree.cString(prefix.bytes), O_RDONLY | O_DIRECTORY))
                else { continue }
                var names: [[UInt8]] = []
                if PathPattern.hasWildcards(component) {
                    for raw in try SourceTree.names(dir.fd, display: prefix.path) {
                        let bytes = raw.dropLast().map { UInt8(bitPattern: $0) }
                        if (try? PathPattern.matches(component, String(decoding: bytes, as: UTF8.self))) == true {
                            names.append(bytes)
                        }
                    }
                } else if faccessat(dir.fd, component, F_OK, AT_SYMLINK_NOFOLLOW) == 0 {
                    names = [Array(component.utf8)]
                }
                for name in names {
                    let text = String(decoding: name, as: UTF8.self)
                    let path = prefix.path.isEmpty ? text : prefix.path + "/" + text
                    if let ignore, ignore.excludes(path) { continue }
                    next.append((path, prefix.bytes.isEmpty ? name : prefix.bytes + [UInt8(ascii: "/")] + name))
                }
            }
            matches = next
        }
        return matches
    }
}
