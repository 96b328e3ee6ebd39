#!/usr/bin/env bash
# Removes everything docker-compose.yml's stack and its agent made: the project's containers,
# network and volumes (`docker-compose down -v`), and what the agent launched outside the
# project: its code server and run containers (found by the labels the Docker launcher sets:
# tether.managed, tether.organization, tether.deployment, or on the stack's network) and the
# volumes it made for them (Dagster locations' storage). Another named volume that a location
# mounts is the user's data: it is kept, and named. Then checks that nothing is left, and
# exits 1 naming what is.
#
#   scripts/compose-down.sh
#
# Reads what `docker-compose up` read: COMPOSE_PROJECT_NAME, COMPOSE_FILE (default: the
# repository's docker-compose.yml), TETHER_ORG (local), TETHER_NETWORK (tether). Uses
# docker-compose, else `docker compose`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
org=${TETHER_ORG:-local}
network=${TETHER_NETWORK:-tether}
deployment=prod # docker-compose.yml's `setup` creates this one

say() { echo "compose-down: $*" >&2; }

if command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    say "neither docker-compose nor 'docker compose' is installed: apt-get install" \
        "docker-compose (Debian), or Docker's docker-compose-plugin"
    exit 1
fi
if [ -n "${COMPOSE_FILE:-}" ]; then
    first_file=${COMPOSE_FILE%%:*}
else
    first_file=$here/docker-compose.yml
    compose+=(-f "$first_file")
fi
# The project's name as compose derives it: the variable, else the compose file's folder,
# lower-case, without the characters a project name cannot have.
project=${COMPOSE_PROJECT_NAME:-$(basename "$(cd "$(dirname "$first_file")" && pwd)")}
project=$(printf '%s' "$project" | tr '[:upper:]' '[:lower:]' | tr -cd 'a-z0-9_-' | sed 's/^[-_]*//')
compose+=(-p "$project")

# What the agent launched: its labels name the stack's organization and deployment; the
# stack's network catches any whose labels were changed by hand.
launched() {
    {
        docker ps -aq --filter label=tether.managed=true \
            --filter "label=tether.organization=$org" --filter "label=tether.deployment=$deployment"
        docker ps -aq --filter label=tether.managed=true --filter "network=$network"
    } | sort -u
}
# Volumes the agent made: labelled by it, or (made by an older agent) a Dagster location's
# storage that its containers mount.
agent_volumes() {
    {
        docker volume ls -q --filter label=tether.managed=true \
            --filter "label=tether.organization=$org" --filter "label=tether.deployment=$deployment"
        for id in "$@"; do
            docker inspect --format \
                '{{range .Mounts}}{{if eq .Type "volume"}}{{println .Name}}{{end}}{{end}}' "$id" \
                2>/dev/null | grep '^tether-dagster-' || true
        done
    } | sort -u
}

# The agent first, so that it launches nothing more.
"${compose[@]}" stop agent >/dev/null 2>&1 || true

mapfile -t containers < <(launched)
mapfile -t volumes < <(agent_volumes "${containers[@]}")
for id in "${containers[@]}"; do
    for name in $(docker inspect --format \
        '{{range .Mounts}}{{if eq .Type "volume"}}{{println .Name}}{{end}}{{end}}' "$id" \
        2>/dev/null); do
        case " ${volumes[*]} " in
        *" $name "*) ;;
        *)
            # Anonymous volumes (64 hex digits) go with their container (rm -v).
            [[ $name =~ ^[0-9a-f]{64}$ ]] ||
                say "keeping volume $name, a location's own data (docker volume rm $name)"
            ;;
        esac
    done
done
if [ "${#containers[@]}" -gt 0 ]; then
    say "removing ${#containers[@]} container(s) the agent launched"
    docker rm -f -v "${containers[@]}" >/dev/null
fi

"${compose[@]}" down -v --remove-orphans --timeout 20

if [ "${#volumes[@]}" -gt 0 ]; then
    say "removing the agent's volume(s): ${volumes[*]}"
    docker volume rm "${volumes[@]}" >/dev/null
fi
if docker network inspect "$network" >/dev/null 2>&1 && [ -z "$(docker ps -aq --filter "network=$network")" ]; then
    docker network rm "$network" >/dev/null
fi

# What is left with the stack's labels or names is a failure, said by name.
left=()
project_label="label=com.docker.compose.project=$project"
for id in $(docker ps -aq --filter "$project_label") $(launched); do
    left+=("container $(docker inspect --format '{{.Name}}' "$id" 2>/dev/null | sed 's|^/||' || echo "$id")")
done
for name in $(docker volume ls -q --filter "$project_label") $(agent_volumes); do
    left+=("volume $name")
done
for id in $(docker network ls -q --filter "$project_label"); do
    left+=("network $(docker network inspect --format '{{.Name}}' "$id" 2>/dev/null || echo "$id")")
done
if docker network inspect "$network" >/dev/null 2>&1; then
    left+=("network $network")
fi
if [ "${#left[@]}" -gt 0 ]; then
    say "left behind (remove by hand, or run this again): $(printf '%s\n' "${left[@]}" | sort -u | paste -sd, -)"
    exit 1
fi
say "removed stack $project: nothing of it is left"
