"""Sensor ticks and code-evaluated schedule ticks on real storage (SQLite and PostgreSQL),
with a controllable clock: the control plane's own loop is off, the test calls its pass with
the time it chooses and plays the agent over the real agent API (poll, report).
(tests/e2e/test_sensors.py runs the whole path with a real agent and code server.)"""

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import running_controlplane
from tests.controlplane.test_alerts import alerts_of, policy
from tests.controlplane.test_scheduler import set_cursor
from tests.support import ControlPlane, Tenant, client, event
from tether_api.snapshot import ScheduleSnapshot, SensorSnapshot
from tether_controlplane.db import Database
from tether_controlplane.services import retention, scheduler, ticks
from tether_controlplane.settings import Settings
from tether_controlplane.tables import DeploymentRow, Organization, RequestRow
from tether_sdk.examples.quickstart import defs

GRACE = 120.0
T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def cp(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    with running_controlplane(
        request.param, tmp_path_factory.mktemp("cp-sensors"), scheduler_enabled=False
    ) as found:
        yield found


@pytest.fixture
def db(cp: ControlPlane) -> Iterator[Database]:
    found = Database(cp.database_url)
    try:
        yield found
    finally:
        found.dispose()


@pytest.fixture
def tenant(cp: ControlPlane) -> Tenant:
    found = cp.tenant()
    found.deploy("quick")
    return found


def report_snapshot(
    tenant: Tenant,
    sensors: list[SensorSnapshot] = (),  # type: ignore[assignment]
    schedules: list[ScheduleSnapshot] = (),  # type: ignore[assignment]
) -> None:
    snapshot = defs.snapshot().model_copy(
        update={"sensors": list(sensors), "schedules": list(schedules)}
    )
    with tenant.agent() as agent:
        r = agent.post(
            "/api/v1/agent/code-locations/quick/status",
            json={
                "status": "RUNNING",
                "snapshot": snapshot.model_dump(mode="json"),
                "generation": 1,
            },
        )
        assert r.status_code == 200, r.text


def watcher(name: str = "watch", **extra: Any) -> SensorSnapshot:
    values = {"name": name, "job": "etl", "minimum_interval_seconds": 30, "timeout_seconds": 10}
    return SensorSnapshot.model_validate({"default_status": "RUNNING", **values, **extra})


def tick_requests(tenant: Tenant) -> list[dict[str, Any]]:
    found = [r for r in tenant.poll(max_requests=50) if r["type"] == "EVALUATE_TICK"]
    with tenant.agent() as agent:
        for r in found:
            agent.post(f"/api/v1/agent/requests/{r['id']}/ack", json={"attempt": r["attempt"]})
    return [r["payload"] for r in found]


def answer(tenant: Tenant, payload: dict[str, Any], **response: Any) -> dict[str, Any]:
    return report(tenant, payload["kind"], payload["tick_id"], {"response": response})


def report(tenant: Tenant, kind: str, tick_id: int, body: dict[str, Any]) -> dict[str, Any]:
    with tenant.agent() as agent:
        r = agent.post(f"/api/v1/agent/ticks/{kind}/{tick_id}", json=body)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def read_request(tenant: Tenant, kind: str, tick_id: int) -> httpx.Response:
    """What the agent's activity reads: its TickWorkflow carries only the tick's identity."""
    with tenant.agent() as agent:
        return agent.get(f"/api/v1/agent/ticks/{kind}/{tick_id}")


def get(tenant: Tenant, path: str, **params: Any) -> Any:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}{path}", params=params)
        assert r.status_code == 200, r.text
        return r.json()


def sensor_runs(tenant: Tenant, name: str = "watch") -> list[dict[str, Any]]:
    return list(get(tenant, "/runs", tag=f"tether/sensor={name}", limit=200)["runs"])


def request(key: str | None, source: str = "s3://x", **extra: Any) -> dict[str, Any]:
    return {"run_key": key, "run_config": {"source": source}, **extra}


