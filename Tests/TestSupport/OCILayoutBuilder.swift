import Crypto
import Foundation

/// One layer of a test image: a directory tree written to disk, then `tar` and `gzip -n` (or zstd).
public struct LayerSpec {
    public enum Compression {
        case gzip, zstd
    }

    public enum Entry {
        case file(String, Data, mode: Int)
        case directory(String)
        case symlink(String, target: String)
        /// `count` bytes from /dev/urandom (incompressible).
        case random(String, count: Int)
        /// busybox-static as /bin/busybox, its applets as links beside it, /etc/passwd and group, /tmp.
        case busybox
    }

    public var entries: [Entry]
    public var compression: Compression

    public init(_ entries: [Entry], compression: Compression = .gzip) {
        self.entries = entries
        self.compression = compression
    }

    public static func file(_ path: String, _ text: String, mode: Int = 0o644) -> Entry {
        .file(path, Data(text.utf8), mode: mode)
    }

    /// The OCI whiteout of `path` (`DIR/.wh.NAME`): the lower layers' `path` is deleted.
    public static func whiteout(_ path: String) -> Entry {
        let url = URL(fileURLWithPath: "/" + path)
        let parent = url.deletingLastPathComponent().path
        return .file((parent == "/" ? "" : parent) + "/.wh." + url.lastPathComponent, Data(), mode: 0o644)
    }

    /// The opaque marker of `directory` (`DIR/.wh..wh..opq`): the lower layers' content of it is hidden.
    public static func opaque(_ directory: String) -> Entry {
        .file(directory + "/.wh..wh..opq", Data(), mode: 0o644)
    }

    public static let busybox = LayerSpec([.busybox])
}

/// An image's configuration and layers, for OCILayoutBuilder.
public struct ImageSpec {
    public var layers: [LayerSpec]
    public var env: [String]
    public var cmd: [String]?
    public var entrypoint: [String]?
    public var workingDir: String?
    public var architecture: String
    public var os: String
    public var variant: String?

    public init(
        layers: [LayerSpec], env: [String] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        cmd: [String]? = ["sh"], entrypoint: [String]? = nil, workingDir: String? = nil,
        architecture: String = OCILayoutBuilder.hostArchitecture, os: String = "linux", variant: String? = nil
    ) {
        (self.layers, self.env, self.cmd, self.entrypoint, self.workingDir) = (layers, env, cmd, entrypoint, workingDir)
        (self.architecture, self.os, self.variant) = (architecture, os, variant)
    }
}

/// A content descriptor (mediaType, digest, size), with the platform of an index entry.
public struct OCIDescriptor {
    public var mediaType: String
    public var digest: String
    public var size: Int
    public var platform: String?

    var json: [String: Any] {
        var object: [String: Any] = ["mediaType": mediaType, "digest": digest, "size": size]
        if let platform {
            let parts = platform.split(separator: "/").map(String.init)
            var p: [String: Any] = ["os": parts[0], "architecture": parts[1]]
            if parts.count > 2 { p["variant"] = parts[2] }
            object["platform"] = p
        }
        return object
    }
}

/// What OCILayoutBuilder.image wrote.
public struct BuiltImage {
    public var manifest: OCIDescriptor
    /// The config's digest: Docker's (and berth's) image ID.
    public var configDigest: String
    /// The compressed layers' digests and sizes, in manifest order.
    public var layers: [OCIDescriptor]
    public var diffIDs: [String]
    public var platform: String
}

/// Builds OCI image layouts (oci-layout, index.json, blobs/sha256) in a folder: images from
/// layer specs, indexes of several platforms, tags; `RegistryServer.push` seeds a registry with them.
public final class OCILayoutBuilder {
    public static let manifestType = "application/vnd.oci.image.manifest.v1+json"
    public static let indexType = "application/vnd.oci.image.index.v1+json"
    public static let configType = "application/vnd.oci.image.config.v1+json"
    public static let layerType = "application/vnd.oci.image.layer.v1.tar+gzip"

