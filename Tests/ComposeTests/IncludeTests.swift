import Foundation
import Testing

@testable import Compose

/// `include`: other compose projects imported with their own directory and env files.
@Suite struct IncludeTests {
    @Test func shortSyntaxImportsServicesAndResources() throws {
        let p = try TempProject([
            "compose.yaml": "include:\n  - db/compose.yaml\nservices:\n  web:\n    image: web\n    depends_on: [db]\n",
            "db/compose.yaml": """
            services:
              db:
                image: postgres:${PG_VERSION}
                volumes: ["data:/var/lib/postgresql", "./init:/docker-entrypoint-initdb.d"]
            volumes:
              data: {}
            """,
            "db/.env": "PG_VERSION=16\n",
        ])
        defer { p.cleanup() }
        let project = try p.load()
        #expect(project.serviceNames == ["db", "web"])
        let db = try #require(project.service("db"))
        // The included project's .env is used for its interpolation...
        #expect(db.image == "postgres:16")
        // ...and its relative paths resolve against its own directory.
        #expect(db.volumes.last?.source == p.path("db/init"))
        #expect(project.volumes["data"]?.name == "test_data")
        #expect(try project.dependencyGraph.startLevels() == [["db"], ["web"]])
    }

    @Test func longSyntaxWithProjectDirectoryAndEnvFile() throws {
        let p = try TempProject([
            "compose.yaml": """
            include:
              - path: [lib/base.yaml, lib/extra.yaml]
                project_directory: lib/root
                env_file: vars.env
            services:
              app:
                image: app
            """,
            "lib/base.yaml": "services:\n  svc:\n    image: \"${IMG}\"\n    build: ./ctx\n",
            "lib/extra.yaml": "services:\n  svc:\n    restart: always\n",
            "vars.env": "IMG=from-env-file\n",
        ])
        defer { p.cleanup() }
        let project = try p.load()
        let svc = try #require(project.service("svc"))
        #expect(svc.image == "from-env-file")
        #expect(svc.restart == "always")
        #expect(svc.build?.context == p.path("lib/root/ctx"))
    }

    @Test func theIncludingFileWinsOverIncludedDefinitions() throws {
        let p = try TempProject([
            "compose.yaml": "include: [inc.yaml]\nservices:\n  svc:\n    image: mine\n",
            "inc.yaml": "services:\n  svc:\n    image: theirs\n    restart: always\n",
        ])
        defer { p.cleanup() }
        let svc = try #require(try p.load().service("svc"))
        #expect(svc.image == "mine")
        #expect(svc.restart == "always")
    }

    @Test func shellEnvironmentWinsOverTheIncludedEnvFile() throws {
        let p = try TempProject([
            "compose.yaml": "include: [sub/compose.yaml]\n",
            "sub/compose.yaml": "services:\n  s:\n    image: \"${IMG}\"\n",
            "sub/.env": "IMG=from-file\n",
        ])
        defer { p.cleanup() }
        #expect(try p.load(environment: ["IMG": "from-shell"]).service("s")?.image == "from-shell")
    }

    @Test func includeCycleIsAnError() throws {
        let p = try TempProject([
            "compose.yaml": "include: [a.yaml]\nservices:\n  s: {image: x}\n",
            "a.yaml": "include: [b.yaml]\n",
            "b.yaml": "include:\n  - a.yaml\n",
        ])
        defer { p.cleanup() }
        let e = p.error()
        #expect(e?.message.hasPrefix("include cycle detected:") == true)
        #expect(e?.mark?.file == p.path("b.yaml"))
        #expect(e?.mark?.line == 2)
    }

    @Test func missingIncludedFileIsAnError() throws {
        let p = try TempProject(["compose.yaml": "include:\n  - nothere.yaml\n"])
        defer { p.cleanup() }
        let e = p.error()
        #expect(
            e?.description
                == "\(p.path("compose.yaml")):2:5: include[0].path: open \(p.path("nothere.yaml")): no such file or directory"
        )
    }
}
