import Foundation
import Testing

@testable import Compose

/// File discovery, COMPOSE_FILE, stdin, .env and the project name's precedence.
@Suite struct ProjectNameDiscoveryTests {
    let minimal = "services:\n  web:\n    image: a\n"

    @Test func discoversComposeYamlAndItsOverride() throws {
        let p = try TempProject([
            "compose.yaml": minimal, "compose.override.yaml": "services:\n  web:\n    restart: always\n",
        ])
        defer { p.cleanup() }
        let project = try p.load()
        #expect(project.composeFiles == [p.path("compose.yaml"), p.path("compose.override.yaml")])
        #expect(project.service("web")?.restart == "always")
    }

    @Test func discoveryPrefersComposeYamlAndWarnsAboutOthers() throws {
        let p = try TempProject(["compose.yaml": minimal, "docker-compose.yml": "services:\n  old: {image: b}\n"])
        defer { p.cleanup() }
        var warnings: [String] = []
        var o = p.options()
        o.warn = { warnings.append($0) }
        let project = try ComposeLoader.load(o)
        #expect(project.serviceNames == ["web"])
        #expect(warnings.first?.hasPrefix("Found multiple config files with supported names: ") == true)
    }

    @Test func discoversDockerComposeYml() throws {
        let p = try TempProject([
            "docker-compose.yml": minimal, "docker-compose.override.yml": "services:\n  web:\n    user: me\n",
        ])
        defer { p.cleanup() }
        #expect(try p.load().service("web")?.user == "me")
    }

    @Test func searchesParentFolders() throws {
        let p = try TempProject(["compose.yaml": minimal, "a/b/keep": ""])
        defer { p.cleanup() }
        let project = try p.load(dir: "a/b", projectName: nil)
        #expect(project.workingDir == p.root)
        #expect(project.name == ComposeLoader.normalizeProjectName((p.root as NSString).lastPathComponent))
    }

    @Test func noFileIsAnError() throws {
        let p = try TempProject(["empty/keep": ""])
        defer { p.cleanup() }
        // The temp directory's parents hold no compose file.
        #expect(p.error(dir: "empty")?.message == "no configuration file provided: not found")
    }

