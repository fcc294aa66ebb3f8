/// What a build reports as it goes, for the CLI to draw: BuildKit's vertices, one per step.
/// Steps of stages built in parallel interleave; `step` tells them apart.
public enum BuildEvent: Sendable {
    /// A step begins: `name` is "[build 3/6] RUN make" (stage name or index, position in the
    /// stage counting FROM as the first, the instruction as written).
    case started(step: Int, name: String)
    /// The step's result came from the cache.
    case cached(step: Int)
    /// A line of a RUN step's output (stdout and stderr as they come).
    case output(step: Int, line: String)
    /// The step is done, after `seconds`.
    case finished(step: Int, seconds: Double)
    /// The step failed; the build's error follows.
    case failed(step: Int, seconds: Double)
    /// A note outside any step (an image being pulled, the result's ID and names).
    case note(String)
}

public typealias BuildProgress = @Sendable (BuildEvent) -> Void
