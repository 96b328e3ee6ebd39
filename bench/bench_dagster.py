"""Dagster benchmark: a 100-op Dagster chain job through Tether end to end, against the same
job through Dagster's ``execute_in_process`` alone.

The job (written into a temporary directory at runtime): ``op_0 -> op_1 -> ... -> op_99``,
each op adding 1 to its input. The same real stack as ``bench_launch.py`` (a headless Temporal
dev server, the control plane on SQLite, one agent with the process launcher, all subprocesses
on 127.0.0.1) serves it as a Dagster code location (``kind: dagster``, ``python_file``) twice:
``chain`` (launch warm, the default: run workers forked from the code server, dagster and the
definitions imported) and ``chain-cold`` (launch cold: a new interpreter per run).

Figures, in rounds (one baseline run, one warm Tether run, one cold Tether run per round, so
that load drifting on the machine touches all three alike):

- Dagster alone: ``job.execute_in_process`` in a warm process of its own (dagster imported,
  the job loaded, one warm-up run first; nothing of this benchmark's client in it), a new
  ephemeral instance per run on one storage folder and the console logger at CRITICAL, as
  Tether's run worker configures it (``run_config={"loggers": {"console": {"config":
  {"log_level": "CRITICAL"}}}}``).
- Tether: each run submitted with ``POST .../runs`` and polled every 20 ms until terminal;
  timed from the run's server-side timestamps (``created_at`` -> ``ended_at``) and as the
  client saw it (from just before the POST until it saw SUCCESS).

Every measured run follows a pause (``--settle``, 0.7 s) so that the last run's tail (its
supervisor reaped, its workflow closed) does not overlap it.

Then medians and p90, the ratio Tether / ``execute_in_process`` (target <= 1.2x, printed, not
asserted), the events stored per run, and where the time goes: the hops of each Tether run
from the control plane's timestamps, the RunWorkflow's start on Temporal and the run worker's
own events, beside the same split of Dagster's events in the baseline; and what a cold
worker's start is made of, timed in new interpreters (medians of 3).

PYTHONDONTWRITEBYTECODE=1 is set on the project's machines: dagster's ``.pyc`` files exist
(written by pip install) but this repository's modules are compiled from source by every new
interpreter, which a cold run worker pays for. The benchmark says so in its output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_controlplane import machine, percentile
from bench.bench_launch import (
    child_pids,
    code_server_pid,
    cpu_snapshot,
    log_problems,
    start_stack,
    stop_stack,
)
from tests.agent_support import (
    TERMINAL,
    AgentProcess,
    TemporalDevServer,
    wait_for_location,
)
from tests.support import ControlPlane, Tenant

OPS = 100
JOB = "chain"
WARM_LOCATION = "chain"  # launch: warm (the default)
COLD_LOCATION = "chain-cold"  # the same file, launch: cold
TARGET_RATIO = 1.2
POLL_SECONDS = 0.02
RUN_TIMEOUT_SECONDS = 120
# What Tether's run worker adds to a Dagster run's config (tether_sdk/dagster/execute.py).
QUIET_CONSOLE: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

PROJECT = f'''\
"""A Dagster project with one job: a chain of {OPS} ops, each adding 1 (bench_dagster.py)."""

import dagster as dg


@dg.op(name="op_0")
def first() -> int:
    return 0


def plus_one(i: int) -> dg.OpDefinition:
    @dg.op(name=f"op_{{i}}")
    def add(x: int) -> int:
        return x + 1

    return add


OPS = [first] + [plus_one(i) for i in range(1, {OPS})]


@dg.job(name="{JOB}")
def chain() -> None:
    value = OPS[0]()
    for op in OPS[1:]:
        value = op(value)


defs = dg.Definitions(jobs=[chain])
'''


# --- small helpers --------------------------------------------------------------------------


def load1() -> float:
    return os.getloadavg()[0]


def loads() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def epoch(value: str | float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, float | int):
        return float(value)
    parsed = datetime.fromisoformat(value)
    # The control plane's timestamps are UTC; one without a zone is read as UTC too.
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def ms(start: str | float | None, end: str | float | None) -> float | None:
    a, b = epoch(start), epoch(end)
    return None if a is None or b is None else (b - a) * 1000


def spread(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": statistics.median(values),
        "p90_ms": percentile(values, 90),
        "min_ms": min(values),
        "max_ms": max(values),
        "n": len(values),
    }


def fmt(s: dict[str, float]) -> str:
    return f"p50 {s['p50_ms']:6.0f} ms, p90 {s['p90_ms']:6.0f} ms"


# --- Dagster alone --------------------------------------------------------------------------


BASELINE_CHILD = r"""
import importlib.util, json, os, sys, time

