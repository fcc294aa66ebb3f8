import Foundation
import Testing

@testable import Compose

/// Several `-f` files merge as `docker compose` merges them (compose-go's override rules).
@Suite struct MergeTests {
    func merged(_ base: String, _ override: String, environment: [String: String] = [:]) throws -> Project {
        let p = try TempProject(["base.yaml": base, "override.yaml": override])
        defer { p.cleanup() }
        return try p.load(files: ["base.yaml", "override.yaml"], environment: environment)
    }

    @Test func scalarsAreReplacedAndMappingsMerged() throws {
        let project = try merged(
            """
            services:
              web:
                image: nginx:1
                restart: always
                healthcheck:
                  test: ["CMD", "true"]
                  interval: 10s
            """,
            """
            services:
              web:
                image: nginx:2
                healthcheck:
                  retries: 3
              extra:
                image: busybox
            """)
        let web = try #require(project.service("web"))
        #expect(web.image == "nginx:2")
        #expect(web.restart == "always")
        #expect(web.healthcheck?.test == ["CMD", "true"])
        #expect(web.healthcheck?.interval?.description == "10s")
        #expect(web.healthcheck?.retries == 3)
        #expect(project.serviceNames == ["extra", "web"])
    }

    @Test func commandEntrypointAndHealthcheckTestAreReplaced() throws {
        let project = try merged(
            """
            services:
              web:
                image: a
                command: ["run", "--fast"]
                entrypoint: /bin/sh -c
                healthcheck:
                  test: ["CMD", "a", "b"]
            """,
            """
            services:
              web:
                command: serve
                entrypoint: ["/init"]
                healthcheck:
                  test: ["CMD-SHELL", "c"]
            """)
        let web = try #require(project.service("web"))
        #expect(web.command == ["serve"])
        #expect(web.entrypoint == ["/init"])
        #expect(web.healthcheck?.test == ["CMD-SHELL", "c"])
    }

    @Test func sequencesAppendAndIdentifiedItemsAreUnique() throws {
        let project = try merged(
            """
            services:
              web:
                image: a
                ports: ["8080:80", "9090:90"]
                expose: [1000]
                volumes:
                  - ./a:/data
                  - logs:/logs
                dns: 1.1.1.1
                cap_add: [NET_ADMIN]
                security_opt: [no-new-privileges:true]
                secrets: [s1]
            volumes:
              logs: {}
            secrets:
              s1: {file: ./s1}
              s2: {file: ./s2}
            """,
            """
            services:
              web:
                ports: ["8080:80", "7070:70"]
                expose: ["1000", "2000"]
                volumes:
                  - ./b:/data
                dns: [8.8.8.8, 1.1.1.1]
                cap_add: [NET_ADMIN, SYS_TIME]
                security_opt: [label:disable]
                secrets:
                  - source: s2
                    target: s1
            """)
        let web = try #require(project.service("web"))
        #expect(web.ports.map { "\($0.published ?? ""):\($0.target)" } == ["8080:80", "9090:90", "7070:70"])
        #expect(web.expose == ["1000", "2000"])
        // Same target: the override's definition takes the first one's place.
        #expect(web.volumes.map(\.target) == ["/data", "/logs"])
        #expect(web.volumes.first?.source?.hasSuffix("/b") == true)
        #expect(web.dns == ["1.1.1.1", "8.8.8.8"])
        #expect(web.capAdd == ["NET_ADMIN", "SYS_TIME"])
        #expect(web.securityOpt == ["no-new-privileges:true", "label:disable"])
        // secrets are identified by target: /run/secrets/s1 for the short form, "s1" for the long one
        #expect(web.secrets.map(\.source) == ["s1", "s2"])
    }

    @Test func keyValueMappingsMergePerKeyInEitherSyntax() throws {
        let project = try merged(
            """
            services:
              web:
                image: a
                environment:
                  - A=1
                  - B=2
                labels:
                  x: "1"
                sysctls:
                  net.core.somaxconn: 1024
            """,
            """
            services:
              web:
                environment:
                  B: three
                  C:
                labels: ["y=2"]
                sysctls: ["net.ipv4.ip_forward=1"]
            """, environment: ["C": "from-shell"])
        let web = try #require(project.service("web"))
        #expect(web.environment == ["A": "1", "B": "three", "C": "from-shell"])
        #expect(web.labels == ["x": "1", "y": "2"])
        #expect(web.sysctls == ["net.core.somaxconn": "1024", "net.ipv4.ip_forward": "1"])
    }

