// swift-tools-version:6.0
import PackageDescription

// One module per concern; a lower layer never imports a higher one (see docs/architecture.md).
let package = Package(
    name: "berth",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "berth", targets: ["berth"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // System libraries (Debian: libyaml-dev, libseccomp-dev, libarchive-dev).
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // libarchive is loaded on first use, not linked: see Sources/CArchive/include/carchive.h.
        .target(name: "CArchive", linkerSettings: [.linkedLibrary("dl")]),

        // The code that runs between clone() and execve(): C only, async-signal-safe.
        .target(name: "CRuntime", cSettings: [.define("_GNU_SOURCE")]),

        .target(name: "YAML", dependencies: ["CYAML"]),
        .target(name: "Compose", dependencies: ["YAML"]),
        .target(name: "Images", dependencies: [
            "CArchive",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "Runtime", dependencies: [
            "CRuntime", "CSeccomp",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(
            name: "berth",
            dependencies: [
                "Compose", "Runtime", "Images", "YAML",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // A position-dependent executable, as Go links docker's and runc's by default: a PIE
            // of this size carries ~84,000 relative relocations that ld.so applies (and whose
            // pages it copies) on every start, about 1 ms of each CLI call (bench/run).
            linkerSettings: [.unsafeFlags(["-Xlinker", "-no-pie"])]
        ),

        .testTarget(name: "YAMLTests", dependencies: ["YAML"]),
        .testTarget(name: "ComposeTests", dependencies: ["Compose", "YAML"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ImagesTests", dependencies: ["Images"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Images"]),
        .testTarget(name: "CLITests", dependencies: ["berth"]),
    ],
    swiftLanguageModes: [.v5]
)
