"""The scheduler on real storage (SQLite and PostgreSQL) with a controllable clock: a control
plane whose own scheduler loop is off, and the test calling the scheduler's pass with the
time it chooses. (test_schedule_loop below checks the loop of a live control plane.)"""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.conftest import running_controlplane
from tests.support import ControlPlane, Tenant, wait_until
from tether_api.snapshot import ScheduleSnapshot
from tether_controlplane.db import Database
from tether_controlplane.services import scheduler
from tether_controlplane.tables import ScheduleRow
from tether_sdk.examples.quickstart import defs

DAILY = "0 3 * * *"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def cp(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    with running_controlplane(
        request.param, tmp_path_factory.mktemp("cp-sched"), scheduler_enabled=False
    ) as found:
        yield found


@pytest.fixture
def db(cp: ControlPlane) -> Iterator[Database]:
    found = Database(cp.database_url)
    try:
        yield found
    finally:
        found.dispose()


def report(tenant: Tenant, *schedules: ScheduleSnapshot, generation: int = 1) -> None:
    snapshot = defs.snapshot().model_copy(update={"schedules": list(schedules)})
    with tenant.agent() as agent:
        r = agent.post(
            "/api/v1/agent/code-locations/quick/status",
            json={
                "status": "RUNNING",
                "snapshot": snapshot.model_dump(mode="json"),
                "generation": generation,
            },
        )
        assert r.status_code == 200, r.text


def daily(name: str = "daily", **extra: object) -> ScheduleSnapshot:
    values = {"name": name, "cron": DAILY, "job": "etl", "run_config": {"source": "s3://x"}}
    return ScheduleSnapshot.model_validate({**values, **extra})


def set_cursor(db: Database, at: datetime) -> None:
    with db.write() as s:
        s.execute(update(ScheduleRow).values(cursor=at))


def ticks(tenant: Tenant, name: str = "daily") -> list[dict]:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/schedules/quick/{name}/ticks")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def scheduled_runs(tenant: Tenant) -> list[dict]:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/runs", params={"tag": "tether/schedule=daily"})
        return r.json()["runs"]  # type: ignore[no-any-return]


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2030, 1, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def tenant(cp: ControlPlane) -> Tenant:
    found = cp.tenant()
    found.deploy("quick")
    return found


def test_a_tick_creates_one_run_however_often_it_is_evaluated(tenant: Tenant, db: Database) -> None:
    report(tenant, daily(default_status="RUNNING"))
    set_cursor(db, at(1, 2))
    for _ in range(3):  # a retried pass, a restarted control plane
        upcoming = scheduler.run_due(db, at(1, 3, 0, 1))
        assert upcoming == at(2, 3)
    [tick] = ticks(tenant)
    assert tick["status"] == "SUCCESS" and tick["tick_time"].startswith("2030-01-01T03:00:00")
    [run] = scheduled_runs(tenant)
    assert run["id"] == tick["run_id"] and run["run_config"] == {"source": "s3://x"}
    assert run["tags"]["tether/tick"] == "2030-01-01T03:00:00+00:00"


def test_missed_ticks_follow_the_declared_policy(tenant: Tenant, db: Database) -> None:
    report(
        tenant,
        daily("latest", default_status="RUNNING"),
        daily("every", default_status="RUNNING", missed_ticks="all"),
        daily("none", default_status="RUNNING", missed_ticks="skip"),
    )
    set_cursor(db, at(1, 4))  # down from Jan 1, 04:00 to Jan 4, 12:00: three ticks missed
    scheduler.run_due(db, at(4, 12))
    assert [t["status"] for t in ticks(tenant, "latest")] == ["SUCCESS", "SKIPPED", "SKIPPED"]
    assert [t["status"] for t in ticks(tenant, "every")] == ["SUCCESS"] * 3
    assert [t["status"] for t in ticks(tenant, "none")] == ["SKIPPED"] * 3
    assert ticks(tenant, "latest")[0]["tick_time"].startswith("2030-01-04T03:00")
    # Back on time: the next tick runs, whatever the policy.
    scheduler.run_due(db, at(5, 3, 0, 1))
    for name in ("latest", "every", "none"):
        assert ticks(tenant, name)[0]["status"] == "SUCCESS"


