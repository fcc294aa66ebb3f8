#!/usr/bin/env bash
# `berth container run --rm IMAGE true` against `runc run` on the same busybox root filesystem,
# side by side with hyperfine. Prints both medians and the ratio (budget: berth < 0.5 x runc).
#
#   bench/run/run.sh            builds berth (release, static Swift stdlib) and runs
#   BERTH=/path/to/berth bench/run/run.sh    uses a given binary
#   RUNS=50 bench/run/run.sh    more runs (default 30)
# Needs root, runc, hyperfine, busybox (static) and python3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
runs="${RUNS:-30}"

if [[ -z "${BERTH:-}" ]]; then
    # berth and berth-shim (every container runs under it; berth finds it next to itself).
    (cd "$repo" && for product in berth berth-shim; do
        swift build -c release --static-swift-stdlib --product "$product" --scratch-path .build-bench-run >&2
    done)
    # Flush what the build wrote, so its writeback does not run during the timings.
    sync
    BERTH="$repo/.build-bench-run/release/berth"
fi
busybox="$(command -v busybox)"

work="$(mktemp -d /tmp/berth-bench-run.XXXXXX)"
cleanup() {
    # Containers are --rm; the state root, image and bundle go with the work dir.
    rm -rf "$work"
}
trap cleanup EXIT

# One root filesystem for both: busybox and its applets, a passwd and group file.
rootfs="$work/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/proc" "$rootfs/dev" "$rootfs/sys"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
    [[ "$applet" == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\n' >"$rootfs/etc/group"

export BERTH_ROOT="$work/state"
tar -C "$rootfs" -cf "$work/rootfs.tar" .
"$BERTH" image import "$work/rootfs.tar" bench-busybox >/dev/null
# Warm the seccomp cache and check the command works before timing it.
"$BERTH" container run --rm bench-busybox true

# The OCI bundle: runc's default spec (namespaces, caps, masked paths; runc has no default
# seccomp profile) running `true` without a terminal.
bundle="$work/bundle"
mkdir -p "$bundle"
cp -a "$rootfs" "$bundle/rootfs"
(cd "$bundle" && runc spec)
python3 - "$bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["terminal"] = False
spec["process"]["args"] = ["true"]
json.dump(spec, open(path, "w"), indent=1)
PY

hyperfine --warmup 3 --runs "$runs" --export-json "$work/result.json" \
    -n berth "$BERTH container run --rm bench-busybox true" \
    -n runc "runc --root $work/runc-state run --bundle $bundle bench-\$RANDOM\$RANDOM" >&2

python3 - "$work/result.json" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
berth = results["berth"]["median"] * 1000
runc = results["runc"]["median"] * 1000
ratio = berth / runc
print(f"berth median: {berth:.1f} ms")
print(f"runc  median: {runc:.1f} ms")
print(f"ratio berth/runc: {ratio:.2f} (budget < 0.50: {'met' if ratio < 0.5 else 'NOT met'})")
PY
