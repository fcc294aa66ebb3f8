// swift-tools-version:6.0
import PackageDescription

// One module per concern; a lower layer never imports a higher one (see docs/architecture.md).

// A file sees the members (methods, properties) of the modules it imports itself, not of every
// module loaded. Otherwise Foundation's String extensions reach every file through Crypto (which
// imports Foundation), win overload resolution (`contains` and friends) and link full Foundation
// back into the binary.
let memberImportVisibility: [SwiftSetting] = [.enableUpcomingFeature("MemberImportVisibility")]

let package = Package(
    name: "berth",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "berth", targets: ["berth"]),
        .executable(name: "berth-shim", targets: ["berth-shim"]),
        .executable(name: "berth-netd", targets: ["berth-netd"]),
        .executable(name: "berth-proxy", targets: ["berth-proxy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // System libraries (Debian: libyaml-dev, libseccomp-dev, libarchive-dev).
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // libarchive is loaded on first use, not linked: see Sources/CArchive/include/carchive.h.
        .target(name: "CArchive", linkerSettings: [.linkedLibrary("dl")]),
        // libcurl (Debian: libcurl4-openssl-dev for its headers), loaded on first use as libarchive
        // is: see Sources/CCurl/include/ccurl.h and docs/architecture.md.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("dl")]),

        // What stays with a running container (its reaper and log writer): a small C program of
        // its own, found next to berth, so that it costs well under a megabyte per container.
        // Linked statically: with the two Swift runtime entry points it answers itself (see the
        // end of main.c), nothing of the Swift runtime is pulled in, and what stays resident per
        // container is about 0.8 MB (dynamically linked, the runtime's mapping alone was 4.5 MB).
        .executableTarget(
            name: "berth-shim", cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.unsafeFlags(["-static-executable"])]),

        // The code that runs between clone() and execve(): C only, async-signal-safe.
        .target(name: "CRuntime", cSettings: [.define("_GNU_SOURCE")]),

        // The few helpers full Foundation gave (trimming, hex, standard streams), on the standard
        // library and Glibc, for Compose, Images, Runtime and the CLI. The sources import
        // FoundationEssentials, never Foundation: linking Foundation brings its ICU data and
        // ~1700 conformance records that every process start pays for.
        .target(name: "Support", swiftSettings: memberImportVisibility),

        // rtnetlink's definitions, and a socket opened inside another network namespace.
        .target(name: "CNetlink"),
        // Links, addresses and routes through rtnetlink (no `ip`); handed namespaces, never containers.
        .target(
            name: "Network", dependencies: ["CNetlink", "Support"],
            swiftSettings: memberImportVisibility + [.swiftLanguageMode(.v6)]),

        // The embedded DNS server (swift-nio), and the process that runs it for a root's networks,
        // apart from `berth` so that the CLI's every start does not pay for linking swift-nio.
        .target(
            name: "NameServer",
            dependencies: [
                "Network", "CNetlink", "Support", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ], swiftSettings: memberImportVisibility + [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "berth-netd", dependencies: ["CNetlink", "NameServer"],
            swiftSettings: memberImportVisibility + [.swiftLanguageMode(.v6)]),
        // A published port's userland proxy (docker-proxy's job): small static C, one per container
        // with published ports, splicing bytes to the container until the container exits.
        .executableTarget(
            name: "berth-proxy", cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.unsafeFlags(["-static-executable"])]),

        .target(name: "YAML", dependencies: ["CYAML"], swiftSettings: memberImportVisibility),
        .target(name: "Compose", dependencies: ["YAML", "Support"], swiftSettings: memberImportVisibility),
        // The Dockerfile language (parser, substitution, typed instructions, .dockerignore): pure
        // Swift, no I/O; the builder that runs a Dockerfile is elsewhere.
        .target(name: "Dockerfile", swiftSettings: memberImportVisibility),
        // The distribution API (pull, push, login, search) over libcurl; knows registries, not the store.
        .target(
            name: "Registry",
            dependencies: ["CCurl", "Support", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: memberImportVisibility),
        .target(
            name: "Images",
            dependencies: [
                "CArchive", "Registry", "Support",
                .product(name: "Crypto", package: "swift-crypto"),
            ], swiftSettings: memberImportVisibility),
        .target(
            name: "Runtime",
            dependencies: [
                "CRuntime", "CSeccomp", "Support",
                .product(name: "Crypto", package: "swift-crypto"),
            ], swiftSettings: memberImportVisibility + [.swiftLanguageMode(.v6)]),
        // Where an image meets a container: the one builder of a ContainerSpec from an image and
        // overrides (Runtime does not import Images, and the CLI is not importable by tests).
        .target(name: "ContainerSpecs", dependencies: ["Images", "Runtime"], swiftSettings: memberImportVisibility),
        // Where a container meets its networks: Runtime knows no network, Network no container.
        .target(
            name: "ContainerNetworking", dependencies: ["CNetlink", "Network", "Runtime", "Support"],
            swiftSettings: memberImportVisibility),
        // A compose project's lifecycle (up, down, the supervisor): the only place where a service
        // becomes containers, networks and volumes.
        .target(
            name: "Orchestrator",
            dependencies: [
                "Build", "Compose", "Runtime", "Images", "ContainerSpecs", "ContainerNetworking", "Network", "Support",
                .product(name: "Crypto", package: "swift-crypto"),
            ], swiftSettings: memberImportVisibility),
        // Images from Dockerfiles: stages, the layer cache, RUN steps in berth containers, COPY and
        // ADD through a detached overlay (no container). The language itself is the Dockerfile
        // module's; the store's layer capture and commits are Images'.
        .target(
            name: "Build",
            dependencies: [
                "Dockerfile", "Images", "Runtime", "ContainerSpecs", "ContainerNetworking", "CRuntime", "CArchive",
                "Support", .product(name: "Crypto", package: "swift-crypto"),
            ], swiftSettings: memberImportVisibility),
        .executableTarget(
            name: "berth",
            dependencies: [
                "Build", "Orchestrator", "Compose", "Runtime", "Images", "Registry", "ContainerSpecs",
                "ContainerNetworking",
                "Network", "YAML",
                "Support",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: memberImportVisibility,
            // A position-dependent executable, as Go links docker's and runc's by default: a PIE
            // of this size carries ~84,000 relative relocations that ld.so applies (and whose
            // pages it copies) on every start, about 1 ms of each CLI call (bench/run). Release
            // only, which is built with --static-swift-stdlib (scripts/quickstart): against the
            // shared Swift libraries of a debug build, ld.so warns about every protected symbol
            // a position-dependent executable references.
            linkerSettings: [.unsafeFlags(["-Xlinker", "-no-pie"], .when(configuration: .release))]
        ),

        // Benchmarks that need the API rather than the CLI (bench/README.md); never in a product.
        .executableTarget(
            name: "berth-bench-supervise", dependencies: ["Runtime", "Images", "ContainerSpecs"],
            path: "bench/supervise"),
        .executableTarget(name: "berth-bench-attach", dependencies: ["Network", "CNetlink"], path: "bench/attach"),

        // What the test targets share (running the built `berth`); a test target cannot import another.
        .target(
            name: "TestSupport", dependencies: ["Support", .product(name: "Crypto", package: "swift-crypto")],
            path: "Tests/TestSupport"),

        .testTarget(name: "YAMLTests", dependencies: ["YAML"]),
        .testTarget(name: "ComposeTests", dependencies: ["Compose", "YAML"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DockerfileTests", dependencies: ["Dockerfile"]),
        .testTarget(name: "ImagesTests", dependencies: ["Images", "Support"]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry"]),
        .testTarget(
            name: "RuntimeTests", dependencies: ["Runtime", "Images", "ContainerSpecs", "Support", "TestSupport"]),
        .testTarget(name: "NetworkTests", dependencies: ["Network", "CNetlink", "TestSupport"]),
        .testTarget(name: "NameServerTests", dependencies: ["NameServer", "Network", "CNetlink", "TestSupport"]),
        .testTarget(name: "OrchestratorTests", dependencies: ["Orchestrator", "Compose", "Runtime"]),
        .testTarget(name: "CLITests", dependencies: ["berth", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
