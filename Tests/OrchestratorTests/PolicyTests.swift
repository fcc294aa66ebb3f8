import Compose
import Images
import Runtime
import Testing

@testable import Orchestrator

/// The supervisor's rules, alone: restart policies as Docker parses and applies them, health as
/// Docker counts it, and the start order read back from a project record.
struct PolicyTests {
    @Test func restartPoliciesParseAsDockers() throws {
        #expect(try RestartPolicy(parsing: "no") == .no)
        #expect(try RestartPolicy(parsing: "always") == .always)
        #expect(try RestartPolicy(parsing: "unless-stopped") == .unlessStopped)
        #expect(try RestartPolicy(parsing: "on-failure") == .onFailure(maxRetries: nil))
        #expect(try RestartPolicy(parsing: "on-failure:3") == .onFailure(maxRetries: 3))
        for bad in ["sometimes", "on-failure:x", "on-failure:-1", "always:2"] {
            #expect(throws: OrchestratorError.self) { try RestartPolicy(parsing: bad) }
        }
        #expect(RestartPolicy(condition: "none", maxAttempts: nil) == .no)
        #expect(RestartPolicy(condition: "on-failure", maxAttempts: 2) == .onFailure(maxRetries: 2))
        #expect(RestartPolicy(condition: nil, maxAttempts: nil) == .always)
    }

    @Test func restartDecisionsAndBackoff() {
        #expect(!RestartPolicy.no.restarts(exitCode: 1, restarts: 0))
        #expect(RestartPolicy.always.restarts(exitCode: 0, restarts: 100))
        let thrice = RestartPolicy.onFailure(maxRetries: 3)
        #expect(!thrice.restarts(exitCode: 0, restarts: 0), "a clean exit is not a failure")
        #expect(thrice.restarts(exitCode: 2, restarts: 2))
        #expect(!thrice.restarts(exitCode: 2, restarts: 3))
        // Docker's: 100 ms doubling, at most a minute.
        #expect(RestartPolicy.delay(afterRestarts: 0) == 0.1)
        #expect(RestartPolicy.delay(afterRestarts: 3) == 0.8)
        #expect(RestartPolicy.delay(afterRestarts: 30) == 60)
    }

    @Test func healthCountsFailuresAfterTheStartPeriodOnly() {
        let spec = HealthcheckSpec(command: ["true"], retries: 2)
        func probe(_ code: Int32) -> HealthRecord.Probe {
            HealthRecord.Probe(start: "", end: "", exitCode: code, output: "")
        }
        var health = HealthRecord(startedAt: "t")
        health.record(probe(1), spec: spec, inStartPeriod: true)
        health.record(probe(1), spec: spec, inStartPeriod: true)
        #expect(health.status == .starting && health.failingStreak == 0)
        health.record(probe(0), spec: spec, inStartPeriod: true)
        #expect(health.status == .healthy)
        health.record(probe(1), spec: spec, inStartPeriod: false)
        #expect(health.status == .healthy && health.failingStreak == 1)
        health.record(probe(1), spec: spec, inStartPeriod: false)
        #expect(health.status == .unhealthy)
        for _ in 0..<5 { health.record(probe(0), spec: spec, inStartPeriod: false) }
        #expect(health.log.count == 5, "Docker keeps the last five probes")
    }

    @Test func healthchecksTakeComposesForms() throws {
        var check = Healthcheck()
        check.test = ["CMD-SHELL", "wget -q localhost"]
        check.interval = ComposeDuration(seconds: 2)
        let shell = try #require(try HealthcheckSpec(check))
        #expect(shell.command == ["/bin/sh", "-c", "wget -q localhost"])
        #expect(shell.interval == 2 && shell.timeout == 30 && shell.retries == 3 && shell.startInterval == 5)
        check.test = ["NONE"]
        #expect(try HealthcheckSpec(check) == nil)
        check.test = ["CMD", "true"]
        check.disable = true
        #expect(try HealthcheckSpec(check) == nil)
        check.disable = false
        check.test = ["RUN", "true"]
        #expect(throws: OrchestratorError.self) { try HealthcheckSpec(check) }
    }

    @Test func startLevelsComeFromTheRecord() {
        let dependency = DependencyRecord(condition: "service_started", restart: false, required: true)
        let record = ProjectRecord(
            name: "p", workingDir: "/", configFiles: [],
            services: [
                ServiceRecord(name: "web", dependsOn: ["api": dependency]),
                ServiceRecord(name: "api", dependsOn: ["db": dependency, "cache": dependency]),
                ServiceRecord(name: "db"), ServiceRecord(name: "cache"),
                ServiceRecord(name: "worker", dependsOn: ["db": dependency]),
            ])
        #expect(record.startLevels == [["db", "cache"], ["api", "worker"], ["web"]])
    }

    @Test func portsArePublishedAsDashPWritesThem() {
        #expect(ServiceSpecBuilder.publishing(ServicePort(target: 80, published: "8080")) == "8080:80/tcp")
        #expect(
            ServiceSpecBuilder.publishing(
                ServicePort(hostIP: "127.0.0.1", target: 53, published: "53", protocol: "udp")) == "127.0.0.1:53:53/udp"
        )
        #expect(ServiceSpecBuilder.publishing(ServicePort(target: 80)) == "80/tcp")
        #expect(ServiceSpecBuilder.publishing(ServicePort(hostIP: "127.0.0.1", target: 80)) == "127.0.0.1::80/tcp")
    }

    /// What the supervisor applies counts in the config hash (a changed health check or restart
    /// policy recreates the container, which then starts with it); the start order does not.
    @Test func supervisionIsPartOfTheConfigHash() throws {
        let spec = ContainerSpec(image: "busybox", layerPaths: [])
        let base = ServiceRecord(name: "db")
        var restarting = base
        restarting.restart = .always
        var checked = base
        checked.healthcheck = HealthcheckSpec(command: ["true"])
        var ordered = base
        ordered.dependsOn = ["cache": DependencyRecord(condition: "service_started", restart: false, required: true)]
        let hashes = [base, restarting, checked].map { ServiceSpecBuilder.configHash(spec, supervision: $0) }
        #expect(Set(hashes).count == 3)
        #expect(ServiceSpecBuilder.configHash(spec, supervision: ordered) == hashes[0])
        #expect(ServiceSpecBuilder.configHash(spec, supervision: base) == hashes[0], "stable")
    }

    @Test func composeHealthchecksOverrideTheImagesFieldByField() throws {
        let image = ImageHealthcheck(test: ["CMD", "probe"], interval: 2_000_000_000, retries: 7)
        // None in compose: the image's, its defaults filled in.
        let fromImage = try #require(try HealthcheckSpec(compose: nil, image: image))
        #expect(fromImage.command == ["probe"] && fromImage.interval == 2 && fromImage.retries == 7)
        #expect(fromImage.timeout == 30)
        // Compose's interval over the image's, the image's test kept.
        var compose = Healthcheck()
        compose.interval = ComposeDuration(seconds: 5)
        let merged = try #require(try HealthcheckSpec(compose: compose, image: image))
        #expect(merged.command == ["probe"] && merged.interval == 5 && merged.retries == 7)
        // disable, or NONE on either side: no check.
        compose.disable = true
        #expect(try HealthcheckSpec(compose: compose, image: image) == nil)
        #expect(try HealthcheckSpec(compose: nil, image: ImageHealthcheck(test: ["NONE"])) == nil)
        #expect(try HealthcheckSpec(compose: nil, image: nil) == nil)
    }
}
