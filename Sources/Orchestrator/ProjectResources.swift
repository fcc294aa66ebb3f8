import Compose
import Network
import Runtime

/// A project's networks and named volumes: made before its containers (`up`), removed after them
/// (`down`); external ones must exist and are never removed.
struct ProjectResources {
    let root: String
    let progress: ProgressSink
    let warn: @Sendable (String) -> Void

    /// The networks the given services use, by project key, made when missing.
    func ensureNetworks(for services: [Service], in project: Project) throws {
        var keys = Set<String>()
        for service in services where service.networkMode == nil {
            keys.formUnion(service.networks.isEmpty ? ["default"] : Array(service.networks.keys))
        }
        let bridges = BridgeNetworks(root: root)
        for key in keys.sorted() {
            let network = project.networks[key] ?? Compose.Network()
            let name = ServiceSpecBuilder.networkName(key, in: project)
            if network.external {
                guard (try? bridges.network(name)) != nil else {
                    throw OrchestratorError(
                        "network \(name) declared as external, but could not be found (create it with `berth network create \(name)`)"
                    )
                }
                continue
            }
            if let existing = try? bridges.network(name) {
                // Used as docker compose uses it, but `down` removes only what carries this
                // project's label.
                switch existing.labels[ComposeLabel.project] {
                case project.name?: break
                case let other?: throw OrchestratorError("network \(name) was found but belongs to project \(other)")
                case nil:
                    warn(
                        "a network with name \(name) exists but was not created by compose; it is used, and left at down"
                    )
                }
                continue
            }
            if let driver = network.driver, driver != "bridge" {
                throw OrchestratorError(
                    "network \(key): driver \(driver) is not supported (berth makes bridge networks)")
            }
            var options = BridgeNetworks.Options()
            options.internal = network.internal
            options.labels = network.labels
            options.labels[ComposeLabel.project] = project.name
            options.labels[ComposeLabel.network] = key
            options.labels[ComposeLabel.version] = ComposeLabel.versionValue
            if let pool = network.ipam.config.first {
                options.subnet = try pool.subnet.map { try parse($0, IPv4Subnet.init, "subnet", key) }
                options.gateway = try pool.gateway.map { try parse($0, IPv4Address.init, "gateway", key) }
                options.ipRange = try pool.ipRange.map { try parse($0, IPv4Subnet.init, "ip_range", key) }
            }
            if let mtu = network.driverOpts["com.docker.network.driver.mtu"] {
                guard let value = UInt32(mtu), value >= 68 else {
                    throw OrchestratorError("network \(key): invalid com.docker.network.driver.mtu \"\(mtu)\"")
                }
                options.mtu = value
            }
            for option in network.driverOpts.keys where option != "com.docker.network.driver.mtu" {
                throw OrchestratorError("network \(key): driver option \(option) is not supported")
            }
            progress(ProgressEvent(.network, name, "Creating", .working))
            _ = try bridges.create(name, options)
            progress(ProgressEvent(.network, name, "Created"))
        }
    }

    private func parse<T>(_ text: String, _ make: (String) -> T?, _ what: String, _ key: String) throws -> T {
        guard let value = make(text) else { throw OrchestratorError("network \(key): invalid \(what) \"\(text)\"") }
        return value
    }

    /// The named volumes the given services mount, made when missing.
    func ensureVolumes(for services: [Service], in project: Project) throws {
        var keys = Set<String>()
        for service in services {
            for volume in service.volumes where volume.type == "volume" {
                if let source = volume.source { keys.insert(source) }
            }
        }
        let volumes = VolumeStore(root: root)
        for key in keys.sorted() {
            guard let volume = project.volumes[key] else {
                throw OrchestratorError("service volume \(key) is not declared in the top-level volumes section")
            }
            let name = ServiceSpecBuilder.volumeName(key, in: project)
            if volume.external {
                guard (try? volumes.volume(name)) != nil else {
                    throw OrchestratorError(
                        "external volume \"\(name)\" not found (create it with `berth volume create \(name)`)")
                }
                continue
            }
            if let existing = try? volumes.volume(name) {
                switch existing.labels[ComposeLabel.project] {
                case project.name?: break
                case let other?:
                    warn(
                        "volume \"\(name)\" already exists but was created for project \"\(other)\"; it is used, and left at down -v"
                    )
                case nil:
                    warn(
                        "volume \"\(name)\" already exists but was not created by compose; use `external: true` to use an existing volume"
                    )
                }
                continue
            }
            if let driver = volume.driver, driver != "local" {
                throw OrchestratorError("volume \(key): driver \(driver) is not supported (berth makes local volumes)")
            }
            var labels = volume.labels
            labels[ComposeLabel.project] = project.name
            labels[ComposeLabel.volume] = key
            labels[ComposeLabel.version] = ComposeLabel.versionValue
            progress(ProgressEvent(.volume, name, "Creating", .working))
            _ = try volumes.create(name, labels: labels)
            progress(ProgressEvent(.volume, name, "Created"))
        }
    }

    /// `down`: the project's networks, those that carry its label (the record only says where
    /// to look first: a network of the same name made by someone else meanwhile stays).
    func removeNetworks(project: String) -> [Swift.Error] {
        let bridges = BridgeNetworks(root: root)
        let labelled = bridges.store.networks().filter { $0.labels[ComposeLabel.project] == project }.map(\.name)
        var errors: [Swift.Error] = []
        for name in labelled.sorted() {
            progress(ProgressEvent(.network, name, "Removing", .working))
            do {
                try bridges.remove(name)
                progress(ProgressEvent(.network, name, "Removed"))
            } catch {
                progress(ProgressEvent(.network, name, "Error", .failed, detail: "\(error)"))
                errors.append(error)
            }
        }
        return errors
    }

    /// `down -v`: the project's named volumes, those that carry its label.
    func removeVolumes(project: String) -> [Swift.Error] {
        let volumes = VolumeStore(root: root)
        let labelled = volumes.list().filter { $0.labels[ComposeLabel.project] == project }.map(\.name)
        var errors: [Swift.Error] = []
        for name in labelled.sorted() {
            progress(ProgressEvent(.volume, name, "Removing", .working))
            do {
                try volumes.remove(name, force: false)
                progress(ProgressEvent(.volume, name, "Removed"))
            } catch {
                progress(ProgressEvent(.volume, name, "Error", .failed, detail: "\(error)"))
                errors.append(error)
            }
        }
        return errors
    }
}
