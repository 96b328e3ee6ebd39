"""Where a run's time goes: one run's path from submit to SUCCESS, split at every hop.

The same real stack as ``bench_launch.py`` (Temporal dev server, control plane on SQLite, one
agent with the process launcher, a trivial one-step job). ``--runs`` runs go one after another;
for each, the timestamps of the hops are read from where they are recorded:

- the control plane: the run's ``created_at``, ``started_at`` and ``ended_at``, and when its
  launch request was acknowledged (the agent had started the run's workflow);
- the run's events, stamped by the run worker: ``RUN_START``, the step's events, ``RUN_SUCCESS``;
- the RunWorkflow's history on the Temporal server: started, its workflow tasks, the markers
  of its local activities, the watch, completion.

Prints the median of each segment. Clocks: all processes are on this machine.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_controlplane import machine
from bench.bench_launch import start_stack, submit, temporal_client
from bench.launch_workload import LOCATION, TRIVIAL_LOCATION, ready_after_warm_up
from tests.agent_support import TERMINAL


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _history(call: Any, workflow_id: str) -> list[tuple[str, datetime, str]]:
    """(event type, time, a short detail) of each event of the workflow's history."""

    async def fetch(client: Any) -> list[tuple[str, datetime, str]]:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        out = []
        for event in history.events:
            kind = event.WhichOneof("attributes") or ""
            detail = ""
            if kind == "marker_recorded_event_attributes":
                attrs = event.marker_recorded_event_attributes
                data = attrs.details.get("data")
                detail = data.payloads[0].data.decode()[:200] if data else ""
            if kind == "activity_task_scheduled_event_attributes":
                detail = event.activity_task_scheduled_event_attributes.activity_type.name
            out.append(
                (
                    kind.removesuffix("_event_attributes"),
                    _utc(event.event_time.ToDatetime()),
                    detail,
                )
            )
        return out

    result: list[tuple[str, datetime, str]] = call(fetch)
    return result


def profile_run(tenant: Any, db: Path, call: Any, c: Any) -> dict[str, float]:
    run_id = submit(c, tenant)
    deadline = time.monotonic() + 60
    while True:
        run = c.get(f"{tenant.dep_path}/runs/{run_id}").json()
        if run["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} not terminal: {run}")
        time.sleep(0.01)
    if run["status"] != "SUCCESS":
        raise RuntimeError(f"run {run_id} ended {run['status']}: {run.get('status_message')}")
    time.sleep(1.0)  # let the workflow finish (the watch notices the exit)
    created = _utc(run["created_at"])
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT finished_at FROM agent_requests "
            "WHERE type = 'LAUNCH_RUN' AND payload LIKE ? ORDER BY id DESC LIMIT 1",
            (f'%"{run_id}"%',),
        ).fetchone()
    acked = _utc(row[0])
    events = c.get(f"{tenant.dep_path}/runs/{run_id}/events", params={"limit": 100}).json()
    stamps = {e["type"]: _utc(e["timestamp"]) for e in events["events"]}
    history = _history(call, f"run:{run_id}")
    started_wf = history[0][1]
    wft_done = [t for kind, t, _ in history if kind == "workflow_task_completed"]
    wft_started = [t for kind, t, _ in history if kind == "workflow_task_started"]
    watch = next(t for kind, t, d in history if d == "watch_run_worker")
    closed = history[-1][1]

    def ms(a: datetime | float, b: datetime | float) -> float:
        ta = a if isinstance(a, float) else a.timestamp()
        tb = b if isinstance(b, float) else b.timestamp()
        return (tb - ta) * 1000

    return {
        "submit -> RunWorkflow started (poll, dispatch)": ms(created, started_wf),
        "submit -> launch request acknowledged": ms(created, acked),
        "RunWorkflow started -> its first task picked up": ms(started_wf, wft_started[0]),
        "first task picked up -> done (prepare+launch)": ms(wft_started[0], wft_done[0]),
        "RunWorkflow started -> watch scheduled": ms(started_wf, watch),
        "RunWorkflow started -> RUN_START (worker)": ms(started_wf, stamps["RUN_START"]),
        "RUN_START -> RUN_SUCCESS (worker)": ms(stamps["RUN_START"], stamps["RUN_SUCCESS"]),
        "RUN_SUCCESS -> ended_at": ms(stamps["RUN_SUCCESS"], _utc(run["ended_at"])),
        "submit -> started_at": ms(created, _utc(run["started_at"])),
        "submit -> ended_at (SUCCESS)": ms(created, _utc(run["ended_at"])),
        "ended_at -> RunWorkflow closed": ms(_utc(run["ended_at"]), closed),
        "history events": float(len(history)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--launch", choices=["cold", "warm"], default="warm")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tether-profile-"))
    temporal = cp = agent = None
    try:
        print(f"machine: {machine()}")
        print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the start)")
        temporal, cp, tenant, agent = start_stack(tmp)
        location_file = tmp / "trivial.py"
        location_file.write_text(TRIVIAL_LOCATION)
        tenant.deploy(LOCATION, python_file=str(location_file), launch=args.launch)
        ready_after_warm_up(tenant, "process")
        rows: list[dict[str, float]] = []
        with temporal_client(temporal.address) as call, tenant.user() as c:
            for _ in range(args.runs):
                rows.append(profile_run(tenant, tmp / "tether.db", call, c))
        print(f"{args.runs} sequential {args.launch} runs, medians (min, max):")
        for key in rows[0]:
            values = [r[key] for r in rows]
            print(
                f"  {key:58s} {statistics.median(values):8.1f}  "
                f"({min(values):.1f}, {max(values):.1f})"
            )
        print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the end)")
    finally:
        for part in (agent, cp, temporal):
            if part is not None:
                part.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
