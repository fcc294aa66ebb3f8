#!/usr/bin/env bash
# berth's compose commands against docker compose (and its dockerd) on the same busybox image, side
# by side in one run, RUNS times each (alternating), medians and ratios:
#
#   up -d          five/compose.yaml, warm image: 2 httpd (init), 3 `sleep` as PID 1 (SIGTERM
#                  ignored), one port published on 127.0.0.1, one named volume
#   down           the same stack: docker waits the 10 s grace for the three sleepers
#   up --wait      five/health.yaml: app gated on db's health check (docker-compose 1.x: `up -d`,
#                  which waits for the same gate; see the file)
#   ps, logs       a generated project of 100 services (20 log lines each), brought up once
#   RSS, PSS       what stays resident with 5 and with 100 services: berth's supervisor (`berth
#                  supervise PROJECT`), its shims and helpers; dockerd, containerd, the
#                  containerd-shims and docker-proxy
#
#   bench/compose/run.sh                        builds berth (release, static Swift stdlib)
#   BERTH=/path/to/berth bench/compose/run.sh   uses a given binary
#   RUNS=5 bench/compose/run.sh                 more runs (default 3: docker's down takes 10 s+)
#   TOOLS=docker bench/compose/run.sh           one side only (docker, berth, podman)
#   DOCKER_COMPOSE="docker compose" ...         the docker side's client (default: `docker compose`
#                                               when the plugin is there, else docker-compose)
# podman-compose is measured too when it is installed (up -d, down, ps, logs), else skipped.
#
# Starts dockerd when none answers, and stops it again at the end, removing docker0 and Docker's
# iptables chains and restoring the FORWARD policy and bridge-nf-call-iptables as they were (a
# dockerd that enables ip_forward itself also sets FORWARD to DROP). Everything made here is
# removed on exit, failure included: both tools' projects (down -v), the image in docker, the
# berth root and the work folder.
# Needs root, busybox (static), python3, docker.io and docker-compose.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
runs="${RUNS:-3}"
many="${MANY:-100}"
port="${BENCH_PORT:-18480}"
export BENCH_PORT="$port"
image=berth-bench-busybox

tools=()
for tool in ${TOOLS:-docker berth podman}; do
    case "$tool" in
    docker | berth) tools+=("$tool") ;;
    podman)
        if command -v podman-compose >/dev/null; then tools+=(podman); else echo "== podman-compose is not installed: skipped" >&2; fi
        ;;
    *) echo "run.sh: unknown tool '$tool' (docker, berth, podman)" >&2; exit 2 ;;
    esac
done
has() { [[ " ${tools[*]} " == *" $1 "* ]]; }

source "$here/../common.sh"
if has berth; then build_berth "$repo"; fi

work="$(mktemp -d /tmp/berth-bench-compose.XXXXXX)"
export BERTH_ROOT="$work/berth-root"
five="$here/five/compose.yaml"
health="$here/five/health.yaml"
manyfile="$work/many.yaml"
docker_image_made=0

# Every project on every side, taken down with its volumes; then what the script started.
cleanup() {
    set +e
    trap - EXIT INT TERM
    for tool in "${tools[@]}"; do
        for project in benchfive:"$five" benchwait:"$health" benchmany:"$manyfile"; do
            [[ -f "${project#*:}" ]] && compose "$tool" "${project#*:}" "${project%%:*}" down -v -t 1 >/dev/null 2>&1
        done
    done
    if has docker && docker info >/dev/null 2>&1; then
        # A network that down could not remove (dockerd kept a stale endpoint): its endpoints
        # disconnected by force, then the network.
        for network in benchfive_default benchwait_default benchmany_default; do
            docker network inspect "$network" >/dev/null 2>&1 || continue
            for endpoint in $(docker network inspect -f '{{range $id, $e := .Containers}}{{$e.Name}} {{end}}' "$network"); do
                docker network disconnect -f "$network" "$endpoint" >/dev/null 2>&1
            done
            docker network rm "$network" >/dev/null 2>&1 || echo "run.sh: could not remove docker network $network" >&2
        done
    fi
    if has berth && [[ -n "${BERTH:-}" ]]; then "$BERTH" system prune -f >/dev/null 2>&1; fi
    if ((docker_image_made)); then docker rmi "$image" >/dev/null 2>&1; fi
    stop_dockerd
    rm -rf "$work"
}
# The docker side's client: docker compose v2 when there, else docker-compose 1.x.
if [[ -n "${DOCKER_COMPOSE:-}" ]]; then
    read -r -a docker_compose <<<"$DOCKER_COMPOSE"
elif docker compose version >/dev/null 2>&1; then
    docker_compose=(docker compose)
else
    docker_compose=(docker-compose)
fi
docker_v1=0
if [[ "${docker_compose[*]}" == docker-compose ]] && docker-compose version --short 2>/dev/null | grep -q '^1\.'; then
    docker_v1=1
fi