# Results go to a copy of stdout; anything Dagster prints goes to stderr (a log file).
out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
project, storage, job_name, last_op, config, instance_kind = sys.argv[1:7]
config = json.loads(config)
t0 = time.perf_counter()
import dagster as dg

import_ms = (time.perf_counter() - t0) * 1000
spec = importlib.util.spec_from_file_location("chain_project", project)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
job = module.defs.get_job_def(job_name)
if instance_kind == "worker":
    # Only in this process: tether_sdk and what it imports make a bigger heap, and every
    # full collection of the run walks all of it (the other baseline must not pay for that).
    from tether_sdk.dagster.instance import run_instance

print(json.dumps({"import_ms": import_ms}), file=out, flush=True)
for line in sys.stdin:
    wall0 = time.time()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if instance_kind == "worker":
        instance = run_instance(storage)
    else:
        instance = dg.DagsterInstance.ephemeral(
            tempdir=storage, settings={"telemetry": {"enabled": False}}
        )
    result = job.execute_in_process(run_config=config, instance=instance)
    elapsed = (time.perf_counter() - t0) * 1000
    cpu_ms = (time.process_time() - cpu0) * 1000
    wall1 = time.time()
    stamps, first_step = {}, None
    entries = instance.all_logs(result.run_id)
    for entry in entries:
        name = getattr(entry.dagster_event_type, "name", None)
        if name in ("RUN_START", "RUN_SUCCESS"):
            stamps[name] = entry.timestamp
        elif name == "STEP_START" and first_step is None:
            first_step = entry.timestamp
    answer = {
        "ms": elapsed,
        "cpu_ms": cpu_ms,
        "success": result.success,
        "value": result.output_for_node(last_op) if result.success else None,
        "dagster_events": len(entries),
        "wall0": wall0,
        "wall1": wall1,
        "first_step": first_step,
        **stamps,
    }
    instance.dispose()
    print(json.dumps(answer), file=out, flush=True)
