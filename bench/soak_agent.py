"""Agent soak: does a long-lived agent stay small? A real stack (Temporal dev server, control
plane on SQLite, one agent with the process launcher) dispatches ``--runs`` runs of a
trivial job (20,000 by default) while another code location is redeployed ``--redeploys``
times (1,000 by default). Every ``--every`` runs it prints, beside the 1-minute load
average:

- the agent process's RSS, and the size and folder count of its state directory (the
  process launcher's run folders, swept by the agent's output retention, which the soak
  shortens to ``--keep-minutes`` so that the sweep works under load within the soak);
- the history length of the AgentWorkflow and of the redeployed location's
  CodeLocationWorkflow (both continue as new: their histories must stay far below Temporal's
  limit of 51,200 events), and how many runs of each the soak has seen;
- the runs' latency (created -> ended) p50 / p99 in the last chunk, and the redeploys done;
- the control plane's runs kept: the deployment's retention keeps ``--keep-runs`` (so the
  database stays bounded too; 0 turns it off).

At the end it prints the curves as tables and PASS/MISS for: histories under 10,240 events
(Temporal's warning threshold); the agent's RSS and state folder growing less than 10% over
the second half. Usage (the lead runs it whole; a check of the script takes minutes):

    python bench/soak_agent.py --runs 500 --redeploys 20 --every 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_controlplane import machine, percentile
from bench.bench_launch import rss_mib, temporal_client
from bench.launch_workload import JOB, TRIVIAL_LOCATION, ready_after_warm_up
from tests.agent_support import AgentProcess, TemporalDevServer, stop_launched, wait_for_location
from tests.support import ControlPlane, Tenant, wait_until

LOCATION = "soak"  # the runs' location
CHURN = "churn"  # the location redeployed over and over
ACTIVE = ("QUEUED", "STARTING", "STARTED", "CANCELING")
HISTORY_WARN = 10_240  # Temporal warns at 10,240 events; it terminates at 51,200
GROWTH_LIMIT = 0.10  # second-half growth that still counts as "stopped growing"


@dataclass
class Sample:
    phase: str  # "runs": taken while runs are dispatched; "redeploys": after; "swept"
    runs: int
    seconds: float
    load: float
    rss_mib: float
    state_mib: float
    folders: int
    agent_history: int
    agent_runs_seen: int
    location_history: int
    location_runs_seen: int
    redeploys: int
    latency_p50_ms: float
    latency_p99_ms: float
    runs_kept: int


@dataclass
class Churn:
    """The redeploying thread's progress."""

    wanted: int
    done: int = 0
    seconds: list[float] = field(default_factory=list)
    error: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)


