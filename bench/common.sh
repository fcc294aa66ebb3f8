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

# dockerd for the docker side of a bench. start_dockerd WORK: when no dockerd answers, starts one
# (log in WORK/dockerd.log) and sets DOCKERD_PID; first notes what a dockerd changes on the host
# (the FORWARD policy, bridge-nf-call-iptables, whether DOCKER chains exist), for stop_dockerd.
# stop_dockerd: when start_dockerd started one, stops it and removes docker0 and Docker's
# iptables chains, and puts the FORWARD policy and bridge-nf-call-iptables back as they were (a
# dockerd that enables ip_forward itself also sets FORWARD to DROP).
DOCKERD_PID=""
start_dockerd() {
    local work="$1"
    docker_forward_policy="$(iptables -S FORWARD 2>/dev/null | sed -n 's/^-P FORWARD //p')"
    docker_bridge_nf="$(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null || true)"
    docker_chains_before="$(iptables -S 2>/dev/null | grep -c -- '-N DOCKER' || true)"
    docker info >/dev/null 2>&1 && return 0
    echo "== starting dockerd (log: $work/dockerd.log)" >&2
    dockerd >"$work/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { echo "bench: dockerd did not answer" >&2; tail "$work/dockerd.log" >&2; return 1; }
}

stop_dockerd() {
    [[ -n "$DOCKERD_PID" ]] || return 0
    kill "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    DOCKERD_PID=""
    ip link del docker0 2>/dev/null
    restore_docker_firewall
}

# What dockerd changed on the host, undone: its iptables chains and jumps (when there were none
# before), the FORWARD policy, bridge-nf-call-iptables. Prints what it found.
restore_docker_firewall() {
    local now table rule chain
    if ((docker_chains_before == 0)); then
        for table in filter nat; do
            iptables -t "$table" -S 2>/dev/null | grep -E '^-A (FORWARD|PREROUTING|OUTPUT|POSTROUTING|INPUT) .*(DOCKER|docker0)' |
                sed 's/^-A /-D /' | while read -r rule; do eval "iptables -t $table $rule"; done
            for chain in $(iptables -t "$table" -S 2>/dev/null | sed -n 's/^-N \(DOCKER[^ ]*\)$/\1/p'); do
                iptables -t "$table" -F "$chain"
            done
            for chain in $(iptables -t "$table" -S 2>/dev/null | sed -n 's/^-N \(DOCKER[^ ]*\)$/\1/p'); do
                iptables -t "$table" -X "$chain"
            done
        done
    fi
    now="$(iptables -S FORWARD 2>/dev/null | sed -n 's/^-P FORWARD //p')"
    if [[ -n "$docker_forward_policy" && "$now" != "$docker_forward_policy" ]]; then
        echo "== dockerd had set the FORWARD policy to $now: back to $docker_forward_policy" >&2
        iptables -P FORWARD "$docker_forward_policy"
    fi
    now="$(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null || true)"
    if [[ "$now" != "$docker_bridge_nf" ]]; then
        echo "== dockerd had set net.bridge.bridge-nf-call-iptables to ${now:-(absent)}: back to ${docker_bridge_nf:-(absent)}" >&2
        if [[ -n "$docker_bridge_nf" ]]; then sysctl -qw net.bridge.bridge-nf-call-iptables="$docker_bridge_nf"; fi
    fi
}
