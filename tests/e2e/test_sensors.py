"""Sensors and code-evaluated schedules end to end: the real control plane enqueues each
evaluation, a real agent's TickWorkflow (on the Temporal dev server) carries it to the
location's real code server, and the runs it asks for are created once per run key."""

import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    stop_launched,
    wait_for_location,
    wait_for_run,
)
from tests.e2e.test_no_output_in_histories import decoded_text
from tests.support import ControlPlane, Tenant, set_schedule_cursor, wait_until
from worker.codec import new_key

SENSING = Path(__file__).parent / "locations" / "sensing.py"
# Sensors whose cursor, run requests, error and skip reason carry a marker of the test's
# (never a name: names are readable in Temporal by design). MARKER is filled in per test.
SECRETIVE = """
from pydantic import BaseModel
from tether_sdk import (
    Definitions,
    RunRequest,
    RunStatusSensorContext,
    SensorContext,
    SkipReason,
    job,
    run_status_sensor,
    sensor,
    step,
)

MARKER = "{marker}"


class Order(BaseModel):
    name: str


@step
def refuse(config: Order) -> None:
    raise ValueError("refusing " + config.name)


refuses = job("refuses", steps=[refuse], config=Order)


@sensor(job=refuses, minimum_interval_seconds=1, default_status="RUNNING")
def keeps(context: SensorContext) -> list[RunRequest]:
    context.update_cursor("cursor-" + MARKER)
    config = {{"name": "config-" + MARKER}}
    return [RunRequest(run_key="once", run_config=config, tags={{"note": "tag-" + MARKER}})]


@sensor(job=refuses, minimum_interval_seconds=1, default_status="RUNNING")
def raises(context: SensorContext) -> None:
    raise ValueError("raised-" + MARKER)


@run_status_sensor(
    run_status="FAILURE", monitored_jobs=[refuses], minimum_interval_seconds=1,
    default_status="RUNNING",
)
def watches(context: RunStatusSensorContext) -> SkipReason:
    return SkipReason("saw " + context.run.run_config["name"])


defs = Definitions(jobs=[refuses], sensors=[keeps, raises, watches])
"""


@dataclass
class Sensing:
    tenant: Tenant
    inbox: Path
    cp: ControlPlane

    def get(self, path: str, **params: Any) -> Any:
        with self.tenant.user() as c:
            r = c.get(f"{self.tenant.dep_path}{path}", params=params)
            assert r.status_code == 200, r.text
            return r.json()

    def post(self, path: str) -> Any:
        with self.tenant.user() as c:
            r = c.post(f"{self.tenant.dep_path}{path}")
            assert r.status_code == 200, r.text
            return r.json()

    def runs(self, job: str) -> list[dict[str, Any]]:
        return list(self.get("/runs", job=job, limit=200)["runs"])

    def ticks(self, sensor: str, **params: Any) -> list[dict[str, Any]]:
        return list(self.get(f"/sensors/sensing/{sensor}/ticks", **params))


@pytest.fixture(scope="module")
def sensing(
    e2e_controlplane: ControlPlane,
    temporal_server: TemporalDevServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Sensing]:
    tenant = e2e_controlplane.tenant()
    inbox = tmp_path_factory.mktemp("inbox")
    agent = AgentProcess(tenant, temporal_server, tmp_path_factory.mktemp("sensing-agent"))
    agent.start()
    try:
        tenant.deploy("sensing", python_file=str(SENSING), env={"SENSING_INBOX": str(inbox)})
        assert wait_for_location(tenant, "sensing")["status"] == "RUNNING"
        yield Sensing(tenant, inbox, e2e_controlplane)
    finally:
        agent.stop()
        stop_launched(agent.state_dir)


