"""Launch benchmark: how fast a run goes from submit to SUCCESS through the real hybrid stack.

Everything is real: a Temporal dev server (headless), the control plane (`tether controlplane
serve`, SQLite) and one agent (`tether agent run`, the process launcher) in subprocesses on
127.0.0.1. A code location with a trivial one-step job is deployed from a file in a temporary
directory; every run starts a real `tether run-worker` process.

Figures: (a) sequential submit -> STARTED / SUCCESS latency, from the run's own server-side
timestamps and, for comparison, as a client polling every 10 ms sees it; (b) a burst of runs
submitted at once, drained with a high concurrency limit; (c) Temporal history events per run;
(d) the idle agent's CPU and memory; (e) the same job through the Docker launcher (a second
agent and tenant on the same servers): sequential runs, a burst, and the container overhead
over the process launcher with what it is made of (see ``launch_docker.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import launch_docker
from bench.bench_controlplane import machine, percentile
from bench.launch_workload import (
    COLD_LOCATION,
    JOB,
    LOCATION,
    POOL_LOCATION,
    TRIVIAL_LOCATION,
    ready_after_warm_up,
)
from tests.agent_support import (
    TERMINAL,
    AgentProcess,
    TemporalDevServer,
    stop_launched,
)
from tests.support import ControlPlane, Tenant, command_pid, wait_until

ACTIVE = ("QUEUED", "STARTING", "STARTED", "CANCELING")
POLL_SECONDS = 0.010

TARGET_WARM_SUCCESS_P50_MS = 100.0
TARGET_RUNS_PER_MIN = 600.0
TARGET_CPU_MS_PER_RUN = 200.0
TARGET_IDLE_CPU_PCT = 2.0
TARGET_DOCKER_OVERHEAD_MS = 700.0


# --- small helpers --------------------------------------------------------------------------


def ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def ms_between(start: str | None, end: str | None) -> float | None:
    a, b = ts(start), ts(end)
    return None if a is None or b is None else (b - a).total_seconds() * 1000


def spread(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": statistics.median(values),
        "p90_ms": percentile(values, 90),
        "max_ms": max(values),
        "n": len(values),
    }


def fmt_spread(s: dict[str, float]) -> str:
    return f"p50 {s['p50_ms']:.0f} ms, p90 {s['p90_ms']:.0f} ms, max {s['max_ms']:.0f} ms"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def cpu_ticks(pid: int, reaped_children: bool = False) -> int:
    """utime + stime of ``pid`` (the process alone), in clock ticks; with ``reaped_children``,
    cutime + cstime instead: the children it has waited for, and theirs, recursively."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rfind(")") + 2 :].split()
    first = 13 if reaped_children else 11  # fields 14-15 (utime, stime), 16-17 of proc(5)
    return int(fields[first]) + int(fields[first + 1])


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process; ``*children`` names take the reaped children
    of the PID; ``client`` is this process."""
    tck = os.sysconf("SC_CLK_TCK")
    snap = {}
    for name, pid in pids.items():
        try:
            snap[name] = cpu_ticks(pid, reaped_children=name.endswith("children")) / tck
        except OSError:
            snap[name] = float("nan")
    t = os.times()
    snap["client"] = t.user + t.system
    return snap


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def rss_mib(pid: int) -> float:
    return status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    return status_kib(pid, "VmHWM") / 1024


def submit(
    c: httpx.Client, tenant: Tenant, tags: dict[str, str] | None = None, location: str = LOCATION
) -> str:
    r = c.post(
        f"{tenant.dep_path}/runs",
        json={"code_location": location, "job": JOB, "tags": tags or {}},
    )
    if r.status_code != 201:
        raise RuntimeError(f"submitting a run failed: {r.status_code} {r.text}")
    run_id: str = r.json()["id"]
    return run_id


# --- Temporal ---------------------------------------------------------------------------------


@contextmanager
def temporal_client(address: str) -> Iterator[Callable[[Any], Any]]:
    """Yields ``call(coroutine_function)``: runs it with a connected client on one event loop."""
    from temporalio.client import Client

    from worker.codec import data_converter, keys_from_environment

    loop = asyncio.new_event_loop()
    try:
        # The agent's keys, when the benchmark runs with TETHER_TEMPORAL_ENCRYPTION_KEYS set.
        converter = data_converter(keys_from_environment())
        client = loop.run_until_complete(Client.connect(address, data_converter=converter))
        yield lambda fn: loop.run_until_complete(fn(client))
    finally:
        loop.close()


def history_lengths(call: Callable[[Any], Any], workflow_ids: list[str]) -> list[int]:
    async def fetch(client: Any) -> list[int]:
        lengths = []
        for wid in workflow_ids:
            history = await client.get_workflow_handle(wid).fetch_history()
            lengths.append(len(history.events))
        return lengths

    result: list[int] = call(fetch)
    return result


def agent_workflow_state(call: Callable[[Any], Any], workflow_id: str) -> dict[str, Any]:
    """The AgentWorkflow's current run ID, history length and requests dispatched since its
    last continue-as-new."""

    async def fetch(client: Any) -> dict[str, Any]:
        handle = client.get_workflow_handle(workflow_id)
        desc = await handle.describe()
        state = await handle.query("state")
        return {
            "run_id": desc.run_id,
            "history_length": desc.history_length,
            "dispatched": int(state["dispatched"]),
        }

    result: dict[str, Any] = call(fetch)
    return result


def growth_per_request(before: dict[str, Any], after: dict[str, Any]) -> float | None:
    dispatched = after["dispatched"] - before["dispatched"]
    if after["run_id"] != before["run_id"] or dispatched <= 0:
        return None  # continued as new in between: the difference means nothing
    return float(after["history_length"] - before["history_length"]) / dispatched


# --- the figures ------------------------------------------------------------------------------


def bench_sequential(tenant: Tenant, n: int, location: str = LOCATION) -> dict[str, Any]:
    """(a) n runs one after another; each is polled every 10 ms until it is terminal."""
    started: list[float] = []
    success: list[float] = []
    client_started: list[float] = []
    client_success: list[float] = []
    posts: list[float] = []
    run_ids: list[str] = []
    statuses: dict[str, int] = {}
    launched: dict[str, int] = {}
    with tenant.user() as c:
        for _ in range(n):
            t0 = time.perf_counter()
            run_id = submit(c, tenant, location=location)
            posts.append((time.perf_counter() - t0) * 1000)
            run_ids.append(run_id)
            seen_started: float | None = None
            deadline = t0 + 120
            while True:
                run = c.get(f"{tenant.dep_path}/runs/{run_id}").json()
                now = time.perf_counter()
                if seen_started is None and run["status"] in ("STARTED", *TERMINAL):
                    seen_started = now
                if run["status"] in TERMINAL:
                    break
                if now > deadline:
                    raise RuntimeError(f"run {run_id} not terminal after 120 s: {run}")
                time.sleep(POLL_SECONDS)
            statuses[run["status"]] = statuses.get(run["status"], 0) + 1
            how = launched_how(c, tenant, run_id)
            launched[how] = launched.get(how, 0) + 1
            if run["status"] != "SUCCESS":
                print(f"  run {run_id} ended {run['status']}: {run.get('status_message')}")
                continue
            client_success.append((now - t0) * 1000)
            if seen_started is not None:
                client_started.append((seen_started - t0) * 1000)
            s = ms_between(run["created_at"], run["started_at"])
            e = ms_between(run["created_at"], run["ended_at"])
            if s is not None:
                started.append(s)
            if e is not None:
                success.append(e)
    if not success:
        raise RuntimeError(f"no run of {n} succeeded: {statuses}")
    return {
        "runs": n,
        "statuses": statuses,
        "launched": launched,
        "submit_to_started": spread(started),
        "submit_to_success": spread(success),
        "client_submit_to_started": spread(client_started),
        "client_submit_to_success": spread(client_success),
        "submit_call_p50_ms": statistics.median(posts),
        "run_ids": run_ids,
    }


def launched_how(c: httpx.Client, tenant: Tenant, run_id: str) -> str:
    """How the run's worker started, as its RUN_START says: warm, cold or pool."""
    page = c.get(f"{tenant.dep_path}/runs/{run_id}/events", params={"limit": 5}).json()
    for event in page["events"]:
        if event["type"] == "RUN_START":
            return str((event.get("data") or {}).get("launch", "?"))
    return "?"


