"""A year of history: a deployment of a million runs and 20 million events, and what users
(and the control plane's loops) do with it, timed, with each query's plan.

The store is filled in bulk (``COPY`` on PostgreSQL, ``executemany`` on SQLite) through the
control plane's own schema (tests/scale/fill.py says what it holds); then each path runs
``--repeat`` times in this process, against the database, through the control plane's own
service functions (the code the API routes and loops call, without HTTP): p50 and p99 against
the target (PostgreSQL 50 ms, SQLite 100 ms at p99). Last, every distinct statement a path ran
is explained (PostgreSQL: ``EXPLAIN (ANALYZE, BUFFERS)``; SQLite: ``EXPLAIN QUERY PLAN``) and
any full scan of a table that grows with history is flagged.

    .venv/bin/python bench/bench_scale.py                       # SQLite, in a temp dir
    .venv/bin/python bench/bench_scale.py --db postgresql+psycopg://tether:tether@127.0.0.1/postgres
    .venv/bin/python bench/bench_scale.py --runs 50000 --events 500000 --keep
    .venv/bin/python bench/bench_scale.py --reuse <the URL --keep printed>

With a PostgreSQL URL a fresh database is made beside the one named and dropped at the end
(unless ``--keep``). SQLite is left as the control plane leaves it: no ``ANALYZE``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The control plane's modules, as its process holds them: a full collection of Python's
# cyclic garbage collector walks every live object, so its pauses here are the server's.
from sqlalchemy import func, select

import tether_controlplane.api.app  # noqa: F401
from bench.bench_controlplane import machine, percentile
from tests.scale.fill import Store, fill
from tests.scale.paths import paths
from tests.scale.plans import Plan, Statement, captured, distinct, explain
from tests.support import drop_postgres_database, fresh_postgres_database
from tether_controlplane.db import Database, is_sqlite
from tether_controlplane.tables import ScheduleRow

TARGET_MS = {"postgresql": 50.0, "sqlite": 100.0}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (5 min {five:.2f})"


def size_of(db: Database) -> str:
    if db.sqlite:
        path = Path(db.engine.url.database or "")
        total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        return f"{total / 2**30:.2f} GiB on disk"
    with db.engine.connect() as conn:
        found = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
    return f"{(found or 0) / 2**30:.2f} GiB on disk"


def store_file(url: str) -> Path:
    if is_sqlite(url):
        return Path(url.split("///", 1)[1] + ".store.json")
    return Path(tempfile.gettempdir()) / f"bench-scale-{url.rsplit('/', 1)[1]}.store.json"


def save(store: Store, url: str) -> None:
    data = dataclasses.asdict(store)
    store_file(url).write_text(json.dumps(data, default=datetime.isoformat))


def restore(url: str) -> Store:
    data = json.loads(store_file(url).read_text())
    for key in ("now",):
        data[key] = datetime.fromisoformat(data[key])
    data["day"] = tuple(datetime.fromisoformat(v) for v in data["day"])
    data["schedule_clock"] = [datetime.fromisoformat(v) for v in data["schedule_clock"]]
    return Store(**data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="a PostgreSQL server's URL, or sqlite:///a-new-file.db")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=100, help="timed calls of each path")
    parser.add_argument("--keep", action="store_true", help="keep the filled database")
    parser.add_argument("--reuse", help="a database --keep kept: measure it again, no fill")
    parser.add_argument("--no-plans", action="store_true", help="time only")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() before timing: what the run worker's fork server does, proposed "
        "for the control plane once started (its full collections then skip its modules)",
    )
    args = parser.parse_args()

    print(f"machine: {machine()}; {load()} at the start", flush=True)
    made: str | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.reuse:
        url = args.reuse
    elif args.db and not is_sqlite(args.db):
        url = made = fresh_postgres_database(args.db)
    elif args.db:
        url = args.db
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-scale-")
        url = f"sqlite:///{tmp.name}/scale.db"
    db = Database(url)
    backend = db.engine.dialect.name
    try:
        if args.reuse:
            store = restore(url)
            # The schedules' next ticks: past what an earlier measurement evaluated.
            with db.read() as s:
                cursor = s.scalar(select(func.max(ScheduleRow.cursor)))
            if cursor is not None:
                store.schedule_clock = [cursor.replace(minute=0, second=1) + timedelta(hours=1)]
            print(f"reusing {url}: {store.runs:,} runs, {store.events:,} events")
        else:
            started = time.perf_counter()
            store = fill(
                db,
                args.runs,
                args.events,
                progress=lambda m: print(f"  fill: {m} ({time.perf_counter() - started:.0f} s)"),
            )
            took = time.perf_counter() - started
            print(
                f"filled {backend}: {store.runs:,} runs ({args.runs:,} in the measured "
                f"deployment), {store.events:,} events in {took:.0f} s; {size_of(db)}; {load()}",
                flush=True,
            )
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
            print(f"gc.freeze(): {gc.get_freeze_count():,} objects left out of collections")
        measure(db, store, backend, args.repeat, not args.no_plans)
        if args.keep and not args.reuse:
            save(store, url)
            print(f"kept: --reuse {url}")
    finally:
        db.dispose()
        if made and args.db and not args.keep:
            drop_postgres_database(args.db, made)
        if tmp is not None and not args.keep:
            tmp.cleanup()
    return 0


def measure(db: Database, store: Store, backend: str, repeat: int, plans: bool) -> None:
    target = TARGET_MS[backend]
    statements: list[Statement] = []
    missed = 0
    print(f"\n{repeat} calls of each path, after one untimed (its statements recorded):")
    measured = paths(db, store)
    for path in measured:
        if path.prepare:
            path.prepare()
        with captured(db.engine, statements, path.name):
            path.call()
        times: list[float] = []
        for _ in range(repeat):
            if path.prepare:
                path.prepare()
            start = time.perf_counter()
            path.call()
            times.append((time.perf_counter() - start) * 1000)
        p50, p99 = statistics.median(times), percentile(times, 99)
        verdict = "PASS" if p99 < target else "MISS"
        missed += verdict == "MISS"
        print(
            f"  {path.name:<42} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  max {max(times):6.1f} ms"
            f"  {load()}  p99 < {target:g} ms: {verdict}",
            flush=True,
        )
    print(f"{missed} of {len(measured)} paths missed the target; {load()}")
    if not plans:
        return
    print("\nplans (every distinct statement, in the order the paths first ran it):")
    scanned: list[Plan] = []
    current = ""
    for st in distinct(statements):
        plan = explain(db.engine, st, analyze=backend == "postgresql")
        if st.path != current:
            current = st.path
            print(f"\n== {current}")
        flag = "  ** FULL SCAN: " + "; ".join(plan.scans) if plan.scans else ""
        if plan.pages_by_sorting:
            flag += "  ** a page cut from sorted rows"
        print(f"-- {' '.join(st.sql.split())[:400]}{flag}")
        for line in plan.text.splitlines():
            print(f"     {line}")
        if plan.scans:
            scanned.append(plan)
    print(
        f"\n{len(distinct(statements))} distinct statements; "
        f"{len(scanned)} plans scan runs, run_events, run_tags, agent_requests or "
        "schedule_ticks" + (":" if scanned else " (target 0: PASS)")
    )
    for plan in scanned:
        print(f"  {plan.statement.path}: {'; '.join(plan.scans)}  (target 0: MISS)")
    print(f"{load()} at the end")


if __name__ == "__main__":
    sys.exit(main())
