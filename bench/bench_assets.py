"""Asset catalog benchmark: the asset list and an asset's page with 1,000 assets and
1,000,000 materializations stored.

The control plane runs as `tether controlplane serve` (SQLite by default, or ``--db`` a
PostgreSQL server URL: a fresh database is made there and dropped after). One code location
reports 1,000 assets in ten groups (each asset depends on the one before it in its group; ten
asset jobs), the first 100 of them partitioned by day (1,000 partitions each). The catalog's
tables are then bulk-filled as ingestion would have filled them: 1,000,000 materializations
(2,000 for each partitioned asset, two per partition; 888 or 889 for each other one), each with
numeric metadata, the per-partition state (100,000 rows, 5 % of them FAILED) and the
per-asset summaries. Then each page is fetched ``--repeat`` times, through the API as the CLI
does and as web pages as a signed-in browser does, and p50 / p99 are printed with the load.

    .venv/bin/python -m bench.bench_assets [--materializations 1000000] [--repeat 200]
    .venv/bin/python -m bench.bench_assets --db postgresql+psycopg://tether:tether@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_controlplane import machine, percentile
from tests.support import ControlPlane, Tenant, drop_postgres_database, fresh_postgres_database
from tether_api.partitions import all_keys
from tether_api.snapshot import (
    AssetSnapshot,
    DefinitionsSnapshot,
    JobSnapshot,
    PartitionsSnapshot,
    StepSnapshot,
)

LOCATION = "catalog"
ASSETS = 1000
GROUPS = 10
PARTITIONED = 100
PARTITIONS = 1000
TARGET_MS = 100.0
DAILY = PartitionsSnapshot(
    kind="time_window", cron="0 0 * * *", timezone="UTC", start="2022-01-01", fmt="%Y-%m-%d"
)
EVENT_COLUMNS = (
    "deployment_id, asset_key, type, partition, run_id, job, code_location, step, timestamp, "
    "metadata"
)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def key(i: int) -> str:
    return f"asset_{i:04d}"


def snapshot() -> DefinitionsSnapshot:
    assets = []
    per_group = ASSETS // GROUPS
    for i in range(ASSETS):
        first_of_group = i % per_group == 0
        assets.append(
            AssetSnapshot(
                key=key(i),
                deps=[] if first_of_group else [key(i - 1)],
                group=f"group_{i // per_group}",
                description=f"asset {i}",
                partitions=DAILY if i < PARTITIONED else None,
            )
        )
    jobs = []
    for g in range(GROUPS):
        members = assets[g * per_group : (g + 1) * per_group]
        jobs.append(
            JobSnapshot(
                name=f"group_{g}_job",
                steps=[StepSnapshot(name=a.key, deps=a.deps, asset_key=a.key) for a in members],
                # Group 0 holds the partitioned assets: its job is partitioned like them.
                partitions=DAILY if g == 0 else None,
            )
        )
    return DefinitionsSnapshot(assets=assets, jobs=jobs)


def events(total: int, dep_id: int, keys: list[str]) -> Iterator[tuple[Any, ...]]:
    """(row of asset_events) for every materialization, oldest first per asset."""
    start = datetime(2024, 1, 1)
    per_partitioned = 2 * PARTITIONS
    rest = total - PARTITIONED * per_partitioned
    per_other, extra = divmod(rest, ASSETS - PARTITIONED)
    for i in range(ASSETS):
        job = f"group_{i // (ASSETS // GROUPS)}_job"
        if i < PARTITIONED:
            for n in range(per_partitioned):
                partition = keys[n % PARTITIONS]
                yield _event(dep_id, i, job, start + timedelta(minutes=n), partition, n)
        else:
            count = per_other + (1 if i - PARTITIONED < extra else 0)
            for n in range(count):
                yield _event(dep_id, i, job, start + timedelta(minutes=n), None, n)


def _event(
    dep_id: int, i: int, job: str, at: datetime, partition: str | None, n: int
) -> tuple[Any, ...]:
    metadata = json.dumps({"rows": 1000 + (n * 37) % 500, "duration_s": round(0.5 + n % 7, 2)})
    run_id = f"{i:08x}-0000-0000-0000-{n:012x}"
    return (
        dep_id,
        key(i),
        "ASSET_MATERIALIZATION",
        partition,
        run_id,
        job,
        LOCATION,
        key(i),
        at,
        metadata,
    )


def fill(url: str, dep_id: int, total: int) -> float:
    """Bulk-fill the catalog's three tables; returns the seconds it took."""
    keys = all_keys(DAILY, datetime.now(UTC))[:PARTITIONS]
    started = time.perf_counter()
    engine = create_engine(url)
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        if postgres:
            copy_sql = f"COPY asset_events ({EVENT_COLUMNS}) FROM STDIN"
            with raw.cursor() as cur, cur.copy(copy_sql) as copy:  # type: ignore[union-attr]
                for row in events(total, dep_id, keys):
                    copy.write_row(row)
        else:
            marks = ", ".join(["?"] * 10)
            sql = f"INSERT INTO asset_events ({EVENT_COLUMNS}) VALUES ({marks})"
            batch: list[tuple[Any, ...]] = []
            for row in events(total, dep_id, keys):
                batch.append(row)
                if len(batch) == 20_000:
                    raw.executemany(sql, batch)  # type: ignore[union-attr]
                    batch.clear()
            raw.executemany(sql, batch)  # type: ignore[union-attr]
        # The state tables, from the history just written (as ingestion keeps them).
        conn.execute(
            text(
                """
                INSERT INTO asset_partitions
                    (deployment_id, asset_key, partition, status, run_id, event_id, at)
                SELECT e.deployment_id, e.asset_key, e.partition,
                       CASE WHEN (e.id % 20) = 0 THEN 'FAILED' ELSE 'MATERIALIZED' END,
                       e.run_id,
                       CASE WHEN (e.id % 20) = 0 THEN NULL ELSE e.id END,
                       e.timestamp
                FROM asset_events e
                JOIN (SELECT asset_key, partition, MAX(id) AS id FROM asset_events
                      WHERE deployment_id = :dep AND partition IS NOT NULL
                      GROUP BY asset_key, partition) latest ON latest.id = e.id
                """
            ),
            {"dep": dep_id},
        )
        conn.execute(
            text(
                """
                INSERT INTO asset_summaries
                    (deployment_id, asset_key, code_location, status, last_materialization_id,
                     last_materialized_at, last_materialization_run_id,
                     last_materialization_partition, materializations, observations,
                     check_evaluations, failures, partitions_materialized, partitions_failed,
                     updated_at)
                SELECT e.deployment_id, e.asset_key, :location, 'MATERIALIZED', e.id,
                       e.timestamp, e.run_id, e.partition, counts.n, 0, 0, 0,
                       COALESCE(p.materialized, 0), COALESCE(p.failed, 0), e.timestamp
                FROM asset_events e
                JOIN (SELECT asset_key, MAX(id) AS id, COUNT(*) AS n FROM asset_events
                      WHERE deployment_id = :dep GROUP BY asset_key) counts ON counts.id = e.id
                LEFT JOIN (SELECT asset_key,
                                  SUM(CASE WHEN status = 'MATERIALIZED' THEN 1 ELSE 0 END)
                                      AS materialized,
                                  SUM(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END) AS failed
                           FROM asset_partitions WHERE deployment_id = :dep
                           GROUP BY asset_key) p ON p.asset_key = e.asset_key
                """
            ),
            {"dep": dep_id, "location": LOCATION},
        )
        if postgres:
            conn.execute(
                text("ANALYZE asset_events; ANALYZE asset_partitions; ANALYZE asset_summaries")
            )
        else:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return time.perf_counter() - started


