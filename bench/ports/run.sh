#!/usr/bin/env bash
# berth-proxy against Docker's docker-proxy: 1 GiB over TCP from 127.0.0.1 to a sink in a network
# namespace made here (a veth pair, 10.252.0.0/30), through each proxy in turn, RUNS times each
# (alternating), plus the same transfer straight to the namespace's address for reference.
# Prints each median throughput, berth/docker's ratio (goal: >= 1) and both resident sizes.
#
#   bench/ports/run.sh                        uses .build/release/berth-proxy, built here
#                                             (swift build -c release --product berth-proxy)
#   PROXY=/path/to/berth-proxy RUNS=9 bench/ports/run.sh
# Needs root, ip, cc, python3 and /usr/sbin/docker-proxy (DOCKER_PROXY=... for another).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [[ -z "${PROXY:-}" ]]; then
    (cd "$repo" && swift build -c release --product berth-proxy >&2)
fi
proxy="${PROXY:-$repo/.build/release/berth-proxy}"
docker_proxy="${DOCKER_PROXY:-/usr/sbin/docker-proxy}"
runs="${RUNS:-5}"
mib="${MIB:-1024}"
[[ -x "$proxy" ]] || { echo "no berth-proxy at $proxy (swift build first, or PROXY=...)" >&2; exit 1; }

work="$(mktemp -d /tmp/berth-bench-ports.XXXXXX)"
ns="berth-bench-$$"
veth="bbp$$"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip link del "$veth" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cc -O2 -o "$work/tcpbench" "$here/tcpbench.c"

ip netns add "$ns"
ip link add "$veth" type veth peer name eth0 netns "$ns"
ip addr add 10.252.0.1/30 dev "$veth"
ip link set "$veth" up
ip -n "$ns" addr add 10.252.0.2/30 dev eth0
ip -n "$ns" link set lo up
ip -n "$ns" link set eth0 up

ip netns exec "$ns" "$work/tcpbench" sink 5000 &
sink=$!
pids+=("$sink")

# berth-proxy on 127.0.0.1:15001 (its socket made beforehand, as berth does), following the
# sink's process as its "container"; docker-proxy on 127.0.0.1:15002, binding itself.
"$work/tcpbench" listen 15001 -- "$proxy" --pid "$sink" 3:tcp:10.252.0.2:5000 &
berth_pid=$!
pids+=($!)
"$docker_proxy" -proto tcp -host-ip 127.0.0.1 -host-port 15002 -container-ip 10.252.0.2 -container-port 5000 3>/dev/null 2>/dev/null &
docker_pid=$!
pids+=($!)
sleep 0.5

# Warm-up, then alternate so that both see the same background load.
"$work/tcpbench" send 10.252.0.2 5000 64 >/dev/null
for i in $(seq "$runs"); do
    echo "direct $("$work/tcpbench" send 10.252.0.2 5000 "$mib")" >>"$work/times"
    echo "berth $("$work/tcpbench" send 127.0.0.1 15001 "$mib")" >>"$work/times"
    echo "docker $("$work/tcpbench" send 127.0.0.1 15002 "$mib")" >>"$work/times"
done

# Resident size after the transfers.
echo "rss berth $(awk '/VmRSS/ {print $2}' /proc/$berth_pid/status)" >>"$work/times"
echo "rss docker $(awk '/VmRSS/ {print $2}' /proc/$docker_pid/status)" >>"$work/times"

python3 - "$work/times" "$mib" <<'PY'
import statistics, sys
times, rss = {}, {}
for line in open(sys.argv[1]):
    fields = line.split()
    if fields[0] == "rss":
        rss[fields[1]] = int(fields[2])
        continue
    times.setdefault(fields[0], []).append(float(fields[1]))
mib = int(sys.argv[2])
median = {name: statistics.median(values) for name, values in times.items()}
for name in ("direct", "berth", "docker"):
    runs = " ".join(f"{v:.3f}" for v in times[name])
    print(f"{name:7} median {median[name]:.3f} s = {mib / median[name]:8.1f} MiB/s   (runs: {runs})")
print(f"berth-proxy / docker-proxy throughput: {median['docker'] / median['berth']:.2f}x")
print(f"resident: berth-proxy {rss['berth']} KiB, docker-proxy {rss['docker']} KiB")
PY
