#!/usr/bin/env bash
# Installs (Debian, as root) the haproxy that tests/e2e/test_replicas.py puts in front of
# control-plane replicas (with deploy/haproxy/haproxy.cfg), and prints its path. The package's
# own service is not used: the test starts haproxy itself, on free ports. Idempotent.
set -euo pipefail

for candidate in "${TETHER_TEST_HAPROXY:-}" "$(command -v haproxy || true)" /usr/sbin/haproxy; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
        echo "$candidate"
        exit 0
    fi
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-haproxy: no haproxy, and it can only be installed as root on Debian" >&2
    exit 1
fi
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >&2
echo /usr/sbin/haproxy
