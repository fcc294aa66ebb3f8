#!/usr/bin/env bash
# `berth build` against `docker build` (Debian's docker.io dockerd) on the same context, side by
# side in one run, RUNS times each (the sides alternating), medians and the ratio berth/docker:
#
#   cold build        --no-cache on both sides
#   one file changed  a rebuild after one source file changed: the COPY of the sources and the RUN
#                     after it run again, the steps before come from the cache
#   no change         a rebuild with nothing changed: every step from the cache
#
# The context (generated): a Dockerfile FROM busybox with a WORKDIR, three COPYs (config/,
# assets/, src/: 200 small files in all) and two RUN steps, one after the tooling and one over the
# sources, and a CMD. Both sides build it quietly (-q) with a tag; the two images' outputs are
# compared at the end.
#
# The docker side uses BuildKit when it works with the `docker` client found (buildx, or
# DOCKER_BUILDKIT=1 with a client that has BuildKit built in, as Debian's 20.10), else the classic
# builder (DOCKER_BUILDKIT=0); the output says which. DOCKER_BUILDER=classic|buildkit chooses;
# DOCKER=/usr/bin/docker picks the client.
#
#   bench/build/run.sh                        builds berth (release, static Swift stdlib)
#   BERTH=/path/to/berth bench/build/run.sh   uses a given binary
#   RUNS=5 bench/build/run.sh                 runs per side and case (default 3)
#
# Starts dockerd when none answers and stops it at the end, restoring the host's firewall as
# bench/compose/run.sh does (bench/common.sh). Everything made here is removed on exit, failure
# included: the images and the build cache records it made in docker, the berth root and the work
# folder.
# Needs root, busybox (static, for scripts/busybox-image), python3, curl and docker.io (dockerd and
# a docker client); berth's build needs Swift.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
runs="${RUNS:-3}"
image=berth-bench-busybox
tag=berth-bench-build
label=berth-bench=build

source "$here/../common.sh"
build_berth "$repo"

work="$(mktemp -d /tmp/berth-bench-build.XXXXXX)"
export BERTH_ROOT="$work/berth-root"
context="$work/context"
docker_image_made=0
docker_client="${DOCKER:-docker}"
docker_env=()

# The IDs of dockerd's build cache records (BuildKit's), one a line.
build_cache() {
    curl -sf --unix-socket /var/run/docker.sock 'http://localhost/system/df?type=build-cache' |
        python3 -c 'import json, sys; print("\n".join(r["ID"] for r in json.load(sys.stdin).get("BuildCache") or []))'
}
cache_before=""

