"""Backfill benchmark: how fast a backfill drains, what it costs the control plane, and whether
a backfill of 10,000 partitions slows the control plane's pages.

(a) A real stack (Temporal dev server, the control plane on SQLite, one agent with the
    process launcher, warm launches) and a code location with one trivial daily-partitioned
    asset. A backfill of ``--partitions`` (1,000) partitions under the deployment's concurrency
    limit (``--concurrency``, 20): runs per minute from the backfill's creation to its last
    run's end, and the control plane's CPU (utime + stime of its process) per partition.
(b) A second deployment with no agent and the same definitions reported: a backfill of
    ``--big`` (10,000) hourly partitions. Its first runs are created and wait for an agent,
    the other partitions stay pending; the control plane's pages are then timed (p50, p99 of
    ``--repeat`` calls each): the backfill list, the backfill, its first and a deep page of
    partitions, the pending ones, and the run list beside them; and the control plane's CPU
    per second while that backfill is active, against the same with none.

    .venv/bin/python -m bench.bench_backfill [--partitions 1000] [--big 10000] [--repeat 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_controlplane import machine, percentile
from bench.bench_launch import cpu_ticks, start_stack, stop_stack
from tests.agent_support import AgentProcess, TemporalDevServer, wait_for_location
from tests.support import ControlPlane, Tenant, wait_until
from tether_api.codeserver import LoadError
from tether_api.partitions import all_keys
from tether_api.snapshot import DefinitionsSnapshot
from tether_sdk.loader import load_definitions

LOCATION = "trivial_partitioned"
JOB = "daily"
PAGE_TARGET_MS = 100.0
TRIVIAL = """
from tether_sdk import DailyPartitions, Definitions, HourlyPartitions, asset, asset_job


@asset(partitions=DailyPartitions("2020-01-01"))
def day(ctx) -> int:
    return len(ctx.partition_keys)


@asset(partitions=HourlyPartitions("2024-01-01-00:00"))
def hour(ctx) -> int:
    return len(ctx.partition_keys)


