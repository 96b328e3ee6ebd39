"""A Dagster project's schedule and sensor on Tether's scheduler, end to end, across a restart
of the control plane: the schedule's tick makes one run, and the sensor's run keys one run
each, however often the control plane restarts meanwhile. A control plane of the test's own
(SQLite: the test moves the schedule's cursor), the session's Temporal dev server, an agent
with the process launcher."""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    stop_launched,
    wait_for_location,
    wait_for_run,
)
from tests.support import REPO, ControlPlane, Tenant, set_schedule_cursor, wait_until

PROJECT = REPO / "examples" / "dagster_project"


def runs_of(tenant: Tenant) -> list[dict[str, Any]]:
    with tenant.user() as c:
        answer = c.get(f"{tenant.dep_path}/runs", params={"limit": 200})
        assert answer.status_code == 200, answer.text
        return answer.json()["runs"]  # type: ignore[no-any-return]


def last_nightly_tick(now: datetime) -> datetime:
    """The last 03:00 in Paris (etl_nightly's cron) before ``now``."""
    paris = now.astimezone(ZoneInfo("Europe/Paris"))
    tick = paris.replace(hour=3, minute=0, second=0, microsecond=0)
    if tick > paris:
        tick -= timedelta(days=1)
    return tick.astimezone(UTC)


def test_a_schedule_tick_and_sensor_run_keys_make_one_run_each_across_a_restart(
    own_controlplane: ControlPlane, temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    cp = own_controlplane
    tenant = cp.tenant()
    agent = AgentProcess(tenant, temporal_server, tmp_path).start()
    try:
        tenant.deploy("acme", kind="dagster", working_directory=str(PROJECT))
        assert wait_for_location(tenant, "acme")["status"] == "RUNNING"
        with tenant.user() as c:
            for path in ("schedules/acme/etl_nightly/start", "sensors/acme/etl_batches/start"):
                answer = c.post(f"{tenant.dep_path}/{path}")
                assert answer.status_code == 200, answer.text
        tick = last_nightly_tick(datetime.now(UTC))
        set_schedule_cursor(tenant, "etl_nightly", tick - timedelta(seconds=1))

        def scheduled() -> list[dict[str, Any]]:
            return [r for r in runs_of(tenant) if r["tags"].get("tether/schedule") == "etl_nightly"]

        def batches() -> list[str]:
            return sorted(r["tags"]["batch"] for r in runs_of(tenant) if "batch" in r["tags"])

        wait_until(lambda: scheduled() and len(batches()) >= 2, timeout=90, what="first runs")
        cp.stop()
        time.sleep(2)
        cp.start()
        # The sensor keeps asking (two batches a tick, up to six), and each key runs once.
        wait_until(lambda: len(batches()) >= 4, timeout=120, what="the sensor after the restart")
        with tenant.user() as c:
            c.post(f"{tenant.dep_path}/sensors/acme/etl_batches/stop")
            c.post(f"{tenant.dep_path}/schedules/acme/etl_nightly/stop")
        found = batches()
        assert len(found) == len(set(found)), found
        [nightly] = scheduled()
        done = wait_for_run(tenant, nightly["id"], timeout=120)
        assert done["status"] == "SUCCESS", done
        # The Dagster schedule's run config, computed in the code server for that tick.
        assert done["run_config"]["ops"]["extract"]["config"]["source"] == "nightly-export"
    finally:
        agent.stop()
        stop_launched(agent.state_dir)
