import Foundation
import Testing

@testable import Compose

/// Every kind of problem the loader reports names the file, line and column of the offending
/// text and the key path. Each test writes a small project and checks the whole message.
@Suite struct ValidationTests {
    /// Loads `compose.yaml` (plus `extra` files) and returns "line:col: key: message" of the error,
    /// with the file checked to be `file`.
    func failure(
        _ yaml: String, extra: [String: String] = [:], file: String = "compose.yaml",
        files: [String] = [], environment: [String: String] = [:], projectName: String? = "test",
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> String {
        var all = extra
        all["compose.yaml"] = yaml
        let p = try TempProject(all)
        defer { p.cleanup() }
        guard let e = p.error(files: files, projectName: projectName, environment: environment) else { return "" }
        let prefix = p.path(file) + ":"
        #expect(
            e.description.hasPrefix(prefix), "\(e.description) does not start with \(prefix)",
            sourceLocation: sourceLocation)
        return String(e.description.dropFirst(e.description.hasPrefix(prefix) ? prefix.count : 0))
    }

    // MARK: - Shape: unknown keys and wrong types

    @Test func unknownServiceKey() throws {
        let yaml = """
            services:
              web:
                image: nginx
                imagee: typo
            """
        #expect(try failure(yaml) == "4:5: services.web.imagee: unknown key \"imagee\"")
    }

