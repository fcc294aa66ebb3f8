#!/usr/bin/env bash
# DNS queries per second from inside a container: berth's embedded server (berth-netd, on the
# network's gateway, port 53) against dnsmasq serving the same names from a hosts file (on the
# host, bound to the same gateway address, port DNSMASQ_PORT).
#
# Set-up: a network `benchdns` in a private BERTH_ROOT, 5 `sleep` containers on it (dns-c1..5,
# aliases svc1..5) and a load container on it that has bench/dns/dnsload.c (built static here)
# bind-mounted as /bin/dnsload. Each round runs `dnsload` once against each server (alternating
# which goes first): QUERIES A questions for the 10 names in turn over one UDP socket, WINDOW
# of them outstanding at once (default 16; WINDOW=1 is strictly sequential), a query unanswered
# after 1 s counted as failed. Before the rounds, every name is asked of both servers once and
# the answers are compared with each other and with the address `container inspect` gives.
# Prints each server's median queries/second, the ratio berth/dnsmasq (higher is better for
# berth), failures, each server's CPU time per query (user + system, from /proc/PID/stat over
# the rounds) and both servers' resident sizes.
#
#   bench/dns/run.sh                  builds berth (release, static Swift stdlib) and runs
#   BERTH=/path/to/berth bench/dns/run.sh
#   RUNS=15 QUERIES=20000 WINDOW=16 DNSMASQ_PORT=5353 bench/dns/run.sh   (the defaults)
# Needs root, cc (static libc), python3, busybox (static) and /usr/sbin/dnsmasq (DNSMASQ=...).
# All traffic stays on the bridge made here (and loopback: names berth-netd does not know
# would be forwarded to 127.0.0.1:9, not to the host's resolvers).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
runs="${RUNS:-15}"
queries="${QUERIES:-20000}"
window="${WINDOW:-16}"
port="${DNSMASQ_PORT:-5353}"
dnsmasq="${DNSMASQ:-/usr/sbin/dnsmasq}"
network=benchdns

source "$here/../common.sh"
build_berth "$repo"

