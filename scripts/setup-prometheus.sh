#!/usr/bin/env bash
# Installs (Debian, as root) the Prometheus server and promtool that the metrics tests
# (tests/e2e/test_metrics.py) start and check the alert rules with, and prints the path of
# the prometheus binary (promtool is beside it). Debian's package also enables a system
# service; it is not started here: the tests run their own server on a free port. Idempotent.
set -euo pipefail

for candidate in "${TETHER_TEST_PROMETHEUS:-}" /usr/bin/prometheus; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && [ -x "$(dirname "$candidate")/promtool" ]; then
        echo "$candidate"
        exit 0
    fi
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-prometheus: no prometheus, and it can only be installed as root on Debian" >&2
    exit 1
fi
apt-get update -qq >&2
# policy-rc.d refusing (101): the package's service is not started in a container or CI.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2
echo /usr/bin/prometheus
