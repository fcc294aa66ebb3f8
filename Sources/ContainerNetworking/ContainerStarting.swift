import Runtime

extension ContainerNetworking {
    /// Starts a created or exited container detached, on its networks: the last run's endpoints
    /// and proxy taken down first (unless its exit released them already: its shim may be doing
    /// so now, and is waited for), so its ports are free before this run binds them. `berth` is
    /// the binary whose hidden commands berth-shim runs when the container exits (the release of
    /// its networks, or `--rm`'s removal). For `container start`, and the orchestrator's starts
    /// and restarts.
    public func startDetached(_ container: Container, berth: String) throws {
        let spec = container.record.spec
        // Before its ports are bound: Docker's answer for a running one, not a bind error.
        guard container.state().status != .running else {
            throw Container.Error(container: container.name, stage: .start, detail: "the container is already running")
        }
        container.waitForLastRunsShim()
        _ = try container.ifNotRunning { try tearDown(container: container.id) }
        let plan = try plan(spec)
        do {
            _ = try container.start(
                stdio: .detached(stdin: spec.interactive, tty: spec.tty),
                exitCommand: Self.exitCommand(container, root: root, berth: berth, plan: plan),
                beforeResume: plan.isEmpty
                    ? nil : { pid, netns in try self.attach(container, pid: pid, namespace: netns, to: plan) })
        } catch {
            if container.state().status != .running { try? tearDown(container: container.id) }
            throw error
        }
    }

    /// What berth-shim runs once the container's exit is recorded (and nobody attached is left
    /// to do it): `--rm`'s removal, or for a container on bridge networks the release of its
    /// endpoints, ports and address (Docker too releases them when a container stops; they are
    /// made again when it starts). The shim runs it with an empty environment, so the root is
    /// given.
    public static func exitCommand(_ container: Container, root: String, berth: String, plan: Plan) -> [String]? {
        if container.record.spec.autoRemove { return [berth, "--root", root, "container", "rm", "-f", container.id] }
        guard !plan.isEmpty else { return nil }
        return [berth, "--root", root, "container", "release-network", container.id]
    }
}
