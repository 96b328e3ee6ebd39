#!/usr/bin/env bash
# The test command: installs everything the suite needs from a fresh clone, then runs lint,
# type checks and the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${TETHER_VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[test]"

# A real PostgreSQL for the storage tests (SQLite needs nothing).
if [ -z "${TETHER_TEST_POSTGRES_URL:-}" ]; then
    if url=$(scripts/setup-postgres.sh); then
        export TETHER_TEST_POSTGRES_URL="$url"
    elif [ "${CI:-}" = "true" ]; then
        echo "test.sh: PostgreSQL could not be set up, and CI needs it" >&2
        exit 1
    else
        echo "test.sh: no PostgreSQL; the postgres-backed tests will be skipped" >&2
    fi
fi

# A Docker engine and the test images for the Docker tests (tests/docker): the launcher's and
# docker-compose.yml's. Exporting TETHER_TEST_IMAGE, TETHER_TEST_EXAMPLE_IMAGE and
# TETHER_TEST_DAGSTER_EXAMPLE_IMAGE skips the build.
if scripts/setup-docker.sh; then
    export TETHER_TEST_DOCKER=1
    if [ -z "${TETHER_TEST_IMAGE:-}" ] || [ -z "${TETHER_TEST_EXAMPLE_IMAGE:-}" ] ||
        [ -z "${TETHER_TEST_DAGSTER_EXAMPLE_IMAGE:-}" ]; then
        PYTHON="$VENV/bin/python" scripts/build-images.sh --tag test
        export TETHER_TEST_IMAGE=tether:test TETHER_TEST_EXAMPLE_IMAGE=tether-example:test
        export TETHER_TEST_DAGSTER_EXAMPLE_IMAGE=tether-dagster-example:test
    fi
elif [ "${CI:-}" = "true" ]; then
    echo "test.sh: Docker could not be set up, and CI needs it" >&2
    exit 1
else
    echo "test.sh: no Docker engine (see above); the Docker tests will be skipped" >&2
fi

# Chromium for the web UI tests (tests/ui), driven by Playwright.
if chromium=$(scripts/setup-browser.sh 2>/tmp/tether-setup-browser.log); then
    export TETHER_TEST_CHROMIUM="$chromium"
elif [ "${CI:-}" = "true" ]; then
    cat /tmp/tether-setup-browser.log >&2
    echo "test.sh: Chromium could not be set up, and CI needs it" >&2
    exit 1
else
    echo "test.sh: no Chromium (see scripts/setup-browser.sh); the web UI tests will be skipped" >&2
fi

# haproxy in front of control-plane replicas (tests/e2e/test_replicas.py).
if haproxy=$(scripts/setup-haproxy.sh 2>/tmp/tether-setup-haproxy.log); then
    export TETHER_TEST_HAPROXY="$haproxy"
elif [ "${CI:-}" = "true" ]; then
    cat /tmp/tether-setup-haproxy.log >&2
    echo "test.sh: haproxy could not be set up, and CI needs it" >&2
    exit 1
else
    echo "test.sh: no haproxy (see scripts/setup-haproxy.sh); the replica tests will be skipped" >&2
fi

# Prometheus and promtool for the metrics tests (tests/e2e/test_metrics.py).
if prometheus=$(scripts/setup-prometheus.sh 2>/tmp/tether-setup-prometheus.log); then
    export TETHER_TEST_PROMETHEUS="$prometheus"
elif [ "${CI:-}" = "true" ]; then
    cat /tmp/tether-setup-prometheus.log >&2
    echo "test.sh: Prometheus could not be set up, and CI needs it" >&2
    exit 1
else
    echo "test.sh: no Prometheus (see scripts/setup-prometheus.sh); the metrics tests will be skipped" >&2
fi

export PATH="$PWD/$VENV/bin:$PATH"
echo "== ruff" && ruff check . && ruff format --check .
echo "== mypy" && mypy
echo "== pytest"
# pytest exits 5 when it collects nothing: set -e turns that into a failure, as it should.
# Three workers (TETHER_TEST_WORKERS; 0 runs in this process), a file per worker at a time:
# most tests wait on real servers, so three at once keep two cores busy (the whole suite in
# 14.5 minutes with three, 18 with two, on the 2-core CI machine).
pytest -n "${TETHER_TEST_WORKERS:-3}" --dist loadgroup "$@"
