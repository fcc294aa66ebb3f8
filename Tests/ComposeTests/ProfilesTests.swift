import Foundation
import Testing

@testable import Compose

/// Profiles: services without profiles are always enabled; `--profile` (or COMPOSE_PROFILES)
/// enables the others; `*` enables all; services asked for by name bring their profiles.
@Suite struct ProfilesTests {
    let yaml = """
        services:
          app: {image: a}
          debug:
            image: d
            profiles: [debug]
          tools:
            image: t
            profiles: [tools, debug]
          seed:
            image: s
            profiles: [seed]
            depends_on: [app]
        """

    func load(profiles: [String] = [], environment: [String: String] = [:], services: [String] = []) throws -> Project {
        let p = try TempProject(["compose.yaml": yaml])
        defer { p.cleanup() }
        var o = p.options(profiles: profiles, environment: environment)
        o.services = services
        return try ComposeLoader.load(o)
    }

    @Test func withoutProfilesOnlyServicesWithoutProfilesRun() throws {
        let project = try load()
        #expect(project.serviceNames == ["app"])
        #expect(project.disabledServices.map(\.name) == ["debug", "seed", "tools"])
    }

    @Test func aProfileEnablesEveryServiceThatListsIt() throws {
        #expect(try load(profiles: ["debug"]).serviceNames == ["app", "debug", "tools"])
        #expect(try load(profiles: ["tools", "seed"]).serviceNames == ["app", "seed", "tools"])
    }

    @Test func composeProfilesIsUsedWithoutTheOption() throws {
        #expect(try load(environment: ["COMPOSE_PROFILES": "seed, tools"]).serviceNames == ["app", "seed", "tools"])
        // the option wins
        #expect(
            try load(profiles: ["debug"], environment: ["COMPOSE_PROFILES": "seed"]).serviceNames == [
                "app", "debug", "tools",
            ])
    }

    @Test func starEnablesEverything() throws {
        #expect(try load(profiles: ["*"]).serviceNames == ["app", "debug", "seed", "tools"])
    }

    @Test func servicesAskedForByNameAreEnabledWithTheirDependencies() throws {
        let project = try load(services: ["seed"])
        #expect(project.serviceNames == ["app", "seed"])
    }

    @Test func dependingOnADisabledServiceIsAnError() throws {
        let p = try TempProject([
            "compose.yaml":
                "services:\n  app:\n    image: a\n    depends_on: [db]\n  db:\n    image: d\n    profiles: [db]\n"
        ])
        defer { p.cleanup() }
        #expect(
            p.error()?.message
                == "service \"app\" depends on undefined service \"db\" (it is disabled: its profiles are not active)")
        #expect(try p.load(profiles: ["db"]).serviceNames == ["app", "db"])
        // An optional dependency on a disabled service is fine.
        try p.write(
            "compose.yaml",
            "services:\n  app:\n    image: a\n    depends_on:\n      db: {condition: service_started, required: false}\n  db:\n    image: d\n    profiles: [db]\n"
        )
        #expect(try p.load().serviceNames == ["app"])
    }
}
