"""Retention benchmark: does a purge of a year of runs pause ingestion?

A real control plane (`tether controlplane serve`, SQLite or `--db` PostgreSQL) holds a
deployment with ``--runs`` finished runs (100,000 by default), each with ``--events`` events
and a tag, created two years ago (bulk-inserted; the deployment's retention is "forever"
meanwhile). A live run's worker posts batches of ``--batch`` LOG events back to back; their
latency is measured first with nothing else going on, then while the control plane's own
retention pass removes every old run (the deployment's rule set back to 365 days through
the API). Printed beside the machine and the load: p50 / p99 / max of both, how long the
purge took and its rate; PASS when the p99 during the purge stays within 100 ms of the
p99 without it and no batch took a second.

    python bench/bench_retention.py                      # SQLite, ~3 min
    python bench/bench_retention.py --db postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_controlplane import machine, percentile
from tests.support import ControlPlane, Tenant, client, event
from tether_controlplane.db import Database
from tether_controlplane.settings import Settings
from tether_controlplane.tables import (
    DeploymentRow,
    Organization,
    RunEventRow,
    RunRow,
    RunTagRow,
    utcnow,
)

CHUNK = 5_000  # runs per bulk insert
TARGET_EXTRA_P99_MS = 100.0
TARGET_MAX_MS = 1_000.0


def fill(db: Database, dep_id: int, runs: int, events: int) -> None:
    """``runs`` finished runs, two years old, each with ``events`` events and a tag."""
    old = utcnow() - timedelta(days=730)
    done = 0
    while done < runs:
        n = min(CHUNK, runs - done)
        ids = [str(uuid.uuid4()) for _ in range(n)]
        with db.engine.begin() as conn:
            conn.execute(
                insert(RunRow.__table__),
                [
                    {
                        "id": run_id,
                        "deployment_id": dep_id,
                        "code_location": "quick",
                        "job": "etl",
                        "run_config": {},
                        "tags": {"team": "data"},
                        "status": "SUCCESS",
                        "created_at": old,
                        "ended_at": old,
                        "attempt": 1,
                    }
                    for run_id in ids
                ],
            )
            pks = list(conn.scalars(select(RunRow.pk).where(RunRow.id.in_(ids))))
            conn.execute(
                insert(RunTagRow.__table__),
                [{"run_pk": pk, "key": "team", "value": "data"} for pk in pks],
            )
            conn.execute(
                insert(RunEventRow.__table__),
                [
                    {
                        "run_pk": pk,
                        "seq": seq,
                        "type": "LOG",
                        "timestamp": old,
                        "message": f"line {seq}",
                        "data": {},
                    }
                    for pk in pks
                    for seq in range(1, events + 1)
                ],
            )
        done += n
        print(f"\r  filled {done:,} runs", end="", flush=True)
    print()


def count_runs(db: Database, dep_id: int) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).where(RunRow.deployment_id == dep_id)) or 0)


def post_batches(
    worker: httpx.Client, run_id: str, first_seq: int, batch: int, until: Any
) -> tuple[list[float], int]:
    """Post batches of ``batch`` LOG events until ``until()``; their latencies (ms)."""
    latencies: list[float] = []
    seq = first_seq
    while not until():
        body = {"events": [event(seq + i, "LOG", f"live {seq + i}") for i in range(batch)]}
        t0 = time.perf_counter()
        r = worker.post(f"/api/v1/runs/{run_id}/events", json=body)
        latencies.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"ingestion failed: {r.status_code} {r.text}")
        seq += batch
    return latencies, seq


def spread(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values):6.1f} ms  p99 {percentile(values, 99):6.1f} ms  "
        f"max {max(values):7.1f} ms  ({len(values)} batches)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="SQLAlchemy URL (default: a fresh SQLite file)")
    parser.add_argument("--runs", type=int, default=100_000, help="old runs to purge")
    parser.add_argument("--events", type=int, default=10, help="events of each old run")
    parser.add_argument("--batch", type=int, default=50, help="events per ingested batch")
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tether-bench-retention-"))
    store = "PostgreSQL" if args.db else "SQLite"
    print(f"machine: {machine()}")
    print(f"store:   {store}")
    print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the start)")
    cp = ControlPlane(tmp, database_url=args.db, retention_interval_seconds=1).start()
    db = Database(cp.database_url)
    ok = False
    try:
        tenant: Tenant = cp.tenant(concurrency=10)
        with tenant.user() as c:
            forever = {"retention": {"run_days": 0}}
            c.patch(tenant.dep_path, json=forever).raise_for_status()
        with db.read() as s:
            dep_id = s.scalar(
                select(DeploymentRow.id)
                .join(Organization, Organization.id == DeploymentRow.organization_id)
                .where(Organization.name == tenant.org)
            )
        assert dep_id is not None
        t0 = time.perf_counter()
        fill(db, dep_id, args.runs, args.events)
        print(
            f"setup:   {args.runs:,} finished runs, {args.runs * args.events:,} events, "
            f"{args.runs:,} tags, two years old: {time.perf_counter() - t0:.0f} s"
        )
        tenant.deploy()
        live = tenant.launch()["id"]
        with client(cp.url, tenant.run_token(live)) as worker:
            worker.post(
                f"/api/v1/runs/{live}/events", json={"events": [event(1, "RUN_START")]}
            ).raise_for_status()
            load0 = os.getloadavg()[0]
            end = time.monotonic() + args.baseline_seconds
            quiet, seq = post_batches(worker, live, 2, args.batch, lambda: time.monotonic() > end)
            print(f"ingestion, nothing else going on (load {load0:.2f}):  {spread(quiet)}")

            left = [count_runs(db, dep_id)]
            purged = threading.Event()

            def watch() -> None:
                while left[-1] > 1:  # the live run stays
                    time.sleep(1)
                    left.append(count_runs(db, dep_id))
                purged.set()

            with tenant.user() as c:
                c.patch(tenant.dep_path, json={"retention": {"run_days": 365}}).raise_for_status()
            started = time.perf_counter()
            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            busy, seq = post_batches(worker, live, seq, args.batch, purged.is_set)
            purge_seconds = time.perf_counter() - started
            load1 = os.getloadavg()[0]
        print(f"ingestion, during the purge (load {load1:.2f}):       {spread(busy)}")
        print(
            f"purge:   {args.runs:,} runs with their events and tags in {purge_seconds:.1f} s "
            f"({args.runs / purge_seconds:,.0f} runs/s, "
            f"{args.runs * args.events / purge_seconds:,.0f} events/s), in batches of "
            f"{Settings().retention_batch_size} rows (retention_batch_size)"
        )
        with db.read() as s:
            live_pk = s.scalar(select(RunRow.pk).where(RunRow.id == live))
            kept = s.scalar(select(func.count()).where(RunEventRow.run_pk == live_pk))
        extra = percentile(busy, 99) - percentile(quiet, 99)
        ok = extra <= TARGET_EXTRA_P99_MS and max(busy) <= TARGET_MAX_MS and kept == seq - 1
        print(
            f"{'PASS' if ok else 'MISS'} ingestion p99 during the purge {extra:+.1f} ms over "
            f"without (target <= {TARGET_EXTRA_P99_MS:.0f} ms), max {max(busy):.0f} ms "
            f"(target <= {TARGET_MAX_MS:.0f} ms); the live run holds {kept:,} of its "
            f"{seq - 1:,} events"
        )
    finally:
        db.dispose()
        cp.stop()
    print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the end)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