def deployment_id(url: str, tenant: Tenant) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT d.id FROM deployments d JOIN organizations o ON o.id = d.organization_id "
                "WHERE o.name = :org AND d.name = :dep"
            ),
            {"org": tenant.org, "dep": tenant.deployment},
        ).scalar_one()
    engine.dispose()
    return int(found)


def timed(c: httpx.Client, path: str, params: dict[str, Any], repeat: int) -> list[float]:
    found = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = c.get(path, params=params)
        found.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path} {params}: {r.status_code} {r.text[:500]}")
    return found


def signed_in(tenant: Tenant) -> httpx.Client:
    """A client holding a web session, as a browser after signing in."""
    c = httpx.Client(base_url=tenant.cp.url, timeout=30)
    r = c.post("/sign-in", data={"token": tenant.user_token}, headers={"Origin": tenant.cp.url})
    if r.status_code != 303:
        raise RuntimeError(f"signing in failed: {r.status_code} {r.text[:300]}")
    return c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--materializations", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200, help="calls per page")
    parser.add_argument("--db", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--api-only", action="store_true", help="skip the web pages")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tether-bench-assets-"))
    url = fresh_postgres_database(args.db) if args.db else None
    cp = ControlPlane(tmp, database_url=url).start()
    print(f"machine: {machine()}")
    print(f"store:   {'PostgreSQL' if url else 'SQLite'}; {load()}")
    try:
        tenant = cp.tenant()
        tenant.report_running(LOCATION, snapshot().model_dump(mode="json"))
        seconds = fill(
            cp.database_url, deployment_id(cp.database_url, tenant), args.materializations
        )
        print(
            f"filled:  {ASSETS} assets, {args.materializations:,} materializations, "
            f"{PARTITIONED * PARTITIONS:,} partition states in {seconds:.0f} s"
        )
        api = tenant.dep_path
        ui = f"/d/{tenant.deployment}"
        partitioned, plain = key(0), key(ASSETS - 1)
        with tenant.user() as c:
            oldest = c.get(f"{api}/asset-events", params={"key": plain, "limit": 1}).json()
            deep_cursor = str(int(oldest["events"][0]["id"]) - 500)
        pages: dict[str, tuple[str, str, dict[str, Any]]] = {
            "asset list, all 1,000 (API)": ("api", f"{api}/assets", {}),
            "asset list, a page of 50 (API)": ("api", f"{api}/assets", {"limit": 50}),
            "asset list, a group (API)": ("api", f"{api}/assets", {"group": "group_7"}),
            "asset, partitioned (API)": ("api", f"{api}/assets/{partitioned}", {}),
            "asset, 889 events (API)": ("api", f"{api}/assets/{plain}", {}),
            "history, first page (API)": ("api", f"{api}/asset-events", {"key": partitioned}),
            "history, deep page (API)": (
                "api",
                f"{api}/asset-events",
                {"key": plain, "before": deep_cursor},
            ),
            "partitions, FAILED (API)": (
                "api",
                f"{api}/asset-partitions",
                {"key": partitioned, "status": "FAILED"},
            ),
            "partitions, MISSING (API)": (
                "api",
                f"{api}/asset-partitions",
                {"key": partitioned, "status": "MISSING"},
            ),
            "asset list page (web)": ("web", f"{ui}/assets", {}),
            "asset page, partitioned (web)": ("web", f"{ui}/assets/{partitioned}", {}),
            "asset page, 889 events (web)": ("web", f"{ui}/assets/{plain}", {}),
        }
        results: dict[str, list[float]] = {}
        web_client = None if args.api_only else signed_in(tenant)
        with tenant.user() as api_client:
            for name, (kind, path, params) in pages.items():
                client = api_client if kind == "api" else web_client
                if client is None:
                    continue
                timed(client, path, params, 3)  # warm caches, as a used server has them
                results[name] = timed(client, path, params, args.repeat)
        if web_client is not None:
            web_client.close()
        print(f"pages ({args.repeat} calls each, one after another; {load()}):")
        for name, values in results.items():
            p50, p99 = statistics.median(values), percentile(values, 99)
            verdict = "PASS" if p99 < TARGET_MS else "MISS"
            print(f"    {name:<32} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  p99 < 100 ms: {verdict}")
    finally:
        cp.stop()
        if url and args.db:
            drop_postgres_database(args.db, url)


if __name__ == "__main__":
    main()
