"""Scheduler benchmark: how soon after its time a tick creates its run.

A real `tether controlplane serve` (SQLite) with its scheduler loop; one code location that
reports a schedule ticking every minute (`* * * * *`, RUNNING). For `--ticks` minutes, each
tick's delay is measured from the control plane's own records: the tick's time (the cron
minute) to the tick row's `created_at`, and to the run's `created_at`. Target: under 1 s.

    .venv/bin/python bench/bench_schedule.py [--ticks 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_controlplane import machine
from tests.support import ControlPlane, Tenant

TARGET_S = 1.0


def seed(tenant: Tenant) -> None:
    from tether_api.snapshot import ScheduleSnapshot
    from tether_sdk.examples.quickstart import defs

    tenant.deploy("quick")
    every_minute = ScheduleSnapshot(
        name="every_minute",
        cron="* * * * *",
        job="etl",
        run_config={"source": "bench"},
        default_status="RUNNING",
    )
    snapshot = defs.snapshot().model_copy(update={"schedules": [every_minute]})
    with tenant.agent() as agent:
        r = agent.post(
            "/api/v1/agent/code-locations/quick/status",
            json={"status": "RUNNING", "snapshot": snapshot.model_dump(mode="json")},
        )
        assert r.status_code == 200, r.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=3, help="minutes to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tether-bench-schedule-") as tmp:
        cp = ControlPlane(Path(tmp)).start()
        try:
            tenant = cp.tenant()
            seed(tenant)
            print(f"machine: {machine()}")
            print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the start)")
            path = f"{tenant.dep_path}/schedules/quick/every_minute/ticks"
            ticks: list[dict] = []
            deadline = time.time() + 60 * (args.ticks + 1) + 5
            with tenant.user() as user:
                while len(ticks) < args.ticks and time.time() < deadline:
                    time.sleep(1)
                    ticks = [t for t in user.get(path).json() if t["status"] == "SUCCESS"]
                runs = {
                    r["id"]: r
                    for r in user.get(
                        f"{tenant.dep_path}/runs", params={"tag": "tether/schedule=every_minute"}
                    ).json()["runs"]
                }
            tick_delays, run_delays = [], []
            for t in ticks:
                at = datetime.fromisoformat(t["tick_time"])
                tick_delays.append((datetime.fromisoformat(t["created_at"]) - at).total_seconds())
                run = runs[t["run_id"]]
                run_delays.append((datetime.fromisoformat(run["created_at"]) - at).total_seconds())
            print(f"ticks:   {len(ticks)} (one a minute)")
            for label, delays in (("tick evaluated", tick_delays), ("run created", run_delays)):
                p50 = statistics.median(delays)
                verdict = "PASS" if max(delays) < TARGET_S else "MISS"
                print(
                    f"{label:<15} after its time: p50 {p50 * 1000:.0f} ms, "
                    f"max {max(delays) * 1000:.0f} ms  (target < {TARGET_S:.0f} s: {verdict})"
                )
            print(f"load:    {os.getloadavg()[0]:.2f} (1-min load average at the end)")
        finally:
            cp.stop()


if __name__ == "__main__":
    main()