def test_a_due_sensor_is_sent_once_and_each_run_key_makes_one_run(
    tenant: Tenant, db: Database
) -> None:
    report_snapshot(tenant, [watcher()])
    assert ticks.request_due(db, T0, GRACE) is None  # in flight: the next starts after it
    [payload] = tick_requests(tenant)
    assert payload["code_location"] == "quick" and payload["tick"]["name"] == "watch"
    assert payload["tick"]["cursor"] is None and payload["tick"]["timeout_seconds"] == 10
    # Neither the next pass nor one past the interval starts a second tick while one is out.
    ticks.request_due(db, T0 + timedelta(seconds=1), GRACE)
    ticks.request_due(db, T0 + timedelta(seconds=31), GRACE)
    assert tick_requests(tenant) == []

    runs = [request("a"), request("b"), request("a"), request(None)]
    first = answer(tenant, payload, run_requests=runs, cursor="seen:2")
    assert first["status"] == "SUCCESS" and len(first["run_ids"]) == 3
    again = answer(tenant, payload, run_requests=runs, cursor="seen:2")  # a retried report
    assert again["already_final"] and again["run_ids"] == first["run_ids"]
    assert len(sensor_runs(tenant)) == 3

    ticks.request_due(db, T0 + timedelta(seconds=61), GRACE)
    [second] = tick_requests(tenant)
    assert second["tick"]["cursor"] == "seen:2"
    assert second["tick"]["last_tick_at"].startswith("2030-01-01T12:00:00")  # the first
    done = answer(tenant, second, run_requests=[request("a"), request("b")], cursor="seen:3")
    assert done["status"] == "SKIPPED" and done["run_ids"] == []
    [latest, _] = get(tenant, "/sensors/quick/watch/ticks")
    assert latest["run_keys_skipped"] == ["a", "b"] and latest["cursor"] == "seen:3"
    assert sorted(r["tags"].get("tether/run_key", "") for r in sensor_runs(tenant)) == [
        "",
        "a",
        "b",
    ]
    shown = get(tenant, "/sensors/quick/watch")
    assert shown["cursor"] == "seen:3" and shown["last_tick"]["id"] == latest["id"]


def test_the_agent_reads_a_ticks_request_back_until_the_tick_ends(
    tenant: Tenant, db: Database
) -> None:
    report_snapshot(tenant, [watcher()])
    ticks.request_due(db, T0, GRACE)
    answer(tenant, tick_requests(tenant)[0], cursor="seen:1")
    ticks.request_due(db, T0 + timedelta(seconds=31), GRACE)
    [payload] = tick_requests(tenant)  # acknowledged (the workflow holds it): still readable
    read = read_request(tenant, "sensor", payload["tick_id"])
    assert read.status_code == 200, read.text
    assert read.json() == payload and read.json()["tick"]["cursor"] == "seen:1"
    answer(tenant, payload, cursor="seen:2")
    ended = read_request(tenant, "sensor", payload["tick_id"])
    assert ended.status_code == 409
    assert ended.json()["detail"] == (
        f"sensor tick {payload['tick_id']} has ended (SKIPPED); it is not evaluated again"
    )
    # Only the tick's own deployment reads it; a schedule tick is another tick.
    other = tenant.cp.tenant()
    other.deploy("quick")
    assert read_request(other, "sensor", payload["tick_id"]).status_code == 404
    assert read_request(tenant, "schedule", payload["tick_id"]).status_code == 404
    assert read_request(tenant, "sensor", 0).status_code == 422


def test_a_failing_sensor_keeps_its_cursor_and_alerts_on_the_transition(
    tenant: Tenant, db: Database
) -> None:
    policy(tenant, "ticks", "http://127.0.0.1:9/hook", events=["tick_failure"])
    report_snapshot(tenant, [watcher()])
    ticks.request_due(db, T0, GRACE)
    answer(tenant, tick_requests(tenant)[0], cursor="c1")
    for i in range(1, 4):
        ticks.request_due(db, T0 + timedelta(seconds=31 * i), GRACE)
        [payload] = tick_requests(tenant)
        assert payload["tick"]["cursor"] == "c1"  # a failure never moves it
        error = {"message": "ValueError: the bucket is gone", "traceback": "Traceback ...\n"}
        outcome = answer(tenant, payload, error=error, run_requests=[request("x")])
        assert outcome["status"] == "FAILURE"
    failed = get(tenant, "/sensors/quick/watch/ticks", status="FAILURE")
    assert len(failed) == 3 and failed[0]["traceback"] == "Traceback ...\n"
    assert sensor_runs(tenant) == []
    sent = [a for a in alerts_of(tenant) if a["event"] == "tick_failure"]
    assert len(sent) == 1 and "sensor watch (quick)" in sent[0]["summary"]
    assert "the bucket is gone" in sent[0]["summary"]


def test_an_invalid_run_request_fails_the_whole_tick(tenant: Tenant, db: Database) -> None:
    report_snapshot(tenant, [watcher()])
    ticks.request_due(db, T0, GRACE)
    [payload] = tick_requests(tenant)
    bad = {"run_key": "bad", "run_config": {"nope": 1}}
    outcome = answer(tenant, payload, run_requests=[request("good"), bad], cursor="moved")
    assert outcome["status"] == "FAILURE"
    assert "run request 1 (run_key 'bad')" in outcome["error"]
    assert sensor_runs(tenant) == []  # the valid one was not created either
    assert get(tenant, "/sensors/quick/watch")["cursor"] is None
    # Its key was not used up: the next tick may ask for it again.
    ticks.request_due(db, T0 + timedelta(seconds=31), GRACE)
    [retry] = tick_requests(tenant)
    assert answer(tenant, retry, run_requests=[request("good")])["status"] == "SUCCESS"


