import Testing

@testable import Dockerfile

/// `RUN --mount=...`: fields, defaults and validation as BuildKit's runmount parser has them.
@Suite struct MountTests {
    static let variables = ["CACHE": "/root/.cache", "ID": "npm", "SIZE": "64m"]

    func mounts(_ flags: String) throws -> [RunMount] {
        let file = try Dockerfile.parse("FROM a\nRUN \(flags) true\n")
        guard
            case .run(let run) = try file.stages[0].instructions[0].command(
                escape: "\\", lookup: { Self.variables[$0] })
        else { return [] }
        return run.mounts
    }

    func error(_ flags: String) -> String? {
        do {
            _ = try mounts(flags)
            return nil
        } catch let error as DockerfileError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test func bindIsTheDefault() throws {
        #expect(
            try mounts("--mount=target=/src,source=.,from=builder")
                == [RunMount(kind: .bind, target: "/src", source: ".", from: "builder", readOnly: true)])
        #expect(try mounts("--mount=type=bind,dst=/x,rw") == [RunMount(kind: .bind, target: "/x", readOnly: false)])
        #expect(try mounts("--mount=type=bind,destination=/x,readwrite=true")[0].readOnly == false)
    }

    @Test func cache() throws {
        #expect(
            try mounts("--mount=type=cache,target=/x,id=y,sharing=locked,ro")
                == [RunMount(kind: .cache, target: "/x", id: "y", readOnly: true, sharing: "locked")])
        // The id defaults to the target; a cache is writable unless told.
        #expect(
            try mounts("--mount=type=cache,target=$CACHE,mode=0700,uid=1000,gid=1000")
                == [
                    RunMount(
                        kind: .cache, target: "/root/.cache", id: "/root/.cache", readOnly: false, mode: 0o700,
                        uid: 1000, gid: 1000)
                ])
        #expect(try mounts("--mount=type=cache,target=/x,id=$ID")[0].id == "npm")
        #expect(try mounts("--mount=Type=Cache,Target=/x,readonly=false")[0].kind == .cache)
    }

    @Test func tmpfs() throws {
        #expect(
            try mounts("--mount=type=tmpfs,target=/tmp,size=$SIZE") == [
                RunMount(kind: .tmpfs, target: "/tmp", size: 67_108_864)
            ])
        #expect(try mounts("--mount=type=tmpfs,target=/t,size=1g")[0].size == 1_073_741_824)
        #expect(try mounts("--mount=type=tmpfs,target=/t,size=4096")[0].size == 4096)
        #expect(error("--mount=type=tmpfs,target=/t,size=big") == "invalid value for size: big")
        #expect(error("--mount=type=cache,target=/t,size=1m") == "unexpected key 'size' for mount type 'cache'")
    }

    @Test func secret() throws {
        #expect(
            try mounts("--mount=type=secret,id=aws")
                == [RunMount(kind: .secret, target: "/run/secrets/aws", id: "aws", readOnly: true)])
        #expect(
            try mounts("--mount=type=secret,id=aws,target=/root/.aws/credentials,required,mode=0400")
                == [
                    RunMount(
                        kind: .secret, target: "/root/.aws/credentials", id: "aws", readOnly: true, mode: 0o400,
                        required: true)
                ])
        // The target's last component is the id when none is given; a source is the id.
        #expect(try mounts("--mount=type=secret,target=/etc/token")[0].id == "token")
        #expect(
            try mounts("--mount=type=secret,src=key")[0]
                == RunMount(kind: .secret, target: "/run/secrets/key", id: "key", readOnly: true))
        #expect(try mounts("--mount=type=secret,id=a,required=false")[0].required == false)
        #expect(error("--mount=type=secret,id=a,from=x") == "secret mount should not have a from")
        #expect(error("--mount=type=secret,ro") == "invalid secret mount. one of source, target required")
        #expect(error("--mount=type=secret,id=a,source=b") == "both source and id can't be set")
    }

    @Test func ssh() throws {
        #expect(
            try mounts("--mount=type=ssh --mount=type=ssh,id=work,required")
                == [
                    RunMount(kind: .ssh, target: "/run/buildkit/ssh_agent.0", id: "default", readOnly: true),
                    RunMount(
                        kind: .ssh, target: "/run/buildkit/ssh_agent.1", id: "work", readOnly: true, required: true),
                ])
    }

    @Test func quotedFields() throws {
        // The flag loses its quotes first (as in Docker): CSV quotes must be quoted themselves.
        #expect(try mounts("--mount=type=bind,'\"target=/a,b\"',source=x")[0].target == "/a,b")
    }

    @Test func errors() {
        #expect(error("--mount=type=nfs,target=/x")?.hasPrefix("unsupported mount type \"nfs\"") == true)
        #expect(error("--mount=type=cache,target=/x,sharing=maybe")?.hasPrefix("unsupported sharing value") == true)
        #expect(error("--mount=type=bind,target=/x,sharing=locked") == "invalid cache sharing set for bind mount")
        #expect(error("--mount=type=bind,target=/x,mode=0700") == "mode not allowed for \"bind\" type mounts")
        #expect(error("--mount=type=cache,target=/x,mode=9") == "invalid value 9 for mode")
        #expect(error("--mount=type=cache,target=/x,uid=me") == "invalid value me for uid")
        #expect(error("--mount=type=bind,target=/x,ro=perhaps") == "invalid value for ro: perhaps")
        #expect(error("--mount=type=bind,target=/x,color=red") == "unexpected key 'color' in 'color=red'")
        #expect(error("--mount=type=bind,target=/x,nonsense") == "invalid field 'nonsense' must be a key=value pair")
        #expect(error("--mount=type=bind,target=/x,required") == "unexpected key 'required' for mount type 'bind'")
        #expect(error("--mount=type=cache") == "mount of type cache requires a target")
        #expect(error("--mount") == "missing a value on flag: mount")
    }
}
