#!/usr/bin/env bash
# `berth image pull` (download, verify and unpack) of a 64 MiB image against `skopeo copy` of the
# same image into an OCI layout (download and verify only), from one loopback docker-registry.
# The image: busybox and four layers of 16 MiB of random bytes (gzip cannot shrink them). The runs
# alternate (berth, skopeo, berth, ...), each into a fresh BERTH_ROOT or folder, after one warm-up
# of each. Prints both medians and the ratio (budget: berth no slower than skopeo alone).
#
#   bench/pull/run.sh                         builds berth (release, static Swift stdlib) and runs
#   BERTH=/path/to/berth bench/pull/run.sh    uses a given binary
#   RUNS=15 bench/pull/run.sh                 more runs (default 9)
#   TMPDIR=/var/tmp bench/pull/run.sh         where the work folder goes (default /tmp). On the
#                                             project's VMs, creating a file costs 0.01 to 0.6 ms
#                                             depending on the folder; berth creates ~280 (busybox
#                                             and its applet links), skopeo ~10. Say which was used.
# Needs root, docker-registry, skopeo, curl, busybox (static), python3, tar and gzip.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
runs="${RUNS:-9}"

source "$here/../common.sh"
build_berth "$repo"

work="$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-pull.XXXXXX")"
registry_pid=""
cleanup() {
    if [[ -n "$registry_pid" ]]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# skopeo reads and writes credentials nowhere but here (not exported: docker-registry would take
# REGISTRY_AUTH_FILE for its auth.file setting).
echo '{}' >"$work/auth.json"
skopeo() { REGISTRY_AUTH_FILE="$work/auth.json" command skopeo "$@"; }

# The registry: plain HTTP on 127.0.0.1 and a port nothing uses, its storage under the work dir.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
  secret: berth-bench
YAML
env $(env | grep -o "^REGISTRY_[A-Z_]*" | sed "s/^/-u /") docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 300); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" && break
    kill -0 "$registry_pid" 2>/dev/null || { cat "$work/registry.log" >&2; exit 1; }
    sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" || { echo "the registry did not start" >&2; exit 1; }

# The image, as an OCI layout: the layers as tar.gz, then config, manifest and index.json.
make_busybox_rootfs "$work/tree/base"
for i in 1 2 3 4; do
    mkdir -p "$work/tree/data$i/data"
    head -c 16M /dev/urandom >"$work/tree/data$i/data/random$i"
done
mkdir -p "$work/layers"
for layer in base data1 data2 data3 data4; do
    tar --numeric-owner --owner=0 --group=0 -C "$work/tree/$layer" -cf "$work/layers/$layer.tar" .
done
rm -rf "$work/tree"
python3 - "$work/layout" "$work/layers" <<'PY'
import gzip, hashlib, json, os, sys
layout, layers = sys.argv[1], sys.argv[2]
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs)
def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}
diff_ids, descriptors = [], []
for name in ["base", "data1", "data2", "data3", "data4"]:
    with open(os.path.join(layers, name + ".tar"), "rb") as f:
        tar = f.read()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    descriptors.append(dict(blob(gzip.compress(tar, mtime=0)), mediaType="application/vnd.oci.image.layer.v1.tar+gzip"))
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
config = {"architecture": arch, "os": "linux", "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
          "rootfs": {"type": "layers", "diff_ids": diff_ids}}
config_descriptor = dict(blob(json.dumps(config).encode()), mediaType="application/vnd.oci.image.config.v1+json")
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_descriptor, "layers": descriptors}
manifest_descriptor = dict(blob(json.dumps(manifest).encode()), mediaType=manifest["mediaType"],
                           annotations={"org.opencontainers.image.ref.name": "latest"})
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [manifest_descriptor]}, f)
with open(os.path.join(layout, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
PY
rm -rf "$work/layers"
image="127.0.0.1:$port/bench:latest"
skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:latest" "docker://$image"
rm -rf "$work/layout"
echo "image: $(du -sh "$work/registry" | cut -f1) in the registry" >&2

# One run of each, timed in milliseconds; the state root or folder goes after it.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
pull_berth() {
    local start end
    start=$(now_ms)
    BERTH_ROOT="$work/state" "$BERTH" image pull -q "$image" >/dev/null
    end=$(now_ms)
    rm -rf "$work/state"
    # The removal's and the run's writes reach the disk before the next run starts (untimed), so
    # no run pays for the one before it: this machine's disk makes that the largest noise.
    sync
    echo $((end - start))
}
copy_skopeo() {
    local start end
    start=$(now_ms)
    skopeo copy --quiet --src-tls-verify=false "docker://$image" "oci:$work/copy:latest"
    end=$(now_ms)
    rm -rf "$work/copy"
    sync
    echo $((end - start))
}

# Warm-up (and a check that both work), then the alternating runs.
pull_berth >/dev/null
copy_skopeo >/dev/null
: >"$work/berth.ms"
: >"$work/skopeo.ms"
for i in $(seq "$runs"); do
    pull_berth >>"$work/berth.ms"
    copy_skopeo >>"$work/skopeo.ms"
    echo "run $i/$runs: berth $(tail -1 "$work/berth.ms") ms, skopeo $(tail -1 "$work/skopeo.ms") ms" >&2
done

python3 - "$work/berth.ms" "$work/skopeo.ms" <<'PY'
import statistics, sys
berth = statistics.median(int(line) for line in open(sys.argv[1]))
skopeo = statistics.median(int(line) for line in open(sys.argv[2]))
ratio = berth / skopeo
print(f"pull and unpack 64 MiB: berth median {berth:.0f} ms, skopeo copy median {skopeo:.0f} ms")
print(f"ratio berth/skopeo: {ratio:.2f} (budget <= 1.00: {'met' if ratio <= 1.0 else 'NOT met'})")
PY
