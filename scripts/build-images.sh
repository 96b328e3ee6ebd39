#!/usr/bin/env bash
# Builds Tether's images, offline:
#   tether:TAG          control plane, agent, `temporal` CLI    dockerfiles/tether.Dockerfile
#   tether-example:TAG  the bundled example, light SDK only     dockerfiles/example.Dockerfile
#   tether-dagster-example:TAG  examples/dagster_project   dockerfiles/dagster-example.Dockerfile
#
# Usage: scripts/build-images.sh [--tag TAG]      (TAG defaults to latest)
#
# Steps, each timed:
#   1. the base image: $BASE_IMAGE if set; else python:3.11-slim when it is here or can be
#      pulled; else a local Debian bookworm base, tether-base:bookworm, made with debootstrap
#      from Debian's archive (about a minute, once; root only).
#   2. wheels of Tether and its dependencies, built on the host into build/wheels with
#      $PYTHON, else .venv/bin/python, else python3 (it must be the base's Python version).
#   3. three small build contexts under build/images/: never the repository with its .venv.
#   4. docker build of each image; the builds never reach a package index.
# Re-running it with nothing changed takes seconds: the wheels come out byte-identical and
# Docker's build cache does the rest.
#
# Environment: BASE_IMAGE, PYTHON, DEBIAN_MIRROR (for debootstrap; default deb.debian.org),
# TETHER_LOCAL_BASE_IMAGE (the debootstrap image's name; default tether-base:bookworm).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; }

