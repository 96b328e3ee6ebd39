#!/usr/bin/env bash
# Makes sure a Docker engine answers `docker info`, and that a compose command exists (as root
# with apt: Debian's docker-compose package, 1.29 on Debian 12, which docker-compose.yml and
# scripts/compose-down.sh support as they do `docker compose`). When
# the engine is down: as root on Debian, installs docker.io and docker-compose (apt) if dockerd
# is missing, starts dockerd in the background (log: /var/log/dockerd.log) and waits up to
# 60 s for it. Idempotent: an engine that already answers is left alone. Exits non-zero, naming
# the fix, when it cannot get an engine.
set -euo pipefail

LOG=/var/log/dockerd.log
PIDFILE=/var/run/docker.pid
WAIT_SECONDS=60

say() { echo "setup-docker: $*" >&2; }
fail() {
    say "$*"
    exit 1
}

engine_up() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
compose_present() {
    command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1
}
running_dockerd() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

apt_updated=
apt_install() {
    if [ -z "$apt_updated" ]; then
        apt-get update -qq >&2
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

if ! engine_up; then
    if [ "$(id -u)" != 0 ]; then
        if command -v docker >/dev/null 2>&1 && [ -S /var/run/docker.sock ]; then
            fail "the Docker engine does not answer this user ($(docker info 2>&1 | tail -1));" \
                "add the user to the docker group, or run as root"
        fi
        fail "no Docker engine is running and this is not root: start Docker" \
            "(e.g. sudo scripts/setup-docker.sh, or sudo systemctl start docker)"
    fi
    if ! command -v dockerd >/dev/null 2>&1; then
        can_apt || fail "dockerd is not installed and there is no apt-get: install Docker Engine"
        say "installing docker.io and docker-compose (apt)"
        apt_install docker.io docker-compose
    fi
    # An engine may be starting already (another script, a service manager): wait for it
    # rather than start a second one on the same socket.
    started=
    if running_dockerd; then
        say "dockerd is already running (pid $(cat "$PIDFILE")); waiting for it"
    else
        say "starting dockerd in the background (log: $LOG)"
        # Detached from this shell and its output: it outlives the script, and a caller
        # reading this script's output (CI) is not held open by it.
        setsid dockerd </dev/null >>"$LOG" 2>&1 &
        started=$!
    fi
    deadline=$((SECONDS + WAIT_SECONDS))
    until engine_up; do
        why=
        if [ "$SECONDS" -ge "$deadline" ]; then
            why="dockerd did not answer within ${WAIT_SECONDS}s"
        elif [ -n "$started" ] && ! kill -0 "$started" 2>/dev/null && ! running_dockerd; then
            why="dockerd exited"
        fi
        if [ -n "$why" ]; then
            say "$why${DOCKER_HOST:+ (DOCKER_HOST=$DOCKER_HOST)}; the end of $LOG:"
            tail -n 20 "$LOG" >&2 2>/dev/null || true
            fail "fix the error above (a stale $PIDFILE, missing kernel features)" \
                "and run scripts/setup-docker.sh again"
        fi
        sleep 0.5
    done
    say "the Docker engine is up"
fi

if ! compose_present; then
    if can_apt; then
        say "installing docker-compose (apt)"
        apt_install docker-compose
    else
        say "warning: neither docker-compose nor 'docker compose' is installed;" \
            "docker-compose.yml and tests/docker/test_compose.py need one: as root," \
            "apt-get install docker-compose (Debian, Ubuntu), or Docker's" \
            "docker-compose-plugin package (from Docker's apt repository) for 'docker compose'"
    fi
fi
docker version --format 'setup-docker: Docker engine {{.Server.Version}} (API {{.Server.APIVersion}})' >&2