def folder_size(path: Path) -> tuple[float, int]:
    """MiB under ``path`` and the number of run/code-server folders (processes/<label>)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # swept meanwhile
                total += os.lstat(os.path.join(root, name)).st_size
    processes = path / "processes"
    folders = sum(1 for _ in processes.iterdir()) if processes.exists() else 0
    return total / 2**20, folders


def runs_kept(db_file: Path) -> int:
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])


def redeploy_loop(address: str, workflow_id: str, churn: Churn) -> None:
    """Redeploy CHURN ``churn.wanted`` times through its workflow's ``redeploy_and_wait``
    update, which records a new generation with the control plane (as a redeploy there
    does) and answers once the new code server serves."""
    from temporalio.client import Client

    from worker.codec import data_converter, keys_from_environment

    async def churning() -> None:
        converter = data_converter(keys_from_environment())
        client = await Client.connect(address, data_converter=converter, identity="soak")
        handle = client.get_workflow_handle(workflow_id)
        for _ in range(churn.wanted):
            if churn.stop.is_set():
                return
            t0 = time.perf_counter()
            await asyncio.wait_for(handle.execute_update("redeploy_and_wait"), timeout=180)
            churn.seconds.append(time.perf_counter() - t0)
            churn.done += 1

    try:
        asyncio.run(churning())
    except Exception as exc:  # reported by the main thread
        churn.error = f"{type(exc).__name__}: {exc}"


def run_chunk(tenant: Tenant, n: int, chunk: int, threads: int) -> list[float]:
    """Submit ``n`` runs, wait until all have ended; their latencies (created -> ended, ms)."""
    tag = f"soak=chunk-{chunk}"
    local = threading.local()
    clients: list[httpx.Client] = []
    guard = threading.Lock()

    def one(_: int) -> None:
        c = getattr(local, "client", None)
        if c is None:
            c = local.client = tenant.user()
            with guard:
                clients.append(c)
        body = {"code_location": LOCATION, "job": JOB, "tags": {"soak": f"chunk-{chunk}"}}
        r = c.post(f"{tenant.dep_path}/runs", json=body)
        if r.status_code != 201:
            raise RuntimeError(f"submitting a run failed: {r.status_code} {r.text}")

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, range(n)))
    finally:
        for c in clients:
            c.close()
    latencies: list[float] = []
    with tenant.user() as c:

        def drained() -> bool:
            params: dict[str, Any] = {"status": list(ACTIVE), "tag": tag, "limit": 1}
            return not c.get(f"{tenant.dep_path}/runs", params=params).json()["runs"]

        wait_until(drained, timeout=max(300, n * 2), interval=0.2, what=f"chunk {chunk} ended")
        cursor: str | None = None
        failed = 0
        while True:
            params = {"tag": tag, "limit": 200, **({"cursor": cursor} if cursor else {})}
            page = c.get(f"{tenant.dep_path}/runs", params=params).json()
            for run in page["runs"]:
                failed += run["status"] != "SUCCESS"
                if run["ended_at"]:
                    ended = datetime.fromisoformat(run["ended_at"])
                    created = datetime.fromisoformat(run["created_at"])
                    latencies.append((ended - created).total_seconds() * 1000)
            cursor = page.get("next_cursor")
            if not cursor:
                break
    if failed:
        print(f"  chunk {chunk}: {failed} of {n} runs did not succeed")
    return latencies


def workflow_state(call: Callable[[Any], Any], workflow_id: str) -> tuple[str, int]:
    async def fetch(client: Any) -> tuple[str, int]:
        desc = await client.get_workflow_handle(workflow_id).describe()
        return desc.run_id, int(desc.history_length)

    result: tuple[str, int] = call(fetch)
    return result


def growth(values: list[float]) -> float:
    """How much the second half of a curve grew, relative to its midpoint value."""
    if len(values) < 3:
        return 0.0
    mid = values[len(values) // 2]
    return (values[-1] - mid) / mid if mid else 0.0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_tables(samples: list[Sample], churn: Churn, window: float) -> bool:
    """The curves, and the verdicts. ``window``: seconds the agent keeps a finished run's
    folder, plus a sweep: the folders can only stop growing once it has passed."""
    print("\nagent resources (each row: after that many runs; load = 1-min load average)")
    print(
        f"{'phase':<9} {'runs':>7} {'time s':>8} {'load':>5} {'RSS MiB':>8} {'state MiB':>9} "
        f"{'folders':>7}"
    )
    for s in samples:
        print(
            f"{s.phase:<9} {s.runs:>7} {s.seconds:>8.0f} {s.load:>5.2f} {s.rss_mib:>8.1f} "
            f"{s.state_mib:>9.2f} {s.folders:>7}"
        )
    print("\nworkflow histories (events in the current run; runs = continue-as-new chain seen)")
    print(
        f"{'runs':>7} {'load':>5} {'agent hist':>10} {'agent runs':>10} "
        f"{'loc hist':>8} {'loc runs':>8} {'redeploys':>9}"
    )
    for s in samples:
        print(
            f"{s.runs:>7} {s.load:>5.2f} {s.agent_history:>10} {s.agent_runs_seen:>10} "
            f"{s.location_history:>8} {s.location_runs_seen:>8} {s.redeploys:>9}"
        )
    print("\nruns (latency created -> ended of the chunk's runs) and the control plane's runs kept")
    print(f"{'runs':>7} {'load':>5} {'p50 ms':>8} {'p99 ms':>8} {'runs kept':>9}")
    for s in samples:
        print(
            f"{s.runs:>7} {s.load:>5.2f} {s.latency_p50_ms:>8.0f} {s.latency_p99_ms:>8.0f} "
            f"{s.runs_kept:>9}"
        )
    if churn.seconds:
        print(
            f"\nredeploys: {churn.done} of {churn.wanted}, each until the new generation "
            f"serves: p50 {statistics.median(churn.seconds):.2f} s, "
            f"p99 {percentile(churn.seconds, 99):.2f} s"
        )
    top_agent = max(s.agent_history for s in samples)
    top_location = max(s.location_history for s in samples)
    # Growth while the runs go on (after them, the sweep only shrinks the folder).
    under_load = [s for s in samples if s.phase == "runs"]
    rss = growth([s.rss_mib for s in under_load])
    # The folders fill the retention's window first: their curve counts from then on.
    filled = [s for s in under_load if s.seconds >= window]
    state = growth([s.state_mib for s in filled])
    folders = growth([float(s.folders) for s in filled])
    checks = [
        (f"AgentWorkflow history at most {top_agent} events (< {HISTORY_WARN})", top_agent),
        (
            f"CodeLocationWorkflow history at most {top_location} events (< {HISTORY_WARN})",
            top_location,
        ),
    ]
    ok = True
    print()
    for text, top in checks:
        print(f"  {verdict(top < HISTORY_WARN)} {text}")
        ok &= top < HISTORY_WARN
    print(f"  {verdict(rss < GROWTH_LIMIT)} agent RSS grew {rss * 100:+.1f}% over the second half")
    ok &= rss < GROWTH_LIMIT
    if len(filled) < 3:
        print(
            f"  n/a  state folder: the runs took less than the output retention's window "
            f"({window:.0f} s) and a few samples more; lower --keep-minutes or give more --runs"
        )
    for what, g in (("state folder size", state), ("run folders", folders)):
        if len(filled) >= 3:
            print(
                f"  {verdict(g < GROWTH_LIMIT)} {what} grew {g * 100:+.1f}% over the second "
                f"half of the samples past the retention's window ({window:.0f} s)"
            )
            ok &= g < GROWTH_LIMIT
    if churn.error:
        print(f"  MISS redeploys: {churn.error}")
        ok = False
    return ok


def sweep_seconds(keep_minutes: float) -> float:
    """The agent's sweep interval in the soak: a quarter of the retention, at most a minute."""
    return min(60.0, keep_minutes * 15)