work="$(mktemp -d /tmp/berth-bench-dns.XXXXXX)"
export BERTH_ROOT="$work/state"
containers=()
dnsmasq_pid=""
cleanup() {
    [[ -n "$dnsmasq_pid" ]] && kill "$dnsmasq_pid" 2>/dev/null && wait "$dnsmasq_pid" 2>/dev/null
    if [[ -d "$BERTH_ROOT" ]]; then
        ((${#containers[@]})) && "$BERTH" container rm -f "${containers[@]}" >/dev/null 2>&1
        "$BERTH" network rm "$network" >/dev/null 2>&1
        "$BERTH" system prune -f >/dev/null 2>&1
        # berth-netd exits by itself once no endpoint is left; make sure before the root goes.
        if [[ -f "$BERTH_ROOT/netd.pid" ]]; then
            netd="$(cat "$BERTH_ROOT/netd.pid")"
            for _ in $(seq 20); do kill -0 "$netd" 2>/dev/null || break; sleep 0.1; done
            kill "$netd" 2>/dev/null && echo "berth-netd $netd was still running: killed" >&2
        fi
    fi
    rm -rf "$work"
}
trap 'cleanup || true' EXIT

cc -static -O2 -o "$work/dnsload" "$here/dnsload.c"

rootfs="$work/rootfs"
make_busybox_rootfs "$rootfs"
mkdir -p "$BERTH_ROOT"
# Names berth-netd does not know go to a closed port on loopback, never off the machine.
printf '{"dns": ["127.0.0.1:9"]}\n' >"$BERTH_ROOT/config.json"
tar -C "$rootfs" -cf "$work/rootfs.tar" .
"$BERTH" image import "$work/rootfs.tar" bench-busybox >/dev/null

"$BERTH" network create "$network" >/dev/null
names=()
for i in 1 2 3 4 5; do
    containers+=("dns-c$i")
    "$BERTH" container run -d --name "dns-c$i" --network "$network" --network-alias "svc$i" \
        bench-busybox sleep 100000 >/dev/null
    names+=("dns-c$i" "svc$i")
done
containers+=(dns-load)
"$BERTH" container run -d --name dns-load --network "$network" -v "$work/dnsload:/bin/dnsload:ro" \
    bench-busybox sleep 100000 >/dev/null

# The gateway (where both servers listen) and each name's address, from inspect; the hosts file
# for dnsmasq from the same.
gateway="$("$BERTH" network inspect "$network" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["IPAM"]["Config"][0]["Gateway"])')"
"$BERTH" container inspect "${containers[@]:0:5}" | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    e = c["NetworkSettings"]["Networks"][sys.argv[1]]
    print(e["IPAddress"], c["Name"].lstrip("/"), *(e.get("Aliases") or []))
' "$network" >"$work/hosts"

# dnsmasq on the host: the hosts file only (no resolv.conf, no /etc/hosts, no upstreams), bound
# to the gateway address alone, answering with berth's TTL (600 s).
"$dnsmasq" --keep-in-foreground --conf-file=/dev/null --user=root --pid-file= \
    --no-resolv --no-hosts --addn-hosts="$work/hosts" \
    --bind-interfaces --listen-address="$gateway" --port="$port" \
    --local-ttl=600 --cache-size=1000 --log-facility=/dev/null &
dnsmasq_pid=$!
sleep 0.5
kill -0 "$dnsmasq_pid" || { echo "dnsmasq did not start" >&2; exit 1; }

load() { "$BERTH" container exec dns-load /bin/dnsload "$@"; }

# Correctness: every name asked of both servers, answers compared with inspect's address.
echo "gateway $gateway; names and addresses:" >&2
sed 's/^/  /' "$work/hosts" >&2
mismatches=0
while read -r address first alias; do
    for name in "$first" $alias; do
        berth_answer="$(load -q "$gateway" 53 "$name" | sort | paste -sd, || true)"
        dnsmasq_answer="$(load -q "$gateway" "$port" "$name" | sort | paste -sd, || true)"
        if [[ "$berth_answer" != "$address" || "$dnsmasq_answer" != "$address" ]]; then
            echo "MISMATCH $name: inspect $address, berth '$berth_answer', dnsmasq '$dnsmasq_answer'" >&2
            mismatches=$((mismatches + 1))
        fi
    done
done <"$work/hosts"
echo "correctness: ${#names[@]} names, $mismatches mismatches" >&2

# Warm-up, then alternate so that both see the same background load.
load "$gateway" 53 1000 "$window" "${names[@]}" >/dev/null
load "$gateway" "$port" 1000 "$window" "${names[@]}" >/dev/null
# Each line: server, what dnsload printed, and the server's CPU time (user + system clock ticks,
# all threads) over the round.
netd_pid="$(cat "$BERTH_ROOT/netd.pid")"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for i in $(seq "$runs"); do
    if ((i % 2)); then order=(berth dnsmasq); else order=(dnsmasq berth); fi
    for server in "${order[@]}"; do
        if [[ $server == berth ]]; then p=53 pid="$netd_pid"; else p="$port" pid="$dnsmasq_pid"; fi
        before="$(cpu_ticks "$pid")"
        result="$(load "$gateway" "$p" "$queries" "$window" "${names[@]}")"
        echo "$server $result $(($(cpu_ticks "$pid") - before))" >>"$work/results"
    done
done
echo "rss berth-netd $(awk '/VmRSS/ {print $2}' "/proc/$netd_pid/status")" >>"$work/results"
echo "rss dnsmasq $(awk '/VmRSS/ {print $2}' "/proc/$dnsmasq_pid/status")" >>"$work/results"
echo "hz $(getconf CLK_TCK)" >>"$work/results"

python3 - "$work/results" "$queries" "$window" <<'PY'
import statistics, sys
qps, failed, cpu, rss = {}, {}, {}, {}
hz = 100
for line in open(sys.argv[1]):
    fields = line.split()
    if fields[0] == "rss":
        rss[fields[1]] = int(fields[2])
        continue
    if fields[0] == "hz":
        hz = int(fields[1])
        continue
    server, rate, ok, bad, seconds, ticks = fields[0], float(fields[1]), int(fields[2]), int(fields[3]), fields[4], int(fields[5])
    qps.setdefault(server, []).append(rate)
    failed[server] = failed.get(server, 0) + bad
    cpu[server] = cpu.get(server, 0) + ticks
queries = int(sys.argv[2])
print(f"{sys.argv[2]} A queries a round, window {sys.argv[3]}, {len(qps['berth'])} rounds each")
median = {s: statistics.median(v) for s, v in qps.items()}
for s in ("berth", "dnsmasq"):
    runs = " ".join(f"{v:.0f}" for v in qps[s])
    print(f"{s:8} median {median[s]:9.0f} queries/s, {failed[s]} failed   (runs: {runs})")
print(f"ratio berth/dnsmasq (queries/s): {median['berth'] / median['dnsmasq']:.2f}")
per_query = {s: cpu[s] / hz / (queries * len(qps[s])) * 1e6 for s in qps}
print(f"server CPU per query: berth-netd {per_query['berth']:.1f} us, dnsmasq {per_query['dnsmasq']:.1f} us")
print(f"resident: berth-netd {rss['berth-netd']} KiB, dnsmasq {rss['dnsmasq']} KiB")
PY