    /// The host's architecture as OCI names it (amd64, arm64, ...).
    public static let hostArchitecture: String = {
        var name = utsname()
        uname(&name)
        let machine = withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return ["x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"][machine] ?? machine
    }()

    /// An architecture that is not the host's, for `--platform` tests.
    public static var otherArchitecture: String { hostArchitecture == "arm64" ? "amd64" : "arm64" }

    public let path: String
    private var tags: [(String, OCIDescriptor)] = []
    private let work: String
    private var counter = 0

    /// A layout in `path` (created).
    public init(at path: String) throws {
        self.path = path
        work = path + ".work"
        try FileManager.default.createDirectory(atPath: path + "/blobs/sha256", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: path + "/oci-layout"))
        try writeIndex()
    }

    deinit { try? FileManager.default.removeItem(atPath: work) }

    public static func sha256(_ data: Data) -> String {
        "sha256:" + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// Stores `data` as a blob; its digest.
    @discardableResult
    public func blob(_ data: Data) throws -> String {
        let digest = Self.sha256(data)
        try data.write(to: URL(fileURLWithPath: blobPath(digest)))
        return digest
    }

    public func blobPath(_ digest: String) -> String {
        path + "/blobs/sha256/" + digest.replacingOccurrences(of: "sha256:", with: "")
    }

    public func readBlob(_ digest: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: blobPath(digest)))
    }

    /// The layer's tar.gz blob and its diff ID (the uncompressed tar's digest).
    public func layer(_ spec: LayerSpec) throws -> (descriptor: OCIDescriptor, diffID: String) {
        counter += 1
        let tree = work + "/layer\(counter)"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tree) }
        let files = FileManager.default
        func parent(_ p: String) throws {
            try files.createDirectory(
                atPath: URL(fileURLWithPath: tree + "/" + p).deletingLastPathComponent().path,
                withIntermediateDirectories: true)
        }
        for entry in spec.entries {
            switch entry {
            case .file(let p, let data, let mode):
                try parent(p)
                try data.write(to: URL(fileURLWithPath: tree + "/" + p))
                try files.setAttributes([.posixPermissions: mode], ofItemAtPath: tree + "/" + p)
            case .directory(let p):
                try files.createDirectory(atPath: tree + "/" + p, withIntermediateDirectories: true)
            case .symlink(let p, let target):
                try parent(p)
                try files.createSymbolicLink(atPath: tree + "/" + p, withDestinationPath: target)
            case .random(let p, let count):
                try parent(p)
                let random = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/dev/urandom"))
                defer { try? random.close() }
                var data = Data()
                while data.count < count { data += try random.read(upToCount: count - data.count) ?? Data() }
                try data.write(to: URL(fileURLWithPath: tree + "/" + p))
            case .busybox:
                let busybox = Command.resolve("busybox")
                try files.createDirectory(atPath: tree + "/bin", withIntermediateDirectories: true)
                for dir in ["etc", "tmp", "root"] {
                    try files.createDirectory(atPath: tree + "/" + dir, withIntermediateDirectories: true)
                }
                try files.copyItem(atPath: busybox, toPath: tree + "/bin/busybox")
                for applet in try Command.check(busybox, ["--list"]).stdout.split(separator: "\n")
                where applet != "busybox" {
                    try files.createSymbolicLink(atPath: tree + "/bin/\(applet)", withDestinationPath: "busybox")
                }
                try Data("root:x:0:0:root:/root:/bin/sh\n".utf8).write(to: URL(fileURLWithPath: tree + "/etc/passwd"))
                try Data("root:x:0:\n".utf8).write(to: URL(fileURLWithPath: tree + "/etc/group"))
                try files.setAttributes([.posixPermissions: 0o1777], ofItemAtPath: tree + "/tmp")
            }
        }
        let tar = work + "/layer\(counter).tar"
        let compressed = tar + (spec.compression == .gzip ? ".gz" : ".zst")
        defer {
            try? files.removeItem(atPath: tar)
            try? files.removeItem(atPath: compressed)
        }
        try Command.check(
            "tar",
            [
                "--numeric-owner", "--owner=0", "--group=0", "--sort=name", "--mtime=@1700000000", "-C", tree,
                "-cf", tar, ".",
            ])
        switch spec.compression {
        case .gzip: try Command.check("gzip", ["-n", "-k", tar])
        case .zstd: try Command.check("zstd", ["-q", "-k", tar, "-o", compressed])
        }
        let diffID = Self.sha256(try Data(contentsOf: URL(fileURLWithPath: tar)))
        let data = try Data(contentsOf: URL(fileURLWithPath: compressed))
        let digest = try blob(data)
        let mediaType = spec.compression == .gzip ? Self.layerType : "application/vnd.oci.image.layer.v1.tar+zstd"
        return (OCIDescriptor(mediaType: mediaType, digest: digest, size: data.count), diffID)
    }

    /// An image: its layers, config and manifest as blobs.
    public func image(_ spec: ImageSpec) throws -> BuiltImage {
        var layers: [OCIDescriptor] = []
        var diffIDs: [String] = []
        for layerSpec in spec.layers {
            let (descriptor, diffID) = try layer(layerSpec)
            layers.append(descriptor)
            diffIDs.append(diffID)
        }
        var config: [String: Any] = ["Env": spec.env]
        if let cmd = spec.cmd { config["Cmd"] = cmd }
        if let entrypoint = spec.entrypoint { config["Entrypoint"] = entrypoint }
        if let workingDir = spec.workingDir { config["WorkingDir"] = workingDir }
        var image: [String: Any] = [
            "architecture": spec.architecture, "os": spec.os, "created": "2024-01-02T03:04:05Z", "config": config,
            "rootfs": ["type": "layers", "diff_ids": diffIDs],
            "history": diffIDs.map { _ in ["created": "2024-01-02T03:04:05Z", "created_by": "OCILayoutBuilder"] },
        ]
        if let variant = spec.variant { image["variant"] = variant }
        let configData = try Self.json(image)
        let configDigest = try blob(configData)
        let manifest: [String: Any] = [
            "schemaVersion": 2, "mediaType": Self.manifestType,
            "config": OCIDescriptor(mediaType: Self.configType, digest: configDigest, size: configData.count).json,
            "layers": layers.map(\.json),
        ]
        let manifestData = try Self.json(manifest)
        let platform = "\(spec.os)/\(spec.architecture)" + (spec.variant.map { "/" + $0 } ?? "")
        let descriptor = OCIDescriptor(
            mediaType: Self.manifestType, digest: try blob(manifestData), size: manifestData.count, platform: platform)
        return BuiltImage(
            manifest: descriptor, configDigest: configDigest, layers: layers, diffIDs: diffIDs, platform: platform)
    }

    /// An image index of the images (each entry with its platform).
    public func index(_ images: [BuiltImage]) throws -> OCIDescriptor {
        let data = try Self.json([
            "schemaVersion": 2, "mediaType": Self.indexType, "manifests": images.map(\.manifest.json),
        ])
        return OCIDescriptor(mediaType: Self.indexType, digest: try blob(data), size: data.count)
    }

    /// Names `descriptor` `tag` in index.json (org.opencontainers.image.ref.name), as skopeo's
    /// `oci:DIR:TAG` finds it.
    public func tag(_ tag: String, _ descriptor: OCIDescriptor) throws {
        var plain = descriptor
        plain.platform = nil
        tags.removeAll { $0.0 == tag }
        tags.append((tag, plain))
        try writeIndex()
    }

    /// An image of one layer built from `spec` and tagged: the common case.
    @discardableResult
    public func image(_ spec: ImageSpec, tag: String) throws -> BuiltImage {
        let built = try image(spec)
        try self.tag(tag, built.manifest)
        return built
    }

    private func writeIndex() throws {
        let index: [String: Any] = [
            "schemaVersion": 2, "mediaType": Self.indexType,
            "manifests": tags.map { tag, descriptor in
                var json = descriptor.json
                json["annotations"] = ["org.opencontainers.image.ref.name": tag]
                return json
            },
        ]
        try Self.json(index).write(to: URL(fileURLWithPath: path + "/index.json"))
    }

    static func json(_ object: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }
}
