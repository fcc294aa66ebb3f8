import Images
import Runtime

// The one builder from an image and overrides to a container spec, for the CLI, the tests and
// the coming Orchestrator.
//
// It lives in this small module of its own because it is the one piece of code that needs both
// Images and Runtime, and neither may import the other (docs/architecture.md): Runtime takes
// plain values (`ImageDefaults`'s initializer), Images knows nothing of containers. The CLI is
// no place for it either, since tests and the Orchestrator cannot import an executable. So the
// conversion is written once here, and every caller builds its spec the same way: the
// overrides first (a user's flags, a compose service), then the image's part.

extension ImageDefaults {
    /// What Runtime applies of an image's config: Docker's Entrypoint/Cmd rules, environment,
    /// working directory, user, stop signal, and the exposed ports that `ps` shows.
    public init(config: ImageConfig) {
        self.init(
            entrypoint: config.entrypoint, cmd: config.cmd, env: config.env, workingDir: config.workingDir,
            user: config.user, stopSignal: config.stopSignal, exposedPorts: config.exposedPorts)
    }
}

extension ContainerSpec {
    /// A spec for a container of `image` with nothing overridden; `reference` is the image as
    /// the user named it (what `ps` and `inspect` show).
    public init(image: Image, reference: String) {
        self.init(image: reference, layerPaths: [])
        complete(with: image)
    }

    /// Fills in the image's part (its ID, layers and defaults) of a spec whose overrides are set;
    /// the overrides win over the defaults when the container is made (Runtime's rules).
    public mutating func complete(with image: Image) {
        imageID = image.id
        layerPaths = image.layerPaths
        imageDefaults = ImageDefaults(config: image.config)
    }

    /// `complete(with:)` for the image `reference` names in the store under `root`.
    public mutating func complete(image reference: String, root: String) throws {
        complete(with: try ImageStore(root: root).image(reference))
    }
}