def test_a_tick_nobody_answers_fails_at_its_deadline(tenant: Tenant, db: Database) -> None:
    report_snapshot(tenant, [watcher()])
    ticks.request_due(db, T0, GRACE)  # no agent claims it
    ticks.request_due(db, T0 + timedelta(seconds=10 + GRACE + 1), GRACE)
    [expired, started] = get(tenant, "/sensors/quick/watch/ticks")[::-1]
    assert expired["status"] == "FAILURE" and "no agent reported" in expired["error"]
    assert started["status"] == "EVALUATING"
    # The expired tick's request was withdrawn: an agent that comes back gets only the new one.
    [payload] = tick_requests(tenant)
    assert payload["tick_id"] == started["id"]
    assert read_request(tenant, "sensor", expired["id"]).status_code == 409
    late = report(tenant, "sensor", expired["id"], {"response": {"run_requests": [request("z")]}})
    assert late["already_final"] and late["status"] == "FAILURE"
    assert sensor_runs(tenant) == []


def test_a_run_status_sensor_is_told_of_each_ended_run_once(tenant: Tenant, db: Database) -> None:
    report_snapshot(
        tenant,
        [
            watcher(
                "failures", kind="run_status", monitored_status="FAILURE", monitored_jobs=["etl"]
            )
        ],
    )
    ticks.request_due(db, T0, GRACE)
    assert tick_requests(tenant) == []  # no run has ended: the code server is not asked
    ended = [tenant.launch("quick", "etl", run_config={"source": f"s3://{i}"}) for i in range(3)]
    for run in ended[:2]:
        fail(tenant, run["id"])
    ticks.request_due(db, T0 + timedelta(seconds=31), GRACE)
    [payload] = tick_requests(tenant)
    assert [r["id"] for r in payload["tick"]["runs"]] == [r["id"] for r in ended[:2]]
    assert payload["tick"]["runs"][0]["status"] == "FAILURE"
    assert read_request(tenant, "sensor", payload["tick_id"]).json() == payload
    answer(tenant, payload, run_requests=[request(payload["tick"]["runs"][0]["id"])])
    fail(tenant, ended[2]["id"])
    ticks.request_due(db, T0 + timedelta(seconds=62), GRACE)
    [following] = tick_requests(tenant)
    assert [r["id"] for r in following["tick"]["runs"]] == [ended[2]["id"]]


def fail(tenant: Tenant, run_id: str) -> None:
    with client(tenant.cp.url, tenant.run_token(run_id)) as worker:
        batch = {"events": [event(1, "RUN_START"), event(2, "RUN_FAILURE", "steps failed")]}
        assert worker.post(f"/api/v1/runs/{run_id}/events", json=batch).status_code == 200


def test_on_off_is_the_users_and_survives_a_redeploy(tenant: Tenant, db: Database) -> None:
    report_snapshot(tenant, [watcher(default_status="STOPPED")])
    assert get(tenant, "/sensors")[0]["status"] == "STOPPED"
    ticks.request_due(db, T0, GRACE)
    assert tick_requests(tenant) == []
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/sensors/quick/watch/start")
        assert r.status_code == 200 and r.json()["status_set_by_user"], r.text
    report_snapshot(tenant, [watcher(default_status="STOPPED")])  # a redeploy
    assert get(tenant, "/sensors/quick/watch")["status"] == "RUNNING"
    ticks.request_due(db, T0, GRACE)
    assert len(tick_requests(tenant)) == 1
    report_snapshot(tenant, [])  # no longer declared
    assert get(tenant, "/sensors/quick/watch")["present"] is False
    with tenant.user() as c:
        assert c.post(f"{tenant.dep_path}/sensors/quick/watch/start").status_code == 409
        assert c.get(f"{tenant.dep_path}/sensors/quick/nope").status_code == 404


