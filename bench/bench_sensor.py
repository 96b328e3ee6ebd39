"""Sensor benchmark: how long one evaluation takes end to end, and how soon a new file
becomes a run.

A real stack: `tether controlplane serve` (SQLite), a Temporal dev server, one agent (process
launcher) and the `sensing` code location of the end-to-end tests, whose `inbox` sensor
(every 1 s) asks for one run per file in a directory, keyed by the file's name. Measured from
the control plane's own records:

- round trip: a tick's start (the control plane writes it and enqueues EVALUATE_TICK) to its
  end (the agent's TickWorkflow has asked the code server and the report is applied), over
  the last `--ticks` ticks;
- file to run: writing a file into the inbox to the run's `created_at`, for `--files` files
  (bounded below by the sensor's 1 s interval).

    .venv/bin/python bench/bench_sensor.py [--ticks 40] [--files 5]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_controlplane import machine
from tests.agent_support import AgentProcess, TemporalDevServer, stop_launched, wait_for_location
from tests.support import ControlPlane, Tenant, wait_until

SENSING = Path(__file__).resolve().parent.parent / "tests" / "e2e" / "locations" / "sensing.py"


def quantiles(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (
        f"p50 {statistics.median(ordered) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, "
        f"max {ordered[-1] * 1000:.0f} ms"
    )


def ticks(tenant: Tenant, limit: int) -> list[dict]:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/sensors/sensing/inbox/ticks", params={"limit": limit})
        return [t for t in r.json() if t["finished_at"]]


def runs_by_key(tenant: Tenant) -> dict[str, dict]:
    with tenant.user() as c:
        found = c.get(
            f"{tenant.dep_path}/runs", params={"tag": "tether/sensor=inbox", "limit": 200}
        ).json()["runs"]
    return {r["tags"]["tether/run_key"]: r for r in found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=40, help="ticks to time")
    parser.add_argument("--files", type=int, default=5, help="files to drop, one at a time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tether-bench-sensor-") as tmp:
        work = Path(tmp)
        for sub in ("temporal", "cp", "agent", "inbox"):
            (work / sub).mkdir()
        temporal = TemporalDevServer(work / "temporal").start()
        cp = ControlPlane(work / "cp").start()
        agent: AgentProcess | None = None
        try:
            tenant = cp.tenant()
            agent = AgentProcess(tenant, temporal, work / "agent").start()
            inbox = work / "inbox"
            tenant.deploy("sensing", python_file=str(SENSING), env={"SENSING_INBOX": str(inbox)})
            wait_for_location(tenant, "sensing", ("RUNNING",), timeout=90)
            print(f"machine: {machine()}")
            print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the start)")

            dropped: dict[str, datetime] = {}
            for i in range(args.files):
                name = f"f{i}.csv"
                dropped[name] = datetime.now(UTC)
                (inbox / name).write_text("x")
                wait_until(lambda n=name: n in runs_by_key(tenant), timeout=30, what=name)
            made = runs_by_key(tenant)
            to_run = [
                (datetime.fromisoformat(made[n]["created_at"]) - at).total_seconds()
                for n, at in dropped.items()
            ]
            wait_until(lambda: len(ticks(tenant, 200)) >= args.ticks, timeout=args.ticks * 3)
            timed = ticks(tenant, args.ticks)
            trips = [
                (
                    datetime.fromisoformat(t["finished_at"])
                    - datetime.fromisoformat(t["tick_time"])
                ).total_seconds()
                for t in timed
            ]
            statuses = {s: sum(t["status"] == s for t in timed) for s in ("SUCCESS", "SKIPPED")}
            print(f"ticks:   {len(timed)} timed ({statuses}), interval 1 s")
            print(f"round trip (tick written -> report applied): {quantiles(trips)}")
            print(f"file -> run created ({len(to_run)} files):  {quantiles(to_run)}")
            print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the end)")
        finally:
            if agent is not None:
                agent.stop()
                stop_launched(agent.state_dir)
            cp.stop()
            temporal.stop()
        time.sleep(0.1)


if __name__ == "__main__":
    main()
