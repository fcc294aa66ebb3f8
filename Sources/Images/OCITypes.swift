import Foundation

/// The JSON documents of the OCI image layout and image spec that the store reads and writes.
/// Only the fields berth uses are modelled; unknown fields in documents from other tools are
/// ignored on read.
enum MediaType {
    static let index = "application/vnd.oci.image.index.v1+json"
    static let manifest = "application/vnd.oci.image.manifest.v1+json"
    static let config = "application/vnd.oci.image.config.v1+json"
    static let layerTar = "application/vnd.oci.image.layer.v1.tar"
    static let layerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
}

/// The annotation that names a manifest in index.json.
let refNameAnnotation = "org.opencontainers.image.ref.name"

struct Platform: Codable, Equatable {
    var architecture: String
    var os: String
    var variant: String?
}

struct Descriptor: Codable, Equatable {
    var mediaType: String
    var digest: String
    var size: Int64
    var annotations: [String: String]?
    var platform: Platform?

    var refName: String? { annotations?[refNameAnnotation] }
}

struct OCIIndex: Codable {
    var schemaVersion = 2
    var mediaType: String? = MediaType.index
    var manifests: [Descriptor] = []
}

struct OCIManifest: Codable {
    var schemaVersion = 2
    var mediaType: String? = MediaType.manifest
    var config: Descriptor
    var layers: [Descriptor]
}

struct RootFS: Codable {
    var type = "layers"
    var diffIDs: [String]

    enum CodingKeys: String, CodingKey {
        case type
        case diffIDs = "diff_ids"
    }
}

struct History: Codable {
    var created: String?
    var createdBy: String?
    var comment: String?
    var emptyLayer: Bool?

    enum CodingKeys: String, CodingKey {
        case created
        case createdBy = "created_by"
        case comment
        case emptyLayer = "empty_layer"
    }
}

/// The image configuration blob; its digest is the image ID.
struct OCIImageConfig: Codable {
    var created: String?
    var architecture: String
    var os: String
    var config: ImageConfig?
    var rootfs: RootFS
    var history: [History]?
}

enum JSON {
    /// Stable bytes for content addressing: the same document always hashes the same.
    static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw ImageStore.Error.corrupt(path, "not a valid \(type) document")
        }
    }
}

/// RFC 3339 timestamps as the image spec writes them, with or without fractional seconds.
enum Timestamp {
    static func format(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }

    static func parse(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: text) { return d }
        // Go writes nanoseconds (9 digits), which ISO8601DateFormatter rejects; cut to milliseconds.
        if let dot = text.firstIndex(of: "."), let end = text[dot...].firstIndex(where: { !$0.isNumber && $0 != "." }) {
            let frac = text[text.index(after: dot)..<end].prefix(3)
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return f.date(from: String(text[..<dot]) + "." + frac + String(text[end...]))
        }
        return nil
    }
}