def test_two_replicas_start_one_tick(cp: ControlPlane, tenant: Tenant, db: Database) -> None:
    if not cp.database_url.startswith("postgresql"):
        pytest.skip("two replicas share one PostgreSQL; SQLite serves one control plane")
    report_snapshot(tenant, [watcher()])
    replicas = [Database(cp.database_url) for _ in range(2)]
    start = threading.Barrier(2)

    def one_pass(replica: Database) -> None:
        start.wait()
        ticks.request_due(replica, T0, GRACE)

    threads = [threading.Thread(target=one_pass, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in replicas:
        r.dispose()
    assert len(tick_requests(tenant)) == 1
    assert len(get(tenant, "/sensors/quick/watch/ticks")) == 1


def test_a_schedule_whose_config_is_code_is_evaluated_by_the_code_server(
    tenant: Tenant, db: Database
) -> None:
    coded = ScheduleSnapshot(
        name="coded",
        cron="0 3 * * *",
        job="etl",
        default_status="RUNNING",
        config_from_code=True,
        timeout_seconds=5,
    )
    report_snapshot(tenant, schedules=[coded])
    set_cursor(db, datetime(2030, 1, 1, 2, tzinfo=UTC))
    scheduler.run_due(db, datetime(2030, 1, 1, 3, 0, 1, tzinfo=UTC), GRACE)
    scheduler.run_due(db, datetime(2030, 1, 1, 3, 0, 2, tzinfo=UTC), GRACE)  # a retried pass
    [payload] = tick_requests(tenant)
    assert payload["kind"] == "schedule" and payload["tick"]["tick_time"].startswith(
        "2030-01-01T03:00:00"
    )
    [tick] = get(tenant, "/schedules/quick/coded/ticks")
    assert tick["status"] == "EVALUATING"
    computed = [request(None, "s3://2030-01-01")]
    outcome = answer(tenant, payload, run_requests=computed)
    assert outcome["status"] == "SUCCESS"
    assert answer(tenant, payload, run_requests=computed)["already_final"]
    [tick] = get(tenant, "/schedules/quick/coded/ticks")
    run = tenant.run(tick["run_id"])
    assert run["run_config"] == {"source": "s3://2030-01-01"}
    assert run["tags"]["tether/schedule"] == "coded"

    # The next tick: its config function raised.
    scheduler.run_due(db, datetime(2030, 1, 2, 3, 0, 1, tzinfo=UTC), GRACE)
    [raised] = tick_requests(tenant)
    error = {"message": "KeyError: 'day'", "traceback": "Traceback ...\nKeyError: 'day'\n"}
    assert answer(tenant, raised, error=error)["status"] == "FAILURE"
    newest = get(tenant, "/schedules/quick/coded/ticks")[0]
    assert newest["error"] == "KeyError: 'day'" and newest["traceback"].endswith("'day'\n")
    assert newest["run_id"] is None


def test_skipped_ticks_and_finished_requests_are_forgotten_after_their_retention(
    cp: ControlPlane, tenant: Tenant, db: Database
) -> None:
    report_snapshot(tenant, [watcher()])
    ticks.request_due(db, T0, GRACE)
    answer(tenant, tick_requests(tenant)[0], run_requests=[request("kept")])
    ticks.request_due(db, T0 + timedelta(seconds=31), GRACE)
    answer(tenant, tick_requests(tenant)[0], skip_reason="nothing new")
    assert [t["status"] for t in get(tenant, "/sensors/quick/watch/ticks")] == [
        "SKIPPED",
        "SUCCESS",
    ]
    # The retention pass, with the control plane's own rules for these two (its defaults).
    rules = Settings(database_url=cp.database_url)
    assert (rules.request_retention_hours, rules.skipped_tick_retention_days) == (72, 7)
    retention.run_pass(db, rules, T0 + timedelta(days=6))  # within their retention: kept
    assert len(get(tenant, "/sensors/quick/watch/ticks")) == 2
    # The requests finished now (the real clock), the ticks in 2030.
    retention.run_pass(db, rules, T0 + timedelta(days=8))
    [kept] = get(tenant, "/sensors/quick/watch/ticks")
    assert kept["status"] == "SUCCESS" and kept["run_ids"]
    with db.read() as s:
        left = s.scalars(
            select(RequestRow.type).where(RequestRow.deployment_id == _deployment_id(s, tenant))
        ).all()
    assert "EVALUATE_TICK" not in left


def _deployment_id(session: Any, tenant: Tenant) -> int:
    found = session.scalar(
        select(DeploymentRow.id)
        .join(Organization, Organization.id == DeploymentRow.organization_id)
        .where(Organization.name == tenant.org, DeploymentRow.name == tenant.deployment)
    )
    assert found is not None
    return int(found)


def test_a_hand_made_snapshot_with_nul_and_twice_the_same_name_is_stored(tenant: Tenant) -> None:
    # The SDK never reports these; an agent of another version or a bug might. PostgreSQL
    # text columns cannot hold NUL, and a name declared twice must not fail the report.
    report_snapshot(
        tenant,
        [watcher("twice"), watcher("twice", minimum_interval_seconds=99), watcher("n\x00l")],
        [ScheduleSnapshot(name="s\x00", cron="0 3 * * *", job="e\x00tl")],
    )
    found = {s["name"]: s for s in get(tenant, "/sensors")}
    assert set(found) == {"twice", "n\ufffdl"}
    assert found["twice"]["minimum_interval_seconds"] == 30  # the first declaration
    [schedule] = get(tenant, "/schedules")
    assert schedule["name"] == "s\ufffd" and schedule["job"] == "e\ufffdtl"
