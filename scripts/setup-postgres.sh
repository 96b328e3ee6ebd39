#!/usr/bin/env bash
# Installs (Debian, as root) and starts a local PostgreSQL for the storage tests, with a
# role that may create databases. Prints the SQLAlchemy URL to use. Idempotent.
set -euo pipefail

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup-postgres: PostgreSQL is not installed and this is not root; install it first" >&2
        exit 1
    fi
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -q "^$version main$"; then
    pg_createcluster "$version" main >&2
fi
pg_ctlcluster "$version" main start >&2 2>/dev/null || true
for _ in $(seq 1 50); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 0.2
done
su postgres -c "psql -q -v ON_ERROR_STOP=1 -d postgres" >&2 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tether') THEN
    CREATE ROLE tether LOGIN CREATEDB PASSWORD 'tether';
  END IF;
END $$;
SQL
echo "postgresql+psycopg://tether:tether@127.0.0.1:5432/postgres"
