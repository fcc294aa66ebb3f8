import FoundationEssentials

/// An image as the runtime needs it: what to run (config) and the unpacked layers to stack.
public struct Image {
    /// The familiar reference (`busybox:latest`); empty for an image imported without one.
    public var reference: String
    /// `sha256:<hex>`, the digest of the image's config blob (what `docker images` shortens).
    public var id: String
    public var config: ImageConfig
    /// Unpacked layer directories, lowest first, ready to be overlayfs lowerdirs
    /// (overlayfs lists them the other way round: topmost first).
    public var layerPaths: [String]
    /// Uncompressed size of all layers in bytes.
    public var size: Int64
    public var created: Date?
    /// `sha256:<hex>` of the manifest the reference points at.
    public var manifestDigest: String
    /// The layers' diff IDs, lowest first, repeats included (`layerPaths` has each directory once).
    public var diffIDs: [String]
    public var architecture: String
    public var os: String
    /// `repository@sha256:...` of the registry's manifest (or index) this image was pulled by, in
    /// the familiar form; nil for an image that never came from a registry.
    public var repoDigest: String? = nil
}
