import FoundationEssentials
import Support

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
    static let layerTarZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    static let dockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar"
    static let dockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

    /// Manifests berth can run: an image manifest, OCI's or Docker's schema 2.
    static let imageManifests: Set<String> = [manifest, dockerManifest]
    /// Lists of manifests, one per platform: OCI's image index or Docker's manifest list.
    static let indexes: Set<String> = [index, dockerManifestList]
    /// Layer blobs berth unpacks (libarchive reads the compression from the bytes).
    static let layers: Set<String> = [
        layerTar, layerTarGzip, layerTarZstd, dockerLayerTar, dockerLayerGzip, dockerForeignLayerGzip,
    ]
}

/// The annotation that names a manifest in index.json.
let refNameAnnotation = "org.opencontainers.image.ref.name"

/// An image's platform: `linux/amd64`, `linux/arm/v7`.
public struct Platform: Codable, Equatable, Sendable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var variant: String?

    public init(architecture: String, os: String, variant: String? = nil) {
        self.architecture = architecture
        self.os = os
        self.variant = variant
    }

    public var description: String { [os, architecture, variant].compactMap { $0 }.joined(separator: "/") }
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
/// (`package`: the CLI prints and reads times in these forms too.)
package enum Timestamp {
    /// UTC with milliseconds, rounded to the nearest as ISO8601DateFormatter did:
    /// "2024-01-02T03:04:05.123Z". By hand: that formatter is in full Foundation, which berth
    /// does not link (see Package.swift), and FoundationEssentials' ISO8601FormatStyle truncates.
    package static func format(_ date: Date) -> String {
        // Halves round up, before 1970 too, as ICU rounds them.
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000 + 0.5).rounded(.down))
        var days = milliseconds / 86_400_000
        var ofDay = milliseconds % 86_400_000
        if ofDay < 0 {
            days -= 1
            ofDay += 86_400_000
        }
        // The proleptic Gregorian date of a day count, the inverse of the one in `parse`.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(ofDay / 3_600_000, 2)):"
            + "\(pad(ofDay / 60_000 % 60, 2)):\(pad(ofDay / 1000 % 60, 2)).\(pad(ofDay % 1000, 3))Z"
    }

    /// By hand, not with ISO8601DateFormatter: that loads ICU calendar and locale data on first
    /// use, about 2-3 ms of every `container run` (which reads the image's `created`), and it
    /// rejects the nanoseconds Go writes. Accepts `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`.
    package static func parse(_ text: String) -> Date? {
        let b = Array(text.utf8)
        func digit(_ i: Int) -> Int? {
            guard i < b.count, b[i] >= 48, b[i] <= 57 else { return nil }
            return Int(b[i]) - 48
        }
        func number(_ at: Int, _ width: Int) -> Int? {
            var value = 0
            for i in at..<(at + width) {
                guard let d = digit(i) else { return nil }
                value = value * 10 + d
            }
            return value
        }
        func byte(_ i: Int, _ c: UInt8) -> Bool { i < b.count && b[i] == c }
        guard let year = number(0, 4), byte(4, 45), let month = number(5, 2), byte(7, 45), let day = number(8, 2),
            byte(10, 84) || byte(10, 116), let hour = number(11, 2), byte(13, 58), let minute = number(14, 2),
            byte(16, 58), let second = number(17, 2),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60
        else { return nil }
        var i = 19
        var nanos = 0
        if byte(i, 46) {
            i += 1
            var digits = 0
            while let d = digit(i) {
                if digits < 9 { nanos = nanos * 10 + d }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 9) { nanos *= 10 }
        }
        var offset = 0
        if byte(i, 90) || byte(i, 122) {
            i += 1
        } else if byte(i, 43) || byte(i, 45), let oh = number(i + 1, 2), byte(i + 3, 58), let om = number(i + 4, 2) {
            offset = (oh * 3600 + om * 60) * (b[i] == 45 ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = CivilDate.daysSince1970(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + Double(nanos) / 1e9)
    }
}
