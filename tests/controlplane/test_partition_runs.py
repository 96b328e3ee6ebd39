"""Runs of partitioned Tether SDK jobs on a real control plane (SQLite and PostgreSQL): the
partition tags checked at creation against the job's snapshot. (A schedule of a daily job
running the partition of the day its tick ends: tests/controlplane/test_scheduler.py, whose
control plane runs no scheduler loop of its own.)"""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import ControlPlane, Tenant
from tether_controlplane.db import Database
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
