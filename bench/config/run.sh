#!/usr/bin/env bash
# Benchmark: `berth config` against `docker-compose config` on one generated 300-service project
# (anchors, merge keys, .env interpolation, depends_on chains; see gen.py).
# Budget (design brief, performance table): berth under 1/30 of docker-compose's time.
#
#   bench/config/run.sh                 # 300 services, 3 warmups, 10 runs each
#   SERVICES=600 RUNS=20 bench/config/run.sh
#   SCRATCH=.build-bench bench/config/run.sh   # build in another scratch path
#
# Needs: swift, python3, hyperfine, docker-compose (Debian's 1.29; `config` needs no daemon).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
services=${SERVICES:-300}
runs=${RUNS:-10}
warmup=${WARMUP:-3}
scratch=${SCRATCH:-$top/.build}

for tool in swift python3 hyperfine docker-compose; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done

echo "== building berth (release, static Swift runtime)"
(cd "$top" && swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product berth)
berth="$(cd "$top" && swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)/berth"
# Flush what the build wrote, so its writeback does not run during the timings.
sync

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$here/gen.py" --services "$services" --out "$work"
file="$work/compose.yaml"
echo "== generated $file: $services services, $(wc -l <"$file") lines"

# Both tools must accept the file, or the timings compare an error path.
"$berth" config -f "$file" >"$work/berth.out"
docker-compose -f "$file" config >"$work/docker-compose.out"
echo "== both accept it: berth printed $(wc -l <"$work/berth.out") lines, docker-compose $(wc -l <"$work/docker-compose.out")"

# -N: no intermediate shell, so neither command pays for one.
hyperfine -N --warmup "$warmup" --runs "$runs" --export-json "$work/times.json" \
    --command-name "berth config" "$berth config -f $file" \
    --command-name "docker-compose config" "docker-compose -f $file config"

python3 - "$work/times.json" "$services" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
berth = results["berth config"]["median"]
peer = results["docker-compose config"]["median"]
print(f"config of a {sys.argv[2]}-service file (median of {len(results['berth config']['times'])} runs):")
print(f"  berth config           {berth * 1000:9.1f} ms")
print(f"  docker-compose config  {peer * 1000:9.1f} ms")
print(f"  ratio berth/peer       {berth / peer:9.4f}  (1/{peer / berth:.1f}; budget: under 1/30)")
PY
