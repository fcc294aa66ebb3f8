extension ImageStore {
    /// Gives the image `descriptor` describes the reference `refName` in `index`, as Docker moves a
    /// tag: the image the name moves off stays, untagged (a dangling image), unless another entry
    /// still names it, because a container may still run on its layers and garbage collection only
    /// sees the index; `image prune` is what removes it. An untagged entry of the same image (by
    /// manifest, or by image ID through `imageID(of:)`) goes, now that the image has a name.
    func name(
        _ descriptor: Descriptor, _ refName: String, in index: inout OCIIndex,
        imageID: (Descriptor) -> String? = { _ in nil }
    ) {
        if let old = index.manifests.firstIndex(where: { $0.refName == refName }) {
            let moved = index.manifests.remove(at: old)
            if moved.digest != descriptor.digest, !index.manifests.contains(where: { $0.digest == moved.digest }) {
                var untagged = moved
                untagged.annotations?[refNameAnnotation] = nil
                if untagged.annotations?.isEmpty == true { untagged.annotations = nil }
                index.manifests.append(untagged)
            }
        }
        let id = imageID(descriptor)
        index.manifests.removeAll {
            $0.refName == nil && ($0.digest == descriptor.digest || (id != nil && imageID($0) == id))
        }
        var named = descriptor
        named.annotations = (named.annotations ?? [:]).merging([refNameAnnotation: refName]) { $1 }
        index.manifests.append(named)
    }

    /// The image ID (config digest) of an index entry, for `name`'s untagged duplicates.
    func imageID(of descriptor: Descriptor) -> String? {
        (try? manifest(descriptor.digest))?.config.digest
    }
}