# docker-compose 1.x stalls now and then bringing up ~100 services with its default thread limit
# of 64 (docker/compose#7486, #8161; seen here: 1 run in 2 stopped at 34 containers); a limit
# above the service count has not stalled here. A limit below it deadlocks (#5864).
if ((docker_v1)); then export COMPOSE_PARALLEL_LIMIT="${COMPOSE_PARALLEL_LIMIT:-$((many * 2))}"; fi
step_timeout="${STEP_TIMEOUT:-600}"

# compose TOOL FILE PROJECT ARGS..., given up after STEP_TIMEOUT seconds (default 600).
compose() {
    local tool="$1" file="$2" project="$3"
    shift 3
    case "$tool" in
    docker) timeout -k 10 "$step_timeout" "${docker_compose[@]}" -f "$file" -p "$project" "$@" ;;
    berth) timeout -k 10 "$step_timeout" "$BERTH" -f "$file" -p "$project" "$@" ;;
    podman) timeout -k 10 "$step_timeout" podman-compose -f "$file" -p "$project" "$@" ;;
    esac
}

# `up` that returns once health-gated services are up: --wait where the tool has it.
up_wait_args() {
    case "$1" in
    docker) if ((docker_v1)); then echo "up -d"; else echo "up -d --wait"; fi ;;
    berth) echo "up -d --wait" ;;
    podman) echo "up -d" ;;
    esac
}

# timed_try OP TOOL FILE PROJECT ARGS...: runs the compose command and appends "OP TOOL US us"
# to times; when it fails, says so and returns its status instead.
timed_try() {
    local op="$1" tool="$2" start end code=0
    shift 2
    start=$(date +%s%N)
    compose "$tool" "$@" >"$work/last.out" 2>&1 || code=$?
    if ((code != 0)); then
        echo "run.sh: $tool: '$*' failed with exit $code$( ((code == 124)) && echo " (after ${step_timeout}s)"):" >&2
        tail -n 20 "$work/last.out" >&2
        return "$code"
    fi
    end=$(date +%s%N)
    echo "$op $tool $(((end - start) / 1000)) us" >>"$work/times"
}
# timed: the same, and a failure ends the run.
timed() { timed_try "$@" || exit 1; }

# rss LABEL TOOL PROJECT: appends "rss LABEL TOOL PART KIB" lines: the resident set of what
# keeps the project running, by part.
rss() {
    python3 - "$1" "$2" "$3" "$BERTH_ROOT" >>"$work/times" <<'PY'
import os, sys
label, tool, project, root = sys.argv[1:5]
parts = {}
# VmRSS, and PSS (shared pages split among the processes sharing them: the shims share their
# binary's text, so their RSS summed counts it once per shim).
def add(part, pid):
    try:
        rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
        pss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/smaps_rollup") if l.startswith("Pss:"))
    except (OSError, StopIteration):
        return
    total = parts.setdefault(part, [0, 0, 0])
    total[0] += rss
    total[1] += 1
    total[2] += pss
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]
        argv = [a.decode(errors="replace") for a in argv]
        comm = open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        continue
    if not argv:
        continue
    name = os.path.basename(argv[0])
    if tool == "docker":
        if comm in ("dockerd", "containerd", "docker-proxy"):
            add(comm, pid)
        elif comm.startswith("containerd-shim"):
            add("containerd-shim", pid)
    elif tool == "berth":
        if not name.startswith("berth"):
            continue
        try:
            environ = open(f"/proc/{pid}/environ", "rb").read()
        except OSError:
            environ = b""
        ours = f"BERTH_ROOT={root}".encode() in environ.split(b"\0") or any(root in a for a in argv)
        if name == "berth" and argv[1:3] == ["supervise", project]:
            add("supervisor", pid)
        elif ours and name in ("berth-shim", "berth-netd", "berth-proxy"):
            add(name, pid)
for part, (kib, count, pss) in sorted(parts.items()):
    print(f"rss {label} {tool} {part} {kib} {count} {pss}")
if tool == "berth" and "supervisor" not in parts:
    print(f"run.sh: no process 'berth supervise {project}' found", file=sys.stderr)
PY
}

trap cleanup EXIT
trap 'exit 130' INT TERM

# The image, the same tar for each side.
scripts_tar="$work/busybox.tar"
"$repo/scripts/busybox-image" "$scripts_tar"
if has docker; then
    start_dockerd "$work" || exit 1
    if ! docker image inspect "$image" >/dev/null 2>&1; then
        docker import --change 'CMD ["sh"]' --change 'ENV PATH=/bin' "$scripts_tar" "$image" >/dev/null
        docker_image_made=1
    fi
    if [[ -n "$(docker ps -q)" ]]; then
        echo "run.sh: note: other docker containers are running; their shims count in docker's RSS" >&2
    fi
    echo "== docker side: ${docker_compose[*]} $("${docker_compose[@]}" version --short 2>/dev/null || true), dockerd $(docker version -f '{{.Server.Version}}')" >&2
fi
if has berth; then
    "$BERTH" image import -c 'CMD ["sh"]' -c 'ENV PATH=/bin' "$scripts_tar" "$image" >/dev/null ||
        { echo "run.sh: $BERTH image import failed" >&2; exit 1; }