def test_a_sensor_asks_for_one_run_per_run_key(
    sensing: Sensing, temporal_server: TemporalDevServer
) -> None:
    (sensing.inbox / "a.csv").write_text("1")
    (sensing.inbox / "b.csv").write_text("2")
    wait_until(lambda: len(sensing.runs("ingest_file")) >= 2, timeout=60, what="two runs")
    # It keeps asking for a.csv and b.csv at every tick; their keys made their runs already.
    wait_until(
        lambda: any(t["run_keys_skipped"] == ["a.csv", "b.csv"] for t in sensing.ticks("inbox")),
        timeout=30,
        what="a tick that found both keys used",
    )
    (sensing.inbox / "c.csv").write_text("3")
    wait_until(lambda: len(sensing.runs("ingest_file")) >= 3, timeout=30, what="a third run")
    wait_until(
        lambda: sum(t["status"] == "SKIPPED" for t in sensing.ticks("inbox")) >= 3,
        timeout=30,
        what="more ticks after the third run",
    )
    made = sensing.runs("ingest_file")
    assert sorted(r["tags"]["tether/run_key"] for r in made) == ["a.csv", "b.csv", "c.csv"]
    for run in made:
        assert run["tags"]["tether/sensor"] == "inbox"
        assert run["run_config"] == {"name": run["tags"]["tether/run_key"]}
        assert wait_for_run(sensing.tenant, run["id"])["status"] == "SUCCESS"
    sensor = sensing.get("/sensors/sensing/inbox")
    assert sensor["status"] == "RUNNING" and sensor["cursor"] == "3 files"

    # Each evaluation is a TickWorkflow whose history shows the code server's activity.
    tick = next(t for t in sensing.ticks("inbox") if t["run_ids"])
    shown = temporal_server.cli(
        "workflow", "show", "--workflow-id", tick["workflow_id"], "--output", "json"
    )
    assert shown.returncode == 0, shown.stderr
    history = json.loads(shown.stdout)
    assert "evaluate_and_report_tick" in json.dumps(history)
    assert tick["workflow_id"].startswith(f"tick:{sensing.tenant.org}:")


def test_a_sensor_that_raises_records_its_traceback_and_keeps_its_cursor(
    sensing: Sensing,
) -> None:
    wait_until(
        lambda: sensing.get("/sensors/sensing/inbox")["cursor"] is not None,
        timeout=60,
        what="a first successful evaluation",
    )
    cursor = sensing.get("/sensors/sensing/inbox")["cursor"]
    (sensing.inbox / "BREAK").write_text("")
    try:
        wait_until(
            lambda: sensing.ticks("inbox", status="FAILURE"), timeout=30, what="a failed tick"
        )
        failed = sensing.ticks("inbox", status="FAILURE")[0]
        assert failed["error"].startswith("ValueError: the inbox")
        assert "Traceback (most recent call last)" in failed["traceback"]
        assert "sensing.py" in failed["traceback"]
        assert failed["run_ids"] == []
        assert sensing.get("/sensors/sensing/inbox")["cursor"] == cursor
    finally:
        (sensing.inbox / "BREAK").unlink()
    newest = failed["id"]
    wait_until(
        lambda: any(t["id"] > newest and t["status"] != "FAILURE" for t in sensing.ticks("inbox")),
        timeout=30,
        what="the sensor working again",
    )


def test_a_slow_sensor_is_bounded_by_its_timeout(sensing: Sensing) -> None:
    assert sensing.get("/sensors/sensing/slow")["status"] == "STOPPED"  # declared default
    sensing.post("/sensors/sensing/slow/start")
    try:
        wait_until(
            lambda: sensing.ticks("slow", status="FAILURE"), timeout=60, what="a timed-out tick"
        )
    finally:
        sensing.post("/sensors/sensing/slow/stop")
    failed = sensing.ticks("slow", status="FAILURE")[-1]
    assert "did not return within its timeout of 1 s" in failed["error"]
    assert sensing.runs("ingest_file") == [] or all(
        r["tags"].get("tether/sensor") != "slow" for r in sensing.runs("ingest_file")
    )


def test_a_run_status_sensor_reacts_to_each_failed_run_once(sensing: Sensing) -> None:
    failed = [sensing.tenant.launch("sensing", "fails") for _ in range(2)]
    for run in failed:
        assert wait_for_run(sensing.tenant, run["id"])["status"] == "FAILURE"
    wait_until(lambda: len(sensing.runs("react")) >= 2, timeout=60, what="two reactions")
    # Later evaluations see no new failures: still exactly one reaction per failed run.
    wait_until(
        lambda: sensing.get("/sensors/sensing/on_failure")["last_tick"]["status"] == "SUCCESS",
        timeout=30,
        what="the reacting tick",
    )
    reactions = sensing.runs("react")
    assert sorted(r["run_config"]["failed_run"] for r in reactions) == sorted(
        r["id"] for r in failed
    )
    for run in reactions:
        assert wait_for_run(sensing.tenant, run["id"])["status"] == "SUCCESS"


