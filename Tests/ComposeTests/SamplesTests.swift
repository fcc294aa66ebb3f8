import Foundation
import Testing

@testable import Compose

/// Loads every project under samples/ the way `berth` does (file discovery, .env, overrides,
/// profiles), so the samples a person copies from keep working and keep meaning what their
/// READMEs say.
@Suite struct SamplesTests {
    /// samples/ in this checkout, found from this file's own path.
    static let samplesDirectory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("samples")

    static var sampleNames: [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: samplesDirectory.path)) ?? []
        return entries.filter { name in
            var isDirectory: ObjCBool = false
            let path = samplesDirectory.appendingPathComponent(name).path
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
        }.sorted()
    }

    /// Loads a sample as `berth` run inside its directory would, with `environment` as the
    /// whole shell environment (so the machine's own variables cannot change the outcome).
    static func load(
        _ sample: String, files: [String] = [], profiles: [String] = [],
        environment: [String: String] = [:]
    ) throws -> Project {
        let directory = samplesDirectory.appendingPathComponent(sample).path
        var options = ProjectOptions()
        options.files = files
        options.profiles = profiles
        options.workingDirectory = directory
        options.environment = environment
        return try ComposeLoader.load(options)
    }

    @Test func everySampleHasAComposeFileAndAReadme() throws {
        #expect(Self.sampleNames == ["buildstack", "profiles", "testenv", "webstack"])
        for name in Self.sampleNames {
            let directory = Self.samplesDirectory.appendingPathComponent(name)
            #expect(
                FileManager.default.fileExists(atPath: directory.appendingPathComponent("compose.yaml").path), "\(name)"
            )
            #expect(
                FileManager.default.fileExists(atPath: directory.appendingPathComponent("README.md").path), "\(name)")
        }
    }

    @Test(arguments: sampleNames)
    func loadsAndOrdersEverySample(sample: String) throws {
        let project = try Self.load(sample)
        // No top-level `name:` (docker-compose 1.x rejects it): the project is named after its directory.
        #expect(project.name == sample)
        #expect(!project.services.isEmpty)
        for service in project.services {
            if let build = service.build {
                // A built image must start from busybox too: every FROM of its Dockerfile names
                // busybox or an earlier stage.
                let context = build.context.hasPrefix("/") ? build.context : project.workingDir + "/" + build.context
                let dockerfile = try String(
                    contentsOfFile: context + "/" + (build.dockerfile ?? "Dockerfile"), encoding: .utf8)
                let froms = dockerfile.split(separator: "\n").filter { $0.hasPrefix("FROM ") }
                #expect(!froms.isEmpty, "\(sample)/\(service.name): no FROM")
                for from in froms {
                    #expect(from.split(separator: " ")[1] == "busybox", "\(sample)/\(service.name): \(from)")
                }
            } else {
                #expect(service.image == "busybox", "\(sample)/\(service.name) must run on the busybox image")
            }
        }
        // Every dependency can be ordered.
        let levels = try project.dependencyGraph.startLevels()
        #expect(levels.flatMap { $0 }.sorted() == project.serviceNames.sorted())
    }

    // MARK: - webstack

    @Test func webstackResolvesDotEnvAndTheOverride() throws {
        let project = try Self.load("webstack")
        #expect(project.serviceNames == ["api", "db", "web"])
        let web = try #require(project.service("web"))
        let api = try #require(project.service("api"))
        let db = try #require(project.service("db"))

        // .env values, with compose.override.yaml merged over compose.yaml.
        #expect(web.environment["SITE_TITLE"] == "Webstack sample (development)")
        #expect(web.environment["API_ADDRESS"] == "api 9000")
        #expect(db.environment["DB_USER"] == "app")
        #expect(db.environment["DB_PASSWORD"] == "dev-only-secret")
        #expect(api.environment["DB_ADDRESS"] == "db 5432")
        #expect(api.environment["LOG_LEVEL"] == "debug")
        #expect(db.restart == "no")
        #expect(web.restart == "unless-stopped")
        #expect(project.environment["DB_NAME"] == "appdb")

        #expect(web.ports.map(\.published) == ["8080"])
        #expect(web.ports.map(\.target) == [8080])
        #expect(api.ports.map { "\($0.hostIP ?? ""):\($0.published ?? ""):\($0.target)" } == ["127.0.0.1:9001:9000"])

        // Anchors and merge keys: shared settings reached every service.
        #expect(web.`init` == true)
        #expect(db.labels["com.example.stack"] == "webstack")
        #expect(web.healthcheck?.test == ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"])
        #expect(db.healthcheck?.retries == 5)

        // $$ reaches the container as a single $ for its shell.
        #expect(web.command?.last?.contains("<title>$SITE_TITLE</title>") == true)
        #expect(api.healthcheck?.test?.last == "wget -q -O- http://127.0.0.1:$API_PORT/cgi-bin/health | grep -q pong")

        #expect(web.dependsOn["api"]?.condition == "service_healthy")
        #expect(api.dependsOn["db"]?.condition == "service_healthy")
        #expect(try project.dependencyGraph.startLevels() == [["db"], ["api"], ["web"]])
        #expect(project.volumes["dbdata"] != nil)
        #expect(db.volumes.map(\.type) == ["volume"])
        #expect(db.volumes.first?.target == "/data")
    }

    @Test func webstackShellEnvironmentWinsOverDotEnv() throws {
        let project = try Self.load("webstack", environment: ["WEB_PORT": "8181", "SITE_TITLE": "Mine"])
        #expect(project.service("web")?.ports.first?.published == "8181")
        #expect(project.service("web")?.environment["SITE_TITLE"] == "Mine (development)")
    }

    @Test func webstackWithoutTheOverride() throws {
        let project = try Self.load("webstack", files: ["compose.yaml"])
        #expect(project.service("web")?.environment["SITE_TITLE"] == "Webstack sample")
        #expect(project.service("api")?.ports.isEmpty == true)
        #expect(project.service("db")?.restart == "unless-stopped")
    }

    @Test func webstackRequiresItsCredentials() {
        // An empty value in the shell hides the one in .env, and ${DB_PASSWORD:?...} refuses it.
        let error = #expect(throws: ComposeError.self) { try Self.load("webstack", environment: ["DB_PASSWORD": ""]) }
        #expect(error?.description.contains("set DB_PASSWORD in .env") == true)
        #expect(error?.mark?.file.hasSuffix("compose.yaml") == true)
    }

    // MARK: - profiles

    @Test func profilesComeFromDotEnv() throws {
        let project = try Self.load("profiles")
        #expect(project.profiles == ["debug"])
        #expect(project.serviceNames == ["app", "dashboard", "inspector"])
        #expect(project.disabledServices.map(\.name) == ["seed", "shell"])
        let app = try #require(project.service("app"))
        #expect(app.environment["APP_NAME"] == "profiles-demo")
        #expect(app.environment["LOG_LEVEL"] == "debug")
        #expect(app.environment["TICK_SECONDS"] == "2")
        #expect(project.service("dashboard")?.ports.first?.published == "8081")
        #expect(project.service("inspector")?.dependsOn["app"]?.condition == "service_healthy")
    }

    @Test func profileOptionReplacesComposeProfiles() throws {
        let project = try Self.load("profiles", profiles: ["tools"])
        #expect(project.profiles == ["tools"])
        #expect(project.serviceNames == ["app", "seed", "shell"])
        #expect(project.service("seed")?.environment["APP_NAME"] == "profiles-demo")
    }

    @Test func emptyComposeProfilesInTheShellLeavesOnlyCoreServices() throws {
        let project = try Self.load("profiles", environment: ["COMPOSE_PROFILES": ""])
        #expect(project.serviceNames == ["app"])
        let both = try Self.load("profiles", environment: ["COMPOSE_PROFILES": "debug,tools"])
        #expect(both.serviceNames == ["app", "dashboard", "inspector", "seed", "shell"])
    }

    // MARK: - buildstack

    @Test func buildstackBuildsBothServicesWithArgsFromDotEnv() throws {
        let project = try Self.load("buildstack")
        #expect(project.serviceNames == ["api", "web"])
        let web = try #require(project.service("web"))
        let api = try #require(project.service("api"))
        // No image: up names the built images PROJECT-SERVICE.
        #expect(web.image == nil && api.image == nil)
        #expect(web.build?.context.hasSuffix("web") == true)
        #expect(api.build?.context.hasSuffix("api") == true)
        #expect(web.build?.args["SITE_TITLE"] == "Buildstack sample")
        #expect(api.build?.args["API_VERSION"] == "1.0")
        #expect(web.environment["API_ADDRESS"] == "api 9000")
        #expect(web.ports.map { "\($0.hostIP ?? ""):\($0.published ?? ""):\($0.target)" } == ["127.0.0.1:8088:8080"])
        #expect(web.dependsOn["api"]?.condition == "service_healthy")
        #expect(api.healthcheck?.test?.last == "wget -q -O- http://127.0.0.1:$API_PORT/cgi-bin/health | grep -q ok")
        #expect(try project.dependencyGraph.startLevels() == [["api"], ["web"]])
        // Each context leaves notes and editor files out.
        for context in ["api", "web"] {
            let ignore = Self.samplesDirectory.appendingPathComponent("buildstack/\(context)/.dockerignore").path
            #expect(FileManager.default.fileExists(atPath: ignore), "\(context)/.dockerignore")
        }
    }

    @Test func buildstackShellEnvironmentWinsOverDotEnvInBuildArgs() throws {
        let project = try Self.load("buildstack", environment: ["SITE_TITLE": "Mine", "API_VERSION": "2.0"])
        #expect(project.service("web")?.build?.args["SITE_TITLE"] == "Mine")
        #expect(project.service("api")?.build?.args["API_VERSION"] == "2.0")
    }

    // MARK: - testenv

    @Test func testenvGatesTheRunnerOnHealthAndFixtures() throws {
        let project = try Self.load("testenv")
        #expect(project.serviceNames == ["app", "fixtures", "tests"])
        let tests = try #require(project.service("tests"))
        #expect(tests.dependsOn["app"]?.condition == "service_healthy")
        #expect(tests.dependsOn["fixtures"]?.condition == "service_completed_successfully")
        #expect(tests.environment["APP_ADDRESS"] == "app 8000")
        #expect(tests.environment["GREETING"] == "Hello from the service under test")
        #expect(tests.restart == "no")
        #expect(project.service("app")?.healthcheck?.test?.first == "CMD-SHELL")
        #expect(try project.dependencyGraph.startLevels() == [["app", "fixtures"], ["tests"]])
        #expect(try project.dependencyGraph.teardownLevels() == [["tests"], ["app", "fixtures"]])
    }
}