fi

# The 100-service project: each service logs 20 lines, then sleeps under an init.
{
    echo "services:"
    for i in $(seq -w 1 "$many"); do
        cat <<YAML
  s$i:
    image: $image
    init: true
    command: ["sh", "-c", "for n in \$\$(seq 20); do echo \"s$i line \$\$n\"; done; exec sleep 1000000"]
YAML
    done
} >"$manyfile"

# Warm-up: each side brings the stack up and down once (images, caches, the first network).
for tool in "${tools[@]}"; do
    echo "== $tool: warm-up" >&2
    compose "$tool" "$five" benchfive up -d >/dev/null 2>&1 || { compose "$tool" "$five" benchfive up -d; exit 1; }
    compose "$tool" "$five" benchfive down >/dev/null 2>&1
done

# The timed runs, the sides alternating.
for run in $(seq "$runs"); do
    for tool in "${tools[@]}"; do
        echo "== run $run/$runs: $tool" >&2
        timed "up -d (5 services)" "$tool" "$five" benchfive up -d
        # The published port answers before the stack counts as up.
        for _ in $(seq 50); do
            timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0' "$port" 2>/dev/null && break
            sleep 0.1
        done
        if [[ "$tool" != podman ]]; then sleep 1 && rss "5 services" "$tool" benchfive; fi
        timed "down (5 services)" "$tool" "$five" benchfive down
        # shellcheck disable=SC2046
        timed "up --wait (health-gated)" "$tool" "$health" benchwait $(up_wait_args "$tool")
        compose "$tool" "$health" benchwait down -t 1 >/dev/null 2>&1
    done
done

# 100 services: up once, then ps and logs RUNS times each, RSS, down once.
for tool in "${tools[@]}"; do
    echo "== $tool: $many services" >&2
    timed "up -d ($many services, once)" "$tool" "$manyfile" benchmany up -d
    sleep 2
    [[ "$tool" == podman ]] || rss "$many services" "$tool" benchmany
    for run in $(seq "$runs"); do
        timed "ps ($many containers)" "$tool" "$manyfile" benchmany ps
        timed "logs ($many containers)" "$tool" "$manyfile" benchmany logs
    done
    lines=$(compose "$tool" "$manyfile" benchmany logs 2>/dev/null | grep -c ' line ' || true)
    echo "== $tool: logs printed $lines lines (expected $((many * 20)))" >&2
    # docker-compose 1.x now and then fails here: "network ... has active endpoints" (dockerd
    # still releasing a removed container's endpoint). Not timed then, and done again.
    if ! timed_try "down ($many services, once)" "$tool" "$manyfile" benchmany down; then
        echo "== $tool: down again (not timed)" >&2
        compose "$tool" "$manyfile" benchmany down >/dev/null 2>&1 || true
    fi
done

python3 - "$work/times" "${tools[@]}" <<'PY'
import statistics, sys
path, tools = sys.argv[1], sys.argv[2:]
times, rss = {}, {}
for line in open(path):
    f = line.split()
    if f[0] == "rss":
        # rss LABEL... TOOL PART KIB COUNT PSS (the label has spaces)
        label, tool, part = " ".join(f[1:-5]), f[-5], f[-4]
        kib, count, pss = int(f[-3]), int(f[-2]), int(f[-1])
        rss.setdefault(label, {}).setdefault(tool, {}).setdefault(part, []).append((kib, count, pss))
        continue
    op, tool, us = " ".join(f[:-3]), f[-3], int(f[-2])
    times.setdefault(op, {}).setdefault(tool, []).append(us / 1000)
names = {"docker": "docker", "berth": "berth", "podman": "podman"}
width = max(len(op) for op in times)
print(f"{'median ms':<{width}}  " + "".join(f"{names[t]:>12}" for t in tools)
      + ("   berth/docker" if {"berth", "docker"} <= set(tools) else ""))
for op, by_tool in times.items():
    medians = {t: statistics.median(v) for t, v in by_tool.items()}
    row = f"{op:<{width}}  " + "".join(f"{medians[t]:>12.1f}" if t in medians else f"{'-':>12}" for t in tools)
    if "berth" in medians and "docker" in medians:
        row += f"   {medians['berth'] / medians['docker']:>12.3f}"
    runs = max(len(v) for v in by_tool.values())
    print(row + f"   ({runs} run{'s' if runs > 1 else ''})")
print()
for label, by_tool in rss.items():
    for tool, parts in by_tool.items():
        total = total_pss = 0
        shown = []
        for part, samples in sorted(parts.items()):
            kib = statistics.median(k for k, _, _ in samples)
            pss = statistics.median(p for _, _, p in samples)
            count = samples[-1][1]
            total += kib
            total_pss += pss
            shown.append(f"{part} {kib / 1024:.1f}" + (f" ({count} processes, PSS {pss / 1024:.1f})" if count > 1 else ""))
        print(f"RSS, {label}, {tool}: {total / 1024:.1f} MiB (PSS {total_pss / 1024:.1f} MiB) = " + " + ".join(shown))
PY