    @Test func dependsOnAndNetworksMergeInEitherSyntax() throws {
        let project = try merged(
            """
            services:
              web:
                image: a
                depends_on: [db]
                networks: [front]
              db: {image: b}
              cache: {image: c}
            networks:
              front: {}
              back: {}
            """,
            """
            services:
              web:
                depends_on:
                  cache:
                    condition: service_healthy
                networks:
                  back:
                    aliases: [api]
            """)
        let web = try #require(project.service("web"))
        #expect(web.dependsOn.keys.sorted() == ["cache", "db"])
        #expect(web.dependsOn["cache"]?.condition == "service_healthy")
        #expect(web.dependsOn["db"]?.condition == "service_started")
        #expect(web.networks.keys.sorted() == ["back", "front"])
        #expect(web.networks["back"]??.aliases == ["api"])
    }

    @Test func resetRemovesAndOverrideReplaces() throws {
        let project = try merged(
            """
            services:
              web:
                image: a
                ports: ["80:80"]
                environment:
                  A: "1"
                  B: "2"
                labels: {keep: "yes"}
                command: ["x"]
            """,
            """
            services:
              web:
                ports: !reset []
                environment: !override
                  C: "3"
                labels:
                  keep: !reset
                command: !reset null
            """)
        let web = try #require(project.service("web"))
        #expect(web.ports.isEmpty)
        #expect(web.environment == ["C": "3"])
        #expect(web.labels.isEmpty)
        #expect(web.command == nil)
    }

    @Test func resetInTheFirstFileIsJustRemoved() throws {
        let project = try loadCompose("services:\n  web:\n    image: a\n    ports: !reset [\"80:80\"]\n")
        #expect(project.service("web")?.ports.isEmpty == true)
    }

    @Test func loggingOptionsMergeOnlyForTheSameDriver() throws {
        let same = try merged(
            """
            services:
              web:
                image: a
                logging:
                  driver: json-file
                  options: {max-size: 1m}
            """,
            """
            services:
              web:
                logging:
                  options: {max-file: "3"}
            """)
        #expect(same.service("web")?.logging?.options == ["max-size": "1m", "max-file": "3"])
        let other = try merged(
            """
            services:
              web:
                image: a
                logging:
                  driver: json-file
                  options: {max-size: 1m}
            """,
            """
            services:
              web:
                logging:
                  driver: syslog
                  options: {tag: web}
            """)
        #expect(other.service("web")?.logging?.driver == "syslog")
        #expect(other.service("web")?.logging?.options == ["tag": "web"])
    }

    @Test func buildMergesStringAndMappingForms() throws {
        let project = try merged(
            """
            services:
              web:
                build: ./app
            """,
            """
            services:
              web:
                build:
                  target: prod
                  args: [VERSION=2]
            """)
        let build = try #require(project.service("web")?.build)
        #expect(build.context.hasSuffix("/app"))
        #expect(build.target == "prod")
        #expect(build.args == ["VERSION": "2"])
        #expect(build.dockerfile == "Dockerfile")
    }

    @Test func topLevelResourcesMerge() throws {
        let project = try merged(
            """
            services:
              web: {image: a}
            networks:
              front:
                driver: bridge
                labels: [a=1]
            volumes:
              data:
                driver: local
            """,
            """
            networks:
              front:
                internal: true
                labels: {b: "2"}
            volumes:
              data:
                labels: {c: "3"}
            """)
        #expect(project.networks["front"]?.driver == "bridge")
        #expect(project.networks["front"]?.internal == true)
        #expect(project.networks["front"]?.labels == ["a": "1", "b": "2"])
        #expect(project.volumes["data"]?.driver == "local")
        #expect(project.volumes["data"]?.labels == ["c": "3"])
    }

    @Test func relativePathsOfEveryFileResolveAgainstTheProjectDirectory() throws {
        let p = try TempProject([
            "compose.yaml": "services:\n  web:\n    image: a\n    volumes: [\"./one:/one\"]\n",
            "sub/override.yaml": "services:\n  web:\n    volumes: [\"./two:/two\"]\n",
        ])
        defer { p.cleanup() }
        let project = try p.load(files: ["compose.yaml", "sub/override.yaml"])
        #expect(project.service("web")?.volumes.map(\.source) == [p.path("one"), p.path("two")])
    }
}
