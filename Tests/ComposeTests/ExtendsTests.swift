import Foundation
import Testing

@testable import Compose

/// `extends`: from the same file or another one, nested, with the other file's relative paths
/// resolved against its own folder.
@Suite struct ExtendsTests {
    @Test func extendsAServiceOfTheSameFile() throws {
        let project = try loadCompose(
            """
            services:
              base:
                image: busybox
                environment: {A: "1", B: "2"}
                command: ["sleep", "1"]
                ports: ["80:80"]
              web:
                extends: base
                environment: {B: "3"}
                ports: ["81:81"]
            """)
        let web = try #require(project.service("web"))
        #expect(web.image == "busybox")
        #expect(web.environment == ["A": "1", "B": "3"])
        #expect(web.command == ["sleep", "1"])
        #expect(web.ports.map(\.target) == [80, 81])
        #expect(project.serviceNames == ["base", "web"])
    }

    @Test func extendsIsNested() throws {
        let project = try loadCompose(
            """
            services:
              c:
                extends: {service: b}
                labels: {level: c}
              b:
                extends: a
                restart: always
              a:
                image: alpine
                labels: {level: a, origin: a}
            """)
        let c = try #require(project.service("c"))
        #expect(c.image == "alpine")
        #expect(c.restart == "always")
        #expect(c.labels == ["level": "c", "origin": "a"])
    }

    @Test func extendsAnotherFileWithItsRelativePaths() throws {
        let p = try TempProject([
            "compose.yaml": """
            services:
              web:
                extends:
                  file: common/base.yaml
                  service: app
                volumes: ["./mine:/mine"]
            """,
            "common/base.yaml": """
            services:
              app:
                build: ./src
                env_file: app.env
                volumes: ["./shared:/shared"]
              unused:
                image: nothing
            """,
            "common/app.env": "FROM_FILE=yes\n",
        ])
        defer { p.cleanup() }
        let project = try p.load()
        let web = try #require(project.service("web"))
        #expect(web.build?.context == p.path("common/src"))
        #expect(web.environment["FROM_FILE"] == "yes")
        #expect(web.volumes.map(\.source) == [p.path("common/shared"), p.path("mine")])
        // Only the extended service is taken from the other file.
        #expect(project.serviceNames == ["web"])
    }

    @Test func extendsInAnotherFileIsNestedRelativeToThatFile() throws {
        let p = try TempProject([
            "compose.yaml": "services:\n  web:\n    extends: {file: a/one.yaml, service: one}\n",
            "a/one.yaml": "services:\n  one:\n    extends: {file: b/two.yaml, service: two}\n    user: nobody\n",
            "a/b/two.yaml": "services:\n  two:\n    image: two\n    volumes: [\"./data:/data\"]\n",
        ])
        defer { p.cleanup() }
        let web = try #require(try p.load().service("web"))
        #expect(web.image == "two")
        #expect(web.user == "nobody")
        #expect(web.volumes.first?.source == p.path("a/b/data"))
    }

    @Test func resetInTheExtendingService() throws {
        let project = try loadCompose(
            """
            services:
              base:
                image: a
                ports: ["80:80"]
              web:
                extends: base
                ports: !reset []
            """)
        #expect(project.service("web")?.ports.isEmpty == true)
        #expect(project.service("base")?.ports.count == 1)
    }

    @Test func extendsIsInterpolated() throws {
        let project = try loadCompose(
            """
            services:
              base:
                image: "app:${TAG}"
              web:
                extends:
                  service: ${BASE}
            """, environment: ["TAG": "7", "BASE": "base"])
        #expect(project.service("web")?.image == "app:7")
    }

    @Test func missingFileIsAnError() throws {
        let p = try TempProject(["compose.yaml": "services:\n  web:\n    extends: {file: nope.yaml, service: x}\n"])
        defer { p.cleanup() }
        let e = p.error()
        #expect(e?.keyPath == "services.web.extends.file")
        #expect(e?.mark?.line == 3)
        #expect(e?.message == "open \(p.path("nope.yaml")): no such file or directory")
    }

    @Test func missingServiceInOtherFile() throws {
        let p = try TempProject([
            "compose.yaml": "services:\n  web:\n    extends: {file: b.yaml, service: x}\n",
            "b.yaml": "services:\n  y: {image: a}\n",
        ])
        defer { p.cleanup() }
        #expect(
            p.error()?.message
                == "cannot extend service \"web\" in \(p.path("compose.yaml")): service \"x\" not found in b.yaml")
    }
}