"""


class Baseline:
    """The job through ``execute_in_process`` alone: a process of its own with dagster and
    the job file imported (nothing of this benchmark's client), kept warm across runs."""

    def __init__(
        self, project_file: Path, storage: Path, log_path: Path, worker_instance: bool = False
    ) -> None:
        self.log = log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                BASELINE_CHILD,
                str(project_file),
                str(storage),
                JOB,
                f"op_{OPS - 1}",
                json.dumps(QUIET_CONSOLE),
                "worker" if worker_instance else "ephemeral",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1"},
        )
        self.import_ms = float(self._answer()["import_ms"])

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.log.flush()
            raise RuntimeError(f"the baseline process ended; see {self.log.name}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self) -> dict[str, Any]:
        """One run; its wall time and the split of Dagster's own events."""
        assert self.proc.stdin is not None
        load = load1()
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        a = self._answer()
        if not a["success"] or a["value"] != OPS - 1:
            raise RuntimeError(f"the baseline run failed or returned {a['value']}")
        return {
            "ms": a["ms"],
            "cpu_ms": a["cpu_ms"],
            "load": load,
            "dagster_events": a["dagster_events"],
            "call -> RUN_START": ms(a["wall0"], a["RUN_START"]),
            "RUN_START -> first STEP_START": ms(a["RUN_START"], a["first_step"]),
            "RUN_START -> RUN_SUCCESS": ms(a["RUN_START"], a["RUN_SUCCESS"]),
            "RUN_SUCCESS -> return": ms(a["RUN_SUCCESS"], a["wall1"]),
        }

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# --- Tether ---------------------------------------------------------------------------------


class TetherRuns:
    """Runs submitted through the REST API and timed from the server's records."""

    def __init__(self, tenant: Tenant, temporal_address: str) -> None:
        self.tenant = tenant
        self.client = tenant.user()
        self.loop = asyncio.new_event_loop()
        from temporalio.client import Client

        from worker.codec import data_converter, keys_from_environment

        converter = data_converter(keys_from_environment())
        self.temporal = self.loop.run_until_complete(
            Client.connect(temporal_address, data_converter=converter)
        )

    def close(self) -> None:
        self.client.close()
        self.loop.close()

    def run(self, location: str) -> dict[str, Any]:
        c, path = self.client, self.tenant.dep_path
        load = load1()
        t0 = time.perf_counter()
        r = c.post(f"{path}/runs", json={"code_location": location, "job": JOB})
        if r.status_code != 201:
            raise RuntimeError(f"submitting a run failed: {r.status_code} {r.text}")
        run_id: str = r.json()["id"]
        deadline = t0 + RUN_TIMEOUT_SECONDS
        polls = 0
        while True:
            polls += 1
            run = c.get(f"{path}/runs/{run_id}").json()
            now = time.perf_counter()
            if run["status"] in TERMINAL:
                break
            if now > deadline:
                raise RuntimeError(f"run {run_id} not terminal after {RUN_TIMEOUT_SECONDS} s")
            time.sleep(POLL_SECONDS)
        if run["status"] != "SUCCESS":
            raise RuntimeError(f"run {run_id} ended {run['status']}: {run.get('status_message')}")
        return {
            "run": run,
            "ms": ms(run["created_at"], run["ended_at"]),
            "client_ms": (now - t0) * 1000,
            "polls": polls,
            "load": load,
        }

    def details(self, row: dict[str, Any]) -> dict[str, Any]:
        """The run's events and the start of its RunWorkflow: its hops (read after the run's
        CPU is counted: these reads are the benchmark's, not the run's)."""
        run = row.pop("run")
        run_id = run["id"]
        stored = self.events(self.client, run_id)
        by_type: dict[str, int] = {}
        stamps: dict[str, str] = {}
        for event in stored:
            by_type[event["type"]] = by_type.get(event["type"], 0) + 1
            stamps.setdefault(event["type"], event["timestamp"])
        launch = next((e.get("data") or {} for e in stored if e["type"] == "RUN_START"), {})
        workflow_started = self.workflow_start(run_id)
        created, started, ended = run["created_at"], run["started_at"], run["ended_at"]
        return {
            **row,
            "run_id": run_id,
            "launch": launch.get("launch", "?"),
            "events": len(stored),
            "events_by_type": by_type,
            "submit -> RunWorkflow started": ms(created, workflow_started),
            "RunWorkflow started -> STARTED": ms(workflow_started, started),
            "submit -> STARTED": ms(created, started),
            "STARTED -> RUN_START": ms(started, stamps.get("RUN_START")),
            "RUN_START -> first STEP_START": ms(stamps.get("RUN_START"), stamps.get("STEP_START")),
            "RUN_START -> RUN_SUCCESS": ms(stamps.get("RUN_START"), stamps.get("RUN_SUCCESS")),
            "RUN_SUCCESS -> ended_at": ms(stamps.get("RUN_SUCCESS"), ended),
            "STARTED -> SUCCESS": ms(started, ended),
        }

    def get_cpu_ms(self, run_id: str, control_plane_pid: int, n: int = 50) -> float:
        """The control plane's CPU for one poll (GET of a run): the mean of ``n`` in a row."""
        path = f"{self.tenant.dep_path}/runs/{run_id}"
        t0 = cpu_snapshot({"cp": control_plane_pid})["cp"]
        for _ in range(n):
            self.client.get(path).raise_for_status()
        return (cpu_snapshot({"cp": control_plane_pid})["cp"] - t0) * 1000 / n

    def events(self, c: httpx.Client, run_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        after = 0
        while True:
            page = c.get(
                f"{self.tenant.dep_path}/runs/{run_id}/events",
                params={"after": after, "limit": 1000},
            ).json()
            found += page["events"]
            if not page["events"] or page["last_seq"] == after:
                return found
            after = page["last_seq"]

    def workflow_start(self, run_id: str) -> float | None:
        async def describe() -> float | None:
            desc = await self.temporal.get_workflow_handle(f"run:{run_id}").describe()
            return desc.start_time.timestamp() if desc.start_time else None

        try:
            started: float | None = self.loop.run_until_complete(describe())
        except Exception:
            return None
        return started


def deploy(tenant: Tenant, project_file: Path, storage: Path) -> None:
    common: dict[str, Any] = {
        "kind": "dagster",
        "python_file": str(project_file),
        "env": {"TETHER_DAGSTER_STORAGE": str(storage)},
    }
    tenant.deploy(WARM_LOCATION, **common)
    tenant.deploy(COLD_LOCATION, **common, launch="cold")
    for name in (WARM_LOCATION, COLD_LOCATION):
        loc = wait_for_location(tenant, name, timeout=120)
        if loc["status"] != "RUNNING":
            raise RuntimeError(f"code location {name} is {loc['status']}: {loc.get('error')}")
        jobs = {j["name"]: j for j in (loc.get("snapshot") or {}).get("jobs", [])}
        if len(jobs.get(JOB, {}).get("steps", [])) != OPS:
            raise RuntimeError(f"code location {name} does not report the {OPS}-op job {JOB!r}")


COLD_PARTS_CHILD = r"""
import json, sys, time

t0 = time.perf_counter()
from tether_sdk.cli import run_worker_main  # what `python -m tether_sdk.run_worker` imports

t1 = time.perf_counter()
import tether_sdk.dagster.location  # dagster, and Tether's Dagster support

t2 = time.perf_counter()
from tether_api.enums import CodeLocationKind
from tether_sdk.location import LocationTarget, load_location

loaded = load_location(LocationTarget(python_file=sys.argv[1], kind=CodeLocationKind.DAGSTER))
t3 = time.perf_counter()
assert not hasattr(loaded, "traceback"), loaded
print(json.dumps({"worker": (t1 - t0) * 1000, "dagster": (t2 - t1) * 1000,
                  "load": (t3 - t2) * 1000}))
"""


def cold_start_parts(
    project_file: Path, pycache: Path | None = None, repeat: int = 3
) -> dict[str, float]:
    """What a cold run worker's start is made of, in new interpreters like its own (medians of
    ``repeat``): the interpreter's start, importing the run worker, importing dagster with
    Tether's Dagster support, loading the job's file (which is where Dagster's storage modules,
    SQLAlchemy and Alembic among them, are imported). With ``pycache``, bytecode is written and
    read there (``PYTHONPYCACHEPREFIX``, PYTHONDONTWRITEBYTECODE unset; one run first fills it):
    what the cold start would be with this repository's modules compiled once."""
    env = {**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1"}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    cwd = str(project_file.parent)

    def child() -> dict[str, float]:
        out = subprocess.run(
            [sys.executable, "-c", COLD_PARTS_CHILD, str(project_file)],
            check=True,
            cwd=cwd,
            capture_output=True,
            text=True,
            env=env,
        )
        found: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
        return found

    if pycache is not None:
        child()
    bare: list[float] = []
    parts: list[dict[str, float]] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, cwd=cwd, env=env)
        bare.append((time.perf_counter() - t0) * 1000)
        parts.append(child())
    return {
        "interpreter": statistics.median(bare),
        "import run worker": statistics.median(p["worker"] for p in parts),
        "import dagster (+ tether_sdk.dagster)": statistics.median(p["dagster"] for p in parts),
        "load the job file": statistics.median(p["load"] for p in parts),
    }


# --- report ---------------------------------------------------------------------------------

SEGMENTS_TETHER = [
    "submit -> RunWorkflow started",
    "RunWorkflow started -> STARTED",
    "STARTED -> RUN_START",
    "RUN_START -> first STEP_START",
    "RUN_START -> RUN_SUCCESS",
    "RUN_SUCCESS -> ended_at",
]
SEGMENTS_BASELINE = [
    "call -> RUN_START",
    "RUN_START -> first STEP_START",
    "RUN_START -> RUN_SUCCESS",
    "RUN_SUCCESS -> return",
]
NOTES = {
    "submit -> RunWorkflow started": "queue: the agent's poll, its dispatch",
    "RunWorkflow started -> STARTED": "the workflow's prepare and launch",
    "STARTED -> RUN_START": "worker start, run checks, Dagster instance and plan",
    "RUN_START -> first STEP_START": "Dagster's set-up before the first op",
    "RUN_START -> RUN_SUCCESS": "the job inside the worker, events emitted",
    "RUN_SUCCESS -> ended_at": "final flush, the run's status",
}
NOTES_BASELINE = {
    "call -> RUN_START": "ephemeral instance, config checked, run record, plan",
    "RUN_START -> first STEP_START": "Dagster's set-up before the first op",
    "RUN_START -> RUN_SUCCESS": "the job",
    "RUN_SUCCESS -> return": "the result, the call's return",
}


def medians(rows: list[dict[str, Any]], keys: list[str]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in keys:
        values = [r[key] for r in rows if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
    return out


def summarize(rows: list[dict[str, Any]], key: str = "ms") -> dict[str, Any]:
    return {
        **spread([r[key] for r in rows]),
        "load_median": statistics.median(r["load"] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="measured runs of each kind")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.7,
        help="seconds of quiet before each measured run (the last one's workflow closes)",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tether-bench-dagster-"))
    temporal: TemporalDevServer | None = None
    cp: ControlPlane | None = None
    agent: AgentProcess | None = None
    runs: TetherRuns | None = None
    baseline: Baseline | None = None
    same_instance: Baseline | None = None
    figures: dict[str, Any] = {"machine": machine(), "cpu_count": os.cpu_count(), "ops": OPS}
    began = time.perf_counter()
    try:
        print(f"machine: {machine()}")
        bytecode = os.environ.get("PYTHONDONTWRITEBYTECODE")
        figures["PYTHONDONTWRITEBYTECODE"] = bytecode
        print(
            f"note:    PYTHONDONTWRITEBYTECODE={bytecode or '(unset)'} in this environment: "
            "dagster's .pyc files exist (from pip install), but no .pyc is written for this "
            "repository's modules, so a cold run worker compiles tether_sdk (and the job file) "
            "from source every time"
        )
        print(f"store:   SQLite; temp dir {tmp}{' (kept)' if args.keep else ''}")
        print(f"load:    {loads()} (1/5/15-min load average at the start)")
        figures["load_start"] = os.getloadavg()

        project_file = tmp / "chain_project" / "chain.py"
        project_file.parent.mkdir()
        project_file.write_text(PROJECT)
        storage = tmp / "dagster-storage"
        storage.mkdir()

        setup = time.perf_counter()
        temporal, cp, tenant, agent = start_stack(tmp)
        deploy(tenant, project_file, storage)
        runs = TetherRuns(tenant, temporal.address)
        baseline = Baseline(project_file, storage, tmp / "baseline.log")
        # The same, on the instance Tether's run worker makes (tether_sdk/dagster/instance.py),
        # in a process of its own.
        same_instance = Baseline(
            project_file, storage, tmp / "baseline-worker-instance.log", worker_instance=True
        )
        # Warm-ups: the first run of each pays for first-time caches.
        baseline.run()
        same_instance.run()
        runs.details(runs.run(WARM_LOCATION))
        runs.details(runs.run(COLD_LOCATION))
        print(
            f"setup:   Temporal, control plane, agent; code locations {WARM_LOCATION} (warm) "
            f"and {COLD_LOCATION} (cold) RUNNING with the {OPS}-op job {JOB!r}; a warm-up run "
            f"of each and of the baseline: {time.perf_counter() - setup:.1f} s"
        )

        assert cp.proc is not None and temporal.proc is not None and agent.proc is not None
        services = {
            "control plane": cp.proc.pid,
            "agent": agent.proc.pid,
            "Temporal": temporal.proc.pid,
        }
        for name in (WARM_LOCATION, COLD_LOCATION):
            pid = code_server_pid(agent.state_dir, name)
            if pid is not None:
                services[f"code server {name}"] = pid
        # Workers' CPU is in their reapers' children's time: a warm worker and its supervisor
        # in the fork server's (its code server's child), a cold one in the agent's.
        reapers = {"cold workers+supervisors, children": agent.proc.pid}
        warm_server = services.get(f"code server {WARM_LOCATION}")
        for fork_server in child_pids(warm_server) if warm_server else []:
            reapers["warm workers+supervisors, children"] = fork_server

        base_rows: list[dict[str, Any]] = []
        same_rows: list[dict[str, Any]] = []
        warm_rows: list[dict[str, Any]] = []
        cold_rows: list[dict[str, Any]] = []

        def measured(one: Any) -> dict[str, Any]:
            """One run, then a pause (the run's tail: its supervisor reaped, its workflow
            closed, within the agent's 0.5 s watch, before the next begins), with the CPU
            the services spent in both."""
            before = cpu_snapshot(services)
            row: dict[str, Any] = one()
            time.sleep(args.settle)
            after = cpu_snapshot(services)
            row["cpu"] = {k: (after[k] - before[k]) * 1000 for k in before}
            return row

        time.sleep(1.5)  # the warm-ups' supervisors reaped
        reaped_before = cpu_snapshot(reapers)
        for _ in range(args.runs):
            base_rows.append(measured(baseline.run))
            same_rows.append(measured(same_instance.run))
            warm_rows.append(runs.details(measured(lambda: runs.run(WARM_LOCATION))))
            cold_rows.append(runs.details(measured(lambda: runs.run(COLD_LOCATION))))
        time.sleep(1.5)  # the last supervisors reaped (the fork server reaps within 1 s)
        reaped_after = cpu_snapshot(reapers)
        reaped = {
            k: (reaped_after[k] - reaped_before[k]) * 1000 / args.runs
            for k in reapers
            if k != "client"
        }

        base = summarize(base_rows)
        same = summarize(same_rows)
        warm = summarize(warm_rows)
        cold = summarize(cold_rows)
        warm_client = summarize(warm_rows, "client_ms")
        cold_client = summarize(cold_rows, "client_ms")
        print(
            f"{args.runs} rounds (a baseline run, a warm and a cold Tether run each, one after "
            f"another); beside each figure the median 1-min load average when its runs began:"
        )
        table = [
            ("execute_in_process alone (a warm process)", base),
            ("  the same, on the run worker's instance", same),
            ("Tether warm, submit -> SUCCESS (server)", warm),
            ("Tether warm, POST -> SUCCESS seen (client)", warm_client),
            ("Tether cold, submit -> SUCCESS (server)", cold),
            ("Tether cold, POST -> SUCCESS seen (client)", cold_client),
        ]
        for title, figure in table:
            print(f"  {title:44s} {fmt(figure)}   load {figure['load_median']:.2f}")
        figures["baseline"] = base
        figures["baseline_worker_instance"] = same
        figures["warm"] = warm
        figures["cold"] = cold
        figures["warm_client"] = warm_client
        figures["cold_client"] = cold_client
        figures["launched"] = {
            "warm": sorted({r["launch"] for r in warm_rows}),
            "cold": sorted({r["launch"] for r in cold_rows}),
        }

        ratios: dict[str, Any] = {}
        print(f"ratio Tether / execute_in_process, p50 (target <= {TARGET_RATIO}x):")
        for title, s, cl in (("warm", warm, warm_client), ("cold", cold, cold_client)):
            r = s["p50_ms"] / base["p50_ms"]
            rc = cl["p50_ms"] / base["p50_ms"]
            ok = r <= TARGET_RATIO
            rs = s["p50_ms"] / same["p50_ms"]
            ratios[title] = {"server": r, "client": rc, "met": ok, "worker_instance": rs}
            print(
                f"  {title}: {r:.2f}x (server timestamps), {rc:.2f}x (client)   "
                f"{'MET' if ok else 'NOT MET'}; {rs:.2f}x of execute_in_process on the run "
                f"worker's instance   load {load1():.2f}"
            )
        figures["ratio"] = ratios
        print(
            f"  launch as the worker's RUN_START says: warm runs {figures['launched']['warm']}, "
            f"cold runs {figures['launched']['cold']}"
        )

        counts = [r["events"] for r in warm_rows + cold_rows]
        types: dict[str, int] = warm_rows[0]["events_by_type"]
        figures["events_per_run"] = {
            "median": statistics.median(counts),
            "min": min(counts),
            "max": max(counts),
            "by_type_first_warm_run": types,
            "dagster_events_per_baseline_run": base_rows[0]["dagster_events"],
        }
        print(
            f"events stored per Tether run: median {statistics.median(counts):g} (min "
            f"{min(counts)}, max {max(counts)}): "
            + ", ".join(f"{k} {v}" for k, v in sorted(types.items(), key=lambda kv: -kv[1]))
            + f"; Dagster's own event log of a baseline run: {base_rows[0]['dagster_events']} "
            f"entries   load {load1():.2f}"
        )

        print("where the time goes, medians in ms (server and worker timestamps):")
        wb = medians(warm_rows, SEGMENTS_TETHER)
        cb = medians(cold_rows, SEGMENTS_TETHER)
        bb = medians(base_rows, SEGMENTS_BASELINE)
        figures["breakdown"] = {"warm": wb, "cold": cb, "baseline": bb}

        def cell(v: float | None) -> str:
            return "   n/a" if v is None else f"{v:6.0f}"

        print(f"  {'segment':34s} {'warm':>6s} {'cold':>6s}  what")
        for key in SEGMENTS_TETHER:
            print(f"  {key:34s} {cell(wb[key])} {cell(cb[key])}  {NOTES[key]}")
        print(f"  {'= submit -> SUCCESS p50':34s} {cell(warm['p50_ms'])} {cell(cold['p50_ms'])}")
        print(f"  execute_in_process alone: {'':13s} {'':6s} {'base':>6s}")
        for key in SEGMENTS_BASELINE:
            print(f"  {key:34s} {'':6s} {cell(bb[key])}  {NOTES_BASELINE[key]}")
        print(f"  {'= the call p50':34s} {'':6s} {cell(base['p50_ms'])}")
        gap = warm["p50_ms"] - base["p50_ms"]
        queue = (wb["submit -> RunWorkflow started"] or 0) + (
            wb["RunWorkflow started -> STARTED"] or 0
        )
        in_job = (wb["RUN_START -> RUN_SUCCESS"] or 0) - (bb["RUN_START -> RUN_SUCCESS"] or 0)
        before = (wb["STARTED -> RUN_START"] or 0) - (bb["call -> RUN_START"] or 0)
        after = (wb["RUN_SUCCESS -> ended_at"] or 0) - (bb["RUN_SUCCESS -> return"] or 0)
        figures["warm_gap_ms"] = {
            "total": gap,
            "queue_and_launch": queue,
            "worker_before_run_start_extra": before,
            "job_execution_extra": in_job,
            "after_run_success_extra": after,
        }
        print(
            f"  warm gap over the baseline, p50: {gap:.0f} ms = queue and launch {queue:.0f} + "
            f"worker set-up beyond Dagster's own {before:.0f} + the job's execution beyond "
            f"Dagster's own {in_job:.0f} + the end {after:.0f} (medians: the parts need not "
            f"add up exactly)   load {load1():.2f}"
        )
        cold_gap = cold["p50_ms"] - base["p50_ms"]
        cold_start = (cb["STARTED -> RUN_START"] or 0) - (wb["STARTED -> RUN_START"] or 0)
        parts = cold_start_parts(project_file)
        cached = cold_start_parts(project_file, pycache=tmp / "pycache")
        figures["cold_gap_ms"] = {"total": cold_gap, "cold_start_over_warm": cold_start}
        figures["cold_start_parts_ms"] = {"as_is": parts, "bytecode_cached": cached}
        print(
            f"  cold gap over the baseline, p50: {cold_gap:.0f} ms, of which the cold start "
            f"(STARTED -> RUN_START, cold minus warm): {cold_start:.0f} ms. A new interpreter "
            f"like a cold worker's, medians of 3, load {load1():.2f}:"
        )
        for title, found in (
            ("as here (PYTHONDONTWRITEBYTECODE=1)", parts),
            ("with all bytecode cached", cached),
        ):
            print(
                f"    {title}: "
                + ", ".join(f"{name} {value:.0f} ms" for name, value in found.items())
                + f"; in all {sum(found.values()):.0f} ms"
            )

        print(
            "CPU per run, ms (from /proc; services: medians over the run and the pause after "
            "it; workers: their reapers' children's time over all rounds / runs):"
        )
        cpu_rows = {
            "base": medians([r["cpu"] for r in base_rows], list(base_rows[0]["cpu"])),
            "warm": medians([r["cpu"] for r in warm_rows], list(warm_rows[0]["cpu"])),
            "cold": medians([r["cpu"] for r in cold_rows], list(cold_rows[0]["cpu"])),
        }
        worker_cpu = {
            "warm": reaped.get("warm workers+supervisors, children"),
            "cold": reaped.get("cold workers+supervisors, children"),
            "base": statistics.median(r["cpu_ms"] for r in base_rows),
        }
        figures["cpu_ms_per_run"] = {"services": cpu_rows, "workers": worker_cpu}
        print(f"  {'':44s} {'warm':>6s} {'cold':>6s} {'base':>6s}")
        totals = {"warm": 0.0, "cold": 0.0, "base": 0.0}
        for name in base_rows[0]["cpu"]:
            label = "this benchmark's client (POST, polling)" if name == "client" else name
            values = {k: cpu_rows[k][name] for k in totals}
            for k, v in values.items():
                if name != "client" and v is not None:
                    totals[k] += v
            print(
                f"  {label:44s} {cell(values['warm'])} {cell(values['cold'])} "
                f"{cell(values['base'])}"
            )
        print(
            f"  {'the run worker (+ its supervisor) / baseline':44s} "
            f"{cell(worker_cpu['warm'])} {cell(worker_cpu['cold'])} {cell(worker_cpu['base'])}"
        )
        for k in totals:
            totals[k] += worker_cpu[k] or 0.0
        figures["cpu_ms_per_run"]["total_without_client"] = totals
        print(
            f"  {'in all, the client left out':44s} {cell(totals['warm'])} "
            f"{cell(totals['cold'])} {cell(totals['base'])}   load {load1():.2f}"
        )
        per_get = runs.get_cpu_ms(warm_rows[-1]["run_id"], cp.proc.pid)
        polls = {
            k: statistics.median(r["polls"] for r in rs)
            for k, rs in (("warm", warm_rows), ("cold", cold_rows))
        }
        figures["cpu_ms_per_run"]["control_plane_per_poll"] = per_get
        figures["polls_per_run"] = polls
        print(
            "  (base: the services while a baseline run goes on, i.e. idle; the baseline "
            "process's own CPU in the last row.) Of the control plane's, this benchmark's "
            f"polling: {polls['warm']:g} GETs per warm run, {polls['cold']:g} per cold one, "
            f"at {per_get:.1f} ms of its CPU each (50 in a row)"
        )

        problems = log_problems(agent.log_path)
        figures["agent_log_problem_lines"] = len(problems)
        if problems:
            print(f"agent log: {len(problems)} lines with errors (first ones):")
            for line in problems[:5]:
                print(f"    {line[:300]}")
        else:
            print("agent log: no errors")
        figures["load_end"] = os.getloadavg()
        figures["seconds"] = time.perf_counter() - began
        print(
            f"load:    {loads()} (1/5/15-min load average at the end); the benchmark took "
            f"{figures['seconds']:.0f} s"
        )
    finally:
        for process in (baseline, same_instance):
            if process is not None:
                process.stop()
        if runs is not None:
            runs.close()
        stop_stack(temporal, cp, agent)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