def test_a_tick_that_cannot_create_its_run_says_why(tenant: Tenant, db: Database) -> None:
    report(tenant, daily(default_status="RUNNING", run_config={"source": "x", "rows": "many"}))
    with tenant.user() as c:
        channel = {"type": "webhook", "url": "http://127.0.0.1:9/hook"}
        body = {"events": ["tick_failure"], "channel": channel}
        assert c.put(f"{tenant.dep_path}/alert-policies/ticks", json=body).status_code == 200
    set_cursor(db, at(1, 2))
    for _ in range(2):
        scheduler.run_due(db, at(1, 3, 0, 1))
    [tick] = ticks(tenant)
    assert tick["status"] == "FAILURE" and tick["run_id"] is None
    assert "run_config.rows" in tick["error"]
    assert scheduled_runs(tenant) == []
    with tenant.user() as c:
        [alert] = c.get(f"{tenant.dep_path}/alerts").json()  # decided once, for the tick
    assert alert["event"] == "tick_failure" and "schedule daily (quick)" in alert["summary"]


def test_on_off_is_the_users_and_survives_a_redeploy(tenant: Tenant, db: Database) -> None:
    report(tenant, daily())  # STOPPED by default
    path = f"{tenant.dep_path}/schedules/quick/daily"
    with tenant.user() as c:
        assert c.get(path).json()["status"] == "STOPPED"
        scheduler.run_due(db, at(1, 3, 0, 1))
        assert ticks(tenant) == []
        started = c.post(f"{path}/start").json()
        assert started["status"] == "RUNNING" and started["status_set_by_user"]
        assert started["next_tick_at"] is not None
        report(tenant, daily(), generation=2)  # the code still says STOPPED
        assert c.get(path).json()["status"] == "RUNNING"
        assert c.post(f"{path}/stop").json()["status"] == "STOPPED"
        report(tenant, daily(default_status="RUNNING"), generation=3)
        assert c.get(path).json()["status"] == "STOPPED"
        # No longer declared: listed as gone, and never ticks.
        report(tenant, generation=4)
        [gone] = c.get(f"{tenant.dep_path}/schedules").json()
        assert gone["present"] is False and gone["status"] == "STOPPED"
        assert c.post(f"{tenant.dep_path}/schedules/quick/nope/start").status_code == 404


def test_two_replicas_on_one_postgres_create_one_run_per_tick(
    cp: ControlPlane, tenant: Tenant, db: Database
) -> None:
    if not cp.database_url.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL; SQLite is one process's store")
    report(tenant, daily(default_status="RUNNING", missed_ticks="all"))
    set_cursor(db, at(1, 2))
    replicas = [Database(cp.database_url) for _ in range(2)]
    try:
        for day in range(1, 6):
            now = at(day, 3, 0, 1)
            start = threading.Barrier(2)

            def replica(
                found: Database, now: datetime = now, start: threading.Barrier = start
            ) -> None:
                start.wait()
                scheduler.run_due(found, now)

            threads = [threading.Thread(target=replica, args=(r,)) for r in replicas]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        for r in replicas:
            r.dispose()
    assert len(scheduled_runs(tenant)) == 5
    assert [t["status"] for t in ticks(tenant)] == ["SUCCESS"] * 5


def _replica_pass(db: Database, now: datetime, start: threading.Barrier) -> None:
    start.wait()  # both at once, as two control planes would
    scheduler.run_due(db, now)


def test_schedule_loop_of_a_live_control_plane(tmp_path: Path) -> None:
    """The loop itself: a RUNNING schedule whose tick was missed a minute ago gets its run
    within a second or two, without the test driving anything."""
    with running_controlplane("sqlite", tmp_path) as live:
        tenant = live.tenant()
        tenant.deploy("quick")
        report(tenant, daily(cron="* * * * *", default_status="RUNNING"))
        found = Database(live.database_url)
        try:
            set_cursor(found, datetime.now(UTC) - timedelta(minutes=2))
        finally:
            found.dispose()
        wait_until(lambda: len(scheduled_runs(tenant)) == 1, timeout=10, what="a scheduled run")
        assert ticks(tenant)[0]["status"] == "SUCCESS"