def test_a_schedule_computes_its_run_config_in_the_code_server(sensing: Sensing) -> None:
    sensing.post("/schedules/sensing/stamped/start")
    try:
        # The controllable clock: the schedule's cursor is moved to just before the last
        # minute's tick, which the real scheduler then finds due and sends to the agent.
        now = datetime.now(UTC)
        if now.second >= 50:  # not the end of a minute: the next tick would be due too
            time.sleep(61 - now.second)
            now = datetime.now(UTC)
        tick = now.replace(second=0, microsecond=0)
        if now - tick < timedelta(seconds=2):
            tick -= timedelta(minutes=1)
        set_schedule_cursor(sensing.tenant, "stamped", tick - timedelta(seconds=1))

        def ticked() -> dict[str, Any] | None:
            # Should a loaded machine let the next minute pass before the scheduler's pass,
            # that tick is the one evaluated (missed ticks: latest) and the earlier skipped.
            found = [
                t
                for t in sensing.get("/schedules/sensing/stamped/ticks")
                if datetime.fromisoformat(t["tick_time"]) >= tick
                and t["status"] not in ("EVALUATING", "SKIPPED")
            ]
            return found[0] if found else None

        done = wait_until(ticked, timeout=60, what="the code-evaluated tick")
    finally:
        sensing.post("/schedules/sensing/stamped/stop")
    assert done["status"] == "SUCCESS", done
    assert done["workflow_id"].startswith(f"tick:{sensing.tenant.org}:")
    run = sensing.tenant.run(done["run_id"])
    evaluated = datetime.fromisoformat(done["tick_time"])
    assert run["run_config"] == {"name": f"orders-{evaluated:%Y%m%dT%H%M}.csv"}
    assert run["tags"]["tether/schedule"] == "stamped"


def test_no_user_text_of_a_tick_enters_its_workflows_history(
    sensing: Sensing, temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    """The TickWorkflow carries the tick's identity only; its activity reads the cursor and
    the ended runs from the control plane and reports the code server's answer there."""
    marker = uuid.uuid4().hex[:12]
    code = tmp_path / "secretive.py"
    code.write_text(textwrap.dedent(SECRETIVE.format(marker=marker)))
    tenant = sensing.tenant
    tenant.deploy("secretive", python_file=str(code))
    try:
        assert wait_for_location(tenant, "secretive")["status"] == "RUNNING"

        def ticks(sensor: str, **params: Any) -> list[dict[str, Any]]:
            return list(sensing.get(f"/sensors/secretive/{sensor}/ticks", **params))

        # keeps: a run, then ticks told its cursor; raises: a failed tick; watches: a tick
        # told of the failed run (its config and error).
        [run] = wait_until(
            lambda: sensing.get("/runs", tag="tether/sensor=keeps")["runs"],
            timeout=60,
            what="the run keeps asked for",
        )
        assert wait_for_run(tenant, run["id"])["status"] == "FAILURE"
        assert run["run_config"] == {"name": f"config-{marker}"}
        assert run["tags"]["note"] == f"tag-{marker}"
        told = wait_until(
            lambda: [t for t in ticks("keeps") if t["status"] == "SKIPPED"],
            timeout=60,
            what="a tick of keeps after its run",
        )
        assert sensing.get("/sensors/secretive/keeps")["cursor"] == f"cursor-{marker}"
        [failed, *_] = wait_until(
            lambda: ticks("raises", status="FAILURE"), timeout=60, what="a failed tick"
        )
        assert failed["error"] == f"ValueError: raised-{marker}"
        assert f"raised-{marker}" in failed["traceback"]
        seen = wait_until(
            lambda: [t for t in ticks("watches") if t["status"] == "SKIPPED"],
            timeout=60,
            what="a tick of watches told of the failed run",
        )
        assert seen[0]["skip_reason"] == f"saw config-{marker}"
    finally:
        with tenant.user() as c:
            c.delete(f"{tenant.dep_path}/code-locations/secretive")

    # Every event of every TickWorkflow of the location: inputs, results, failures, markers,
    # details, each payload decoded (an agent without a key writes them in clear anyway).
    texts = decoded_text(temporal_server.address, f"k:{new_key()}", [], tenant.org)
    prefix = f"tick:{tenant.org}:{tenant.deployment}:secretive:"
    histories = {wid: text for wid, text in texts.items() if wid.startswith(prefix)}
    assert len(histories) >= 4, sorted(texts)
    for sensor in ("keeps", "raises", "watches"):
        assert any(f":sensor:{sensor}:" in wid for wid in histories), sorted(histories)
    # Not hollow: the decoded inputs are there, and the ticks above took the new path.
    assert all('"held":true' in text for text in histories.values())
    by_id = {wid.split()[0]: text for wid, text in histories.items()}  # keys: "ID RUN_ID"
    for tick in (told[0], failed, seen[0]):
        assert "evaluate_and_report_tick" in by_id[tick["workflow_id"]]
    leaked = [wid for wid, text in histories.items() if marker in text]
    assert not leaked, f"the marker is in the history of {leaked}"