defs = Definitions(jobs=[asset_job("daily", assets=[day]), asset_job("hourly", assets=[hour])])
"""


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def cpu_seconds(pid: int) -> float:
    return cpu_ticks(pid) / os.sysconf("SC_CLK_TCK")


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def create(c: httpx.Client, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    r = c.post(f"{tenant.dep_path}/backfills", json=body)
    if r.status_code != 201:
        raise RuntimeError(f"creating the backfill failed: {r.status_code} {r.text}")
    return r.json()  # type: ignore[no-any-return]


def job_keys(snapshot: DefinitionsSnapshot, job_name: str, n: int) -> tuple[str, str]:
    """The first and the ``n``-th partition key of a job, as the control plane computes them."""
    job = snapshot.job(job_name)
    assert job is not None and job.partitions is not None
    keys = all_keys(job.partitions, datetime.now(UTC))
    if len(keys) < n:
        raise SystemExit(f"job {job_name} has {len(keys)} partitions, fewer than {n}")
    return keys[0], keys[n - 1]


def load_snapshot(tmp: Path) -> DefinitionsSnapshot:
    (tmp / "trivial.py").write_text(TRIVIAL)
    defs = load_definitions(python_file=str(tmp / "trivial.py"))
    if isinstance(defs, LoadError):
        raise SystemExit(defs.traceback)
    return defs.snapshot()


def bench_drain(
    cp: ControlPlane, tenant: Tenant, snapshot: DefinitionsSnapshot, partitions: int
) -> dict[str, Any]:
    assert cp.proc is not None
    first, last = job_keys(snapshot, JOB, partitions)
    with tenant.user() as c:
        cpu_before = cpu_seconds(cp.proc.pid)
        started = time.perf_counter()
        backfill = create(
            c,
            tenant,
            {"code_location": LOCATION, "job": JOB, "partition_range": [first, last]},
        )

        def ended() -> dict[str, Any] | None:
            r = c.get(f"{tenant.dep_path}/backfills/{backfill['id']}")
            found: dict[str, Any] = r.json()
            return found if found["status"] not in ("REQUESTED", "RUNNING") else None

        final = wait_until(ended, timeout=3600, interval=0.5, what="the backfill to end")
        wall = time.perf_counter() - started
        cpu = cpu_seconds(cp.proc.pid) - cpu_before
        # The backfill's own span: its creation to its last run's end (server timestamps).
        runs: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"tag": f"tether/backfill={backfill['id']}", "limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = c.get(f"{tenant.dep_path}/runs", params=params).json()
            runs += page["runs"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
    span = (max(when(r["ended_at"]) for r in runs) - when(backfill["created_at"])).total_seconds()
    return {
        "status": final["status"],
        "counts": final["counts"],
        "runs": len(runs),
        "span_s": span,
        "runs_per_minute": len(runs) / span * 60,
        "wall_s": wall,
        "cp_cpu_s": cpu,
        "cp_cpu_ms_per_partition": cpu / partitions * 1000,
    }


def timed(c: httpx.Client, path: str, params: dict[str, Any], repeat: int) -> list[float]:
    found = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = c.get(path, params=params)
        found.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path} {params}: {r.status_code} {r.text}")
    return found


def cpu_per_second(cp: ControlPlane, seconds: float) -> float:
    assert cp.proc is not None
    before = cpu_seconds(cp.proc.pid)
    time.sleep(seconds)
    return (cpu_seconds(cp.proc.pid) - before) / seconds


def bench_big(
    cp: ControlPlane, snapshot: DefinitionsSnapshot, big: int, repeat: int, idle_seconds: float
) -> dict[str, Any]:
    tenant = cp.tenant(concurrency=20)
    tenant.report_running(LOCATION, snapshot.model_dump(mode="json"))
    figures: dict[str, Any] = {"idle_cpu_per_s": cpu_per_second(cp, idle_seconds)}
    first, last = job_keys(snapshot, "hourly", big)
    with tenant.user() as c:
        t = time.perf_counter()
        backfill = create(
            c,
            tenant,
            {"code_location": LOCATION, "job": "hourly", "partition_range": [first, last]},
        )
        figures["create_ms"] = (time.perf_counter() - t) * 1000
        path = f"{tenant.dep_path}/backfills/{backfill['id']}"
        wait_until(
            lambda: c.get(path).json()["counts"]["launched"] > 0, timeout=30, what="first runs"
        )
        figures["active_cpu_per_s"] = cpu_per_second(cp, idle_seconds)
        cursor = None
        for _ in range(50):  # 5,000 partitions in, a page at a time as a reader goes
            params = {"limit": 100, **({"after": cursor} if cursor else {})}
            cursor = c.get(f"{path}/partitions", params=params).json()["next_cursor"]
        pages = {
            "backfill list": (f"{tenant.dep_path}/backfills", {"limit": 25}),
            "the backfill": (path, {}),
            "partitions, first page": (f"{path}/partitions", {"limit": 100}),
            "partitions, page 51": (f"{path}/partitions", {"limit": 100, "after": cursor}),
            "partitions, PENDING": (f"{path}/partitions", {"limit": 100, "status": "PENDING"}),
            "run list": (f"{tenant.dep_path}/runs", {"limit": 25}),
        }
        figures["pages"] = {
            name: timed(c, p, params, repeat) for name, (p, params) in pages.items()
        }
        figures["partition_count"] = c.get(path).json()["partition_count"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partitions", type=int, default=1000, help="partitions of (a)")
    parser.add_argument("--concurrency", type=int, default=20, help="the deployment's limit")
    parser.add_argument("--big", type=int, default=10_000, help="partitions of (b)")
    parser.add_argument("--repeat", type=int, default=200, help="calls per page in (b)")
    parser.add_argument("--idle-seconds", type=float, default=10, help="CPU sampling in (b)")
    parser.add_argument("--skip-drain", action="store_true", help="only (b)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tether-bench-backfill-"))
    temporal: TemporalDevServer | None = None
    cp: ControlPlane | None = None
    agent: AgentProcess | None = None
    print(f"machine: {machine()}")
    print(f"start:   {load()}")
    try:
        temporal, cp, tenant, agent = start_stack(tmp)
        with tenant.user() as c:
            c.patch(tenant.dep_path, json={"run_concurrency_limit": args.concurrency})
        snapshot = load_snapshot(tmp)
        tenant.deploy(LOCATION, python_file=str(tmp / "trivial.py"))
        wait_for_location(tenant, LOCATION)
        if not args.skip_drain:
            drain = bench_drain(cp, tenant, snapshot, args.partitions)
            print(
                f"(a) backfill of {args.partitions} daily partitions, concurrency limit "
                f"{args.concurrency}: {drain['status']} {drain['counts']}"
            )
            print(
                f"    {drain['runs']} runs in {drain['span_s']:.1f} s = "
                f"{drain['runs_per_minute']:.0f} runs/min; control plane CPU "
                f"{drain['cp_cpu_s']:.1f} s = {drain['cp_cpu_ms_per_partition']:.1f} ms per "
                f"partition  ({load()})"
            )
        big = bench_big(cp, snapshot, args.big, args.repeat, args.idle_seconds)
        print(
            f"(b) backfill of {big['partition_count']} hourly partitions, no agent: created in "
            f"{big['create_ms']:.0f} ms; control plane CPU {big['idle_cpu_per_s'] * 100:.1f} % "
            f"of a core with no backfill, {big['active_cpu_per_s'] * 100:.1f} % with it active"
        )
        for name, values in big["pages"].items():
            p50, p99 = statistics.median(values), percentile(values, 99)
            verdict = "PASS" if p99 < PAGE_TARGET_MS else "MISS"
            print(
                f"    {name:<24} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
                f"target p99 < {PAGE_TARGET_MS:.0f} ms: {verdict}"
            )
        print(f"end:     {load()}")
    finally:
        stop_stack(temporal, cp, agent)


if __name__ == "__main__":
    main()