def print_sequential(title: str, seq: dict[str, Any], target_ms: float | None = None) -> bool:
    """Prints (a) for one kind of launch; returns whether its p50 meets ``target_ms``."""
    ok = target_ms is None or seq["submit_to_success"]["p50_ms"] < target_ms
    print(
        f"    {title}: {seq['runs']} runs ({seq['statuses']}; started {seq['launched']}), "
        "server timestamps (created_at -> started_at / ended_at):"
    )
    print(f"      submit -> STARTED  {fmt_spread(seq['submit_to_started'])}")
    aim = f"  target p50 < {target_ms:.0f} ms: {verdict(ok)}" if target_ms is not None else ""
    print(f"      submit -> SUCCESS  {fmt_spread(seq['submit_to_success'])}{aim}")
    print(
        f"      as a client polling every 10 ms sees it: STARTED p50 "
        f"{seq['client_submit_to_started']['p50_ms']:.0f} ms, SUCCESS p50 "
        f"{seq['client_submit_to_success']['p50_ms']:.0f} ms (the POST itself: p50 "
        f"{seq['submit_call_p50_ms']:.1f} ms)"
    )
    return ok


def bench_burst(tenant: Tenant, n: int, threads: int, location: str = LOCATION) -> dict[str, Any]:
    """(b) n runs submitted at once from a thread pool; waits until all are terminal."""
    with tenant.user() as c:
        r = c.patch(tenant.dep_path, json={"run_concurrency_limit": 1000})
        r.raise_for_status()
    local = threading.local()
    clients: list[httpx.Client] = []
    guard = threading.Lock()

    def one(_: int) -> str:
        c = getattr(local, "client", None)
        if c is None:
            c = local.client = tenant.user()
            with guard:
                clients.append(c)
        return submit(c, tenant, tags={"bench": "burst"}, location=location)

    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            run_ids = list(pool.map(one, range(n)))
    finally:
        for c in clients:
            c.close()
    submitted = time.perf_counter() - t0
    active_query: dict[str, Any] = {"status": list(ACTIVE), "tag": "bench=burst", "limit": 1}
    with tenant.user() as c:

        def drained() -> bool:
            page = c.get(f"{tenant.dep_path}/runs", params=active_query).json()
            return not page["runs"]

        wait_until(drained, timeout=max(300, n * 3), interval=0.05, what=f"{n} runs terminal")
        observed = time.perf_counter() - t0
        runs: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"tag": "bench=burst", "limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = c.get(f"{tenant.dep_path}/runs", params=params).json()
            runs += page["runs"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
    first = min(datetime.fromisoformat(run["created_at"]) for run in runs)
    last = max(datetime.fromisoformat(run["ended_at"]) for run in runs if run["ended_at"])
    drain = (last - first).total_seconds()
    failed = [run for run in runs if run["status"] != "SUCCESS"]
    for run in failed[:5]:
        print(f"  run {run['id']} ended {run['status']}: {run.get('status_message')}")
    return {
        "runs": n,
        "found": len(runs),
        "success": statuses.get("SUCCESS", 0),
        "statuses": statuses,
        "submit_seconds": submitted,
        "drain_seconds": drain,
        "client_drain_seconds": observed,
        "runs_per_minute": n / drain * 60,
        "run_ids": run_ids,
    }


def bench_idle(pid: int, seconds: float) -> dict[str, float]:
    """(d) the agent process's own CPU time and RSS while nothing runs."""
    tck = os.sysconf("SC_CLK_TCK")
    rss: list[float] = []
    t0 = time.monotonic()
    ticks0 = cpu_ticks(pid)
    end = t0 + seconds
    while True:
        rss.append(rss_mib(pid))
        now = time.monotonic()
        if now >= end:
            break
        time.sleep(min(1.0, end - now))
    elapsed = time.monotonic() - t0
    cpu = (cpu_ticks(pid) - ticks0) / tck
    return {
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "cpu_pct_of_core": cpu / elapsed * 100,
        "rss_mib_median": statistics.median(rss),
        "rss_mib_max": max(rss),
    }


def code_server_pid(state_dir: Path, location: str) -> int | None:
    from activities.launchers.process import ProcessLauncher

    launcher = ProcessLauncher(state_dir)
    for label in launcher.labels():
        handle = launcher.find(label)
        name = label.rsplit("#", 1)[0].rsplit(":", 1)[-1]
        if handle is not None and handle.kind == "code-server" and name == location:
            return command_pid(handle.pid)
    return None


def child_pids(pid: int) -> list[int]:
    """The children of ``pid`` (a code server's: its fork server)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(p) for p in text]
    return found


def start_stack(tmp: Path) -> tuple[TemporalDevServer, ControlPlane, Tenant, AgentProcess]:
    """Temporal dev server, control plane (SQLite) and one agent (process launcher) in
    ``tmp``. The agent runs as in the end-to-end tests (`--poll-wait 5`), but with the
    production health-check interval of code servers (the tests use 1 s). The caller stops
    them; one that fails to start stops what started before it."""
    temporal = TemporalDevServer(tmp).start()
    try:
        cp = ControlPlane(tmp).start()
        try:
            tenant = cp.tenant(concurrency=10)
            agent = AgentProcess(
                tenant, temporal, tmp, TETHER_CODE_LOCATION_HEALTH_CHECK_INTERVAL_SECONDS=5
            ).start()
        except BaseException:
            cp.stop()
            raise
    except BaseException:
        temporal.stop()
        raise
    return temporal, cp, tenant, agent


def stop_stack(
    temporal: TemporalDevServer | None, cp: ControlPlane | None, agent: AgentProcess | None
) -> None:
    """What ``start_stack`` started, the agent's code servers and workers included, in the
    reverse order; None for what never started."""
    if agent is not None:
        agent.stop()
        stop_launched(agent.state_dir)
    if cp is not None:
        cp.stop()
    if temporal is not None:
        temporal.stop()


def log_problems(path: Path, limit: int = 20) -> list[str]:
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()
    marks = ("Traceback", "ERROR", "CRITICAL", "Exception")
    return [line for line in lines if any(m in line for m in marks)][:limit]


def bench_docker(
    args: argparse.Namespace,
    cp: ControlPlane,
    temporal: TemporalDevServer,
    tmp: Path,
    location_file: Path,
    process_seq: dict[str, Any],
    warm_seq: dict[str, Any],
) -> dict[str, Any]:
    """(e) the Docker launcher beside the process launcher's (a)."""
    client, why = launch_docker.engine_and_image(args.docker_image)
    if client is None:
        print(f"(e) Docker launcher: skipped ({why}); scripts/build-images.sh builds the image")
        return {"skipped": why}
    setup = time.perf_counter()
    tenant, agent = launch_docker.start_docker_agent(
        cp, temporal, tmp, args.docker_image, location_file, args.docker_pool
    )
    try:
        print(
            f"(e) Docker launcher, image {args.docker_image}, host networking: agent and code "
            f"server containers up (one with a warm pool of {args.docker_pool}), a warm-up run "
            f"each: {time.perf_counter() - setup:.1f} s"
        )
        seq = bench_sequential(tenant, args.docker_runs)
        pooled = bench_sequential(tenant, args.docker_runs, POOL_LOCATION)
        burst = bench_burst(tenant, args.docker_burst, args.threads)
        costs = launch_docker.container_costs(client, args.docker_image)
        interpreter = launch_docker.interpreter_cost(client, args.docker_image)
        problems = log_problems(agent.log_path)
    finally:
        agent.stop()
        launch_docker.remove_containers(client, tenant.org)
    p50 = seq["submit_to_success"]["p50_ms"]
    # Against the process launcher's cold start: both start a new interpreter per run.
    overhead = p50 - process_seq["submit_to_success"]["p50_ms"]
    to_started = seq["submit_to_started"]["p50_ms"] - process_seq["submit_to_started"]["p50_ms"]
    pooled_p50 = pooled["submit_to_success"]["p50_ms"]
    removed = p50 - pooled_p50
    ok = overhead < TARGET_DOCKER_OVERHEAD_MS
    burst_ok = burst["success"] == args.docker_burst
    print_sequential("a container started per run", seq)
    print_sequential(f"from a warm pool of {args.docker_pool}", pooled)
    print(
        f"    container overhead (Docker p50 - process cold p50, submit -> SUCCESS): "
        f"{overhead:.0f} ms  target < {TARGET_DOCKER_OVERHEAD_MS:.0f} ms: {verdict(ok)}"
    )
    print(
        f"      of which before STARTED (container create and start): {to_started:.0f} ms; "
        f"after (the worker's start inside its container, its exit, the reconcile and "
        f"removal): {overhead - to_started:.0f} ms"
    )
    # What a container per run costs over the fastest process launch (warm).
    over_warm = p50 - warm_seq["submit_to_success"]["p50_ms"]
    share = f"{removed / over_warm * 100:.0f} %" if over_warm > 0 else "n/a"
    print(
        f"    the warm pool takes {removed:.0f} ms off submit -> SUCCESS p50 ({p50:.0f} -> "
        f"{pooled_p50:.0f} ms): {share} of the {over_warm:.0f} ms a container started per "
        "run costs over a warm process launch"
    )
    print(
        f"      engine cost per container, medians of 10: create {costs['create_ms']:.0f} ms, "
        f"start to exit of `true` {costs['start_to_exit_ms']:.0f} ms, remove "
        f"{costs['remove_ms']:.0f} ms; a container importing the run worker, start to "
        f"exit: {interpreter:.0f} ms"
    )
    print(
        f"    burst of {args.docker_burst}: first submit -> last terminal "
        f"{burst['drain_seconds']:.1f} s = {burst['runs_per_minute']:.0f} runs/min; "
        f"{burst['success']}/{args.docker_burst} SUCCESS {burst['statuses']}  "
        f"target 0 failures: {verdict(burst_ok)}"
    )
    if problems:
        print(f"    docker agent log: {len(problems)} lines with errors (first ones):")
        for line in problems[:5]:
            print(f"      {line[:300]}")
    return {
        "sequential": {k: v for k, v in seq.items() if k != "run_ids"},
        "sequential_pool": {k: v for k, v in pooled.items() if k != "run_ids"},
        "pool_removes_ms": removed,
        "over_warm_process_ms": over_warm,
        "burst": {k: v for k, v in burst.items() if k != "run_ids"},
        "overhead_p50_ms": overhead,
        "overhead_before_started_ms": to_started,
        "container_costs_ms": costs,
        "container_python_import_ms": interpreter,
        "targets": {"docker_overhead_p50": ok, "docker_burst_no_failures": burst_ok},
    }


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50, help="sequential runs (a)")
    parser.add_argument("--burst", type=int, default=500, help="runs submitted at once (b)")
    parser.add_argument("--threads", type=int, default=16, help="submitting threads for (b)")
    parser.add_argument("--history-sample", type=int, default=20, help="runs whose history (c)")
    parser.add_argument("--idle-seconds", type=float, default=60, help="idle sampling (d)")
    parser.add_argument("--docker-runs", type=int, default=30, help="sequential runs (e)")
    parser.add_argument("--docker-burst", type=int, default=100, help="runs at once (e)")
    parser.add_argument(
        "--docker-image",
        default="tether-example:latest",
        help="image for (e), from scripts/build-images.sh",
    )
    parser.add_argument("--no-docker", action="store_true", help="skip (e)")
    parser.add_argument(
        "--docker-pool", type=int, default=4, help="warm pool size of (e)'s pooled location"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tether-bench-launch-"))
    temporal: TemporalDevServer | None = None
    cp: ControlPlane | None = None
    agent: AgentProcess | None = None
    figures: dict[str, Any] = {"machine": machine(), "cpu_count": os.cpu_count()}
    try:
        print(f"machine: {machine()}")
        print(f"store:   SQLite; temp dir {tmp}{' (kept)' if args.keep else ''}")
        print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the start)")
        setup = time.perf_counter()
        temporal, cp, tenant, agent = start_stack(tmp)
        assert agent.proc is not None
        agent_pid = agent.proc.pid
        location_file = tmp / "trivial.py"
        location_file.write_text(TRIVIAL_LOCATION)
        # The same file twice: launched warm (the default) and cold.
        tenant.deploy(LOCATION, python_file=str(location_file))
        tenant.deploy(COLD_LOCATION, python_file=str(location_file), launch="cold")
        ready_after_warm_up(tenant, "process")
        ready_after_warm_up(tenant, "process (cold)", COLD_LOCATION)
        print(
            f"setup:   Temporal, control plane, agent (pid {agent_pid}), code locations "
            f"{LOCATION} (warm) and {COLD_LOCATION} (cold) RUNNING, a warm-up run each: "
            f"{time.perf_counter() - setup:.1f} s"
        )

        with temporal_client(temporal.address) as call:
            agent_before = agent_workflow_state(call, agent.workflow_id)

            # (a)
            seq = bench_sequential(tenant, args.runs)
            agent_after = agent_workflow_state(call, agent.workflow_id)
            cold_seq = bench_sequential(tenant, args.runs, COLD_LOCATION)
            figures["sequential"] = {k: v for k, v in seq.items() if k != "run_ids"}
            figures["sequential_cold"] = {k: v for k, v in cold_seq.items() if k != "run_ids"}
            print("(a) sequential runs of the trivial job, one after another:")
            ok = print_sequential("warm", seq, TARGET_WARM_SUCCESS_P50_MS)
            print_sequential("cold", cold_seq)
            ratio = cold_seq["submit_to_success"]["p50_ms"] / seq["submit_to_success"]["p50_ms"]
            print(f"    cold / warm, submit -> SUCCESS p50: {ratio:.2f}x")
            figures["targets"] = {"warm_submit_to_success_p50": ok}

            # (c)
            ids = seq["run_ids"]
            step = max(1, len(ids) // max(1, args.history_sample))
            sample = ids[::step][: args.history_sample]
            lengths = history_lengths(call, [f"run:{r}" for r in sample])
            growth = growth_per_request(agent_before, agent_after)
            figures["history"] = {
                "sampled_runs": len(lengths),
                "run_workflow_events_median": statistics.median(lengths),
                "run_workflow_events_min": min(lengths),
                "run_workflow_events_max": max(lengths),
                "agent_workflow_events_per_request": growth,
            }
            print(
                f"(c) RunWorkflow history, {len(lengths)} runs of (a): median "
                f"{statistics.median(lengths):g} events (min {min(lengths)}, max {max(lengths)})"
            )

            # (d)
            idle_before = agent_workflow_state(call, agent.workflow_id)
            idle = bench_idle(agent_pid, args.idle_seconds)
            idle_after = agent_workflow_state(call, agent.workflow_id)
            idle_events = None
            if idle_after["run_id"] == idle_before["run_id"]:
                idle_events = (
                    (idle_after["history_length"] - idle_before["history_length"])
                    / idle["seconds"]
                    * 60
                )
            figures["history"]["agent_workflow_idle_events_per_minute"] = idle_events
            if growth is not None:
                idle_note = ""
                if idle_events is not None:
                    idle_note = (
                        f"; idle it grows {idle_events:.1f} events/min from polls and "
                        "heartbeats alone"
                    )
                print(
                    f"    AgentWorkflow history during (a): {growth:.1f} events per dispatched "
                    f"request, polls in between included{idle_note}"
                )
            else:
                print("    AgentWorkflow history growth: n/a (it continued as new during (a))")
            idle_ok = idle["cpu_pct_of_core"] < TARGET_IDLE_CPU_PCT
            figures["idle"] = idle
            figures["targets"]["idle_cpu"] = idle_ok
            print(
                f"(d) idle agent over {idle['seconds']:.0f} s (the agent process alone; its code "
                f"server and run workers are user code and not counted): CPU "
                f"{idle['cpu_pct_of_core']:.2f} % of one core "
                f"({idle['cpu_seconds']:.2f} s CPU), RSS median {idle['rss_mib_median']:.1f} "
                f"MiB, max {idle['rss_mib_max']:.1f} MiB  "
                f"target < {TARGET_IDLE_CPU_PCT:g} % of a core: {verdict(idle_ok)}"
            )

        # (b)
        assert cp.proc is not None and temporal.proc is not None
        pids = {
            "agent": agent_pid,
            "cold run workers and their supervisors, via the agent's reaped children": agent_pid,
            "control plane": cp.proc.pid,
            "Temporal": temporal.proc.pid,
        }
        code_server = code_server_pid(agent.state_dir, LOCATION)
        if code_server is not None:
            pids["code server"] = code_server
            for fork_server in child_pids(code_server):
                pids["fork server"] = fork_server
                # The fork server waits for its supervisors, and each for its worker: their
                # CPU time adds up in the fork server's children's time.
                pids[
                    "warm run workers and their supervisors, via the fork server's reaped children"
                ] = fork_server
        cpu_before = cpu_snapshot(pids)
        wall = time.monotonic()
        burst = bench_burst(tenant, args.burst, args.threads)
        time.sleep(2)  # the agent reaps the last supervisors within its 0.5 s watch interval
        wall = time.monotonic() - wall
        cpu_after = cpu_snapshot(pids)
        cpu_used = {name: cpu_after[name] - cpu_before[name] for name in cpu_before}
        burst["cpu_seconds"] = cpu_used
        burst["cpu_wall_seconds"] = wall
        burst["agent_rss_mib_after"] = rss_mib(agent_pid)
        burst["agent_peak_rss_mib"] = peak_rss_mib(agent_pid)
        figures["burst"] = {k: v for k, v in burst.items() if k != "run_ids"}
        burst_ok = (
            burst["runs_per_minute"] >= TARGET_RUNS_PER_MIN and burst["success"] == args.burst
        )
        figures["targets"]["burst_runs_per_minute"] = burst_ok
        total = sum(v for v in cpu_used.values() if v == v)
        cpu_ok = total / args.burst * 1000 < TARGET_CPU_MS_PER_RUN
        figures["targets"]["burst_cpu_per_run"] = cpu_ok
        cores = os.cpu_count()
        print(
            f"(b) burst of {args.burst} runs ({args.threads} submitting threads, concurrency "
            f"limit 1000): submitted in {burst['submit_seconds']:.1f} s, first submit -> last "
            f"terminal {burst['drain_seconds']:.1f} s (server clock; client saw "
            f"{burst['client_drain_seconds']:.1f} s) = {burst['runs_per_minute']:.0f} runs/min; "
            f"{burst['success']}/{args.burst} SUCCESS {burst['statuses']}"
        )
        print(
            f"    target >= {TARGET_RUNS_PER_MIN:.0f} runs/min on 2 cores"
            f"{'' if cores == 2 else f' (this machine has {cores})'}, all SUCCESS: "
            f"{verdict(burst_ok)}"
        )
        print(
            f"    CPU during the burst: {total:.0f} s in all over {wall:.0f} s wall "
            f"({total / wall / (cores or 1) * 100:.0f} % of {cores} cores), "
            f"{total / args.burst * 1000:.0f} ms per run  target < "
            f"{TARGET_CPU_MS_PER_RUN:.0f} ms: {verdict(cpu_ok)}"
        )
        for name, used in sorted(cpu_used.items(), key=lambda kv: -kv[1]):
            print(f"      {used:6.1f} s  {used / args.burst * 1000:6.1f} ms/run  {name}")
        print(
            f"    agent RSS after the burst: {burst['agent_rss_mib_after']:.1f} MiB "
            f"(peak {burst['agent_peak_rss_mib']:.1f} MiB)"
        )

        if not args.no_docker:
            figures["docker"] = bench_docker(args, cp, temporal, tmp, location_file, cold_seq, seq)
            if "targets" in figures["docker"]:
                figures["targets"].update(figures["docker"]["targets"])

        problems = log_problems(agent.log_path)
        figures["agent_log_problem_lines"] = len(problems)
        if problems:
            print(f"agent log: {len(problems)} lines with errors (first ones):")
            for line in problems[:10]:
                print(f"    {line[:300]}")
        else:
            print("agent log: no errors")
        print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the end)")
        passed = sum(figures["targets"].values())
        print(f"targets: {passed}/{len(figures['targets'])} PASS")
    finally:
        stop_stack(temporal, cp, agent)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
