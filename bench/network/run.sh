#!/usr/bin/env bash
# `berth container run --rm --network NAME IMAGE true` (a container on a user network: veth,
# bridge port, address, routes, the embedded DNS server told) against `runc run` with the same
# plumbing done by `ip` commands around it, on the same busybox root filesystem, side by side
# with hyperfine. Prints both medians and the ratio berth / (ip + runc).
#
# The peer is one shell script (run as `sh SCRIPT`): ip netns add; a veth pair with its peer made
# in the namespace as eth0; the host end on a bridge made here (an unused 10.x.0.0/24) and up;
# the address, lo and eth0 up, the default route; `runc run` of a bundle whose network namespace
# is that netns (config.json's namespace of type network given a "path"); ip netns del. It does
# no DNS or firewall work: berth's side does (the network's nft rules exist once, made by
# `network create`; berth-netd reloads its records per container).
# `container run --rm IMAGE true` on the default network against plain `runc run` is
# bench/run/run.sh.
#
#   bench/network/run.sh            builds berth (release, static Swift stdlib) and runs
#   BERTH=/path/to/berth bench/network/run.sh    uses a given binary
#   RUNS=50 bench/network/run.sh    more runs (default 30)
# Needs root, runc, hyperfine, ip (iproute2), busybox (static) and python3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
runs="${RUNS:-30}"
network=benchnet

source "$here/../common.sh"
build_berth "$repo"

work="$(mktemp -d /tmp/berth-bench-network.XXXXXX)"
export BERTH_ROOT="$work/state"
bridge="bbnet$$"
netns="berth-bench-net-$$"
runc_id="bench-net-$$"
cleanup() {
    if [[ -d "$BERTH_ROOT" ]]; then
        "$BERTH" network rm "$network" >/dev/null 2>&1
        "$BERTH" system prune -f >/dev/null 2>&1
    fi
    runc --root "$work/runc-state" delete -f "$runc_id" >/dev/null 2>&1
    # A failed run may leave its namespace; its veth goes with it, the bridge goes here.
    ip netns del "$netns" 2>/dev/null
    ip link del "$bridge" 2>/dev/null
    rm -rf "$work"
}
trap 'cleanup || true' EXIT

# An unused 10.x.0.0/24 for the ip side's bridge: none of the host's routes in 10.x.
octet=""
for candidate in 250 249 248 247 246 245; do
    if ! ip -4 route show table all | grep -q "^\(local \|broadcast \)\?10\.$candidate\."; then
        octet="$candidate"
        break
    fi
done
[[ -n "$octet" ]] || { echo "no unused 10.x subnet among 10.245-250" >&2; exit 1; }
ip link add "$bridge" type bridge
ip addr add "10.$octet.0.1/24" dev "$bridge"
ip link set "$bridge" up

rootfs="$work/rootfs"
make_busybox_rootfs "$rootfs"
tar -C "$rootfs" -cf "$work/rootfs.tar" .
"$BERTH" image import "$work/rootfs.tar" bench-busybox >/dev/null
"$BERTH" network create "$network" >/dev/null

# runc's default spec running `true`, its network namespace the one the script makes.
bundle="$work/bundle"
make_runc_bundle "$bundle" "$rootfs" true
python3 - "$bundle/config.json" "/var/run/netns/$netns" <<'PY'
import json, sys
path, netns = sys.argv[1], sys.argv[2]
spec = json.load(open(path))
for namespace in spec["linux"]["namespaces"]:
    if namespace["type"] == "network":
        namespace["path"] = netns
json.dump(spec, open(path, "w"), indent=1)
PY

# The host end is named per run (the shell's pid): `ip netns del` returns before the kernel has
# torn the namespace and its veth down, so the next run must not need the same name.
cat >"$work/ip-runc.sh" <<EOF
set -e
veth="bbv\$\$"
ip netns add $netns
ip link add "\$veth" type veth peer name eth0 netns $netns
ip link set "\$veth" master $bridge up
ip -n $netns addr add 10.$octet.0.2/24 dev eth0
ip -n $netns link set lo up
ip -n $netns link set eth0 up
ip -n $netns route add default via 10.$octet.0.1
runc --root $work/runc-state run --bundle $bundle $runc_id
ip netns del $netns
EOF

# Check both work (and warm the seccomp cache) before timing them.
"$BERTH" container run --rm --network "$network" bench-busybox true
sh "$work/ip-runc.sh"

hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/result.json" \
    -n berth "$BERTH container run --rm --network $network bench-busybox true" \
    -n ip+runc "sh $work/ip-runc.sh" >&2

python3 - "$work/result.json" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
berth = results["berth"]["median"] * 1000
peer = results["ip+runc"]["median"] * 1000
print(f"run --rm --network NAME IMAGE true: berth median {berth:.1f} ms, ip + runc median {peer:.1f} ms")
print(f"ratio berth/(ip + runc): {berth / peer:.2f}")
PY