    @Test func composeFileVariableWithSeparator() throws {
        let p = try TempProject(["one.yaml": minimal, "two.yaml": "services:\n  web:\n    user: two\n"])
        defer { p.cleanup() }
        let project = try p.load(environment: ["COMPOSE_FILE": "one.yaml;two.yaml", "COMPOSE_PATH_SEPARATOR": ";"])
        #expect(project.service("web")?.user == "two")
        #expect(
            p.error(environment: ["COMPOSE_FILE": "missing.yaml"])?.message.contains("no such file or directory")
                == true)
    }

    @Test func composeFileFromDotEnv() throws {
        let p = try TempProject(["other.yaml": minimal, ".env": "COMPOSE_FILE=other.yaml\n"])
        defer { p.cleanup() }
        #expect(try p.load().serviceNames == ["web"])
    }

    @Test func standardInput() throws {
        let p = try TempProject([:])
        defer { p.cleanup() }
        var o = p.options(files: ["-"])
        o.readStdin = { "services:\n  fromstdin:\n    image: x\n    volumes: [\"./d:/d\"]\n" }
        let project = try ComposeLoader.load(o)
        #expect(project.serviceNames == ["fromstdin"])
        #expect(project.service("fromstdin")?.volumes.first?.source == p.path("d"))
    }

    @Test func projectDirectoryOption() throws {
        let p = try TempProject([
            "files/compose.yaml": "services:\n  web:\n    image: \"${IMG}\"\n    volumes: [\"./x:/x\"]\n",
            "proj/.env": "IMG=from-proj-env\n",
        ])
        defer { p.cleanup() }
        var o = p.options(files: ["files/compose.yaml"], projectName: nil)
        o.projectDirectory = "proj"
        let project = try ComposeLoader.load(o)
        #expect(project.name == "proj")
        #expect(project.workingDir == p.path("proj"))
        #expect(project.service("web")?.image == "from-proj-env")
        #expect(project.service("web")?.volumes.first?.source == p.path("proj/x"))
    }

    @Test func dotEnvAndShellPrecedence() throws {
        let p = try TempProject([
            "compose.yaml": "services:\n  web:\n    image: \"${A}-${B}\"\n", ".env": "A=env-a\nB=env-b\n",
            "alt.env": "A=alt-a\n",
        ])
        defer { p.cleanup() }
        #expect(try p.load(environment: ["B": "shell-b"]).service("web")?.image == "env-a-shell-b")
        var o = p.options(environment: ["B": "shell-b"])
        o.envFiles = ["alt.env"]
        #expect(try ComposeLoader.load(o).service("web")?.image == "alt-a-shell-b")
    }

    @Test func unsetVariablesWarnOnce() throws {
        let p = try TempProject(["compose.yaml": "services:\n  web:\n    image: \"${X}\"\n    user: \"${X}${Y}\"\n"])
        defer { p.cleanup() }
        var warnings: [String] = []
        var o = p.options()
        o.warn = { warnings.append($0) }
        _ = try? ComposeLoader.load(o)
        #expect(
            warnings == [
                "The \"X\" variable is not set. Defaulting to a blank string.",
                "The \"Y\" variable is not set. Defaulting to a blank string.",
            ])
    }

    @Test func noInterpolateKeepsVariables() throws {
        let p = try TempProject(["compose.yaml": "services:\n  web:\n    image: \"app:${TAG}\"\n"])
        defer { p.cleanup() }
        var o = p.options(environment: ["TAG": "1"])
        o.interpolate = false
        let project = try ComposeLoader.load(o)
        #expect(project.service("web")?.image == "app:${TAG}")
        #expect(project.canonicalJSON().contains("\"image\": \"app:${TAG}\""))
    }

    // MARK: - Project name

    @Test func nameOptionWinsAndMustBeValid() throws {
        let p = try TempProject(["compose.yaml": "name: fromfile\n" + minimal])
        defer { p.cleanup() }
        #expect(try p.load(projectName: "cli", environment: ["COMPOSE_PROJECT_NAME": "env"]).name == "cli")
        #expect(p.error(projectName: "Bad!")?.message.hasPrefix("invalid project name \"Bad!\"") == true)
        #expect(p.error(projectName: "-x")?.message.hasPrefix("invalid project name \"-x\"") == true)
    }

    @Test func environmentNameComesNext() throws {
        let p = try TempProject(["compose.yaml": "name: fromfile\n" + minimal, ".env": "COMPOSE_PROJECT_NAME=dotenv\n"])
        defer { p.cleanup() }
        #expect(try p.load(projectName: nil, environment: ["COMPOSE_PROJECT_NAME": "shell"]).name == "shell")
        #expect(try p.load(projectName: nil).name == "dotenv")
    }

    @Test func topLevelNameIsInterpolatedAndNormalized() throws {
        let p = try TempProject(["compose.yaml": "name: \"My_${SUFFIX}.App\"\n" + minimal])
        defer { p.cleanup() }
        let project = try p.load(projectName: nil, environment: ["SUFFIX": "Prod"])
        #expect(project.name == "my_prodapp")
        #expect(project.networks["default"]?.name == "my_prodapp_default")
    }

    @Test func lastFileWithANameWins() throws {
        let p = try TempProject(["a.yaml": "name: first\n" + minimal, "b.yaml": "name: second\n"])
        defer { p.cleanup() }
        #expect(try p.load(files: ["a.yaml", "b.yaml"], projectName: nil).name == "second")
    }

    @Test func folderNameIsTheFallback() throws {
        let p = try TempProject(["My Project.v2/compose.yaml": minimal])
        defer { p.cleanup() }
        #expect(try p.load(dir: "My Project.v2", projectName: nil).name == "myprojectv2")
    }

    @Test func projectNameIsVisibleToInterpolation() throws {
        let p = try TempProject(["compose.yaml": "services:\n  web:\n    image: \"${COMPOSE_PROJECT_NAME}-web\"\n"])
        defer { p.cleanup() }
        #expect(try p.load(projectName: "shop").service("web")?.image == "shop-web")
    }

    @Test func normalizeProjectName() {
        #expect(ComposeLoader.normalizeProjectName("My App") == "myapp")
        #expect(ComposeLoader.normalizeProjectName("__-x_y-Z") == "x_y-z")
        #expect(ComposeLoader.normalizeProjectName("日本") == "")
    }
}
