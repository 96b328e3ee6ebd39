"""Runs of partitioned Tether SDK jobs on a real control plane (SQLite and PostgreSQL): the
partition tags checked at creation against the job's snapshot, and a schedule of a daily job
running the partition of the day its tick ends."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from tests.support import ControlPlane, Tenant
from tether_controlplane.db import Database
from tether_controlplane.services import scheduler
from tether_controlplane.tables import ScheduleRow
from tether_sdk.examples import partitioned

LOCATION = "parts"


@pytest.fixture
def parts(tenant: Tenant) -> Tenant:
    tenant.report_running(LOCATION, partitioned.defs.snapshot().model_dump(mode="json"))
    return tenant


@pytest.fixture
def db(controlplane: ControlPlane) -> Iterator[Database]:
    found = Database(controlplane.database_url)
    try:
        yield found
    finally:
        found.dispose()


def launch(tenant: Tenant, job: str, tags: dict[str, str], **body: Any) -> tuple[int, Any]:
    with tenant.user() as c:
        r = c.post(
            f"{tenant.dep_path}/runs",
            json={"code_location": LOCATION, "job": job, "tags": tags, **body},
        )
    return r.status_code, r.json()


def test_a_run_names_an_existing_partition_or_range(parts: Tenant) -> None:
    status, run = launch(parts, "regional", {"tether/partition": "eu"})
    assert status == 201 and run["tags"] == {"tether/partition": "eu"}
    tags = {
        "tether/partition_range_start": "2024-01-01",
        "tether/partition_range_end": "2024-01-31",
    }
    status, run = launch(parts, "daily_orders", tags)
    assert status == 201 and run["tags"] == tags


@pytest.mark.parametrize(
    ("job", "tags", "tag", "message"),
    [
        (
            "regional",
            {},
            "tether/partition",
            "job 'regional' is partitioned: name a partition with tag tether/partition (e.g. "
            "'apac'), or a range with tags tether/partition_range_start and "
            "tether/partition_range_end",
        ),
        (
            "regional",
            {"tether/partition": "mars"},
            "tether/partition",
            "partition 'mars' does not exist in job 'regional' (its keys: eu, us, apac)",
        ),
        (
            "summary",
            {"tether/partition": "eu"},
            "tether/partition",
            "job 'summary' is not partitioned: remove tag tether/partition",
        ),
        (
            "regional",
            {"dagster/partition": "eu"},
            "dagster/partition",
            "job 'regional' is a Tether SDK job: name its partition with tag tether/partition, "
            "not dagster/partition",
        ),
        (
            "daily_orders",
            {"tether/partition_range_start": "2024-01-01"},
            "tether/partition_range_end",
            "a partition range needs both ends: add tag tether/partition_range_end",
        ),
        (
            "daily_orders",
            {
                "tether/partition_range_start": "2024-02-01",
                "tether/partition_range_end": "2024-01-01",
            },
            "tether/partition_range_start",
            "job 'daily_orders': the range's first key '2024-02-01' is after its last key "
            "'2024-01-01'",
        ),
        (
            "daily_orders",
            {"tether/partition": "2099-01-01"},
            "tether/partition",
            "partition '2099-01-01' does not exist in job 'daily_orders' (",
        ),
    ],
)
def test_a_wrong_partition_is_refused_naming_the_tag(
    parts: Tenant, job: str, tags: dict[str, str], tag: str, message: str
) -> None:
    status, body = launch(parts, job, tags)
    assert status == 422, body
    [error] = body["errors"]
    assert error["loc"] == ["body", "tags", tag]
    assert error["msg"].startswith(message)
    assert body["detail"] == f"invalid run of job {job!r}: {error['msg']}"


def _ticks(tenant: Tenant, name: str) -> list[dict[str, Any]]:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/schedules/{LOCATION}/{name}/ticks")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def test_a_daily_schedule_runs_the_day_that_just_ended(parts: Tenant, db: Database) -> None:
    with parts.user() as c:
        started = c.post(f"{parts.dep_path}/schedules/{LOCATION}/nightly_orders/start")
        assert started.status_code == 200, started.text
    with db.write() as s:  # where the scheduler was: the test chooses the clock
        s.execute(
            update(ScheduleRow)
            .where(ScheduleRow.name == "nightly_orders", ScheduleRow.code_location == LOCATION)
            .values(cursor=datetime(2023, 12, 31, 23, tzinfo=UTC))
        )
    # The first tick (midnight, Jan 1st 2024) comes before any day has ended: skipped.
    scheduler.run_due(db, datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC))
    # The next one runs Jan 1st.
    scheduler.run_due(db, datetime(2024, 1, 2, 0, 0, 1, tzinfo=UTC))
    latest, first = _ticks(parts, "nightly_orders")[:2]
    assert first["status"] == "SKIPPED"
    assert first["error"] == (
        "no partition of job 'daily_orders' has ended by this tick (the first window starts "
        "at 2024-01-01)"
    )
    assert latest["status"] == "SUCCESS", latest
    run = parts.run(latest["run_id"])
    assert run["job"] == "daily_orders"
    assert run["tags"]["tether/partition"] == "2024-01-01"
    assert run["tags"]["tether/schedule"] == "nightly_orders"