    @Test func unknownTopLevelKey() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\nservice: {}\n") == "4:1: service: unknown key \"service\"")
    }

    @Test func unknownNestedKey() throws {
        let yaml = """
            services:
              web:
                image: a
                healthcheck:
                  test: ["CMD", "true"]
                  intervall: 5s
            """
        #expect(try failure(yaml) == "6:7: services.web.healthcheck.intervall: unknown key \"intervall\"")
    }

    @Test func extensionKeysAreAllowed() throws {
        let project = try loadCompose(
            "x-top: 1\nservices:\n  web:\n    image: a\n    x-mine: {a: 1}\n    healthcheck:\n      x-h: 2\n")
        #expect(project.extensions["x-top"] == .int(1))
        #expect(project.service("web")?.extensions["x-mine"] == .map(["a": .int(1)]))
    }

    @Test func wrongScalarType() throws {
        #expect(
            try failure("services:\n  web:\n    image: 123\n")
                == "3:12: services.web.image: must be a string, not an integer")
    }

    @Test func wrongCollectionType() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    ports: \"80:80\"\n")
                == "4:12: services.web.ports: must be a list, not a string")
        #expect(
            try failure("services:\n  web:\n    image: a\n    environment: FOO\n")
                == "4:18: services.web.environment: must be a mapping or a list, not a string")
    }

    @Test func wrongTypeInsideAList() throws {
        let yaml = """
            services:
              web:
                image: a
                cap_add:
                  - NET_ADMIN
                  - [SYS_ADMIN]
            """
        #expect(try failure(yaml) == "6:9: services.web.cap_add[1]: must be a string, not a sequence")
    }

    @Test func serviceMustBeAMapping() throws {
        #expect(try failure("services:\n  web: nginx\n") == "2:8: services.web: must be a mapping, not a string")
    }

    @Test func invalidServiceName() throws {
        #expect(
            try failure("services:\n  \"my web\":\n    image: a\n")
                == "2:3: services.my web: invalid name \"my web\": only [a-zA-Z0-9._-] are allowed")
    }

    @Test func missingRequiredKey() throws {
        let yaml = """
            services:
              web:
                image: a
                volumes:
                  - source: ./data
                    target: /data
            """
        #expect(try failure(yaml) == "5:9: services.web.volumes[0]: missing required key \"type\"")
    }

    @Test func invalidEnumValue() throws {
        let yaml = """
            services:
              web:
                image: a
                depends_on:
                  db:
                    condition: service_ready
              db:
                image: b
            """
        #expect(
            try failure(yaml)
                == "6:20: services.web.depends_on.db.condition: must be one of \"service_started\", \"service_healthy\", \"service_completed_successfully\", not \"service_ready\""
        )
    }

    @Test func invalidBoolean() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    privileged: \"maybe\"\n")
                == "4:17: services.web.privileged: invalid boolean \"maybe\"")
    }

    // MARK: - Values

    @Test func invalidRestartPolicy() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    restart: sometimes\n")
                == "4:14: services.web.restart: invalid restart policy \"sometimes\": must be one of \"no\", \"always\", \"on-failure[:max-retries]\", \"unless-stopped\""
        )
        // "on-failure:3" is fine, a bad count is not
        #expect(
            try loadCompose("services:\n  web:\n    image: a\n    restart: on-failure:3\n").service("web")?.restart
                == "on-failure:3")
        #expect(
            try failure("services:\n  web:\n    image: a\n    restart: on-failure:x\n").hasPrefix(
                "4:14: services.web.restart: invalid restart policy"))
    }

    @Test func invalidShortPort() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    ports:\n      - \"80000:80\"\n")
                == "5:9: services.web.ports[0]: invalid port \"80000:80\": invalid hostPort: 80000")
        #expect(
            try failure("services:\n  web:\n    image: a\n    ports:\n      - 8080:80\n      - \"9000-9002:80-81\"\n")
                == "6:9: services.web.ports[1]: invalid port \"9000-9002:80-81\": invalid ranges specified for container and host Ports: 80-81 and 9000-9002"
        )
        #expect(
            try failure("services:\n  web:\n    image: a\n    ports: [\"90-80\"]\n")
                == "4:13: services.web.ports[0]: invalid port \"90-80\": invalid containerPort: 90-80")
        #expect(
            try failure("services:\n  web:\n    image: a\n    ports: [\"80/xtp\"]\n")
                == "4:13: services.web.ports[0]: invalid port \"80/xtp\": invalid proto: xtp")
        #expect(
            try failure("services:\n  web:\n    image: a\n    ports: [\"1.2.3:80:80\"]\n")
                == "4:13: services.web.ports[0]: invalid port \"1.2.3:80:80\": invalid IP address: 1.2.3")
    }

    @Test func invalidLongPort() throws {
        let yaml = """
            services:
              web:
                image: a
                ports:
                  - target: 70000
                    published: "8080"
            """
        #expect(
            try failure(yaml) == "5:17: services.web.ports[0].target: invalid port 70000: must be between 0 and 65535")
        let published = """
            services:
              web:
                image: a
                ports:
                  - target: 80
                    published: "80-x"
            """
        #expect(
            try failure(published)
                == "6:20: services.web.ports[0].published: invalid published port \"80-x\": must be a port (0-65535) or a range"
        )
    }

    @Test func invalidDuration() throws {
        let yaml = """
            services:
              web:
                image: a
                healthcheck:
                  test: ["CMD", "true"]
                  interval: 10 seconds
            """
        #expect(
            try failure(yaml)
                == "6:17: services.web.healthcheck.interval: invalid duration \"10 seconds\": use a number with a unit (ns, us, ms, s, m, h), like 1m30s"
        )
        #expect(
            try failure("services:\n  web:\n    image: a\n    stop_grace_period: 10\n")
                == "4:24: services.web.stop_grace_period: must be a string, not an integer")
    }

    @Test func invalidByteSize() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    mem_limit: 1zb\n")
                == "4:16: services.web.mem_limit: invalid byte size \"1zb\": use a number of bytes or a size like 512m, 1.5g"
        )
        #expect(
            try failure("services:\n  web:\n    image: a\n    shm_size: lots\n").hasPrefix(
                "4:15: services.web.shm_size: invalid byte size \"lots\""))
    }

    @Test func invalidPullPolicy() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    pull_policy: sometimes\n").hasPrefix(
                "4:18: services.web.pull_policy: invalid pull policy \"sometimes\""))
    }

    @Test func invalidContainerName() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    container_name: \"-bad\"\n").hasPrefix(
                "4:21: services.web.container_name: invalid container name \"-bad\""))
    }

    @Test func invalidHealthcheckTest() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    healthcheck:\n      test: [\"curl\", \"x\"]\n")
                == "5:13: services.web.healthcheck.test: healthcheck.test must start either by \"CMD\", \"CMD-SHELL\" or \"NONE\""
        )
    }

    @Test func extraHostWithoutAddress() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    extra_hosts:\n      - somehost\n")
                == "5:9: services.web.extra_hosts[0]: invalid additional host, missing IP: somehost")
    }

    @Test func environmentKeyWithTrailingSpace() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    environment:\n      - \"FOO =bar\"\n")
                == "5:9: services.web.environment[0]: environment variable FOO  is declared with a trailing space")
    }

    @Test func ulimitSoftAboveHard() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    ulimits:\n      nofile: {soft: 20, hard: 10}\n")
                == "5:15: services.web.ulimits.nofile: soft limit 20 is greater than hard limit 10")
    }

    @Test func negativeScale() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    scale: -1\n")
                == "4:12: services.web.scale: must be greater than or equal to 0")
    }

    // MARK: - References

    @Test func undefinedDependency() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    depends_on: [db]\n")
                == "4:18: services.web.depends_on.db: service \"web\" depends on undefined service \"db\"")
        let long = """
            services:
              web:
                image: a
                depends_on:
                  cache:
                    condition: service_healthy
            """
        #expect(
            try failure(long)
                == "5:7: services.web.depends_on.cache: service \"web\" depends on undefined service \"cache\"")
    }

    @Test func undefinedLinkAndNamespaceAndVolumesFrom() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    links:\n      - db:database\n")
                == "5:9: services.web: service \"web\" links to undefined service \"db\"")
        #expect(
            try failure("services:\n  web:\n    image: a\n    network_mode: service:vpn\n")
                == "4:19: services.web: service \"web\" shares a namespace with undefined service \"vpn\"")
        #expect(
            try failure("services:\n  web:\n    image: a\n    volumes_from:\n      - data:ro\n")
                == "5:9: services.web: service \"web\" takes volumes from undefined service \"data\"")
    }

    @Test func undefinedNetwork() throws {
        let yaml = """
            services:
              web:
                image: a
                networks:
                  - front
                  - back
            networks:
              front: {}
            """
        #expect(
            try failure(yaml) == "6:9: services.web.networks.back: service \"web\" refers to undefined network back")
    }

    @Test func undefinedVolume() throws {
        let yaml = """
            services:
              web:
                image: a
                volumes:
                  - ./here:/here
                  - data:/data
            """
        #expect(try failure(yaml) == "6:9: services.web.volumes[1]: service \"web\" refers to undefined volume data")
    }

    @Test func undefinedSecretAndConfig() throws {
        #expect(
            try failure("services:\n  web:\n    image: a\n    secrets:\n      - token\n")
                == "5:9: services.web.secrets[0]: service \"web\" refers to undefined secret token")
        #expect(
            try failure(
                "services:\n  web:\n    image: a\n    configs:\n      - source: conf\n        target: /etc/conf\n")
                == "5:9: services.web.configs[0]: service \"web\" refers to undefined config conf")
    }

    @Test func secretWithoutSource() throws {
        let p = try TempProject([
            "compose.yaml": "services:\n  web:\n    image: a\n    secrets: [s]\nsecrets:\n  s:\n    name: x\n"
        ])
        defer { p.cleanup() }
        #expect(p.error()?.description == "secrets.s: secret \"s\" must declare either `file` or `environment`")
    }

    @Test func neitherImageNorBuild() throws {
        #expect(
            try failure("services:\n  web:\n    command: [\"true\"]\n")
                == "2:3: services.web: service \"web\" has neither an image nor a build context specified")
    }

    @Test func duplicateMountTarget() throws {
        let yaml = """
            services:
              web:
                image: a
                volumes:
                  - ./a:/data
                  - ./b:/data/
            """
        // The later definition replaces the earlier one (same target): not an error.
        #expect(try loadCompose(yaml).service("web")?.volumes.count == 1)
        let tmpfs = "services:\n  web:\n    image: a\n    tmpfs: /run\n    volumes:\n      - ./r:/run\n"
        #expect(
            try failure(tmpfs) == "6:9: services.web.volumes[0]: target /run already mounted as services.web.tmpfs[0]")
    }

    @Test func dependencyCycle() throws {
        let yaml = """
            services:
              a:
                image: x
                depends_on: [b]
              b:
                image: x
                depends_on: [c]
              c:
                image: x
                depends_on:
                  - a
            """
        #expect(try failure(yaml) == "11:9: dependency cycle: a -> b -> c -> a")
        // A cycle through links names where it comes from.
        let links = "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    links: [a]\n"
        #expect(try failure(links) == "7:13: dependency cycle: a -> b -> a (the last step comes from links)")
    }

    // MARK: - Files, syntax, interpolation

    @Test func yamlSyntaxError() throws {
        let text = try failure("services:\n  web:\n    image: a\n   bad: [\n")
        #expect(text.hasPrefix("4:"))
    }

    @Test func duplicateKey() throws {
        let text = try failure("services:\n  web:\n    image: a\n    image: b\n")
        #expect(text.hasPrefix("4:5: "))
    }

    @Test func interpolationErrorNamesTheValue() throws {
        #expect(try failure("services:\n  web:\n    image: \"${TAG:?set TAG}\"\n").hasPrefix("3:12: "))
    }

    @Test func errorsInAnOverrideFileNameThatFile() throws {
        let over = "services:\n  web:\n    ports:\n      - \"x:80\"\n"
        let text = try failure(
            "services:\n  web:\n    image: a\n", extra: ["compose.override.yaml": over],
            file: "compose.override.yaml", projectName: "t")
        #expect(text == "4:9: services.web.ports[0]: invalid port \"x:80\": invalid hostPort: x")
    }

    @Test func errorsInAnExtendedFileNameThatFile() throws {
        let base = "services:\n  base:\n    image: a\n    restart: never\n"
        let text = try failure(
            "services:\n  web:\n    extends:\n      file: base.yaml\n      service: base\n",
            extra: ["base.yaml": base], file: "base.yaml")
        // The value came from base.yaml: its position is reported, under the extending service.
        #expect(text.hasPrefix("4:14: services.web.restart: invalid restart policy \"never\""))
    }

    @Test func missingEnvFile() throws {
        let p = try TempProject(["compose.yaml": "services:\n  web:\n    image: a\n    env_file: missing.env\n"])
        defer { p.cleanup() }
        let e = p.error()
        #expect(
            e?.description
                == "\(p.path("compose.yaml")):4:15: services.web.env_file[0]: env file \(p.path("missing.env")) not found: stat \(p.path("missing.env")): no such file or directory"
        )
        // optional env files may be missing
        try p.write(
            "compose.yaml",
            "services:\n  web:\n    image: a\n    env_file:\n      - path: missing.env\n        required: false\n")
        #expect(try p.load().service("web")?.environment.isEmpty == true)
    }

    @Test func invalidProjectName() throws {
        let p = try TempProject(["compose.yaml": "services:\n  web:\n    image: a\n"])
        defer { p.cleanup() }
        #expect(
            p.error(projectName: "My App")?.description
                == "invalid project name \"My App\": must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
        )
        #expect(
            p.error(projectName: nil, environment: ["COMPOSE_PROJECT_NAME": "_x"])?.message.hasPrefix(
                "invalid project name \"_x\"") == true)
    }

    @Test func topLevelMustBeAMapping() throws {
        #expect(try failure("- a\n- b\n") == "1:1: top-level object must be a mapping")
    }

    @Test func circularExtends() throws {
        let yaml = """
            services:
              a:
                image: x
                extends: b
              b:
                extends:
                  service: a
            """
        let text = try failure(yaml)
        #expect(text.hasPrefix("4:14: services.a.extends: circular reference: a in "))
    }

    @Test func extendsUnknownService() throws {
        let text = try failure("services:\n  web:\n    extends: nothere\n")
        #expect(text.hasPrefix("3:14: services.web.extends: cannot extend service \"web\" in "))
        #expect(text.hasSuffix("service \"nothere\" not found"))
    }

    @Test func largeProjectsReportTheFirstErrorInFileOrder() throws {
        // Many services are decoded in parallel; the error reported is still the first one.
        var yaml = "services:\n"
        for i in 0..<80 {
            yaml += "  s\(i):\n    image: a\n"
            if i == 70 || i == 20 { yaml += "    restart: bad\(i)\n" }
        }
        let line = 2 + 20 * 2 + 2  // "restart" under s20
        #expect(try failure(yaml).hasPrefix("\(line):14: services.s20.restart: invalid restart policy \"bad20\""))
    }
}
