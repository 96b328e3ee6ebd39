#!/usr/bin/env bash
# Build the tether-sdk wheel (sdk/pyproject.toml) into a folder, from a staging copy of the
# two packages it holds: setuptools builds only what lies under its project's folder.
#
# Usage: scripts/build-sdk-wheel.sh OUT_DIR          (PYTHON: the Python to build with)
# The wheel is reproducible: the same tree gives the same bytes (SOURCE_DATE_EPOCH).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: scripts/build-sdk-wheel.sh OUT_DIR}
py=${PYTHON:-}
if [ -z "$py" ]; then
    if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/tether-sdk-build.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp sdk/pyproject.toml "$stage/"
cp tether_sdk/README.md "$stage/README.md"
# The packages without caches or stray build output.
tar --exclude='__pycache__' --exclude='*.pyc' -cf - tether_api tether_sdk | tar -xf - -C "$stage"

mkdir -p "$out"
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 315532800) \
    "$py" -m pip wheel -qq --no-deps --wheel-dir "$out" "$stage" >&2
ls "$out"/tether_sdk-*.whl