def test_a_late_pass_never_moves_a_schedule_back(tenant: Tenant, db: Database) -> None:
    report(tenant, daily(default_status="RUNNING"))
    set_cursor(db, at(1, 2))
    scheduler.run_due(db, at(2, 3, 0, 1))  # a replica that is up to date
    scheduler.run_due(db, at(1, 3, 0, 1))  # one that read the clock a day earlier
    scheduler.run_due(db, at(3, 3, 0, 1))  # and the schedule goes on
    seen = [(t["tick_time"][:10], t["status"]) for t in ticks(tenant)]
    assert seen == [
        ("2030-01-03", "SUCCESS"),
        ("2030-01-02", "SUCCESS"),
        ("2030-01-01", "SKIPPED"),  # missed before the first pass; latest ran instead
    ]
    assert len(scheduled_runs(tenant)) == 2


def test_a_new_cron_starts_from_now_and_a_bad_schedule_stops_only_itself(
    tenant: Tenant, db: Database
) -> None:
    if datetime.now(UTC).second >= 55:  # a minute and a second from a minute's end: 2 ticks
        time.sleep(61 - datetime.now(UTC).second)
    report(tenant, daily(default_status="RUNNING"), daily("other", default_status="RUNNING"))
    set_cursor(db, datetime.now(UTC) - timedelta(days=1))
    # Every minute now: the day before is not a day of missed minutes.
    report(
        tenant,
        daily(cron="* * * * *", default_status="RUNNING"),
        daily("other", default_status="RUNNING", timezone="Mars/Olympus_Mons"),
        generation=2,
    )
    scheduler.run_due(db, datetime.now(UTC) + timedelta(minutes=1, seconds=1))
    assert [t["status"] for t in ticks(tenant)] == ["SUCCESS"]
    with tenant.user() as c:
        listed = {s["name"]: s for s in c.get(f"{tenant.dep_path}/schedules").json()}
    assert "unknown time zone 'Mars/Olympus_Mons'" in listed["other"]["error"]
    assert listed["other"]["status"] == "STOPPED" and listed["daily"]["status"] == "RUNNING"


def test_a_daily_schedule_of_a_partitioned_job_runs_the_day_that_just_ended(
    cp: ControlPlane, db: Database
) -> None:
    from tether_sdk.examples import partitioned

    tenant = cp.tenant()
    tenant.report_running("parts", partitioned.defs.snapshot().model_dump(mode="json"))
    with tenant.user() as c:
        started = c.post(f"{tenant.dep_path}/schedules/parts/nightly_orders/start")
        assert started.status_code == 200, started.text
        with db.write() as s:  # where the scheduler was: the test chooses the clock
            s.execute(
                update(ScheduleRow)
                .where(ScheduleRow.name == "nightly_orders", ScheduleRow.code_location == "parts")
                .values(cursor=datetime(2023, 12, 31, 23, tzinfo=UTC))
            )
        # The first tick (midnight, Jan 1st 2024) comes before any day has ended: skipped.
        scheduler.run_due(db, datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC))
        # The next one runs Jan 1st.
        scheduler.run_due(db, datetime(2024, 1, 2, 0, 0, 1, tzinfo=UTC))
        r = c.get(f"{tenant.dep_path}/schedules/parts/nightly_orders/ticks")
        assert r.status_code == 200, r.text
    latest, first = r.json()[:2]
    assert first["status"] == "SKIPPED"
    assert first["error"] == (
        "no partition of job 'daily_orders' has ended by this tick (the first window starts "
        "at 2024-01-01)"
    )
    assert latest["status"] == "SUCCESS", latest
    run = tenant.run(latest["run_id"])
    assert run["job"] == "daily_orders"
    assert run["tags"]["tether/partition"] == "2024-01-01"
    assert run["tags"]["tether/schedule"] == "nightly_orders"
