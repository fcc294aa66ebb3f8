# Shared by the bench scripts (sourced): berth's release build and a busybox root filesystem.

# Sets BERTH to a release berth (with berth-shim, berth-netd and berth-proxy beside it), built into
# .build-bench-run unless BERTH is given.
build_berth() {
    local repo="$1"
    if [[ -z "${BERTH:-}" ]]; then
        (cd "$repo" && for product in berth berth-shim berth-netd berth-proxy; do
            swift build -c release --static-swift-stdlib --product "$product" --scratch-path .build-bench-run >&2
        done)
        # Flush what the build wrote, so its writeback does not run during the timings.
        sync
        BERTH="$repo/.build-bench-run/release/berth"
    fi
}

# A root filesystem in $1: busybox and its applet links, a passwd and group file.
make_busybox_rootfs() {
    local rootfs="$1" busybox
    busybox="$(command -v busybox)"
    mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/proc" "$rootfs/dev" "$rootfs/sys"
    cp "$busybox" "$rootfs/bin/busybox"
    for applet in $("$busybox" --list); do
        [[ "$applet" == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\n' >"$rootfs/etc/group"
}

# runc's default spec in bundle $1 (with rootfs $2 copied in), running the arguments without a
# terminal.
make_runc_bundle() {
    local bundle="$1" rootfs="$2"
    shift 2
    mkdir -p "$bundle"
    cp -a "$rootfs" "$bundle/rootfs"
    (cd "$bundle" && runc spec)
    python3 - "$bundle/config.json" "$@" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["terminal"] = False
spec["process"]["args"] = sys.argv[2:]
json.dump(spec, open(path, "w"), indent=1)
PY
}

# The medians of hyperfine's export $1 for commands named berth and runc, and their ratio.
report_ratio() {
    python3 - "$1" "$2" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
berth = results["berth"]["median"] * 1000
runc = results["runc"]["median"] * 1000
ratio = berth / runc
what = sys.argv[2]
print(f"{what}: berth median {berth:.1f} ms, runc median {runc:.1f} ms")
print(f"ratio berth/runc: {ratio:.2f} (budget < 0.50: {'met' if ratio < 0.5 else 'NOT met'})")
PY
}
