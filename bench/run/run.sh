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

source "$here/../common.sh"
build_berth "$repo"

work="$(mktemp -d /tmp/berth-bench-run.XXXXXX)"
cleanup() {
    # Containers are --rm; the root's default network (a bridge on the host) goes with prune,
    # the state root, image and bundle with the work dir.
    [ -n "${BERTH_ROOT:-}" ] && "$BERTH" system prune -f >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

rootfs="$work/rootfs"
make_busybox_rootfs "$rootfs"

export BERTH_ROOT="$work/state"
tar -C "$rootfs" -cf "$work/rootfs.tar" .
"$BERTH" image import "$work/rootfs.tar" bench-busybox >/dev/null
# Warm the seccomp cache and check the command works before timing it.
"$BERTH" container run --rm bench-busybox true

# The OCI bundle: runc's default spec (namespaces, caps, masked paths; runc has no default
# seccomp profile) running `true` without a terminal.
bundle="$work/bundle"
make_runc_bundle "$bundle" "$rootfs" true

# Without a shell (-N): each run is the program alone. `runc run` deletes its container when it
# exits (no --keep), so one ID serves every run.
hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/result.json" \
    -n berth "$BERTH container run --rm bench-busybox true" \
    -n runc "runc --root $work/runc-state run --bundle $bundle bench-run" >&2

report_ratio "$work/result.json" "run --rm IMAGE true"