def start_stack(
    tmp: Path, keep_runs: int, keep_minutes: float
) -> tuple[TemporalDevServer, ControlPlane, Tenant, AgentProcess]:
    temporal = TemporalDevServer(tmp).start()
    cp = agent = None
    try:
        cp = ControlPlane(tmp, retention_interval_seconds=5).start()
        tenant = cp.tenant(concurrency=20)
        if keep_runs:
            with tenant.user() as c:
                r = c.patch(tenant.dep_path, json={"retention": {"max_runs": keep_runs}})
                r.raise_for_status()
        agent = AgentProcess(
            tenant,
            temporal,
            tmp,
            TETHER_CODE_LOCATION_HEALTH_CHECK_INTERVAL_SECONDS=5,
            TETHER_OUTPUT_RETENTION_KEEP_HOURS=keep_minutes / 60,
            TETHER_OUTPUT_RETENTION_SWEEP_INTERVAL_SECONDS=sweep_seconds(keep_minutes),
        ).start()
        return temporal, cp, tenant, agent
    except BaseException:
        if cp is not None:
            cp.stop()
        temporal.stop()
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20_000, help="runs the agent dispatches")
    parser.add_argument("--redeploys", type=int, default=1_000, help="redeploys of a location")
    parser.add_argument("--every", type=int, default=1_000, help="runs between samples")
    parser.add_argument("--threads", type=int, default=8, help="submitting threads")
    parser.add_argument(
        "--keep-runs", type=int, default=5_000, help="the deployment's max_runs (0: no rule)"
    )
    parser.add_argument(
        "--keep-minutes",
        type=float,
        default=2.0,
        help="the agent's output retention (TETHER_OUTPUT_RETENTION_KEEP_HOURS), in minutes",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tether-soak-"))
    print(f"machine: {machine()}")
    print(f"store:   SQLite; temp dir {tmp}{' (kept)' if args.keep else ''}")
    print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the start)")
    print(
        f"soak:    {args.runs} runs, {args.redeploys} redeploys, a sample every {args.every} "
        f"runs; deployment keeps {args.keep_runs or 'all'} runs, agent keeps run folders "
        f"{args.keep_minutes:g} min"
    )
    temporal, cp, tenant, agent = start_stack(tmp, args.keep_runs, args.keep_minutes)
    churn = Churn(wanted=args.redeploys)
    ok = False
    try:
        assert agent.proc is not None
        location_file = tmp / "trivial.py"
        location_file.write_text(TRIVIAL_LOCATION)
        tenant.deploy(LOCATION, python_file=str(location_file))
        tenant.deploy(CHURN, python_file=str(location_file))
        ready_after_warm_up(tenant, "soak", LOCATION)
        wait_for_location(tenant, CHURN, statuses=("RUNNING",), timeout=120)
        location_wf = f"code-location:{tenant.org}:{tenant.deployment}:{CHURN}"
        churner = threading.Thread(
            target=redeploy_loop, args=(temporal.address, location_wf, churn), daemon=True
        )
        samples: list[Sample] = []
        agent_runs: set[str] = set()
        location_runs: set[str] = set()
        t0 = time.perf_counter()
        churner.start()
        with temporal_client(temporal.address) as call:

            def sample(phase: str, done: int, latencies: list[float]) -> None:
                a_run, a_len = workflow_state(call, agent.workflow_id)
                l_run, l_len = workflow_state(call, location_wf)
                agent_runs.add(a_run)
                location_runs.add(l_run)
                state_mib, folders = folder_size(agent.state_dir)
                assert agent.proc is not None
                s = Sample(
                    phase=phase,
                    runs=done,
                    seconds=time.perf_counter() - t0,
                    load=os.getloadavg()[0],
                    rss_mib=rss_mib(agent.proc.pid),
                    state_mib=state_mib,
                    folders=folders,
                    agent_history=a_len,
                    agent_runs_seen=len(agent_runs),
                    location_history=l_len,
                    location_runs_seen=len(location_runs),
                    redeploys=churn.done,
                    latency_p50_ms=statistics.median(latencies) if latencies else 0.0,
                    latency_p99_ms=percentile(latencies, 99) if latencies else 0.0,
                    runs_kept=runs_kept(tmp / "tether.db"),
                )
                samples.append(s)
                print(
                    f"  {s.phase:<9} {s.runs:>6} runs {s.seconds:>6.0f} s  load {s.load:.2f}  "
                    f"RSS {s.rss_mib:.1f} MiB  state {s.state_mib:.2f} MiB / {s.folders} "
                    f"folders  histories agent {s.agent_history} (run {s.agent_runs_seen}) "
                    f"location {s.location_history} (run {s.location_runs_seen})  "
                    f"redeploys {s.redeploys}  p50/p99 {s.latency_p50_ms:.0f}/"
                    f"{s.latency_p99_ms:.0f} ms  runs kept {s.runs_kept}",
                    flush=True,
                )

            sample("runs", 0, [])
            done = 0
            chunk = 0
            while done < args.runs:
                n = min(args.every, args.runs - done)
                latencies = run_chunk(tenant, n, chunk, args.threads)
                done += n
                chunk += 1
                sample("runs", done, latencies)
            # The redeploys outlast the runs when they are slower: sample them to the end.
            while churner.is_alive():
                churner.join(30)
                sample("redeploys", done, [])
            # Past the output retention and a sweep: the run folders go.
            time.sleep(args.keep_minutes * 60 + sweep_seconds(args.keep_minutes) + 5)
            sample("swept", done, [])
        window = args.keep_minutes * 60 + sweep_seconds(args.keep_minutes)
        ok = print_tables(samples, churn, window)
    finally:
        churn.stop.set()
        agent.stop()
        stop_launched(agent.state_dir)
        cp.stop()
        temporal.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload:    {os.getloadavg()[0]:.2f} (1-min load average at the end)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
