import Testing

@testable import Runtime

/// Docker's Entrypoint/Cmd/env/user rules, without running anything.
@Suite struct ProcessResolutionTests {
    let image = ImageDefaults(entrypoint: ["/entry", "-x"], cmd: ["default", "args"])

    @Test func imageEntrypointAndCmd() {
        #expect(
            ProcessResolution.argv(image: image, entrypoint: nil, command: nil) == ["/entry", "-x", "default", "args"])
    }

    @Test func givenCommandReplacesOnlyCmd() {
        #expect(
            ProcessResolution.argv(image: image, entrypoint: nil, command: ["run", "it"]) == [
                "/entry", "-x", "run", "it",
            ])
    }

    @Test func givenEntrypointDropsImageCmd() {
        #expect(ProcessResolution.argv(image: image, entrypoint: ["/bin/sh"], command: nil) == ["/bin/sh"])
        #expect(
            ProcessResolution.argv(image: image, entrypoint: ["/bin/sh"], command: ["-c", "true"]) == [
                "/bin/sh", "-c", "true",
            ])
    }

    @Test func emptyEntrypointResets() {
        #expect(ProcessResolution.argv(image: image, entrypoint: [], command: ["ls"]) == ["ls"])
        #expect(ProcessResolution.argv(image: image, entrypoint: [""], command: nil) == [])
    }

    @Test func environmentOrderAndDefaults() {
        let env = ProcessResolution.environment(
            image: ["A=1", "PATH=/image/bin"], given: ["A=2", "B=3"], hostname: "h1",
            home: "/root", tty: false)
        #expect(env == ["PATH=/image/bin", "HOSTNAME=h1", "A=2", "B=3", "HOME=/root"])
        let bare = ProcessResolution.environment(image: nil, given: [], hostname: "x", home: "/", tty: true)
        #expect(bare.contains("PATH=" + ProcessResolution.defaultPath))
        #expect(bare.contains("TERM=xterm"))
    }

    let passwd = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
    let group = "root:x:0:\nalice:x:1000:\nstaff:x:50:alice\nwheel:x:10:\n"
    func files(_ path: String) -> String? { path == "/etc/passwd" ? passwd : path == "/etc/group" ? group : nil }

    @Test func userByName() throws {
        let u = try ProcessResolution.user("alice", readFile: files)
        #expect(u.uid == 1000 && u.gid == 1000 && u.home == "/home/alice")
        #expect(Set(u.groups) == [1000, 50])
    }

    @Test func userNumericAndGroups() throws {
        let unknown = try ProcessResolution.user("4242", readFile: files)
        #expect(unknown.uid == 4242 && unknown.gid == 0)
        let withGroup = try ProcessResolution.user("alice:wheel", readFile: files)
        #expect(withGroup.gid == 10 && withGroup.groups == [10])
        let numeric = try ProcessResolution.user("5:6", readFile: files)
        #expect(numeric.uid == 5 && numeric.gid == 6)
    }

    @Test func unknownUserAndGroupFail() {
        #expect(throws: ProcessResolution.Error.self) { try ProcessResolution.user("mallory", readFile: files) }
        #expect(throws: ProcessResolution.Error.self) { try ProcessResolution.user("alice:nogroup", readFile: files) }
    }

    @Test func capabilitySets() throws {
        #expect(try Capabilities.effectiveSet(privileged: false, add: [], drop: []) == 0xa804_25fb)
        #expect(try Capabilities.effectiveSet(privileged: false, add: [], drop: ["ALL"]) == 0)
        #expect(
            try Capabilities.effectiveSet(privileged: false, add: ["NET_ADMIN"], drop: []) == 0xa804_25fb | (1 << 12))
        #expect(try Capabilities.effectiveSet(privileged: false, add: ["CAP_NET_RAW"], drop: ["ALL"]) == 1 << 13)
        #expect(try Capabilities.effectiveSet(privileged: true, add: [], drop: []) == Capabilities.hostBounding)
        #expect(throws: Capabilities.Error.self) {
            try Capabilities.effectiveSet(privileged: false, add: ["FLY"], drop: [])
        }
    }
}