cleanup() {
    set +e
    trap - EXIT INT TERM
    if docker info >/dev/null 2>&1; then
        docker rmi -f "$tag" >/dev/null 2>&1
        docker image prune -f --filter "label=$label" >/dev/null 2>&1
        if ((docker_image_made)); then docker rmi "$image" >/dev/null 2>&1; fi
        # BuildKit's cache records this run made (a record goes once nothing is built on it:
        # the leaves first, pass by pass).
        for _ in $(seq 20); do
            left="$(comm -13 <(sort <<<"$cache_before") <(build_cache | sort))"
            [[ -n "$left" ]] || break
            for record in $left; do docker builder prune -a -f --filter "id=$record" >/dev/null 2>&1; done
        done
    fi
    if [[ -n "${BERTH:-}" ]]; then "$BERTH" system prune -f >/dev/null 2>&1; fi
    stop_dockerd
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The context: 200 small files in config/ (20), assets/ (60) and src/ (120, in 12 modules).
mkdir -p "$context/config" "$context/assets" "$context/tools"
for i in $(seq -w 1 20); do printf 'key%s = value %s\n' "$i" "$i" >"$context/config/setting$i.conf"; done
for i in $(seq -w 1 60); do head -c 512 /dev/urandom | base64 >"$context/assets/asset$i.txt"; done
for m in $(seq -w 1 12); do
    mkdir -p "$context/src/module$m"
    for f in $(seq -w 1 10); do
        printf '# module %s, file %s\nline one of %s/%s\nline two\n' "$m" "$f" "$m" "$f" >"$context/src/module$m/file$f.txt"
    done
done
cat >"$context/tools/build.sh" <<'SH'
#!/bin/sh
# Checksums of every source and a count of their lines, as a build would make its output.
set -eu
mkdir -p /app/out
find src -type f | sort | xargs cat | md5sum | cut -d ' ' -f 1 >/app/out/src.sum
cat src/*/*.txt | wc -l >/app/out/lines
SH
printf 'tools/*.bak\n*.md\n' >"$context/.dockerignore"
cat >"$context/Dockerfile" <<DOCKERFILE
FROM $image
WORKDIR /app
COPY tools/ ./tools/
COPY config/ ./config/
RUN mkdir -p /app/out && cat config/*.conf > /app/out/settings && chmod 755 tools/build.sh
COPY assets/ ./assets/
COPY src/ ./src/
RUN sh tools/build.sh && ls -R /app > /tmp/files && wc -l < /tmp/files > /app/out/files && rm /tmp/files
CMD ["sh", "-c", "cat /app/out/src.sum /app/out/lines /app/out/files"]
DOCKERFILE
echo "== context: $(find "$context" -type f | wc -l) files ($(find "$context" -type f -path '*/src/*' | wc -l) sources)" >&2

# The busybox image on both sides, from the same tar.
"$repo/scripts/busybox-image" "$work/busybox.tar"
"$BERTH" image import -c 'CMD ["sh"]' -c 'ENV PATH=/bin' "$work/busybox.tar" "$image" >/dev/null ||
    { echo "run.sh: $BERTH image import failed" >&2; exit 1; }
start_dockerd "$work" || exit 1
cache_before="$(build_cache)"
if ! docker image inspect "$image" >/dev/null 2>&1; then
    docker import --change 'CMD ["sh"]' --change 'ENV PATH=/bin' "$work/busybox.tar" "$image" >/dev/null
    docker_image_made=1
fi

# Which builder docker uses: a trial build of a one-line Dockerfile.
probe="$work/probe"
mkdir -p "$probe"
printf 'FROM %s\nLABEL %s\n' "$image" "$label" >"$probe/Dockerfile"
try_builder() { env "$@" "$docker_client" build -q --label "$label" "$probe" >"$work/probe.out" 2>&1; }
builder="${DOCKER_BUILDER:-}"
if [[ -z "$builder" ]]; then
    if "$docker_client" buildx version >/dev/null 2>&1 && try_builder DOCKER_BUILDKIT=1; then
        builder=buildkit
    elif try_builder DOCKER_BUILDKIT=1; then
        builder=buildkit
    elif [[ -z "${DOCKER:-}" && -x /usr/bin/docker && "$(command -v docker)" != /usr/bin/docker ]] &&
        docker_client=/usr/bin/docker && try_builder DOCKER_BUILDKIT=1; then
        # The docker on PATH has no buildx; Debian's 20.10 client has BuildKit built in.
        echo "== BuildKit does not work with $(command -v docker): using /usr/bin/docker" >&2
        builder=buildkit
    else
        docker_client="${DOCKER:-docker}"
        echo "== BuildKit does not work with $docker_client: $(grep -m 1 -i error "$work/probe.out" || tail -n 1 "$work/probe.out")" >&2
        builder=classic
    fi
fi
case "$builder" in
buildkit) docker_env=(DOCKER_BUILDKIT=1) ;;
classic) docker_env=(DOCKER_BUILDKIT=0) ;;
*) echo "run.sh: DOCKER_BUILDER is classic or buildkit, not '$builder'" >&2; exit 2 ;;
esac
try_builder "${docker_env[@]}" || { echo "run.sh: docker build ($builder) failed:" >&2; cat "$work/probe.out" >&2; exit 1; }
docker_client_version="$("$docker_client" version -f '{{.Client.Version}}' 2>/dev/null || true)"
docker_line="docker build: client $docker_client_version ($(command -v "$docker_client")), dockerd $(docker version -f '{{.Server.Version}}'), builder: $builder (${docker_env[*]})"
echo "== $docker_line" >&2

# build TOOL ARGS...: the tool's quiet build of the context, tagged.
build() {
    local tool="$1"
    shift
    case "$tool" in
    berth) "$BERTH" build -q -t "$tag" "$@" "$context" ;;
    docker) env "${docker_env[@]}" "$docker_client" build -q --label "$label" -t "$tag" "$@" "$context" ;;
    esac
}

# timed CASE TOOL ARGS...: the build, its time appended to times as "CASE TOOL US us"; a failure
# ends the run.
timed() {
    local case="$1" tool="$2" start end code=0
    shift 2
    start=$(date +%s%N)
    build "$tool" "$@" >"$work/last.out" 2>&1 || code=$?
    end=$(date +%s%N)
    if ((code != 0)); then
        echo "run.sh: $tool: build $* failed with exit $code:" >&2
        tail -n 20 "$work/last.out" >&2
        exit 1
    fi
    echo "$case $tool $(((end - start) / 1000)) us" >>"$work/times"
}

# Warm-up: one build each (the base image's first use, page cache).
for tool in berth docker; do
    echo "== $tool: warm-up" >&2
    build "$tool" >/dev/null 2>&1 || { build "$tool"; exit 1; }
done

changes=0
for run in $(seq "$runs"); do
    for tool in berth docker; do
        echo "== run $run/$runs: $tool" >&2
        timed "cold build (--no-cache)" "$tool" --no-cache
        changes=$((changes + 1))
        printf 'line changed %s\n' "$changes" >>"$context/src/module07/file05.txt"
        timed "one source file changed" "$tool"
        timed "no change" "$tool"
    done
done

# Both images print the same thing, once both sides built the context as it is now.
build berth >/dev/null
build docker >/dev/null
berth_says="$("$BERTH" container run --rm "$tag")"
docker_says="$(docker run --rm "$tag")"
if [[ "$berth_says" != "$docker_says" ]]; then
    echo "run.sh: the images differ: berth's prints '$berth_says', docker's '$docker_says'" >&2
    exit 1
fi
echo "== both images print: $(tr '\n' ' ' <<<"$berth_says")" >&2

echo "$docker_line"
python3 - "$work/times" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    f = line.split()
    case, tool, us = " ".join(f[:-3]), f[-3], int(f[-2])
    times.setdefault(case, {}).setdefault(tool, []).append(us / 1000)
width = max(len(c) for c in times)
print(f"{'median ms':<{width}}  {'berth':>10}{'docker':>10}   berth/docker")
for case, by_tool in times.items():
    b, d = statistics.median(by_tool["berth"]), statistics.median(by_tool["docker"])
    runs = len(by_tool["berth"])
    print(f"{case:<{width}}  {b:>10.1f}{d:>10.1f}   {b / d:>12.3f}   ({runs} run{'s' if runs > 1 else ''})")
PY
