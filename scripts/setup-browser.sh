#!/usr/bin/env bash
# Installs (Debian, as root) the Chromium that the web UI tests drive with Playwright, and
# prints its path. Playwright's own `playwright install` downloads from a CDN, which these
# machines cannot reach; Debian's package works with it. Idempotent.
set -euo pipefail

for candidate in "${TETHER_TEST_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
        echo "$candidate"
        exit 0
    fi
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-browser: no Chromium, and it can only be installed as root on Debian" >&2
    exit 1
fi
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
echo /usr/bin/chromium
