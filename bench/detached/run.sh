#!/usr/bin/env bash
# A detached container's whole life, berth against runc on the same busybox root filesystem:
#   berth: `container run -d IMAGE sleep 100` then `container rm -f ID`
#   runc:  `runc run -d` then `runc delete -f`
# side by side with hyperfine (budget: berth < 0.5 x runc). Then what stays resident: the RSS of
# berth-shim per detached container, measured over 50 running at once.
#
#   bench/detached/run.sh                      builds berth (release, static Swift stdlib)
#   BERTH=/path/to/berth bench/detached/run.sh uses a given binary (berth-shim next to it)
#   RUNS=50 bench/detached/run.sh              more runs (default 30)
# Needs root, runc, hyperfine, busybox (static) and python3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
runs="${RUNS:-30}"

source "$here/../common.sh"
build_berth "$repo"

work="$(mktemp -d /tmp/berth-bench-detached.XXXXXX)"
export BERTH_ROOT="$work/state"
cleanup() {
    # Whatever a failed run left: berth's containers, runc's, then the files.
    "$BERTH" container rm -f $("$BERTH" container ls -aq 2>/dev/null) >/dev/null 2>&1 || true
    "$BERTH" system prune -f >/dev/null 2>&1 || true
    for id in $(runc --root "$work/runc-state" list -q 2>/dev/null); do
        runc --root "$work/runc-state" delete -f "$id" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

rootfs="$work/rootfs"
make_busybox_rootfs "$rootfs"
tar -C "$rootfs" -cf "$work/rootfs.tar" .
"$BERTH" image import "$work/rootfs.tar" bench-busybox >/dev/null
"$BERTH" container rm -f "$("$BERTH" container run -d bench-busybox sleep 100)" >/dev/null

bundle="$work/bundle"
make_runc_bundle "$bundle" "$rootfs" sleep 100

cat >"$work/berth-cycle" <<SH
#!/bin/sh
id=\$("$BERTH" container run -d bench-busybox sleep 100) && exec "$BERTH" container rm -f "\$id" >/dev/null
SH
cat >"$work/runc-cycle" <<SH
#!/bin/sh
id=bench-\$\$
runc --root "$work/runc-state" run -d --bundle "$bundle" "\$id" </dev/null >/dev/null 2>&1 &&
    exec runc --root "$work/runc-state" delete -f "\$id"
SH
chmod +x "$work/berth-cycle" "$work/runc-cycle"

hyperfine --warmup 3 --runs "$runs" --export-json "$work/result.json" \
    -n berth "$work/berth-cycle" -n runc "$work/runc-cycle" >&2

report_ratio "$work/result.json" "run -d + rm -f (runc: run -d + delete -f)"

# What stays resident: 50 detached containers, the RSS of each one's berth-shim.
ids=()
for _ in $(seq 50); do ids+=("$("$BERTH" container run -d bench-busybox sleep 100)"); done
python3 - "$BERTH_ROOT" "${ids[@]}" <<'PY'
import json, statistics, sys
root, ids = sys.argv[1], sys.argv[2:]
rss = []
for cid in ids:
    state = json.load(open(f"{root}/containers/{cid}/state.json"))
    for line in open(f"/proc/{state['monitorPid']}/status"):
        if line.startswith("VmRSS:"):
            rss.append(int(line.split()[1]))
print(f"berth-shim RSS per detached container (50 running): median {statistics.median(rss)} KiB, "
      f"max {max(rss)} KiB, total {sum(rss) / 1024:.1f} MiB")
PY
"$BERTH" container rm -f "${ids[@]}" >/dev/null
