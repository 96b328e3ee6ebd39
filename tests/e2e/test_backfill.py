"""A backfill end to end: 200 daily partitions of the partitioned example's asset job, run by a
real agent (warm process launches) against a real control plane, with the agent SIGKILLed and
the control plane restarted while the backfill is in the middle. Every partition must end
with exactly one run, and the catalog must hold exactly one materialization of each asset for
each partition."""

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent_support import AgentProcess, TemporalDevServer, stop_launched, wait_for_location
from tests.support import ControlPlane, Tenant, wait_until
from tether_api.runtags import BACKFILL_TAG, TETHER_PARTITION_TAG

PARTITIONS = 200
FIRST, LAST = "2024-01-01", "2024-07-18"  # 200 days
ASSETS = ("raw_orders", "daily_revenue", "orders_audit")


@pytest.fixture
def stack(
    tmp_path: Path, temporal_server: TemporalDevServer
) -> Iterator[tuple[Tenant, AgentProcess]]:
    (tmp_path / "cp").mkdir()
    cp = ControlPlane(tmp_path / "cp").start()
    tenant = cp.tenant(concurrency=10)
    agent = AgentProcess(tenant, temporal_server, tmp_path).start()
    try:
        tenant.deploy("partitioned", module="tether_sdk.examples.partitioned")
        assert wait_for_location(tenant, "partitioned")["status"] == "RUNNING"
        yield tenant, agent
    finally:
        agent.stop()
        stop_launched(agent.state_dir)
        cp.stop()


def backfill(tenant: Tenant, backfill_id: str) -> dict[str, Any]:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/backfills/{backfill_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def all_pages(
    tenant: Tenant, path: str, field: str, page_by: str = "cursor", **params: Any
) -> list[dict[str, Any]]:
    """Every item of a paged list: ``next_cursor`` is passed back as ``page_by``."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    with tenant.user() as c:
        while True:
            r = c.get(path, params={**params, **({page_by: cursor} if cursor else {})})
            assert r.status_code == 200, r.text
            body = r.json()
            found += body[field]
            cursor = body.get("next_cursor")
            if not cursor:
                return found


def test_a_backfill_runs_each_partition_once_across_an_agent_kill_and_a_restart(
    stack: tuple[Tenant, AgentProcess],
) -> None:
    tenant, agent = stack
    with tenant.user() as c:
        r = c.post(
            f"{tenant.dep_path}/backfills",
            json={
                "code_location": "partitioned",
                "job": "daily_orders",
                "partition_range": [FIRST, LAST],
            },
        )
        assert r.status_code == 201, r.text
        created = r.json()
    backfill_id = created["id"]
    assert (created["partition_count"], created["first_partition"], created["last_partition"]) == (
        PARTITIONS,
        FIRST,
        LAST,
    )

    def done_at_least(n: int) -> bool:
        counts = backfill(tenant, backfill_id)["counts"]
        return bool(counts["success"] >= n)

    # A third of the way: the agent dies without any cleanup, runs in flight included.
    wait_until(lambda: done_at_least(PARTITIONS // 3), timeout=120, what="a third done")
    agent.kill()
    # The control plane restarts while no agent is there, its backfill loop mid-way.
    time.sleep(1)
    tenant.cp.stop()
    tenant.cp.start()
    agent.start()

    def ended() -> dict[str, Any] | None:
        found = backfill(tenant, backfill_id)
        return found if found["status"] not in ("REQUESTED", "RUNNING") else None

    final = wait_until(ended, timeout=240, interval=0.5, what="the backfill to end")
    assert final["status"] == "COMPLETED", final
    assert final["counts"] == {
        "pending": 0,
        "launched": 0,
        "success": PARTITIONS,
        "failure": 0,
        "canceled": 0,
    }

    # One run per partition: none lost, none doubled, each a success.
    runs = all_pages(
        tenant, f"{tenant.dep_path}/runs", "runs", tag=f"{BACKFILL_TAG}={backfill_id}", limit=100
    )
    per_partition = Counter(run["tags"][TETHER_PARTITION_TAG] for run in runs)
    assert len(per_partition) == PARTITIONS
    assert set(per_partition.values()) == {1}, [k for k, n in per_partition.items() if n > 1]
    assert {run["status"] for run in runs} == {"SUCCESS"}
    partitions = all_pages(
        tenant,
        f"{tenant.dep_path}/backfills/{backfill_id}/partitions",
        "partitions",
        page_by="after",
        limit=50,
    )
    assert {p["run_id"] for p in partitions} == {run["id"] for run in runs}

    # The catalog: each asset materialized exactly once per partition.
    for asset in ASSETS:
        events = all_pages(
            tenant,
            f"{tenant.dep_path}/asset-events",
            "events",
            page_by="before",
            key=asset,
            type="ASSET_MATERIALIZATION",
            limit=100,
        )
        made = Counter(e["partition"] for e in events)
        assert len(made) == PARTITIONS and set(made.values()) == {1}, asset
        with tenant.user() as c:
            r = c.get(f"{tenant.dep_path}/asset-partitions", params={"key": asset, "limit": 1})
            assert r.status_code == 200, r.text
            counts = r.json()["counts"]
        assert (counts["materialized"], counts["failed"]) == (PARTITIONS, 0), counts