TAG=latest
while [ $# -gt 0 ]; do
    case "$1" in
        --tag)
            [ $# -ge 2 ] || { echo "build-images: --tag needs a value" >&2; exit 2; }
            TAG=$2
            shift 2
            ;;
        --tag=*)
            TAG=${1#--tag=}
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "build-images: unknown argument '$1'" >&2
            usage >&2
            exit 2
            ;;
    esac
done

SLIM=python:3.11-slim
LOCAL_BASE=${TETHER_LOCAL_BASE_IMAGE:-tether-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
OUT=build/images
WHEELS=build/wheels
TETHER_IMAGE=tether:$TAG
EXAMPLE_IMAGE=tether-example:$TAG
DAGSTER_EXAMPLE_IMAGE=tether-dagster-example:$TAG

say() { echo "build-images: $*" >&2; }
fail() {
    say "error: $*"
    exit 1
}

# Timing: each step prints how long it took, and the total at the end.
started=$EPOCHREALTIME
step_started=
step_name=
step() {
    step_name=$1
    step_started=$EPOCHREALTIME
    say "== $step_name"
}
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }
step_done() { say "   $step_name: ${1:+$1, }$(elapsed "$step_started")"; }

# Quiet docker builds: their output goes to a log, shown when they fail.
run_logged() {
    local log=$1
    shift
    if ! "$@" >>"$log" 2>&1; then
        tail -n 40 "$log" >&2
        fail "'$*' failed; full output in $log"
    fi
}

command -v docker >/dev/null 2>&1 ||
    fail "the docker command is not installed; run scripts/setup-docker.sh (as root) first"
docker info >/dev/null 2>&1 ||
    fail "Docker is not running ($(docker info --format '{{.ServerVersion}}' 2>&1 | tail -n 1))." \
        "Start it with scripts/setup-docker.sh (as root), or point DOCKER_HOST at an engine"
mkdir -p "$OUT"
# One build at a time in this tree: two would share build/wheels.
exec 9>build/.build-images.lock
if ! flock -n 9; then
    say "waiting for another build-images.sh in this tree to finish"
    flock 9
fi

# ------------------------------------------------------------------ 1. base image
step "base image"
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
if [ -n "${BASE_IMAGE:-}" ]; then
    BASE=$BASE_IMAGE
    step_done "$BASE (from \$BASE_IMAGE)"
elif image_exists "$SLIM"; then
    BASE=$SLIM
    step_done "$BASE (present)"
elif timeout 60 docker pull -q "$SLIM" >/dev/null 2>&1; then
    BASE=$SLIM
    step_done "$BASE (pulled)"
elif image_exists "$LOCAL_BASE"; then
    BASE=$LOCAL_BASE
    step_done "$SLIM cannot be pulled; $BASE (present)"
else
    say "   $SLIM cannot be pulled (no registry): building $LOCAL_BASE with debootstrap"
    [ "$(id -u)" = 0 ] ||
        fail "building $LOCAL_BASE needs root (debootstrap); run as root, or set BASE_IMAGE" \
            "to an image with python3 and python3-venv"
    if ! command -v debootstrap >/dev/null 2>&1; then
        command -v apt-get >/dev/null 2>&1 ||
            fail "debootstrap is missing and there is no apt-get; set BASE_IMAGE instead"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
    fi
    rootfs=$(mktemp -d "${TMPDIR:-/tmp}/tether-rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    : >"$OUT/debootstrap.log"
    run_logged "$OUT/debootstrap.log" debootstrap --variant=minbase \
        --include=python3,python3-venv bookworm "$rootfs" "$MIRROR"
    # What a container never needs: package caches and lists (apt-get update brings the
    # lists back), documentation.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
        "$rootfs"/usr/share/info/*
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["bash"]' \
        - "$LOCAL_BASE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
    BASE=$LOCAL_BASE
    step_done "$BASE (built)"
fi

# ------------------------------------------------------------------ 2. wheels
step "wheels"
if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif [ -x .venv/bin/python ]; then
    PY=.venv/bin/python
else
    PY=python3
fi
command -v "$PY" >/dev/null 2>&1 || fail "no Python at '$PY'; set PYTHON to a python3.11"
"$PY" -m pip --version >/dev/null 2>&1 ||
    fail "'$PY' has no pip; set PYTHON to a Python with pip (scripts/test.sh makes .venv)"
# The wheels (pydantic-core, uvloop, ...) are built for the host's Python: the base must
# have the same version, or pip in the image finds no matching wheel.
host_version=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
base_version=$(docker run --rm --network none --entrypoint python3 "$BASE" \
    -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>"$OUT/base-check.log") ||
    fail "cannot run python3 in $BASE ($(grep -v -e '^Run ' -e '^$' "$OUT/base-check.log" | tail -n 1));" \
        "the base image needs python3 and python3-venv"
[ "$host_version" = "$base_version" ] ||
    fail "$PY is Python $host_version but $BASE has Python $base_version: set PYTHON to a" \
        "python$base_version (the wheels must match the image), or BASE_IMAGE to a" \
        "Python $host_version image"
# Into a fresh folder, then swapped in: no wheel of an older version lingers. The tether
# wheel is reproducible (SOURCE_DATE_EPOCH; setuptools' build/lib emptied first, since it keeps
# deleted modules), so an unchanged tree gives identical bytes and Docker's cache holds.
# The dagster extra comes along for the Dagster example: one resolution gives one version of
# each package for both images, and costs less than a second `pip wheel dagster`.
rm -rf "$WHEELS.new" build/lib build/bdist.*
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 315532800) \
    "$PY" -m pip wheel -qq --wheel-dir "$WHEELS.new" \
    ".[controlplane,agent,postgres,dagster]" >&2 ||
    fail "building the wheels failed (above); pip needs PyPI, or a wheel folder in PIP_FIND_LINKS"
# The SDK distribution (tether-sdk) for the example images: the SDK without the agent.
PYTHON=$PY scripts/build-sdk-wheel.sh "$WHEELS.new" >/dev/null ||
    fail "building the tether-sdk wheel failed (above)"
rm -rf "$WHEELS" build/lib build/bdist.*
mv "$WHEELS.new" "$WHEELS"
step_done "$(find "$WHEELS" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1), Python $host_version"

# ------------------------------------------------------------------ 3. build contexts
step "build contexts"
link_or_copy() { cp -l "$@" 2>/dev/null || cp "$@"; }
rm -rf "$OUT/tether" "$OUT/example" "$OUT/dagster-example"
mkdir -p "$OUT/tether/wheels" "$OUT/example/wheels" "$OUT/dagster-example/wheels"
link_or_copy "$WHEELS"/*.whl "$OUT/tether/wheels/"
# The example needs only the SDK distribution's wheels: pip picks them from the folder,
# offline and ignoring this machine's pip configuration (its find-links may hold others).
PIP_CONFIG_FILE=/dev/null "$PY" -m pip --isolated download --quiet --no-index \
    --find-links "$WHEELS" --dest "$OUT/example/wheels" tether-sdk >&2 ||
    fail "selecting the SDK's wheels failed (above)"
cp tether_sdk/examples/quickstart.py "$OUT/example/quickstart.py"
# The Dagster example: the SDK's and dagster's wheels, and the project without local leftovers.
PIP_CONFIG_FILE=/dev/null "$PY" -m pip --isolated download --quiet --no-index \
    --find-links "$WHEELS" --dest "$OUT/dagster-example/wheels" "tether-sdk[dagster]" >&2 ||
    fail "selecting the wheels of tether-sdk[dagster] failed (above)"
tar -C examples --exclude='__pycache__' --exclude='*.pyc' --exclude='*.egg-info' \
    --exclude='.venv' --exclude='build' --exclude='dist' -cf - dagster_project |
    tar -xf - -C "$OUT/dagster-example"
sizes="tether $(du -sh "$OUT/tether" | cut -f1), example $(du -sh "$OUT/example" | cut -f1)"
step_done "$sizes, dagster-example $(du -sh "$OUT/dagster-example" | cut -f1)"

# ------------------------------------------------------------------ 4. images
image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
size_of() { docker image inspect --format '{{.Size}}' "$1" | numfmt --to=iec; }
# An image a tag named before a rebuild, now untagged: removed unless something still uses it.
drop_replaced() { if [ -n "$1" ] && [ "$1" != "$2" ]; then docker rmi "$1" >/dev/null 2>&1 || true; fi; }
build_image() {
    local image=$1 dockerfile=$2 context=$3 name cache log old old_cache new
    name=$(basename "$dockerfile" .Dockerfile)
    # The install stage, tagged so that Docker keeps it as the cache of the next build and a
    # rebuild can drop the one it replaces (else every change leaves one behind).
    cache=tether-build-cache:$name-$TAG
    log=$OUT/$name.build.log
    step "docker build $image"
    old=$(image_id "$image")
    old_cache=$(image_id "$cache")
    : >"$log"
    run_logged "$log" docker build --force-rm --build-arg "BASE_IMAGE=$BASE" --target install \
        -t "$cache" -f "$dockerfile" "$context"
    run_logged "$log" docker build --force-rm --build-arg "BASE_IMAGE=$BASE" \
        -t "$image" -f "$dockerfile" "$context"
    new=$(image_id "$image")
    drop_replaced "$old" "$new"
    drop_replaced "$old_cache" "$(image_id "$cache")"
    if [ -z "$old" ]; then
        step_done "built, $(size_of "$image")"
    elif [ "$old" != "$new" ]; then
        step_done "rebuilt, $(size_of "$image")"
    else
        step_done "unchanged (cached)"
    fi
}
build_image "$TETHER_IMAGE" dockerfiles/tether.Dockerfile "$OUT/tether"
build_image "$EXAMPLE_IMAGE" dockerfiles/example.Dockerfile "$OUT/example"
build_image "$DAGSTER_EXAMPLE_IMAGE" dockerfiles/dagster-example.Dockerfile "$OUT/dagster-example"

say "built $TETHER_IMAGE, $EXAMPLE_IMAGE and $DAGSTER_EXAMPLE_IMAGE on $BASE in $(elapsed "$started")"
