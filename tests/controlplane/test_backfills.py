"""Backfills on real storage (SQLite and PostgreSQL): a control plane whose own backfill loop
is off, the test running the loop's pass with the time it chooses and playing the agent that
ends the runs; then the loop of a live control plane, killed and restarted mid-way."""

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import running_controlplane
from tests.support import ControlPlane, Tenant, client, event, wait_until
from tether_api.snapshot import (
    AssetSnapshot,
    DefinitionsSnapshot,
    JobSnapshot,
    PartitionsSnapshot,
    StepSnapshot,
)
from tether_controlplane.db import Database
from tether_controlplane.services import backfills, idempotency

LOCATION = "lake"
DAILY = PartitionsSnapshot(
    kind="time_window",
    cron="0 0 * * *",
    timezone="UTC",
    start="2026-01-01",
    fmt="%Y-%m-%d",
    location_kind="tether",
)
HOURLY = PartitionsSnapshot(
    kind="time_window",
    cron="0 * * * *",
    timezone="UTC",
    start="2025-01-01-00:00",
    fmt="%Y-%m-%d-%H:%M",
    location_kind="tether",
)
REGIONS = ["eu", "us", "asia", "africa"]


def _snapshot() -> dict[str, Any]:
    def asset_step(key: str, deps: tuple[str, ...] = ()) -> StepSnapshot:
        return StepSnapshot(name=key, asset_key=key, asset_keys=[key], deps=list(deps))

    regions = PartitionsSnapshot(
        kind="static", keys=REGIONS, count=len(REGIONS), location_kind="tether"
    )
    defs = DefinitionsSnapshot(
        assets=[
            AssetSnapshot(key="orders", partitions=DAILY),
            AssetSnapshot(key="report", deps=["orders"], partitions=DAILY),
        ],
        jobs=[
            JobSnapshot(
                name="daily_assets",
                steps=[asset_step("orders"), asset_step("report", ("orders",))],
                partitions=DAILY,
            ),
            JobSnapshot(name="orders_only", steps=[asset_step("orders")], partitions=DAILY),
            JobSnapshot(name="regions", steps=[StepSnapshot(name="load")], partitions=regions),
            JobSnapshot(name="hourly", steps=[StepSnapshot(name="tick")], partitions=HOURLY),
            JobSnapshot(
                name="configured",
                steps=[StepSnapshot(name="load")],
                partitions=regions,
                config_schema={
                    "type": "object",
                    "properties": {"rows": {"type": "integer"}},
                    "additionalProperties": False,
                },
            ),
            JobSnapshot(name="plain", steps=[StepSnapshot(name="load")]),
        ],
    )
    return defs.model_dump(mode="json")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def cp(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    with running_controlplane(
        request.param,
        tmp_path_factory.mktemp("cp-backfills"),
        backfills_enabled=False,
        scheduler_enabled=False,
        run_start_timeout_seconds=3600,
        run_heartbeat_timeout_seconds=3600,
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
    found = cp.tenant(concurrency=50)
    found.report_running(LOCATION, _snapshot())
    return found


# --- helpers: what a user and an agent do through the API ------------------------------


def launch(tenant: Tenant, **body: Any) -> dict[str, Any]:
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/backfills", json={"code_location": LOCATION, **body})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]


def refused(tenant: Tenant, status: int = 422, **body: Any) -> str:
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/backfills", json=body)
    assert r.status_code == status, r.text
    return r.json()["detail"]  # type: ignore[no-any-return]


def show(tenant: Tenant, backfill_id: str) -> dict[str, Any]:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/backfills/{backfill_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def partitions(tenant: Tenant, backfill_id: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = None
    with tenant.user() as c:
        while True:
            query = {**params, **({"after": after} if after is not None else {})}
            r = c.get(f"{tenant.dep_path}/backfills/{backfill_id}/partitions", params=query)
            assert r.status_code == 200, r.text
            found += r.json()["partitions"]
            after = r.json()["next_cursor"]
            if after is None:
                return found


def backfill_runs(tenant: Tenant, backfill_id: str) -> list[dict[str, Any]]:
    with tenant.user() as c:
        r = c.get(
            f"{tenant.dep_path}/runs",
            params={"tag": f"tether/backfill={backfill_id}", "limit": 200},
        )
        assert r.status_code == 200, r.text
        return r.json()["runs"]  # type: ignore[no-any-return]


def end_run(tenant: Tenant, run_id: str, status: str) -> None:
    with tenant.agent() as c:
        r = c.post(f"/api/v1/agent/runs/{run_id}/status", json={"status": status})
        assert r.status_code == 200, r.text


def post(tenant: Tenant, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/backfills/{path}", json=body)
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def statuses(tenant: Tenant, backfill_id: str) -> list[str]:
    return [p["status"] for p in partitions(tenant, backfill_id)]


# --- tests ---------------------------------------------------------------------------------


def test_a_range_runs_each_partition_once_within_max_in_flight(
    tenant: Tenant, db: Database
) -> None:
    bf = launch(
        tenant, job="regions", partitions=["eu", "us", "asia", "africa", "eu"], max_in_flight=2
    )
    assert bf["status"] == "REQUESTED" and bf["partition_count"] == 4
    assert bf["selection"] == "4 listed" and bf["counts"]["pending"] == 4

    backfills.run_due(db, datetime.now(UTC))
    backfills.run_due(db, datetime.now(UTC))  # again: nothing more while two are in flight
    first = show(tenant, bf["id"])
    assert first["status"] == "RUNNING"
    assert first["counts"] == {
        "pending": 2,
        "launched": 2,
        "success": 0,
        "failure": 0,
        "canceled": 0,
    }
    runs = {r["tags"]["tether/partition"]: r for r in backfill_runs(tenant, bf["id"])}
    assert set(runs) == {"eu", "us"}
    assert runs["eu"]["idempotency_key"] == f"backfill:{bf['id']}:0:1"
    assert runs["eu"]["job"] == "regions" and runs["eu"]["tags"]["tether/backfill"] == bf["id"]

    end_run(tenant, runs["eu"]["id"], "SUCCESS")
    end_run(tenant, runs["us"]["id"], "FAILURE")
    backfills.run_due(db, datetime.now(UTC))
    runs = {r["tags"]["tether/partition"]: r for r in backfill_runs(tenant, bf["id"])}
    assert set(runs) == set(REGIONS)
    for key in ("asia", "africa"):
        end_run(tenant, runs[key]["id"], "SUCCESS")
    backfills.run_due(db, datetime.now(UTC))

    done = show(tenant, bf["id"])
    assert done["status"] == "COMPLETED_WITH_FAILURES" and done["ended_at"]
    assert done["counts"] == {
        "pending": 0,
        "launched": 0,
        "success": 3,
        "failure": 1,
        "canceled": 0,
    }
    [failed] = partitions(tenant, bf["id"], status="FAILURE")
    assert failed["key"] == "us" and failed["run_id"] == runs["us"]["id"]
    assert len(backfill_runs(tenant, bf["id"])) == 4  # one run per partition, no more


def test_a_run_retried_by_its_job_is_followed_to_its_retry(tenant: Tenant, db: Database) -> None:
    bf = launch(tenant, job="regions", partitions=["eu"], tags={"tether/max_retries": "1"})
    backfills.run_due(db, datetime.now(UTC))
    [run] = backfill_runs(tenant, bf["id"])
    end_run(tenant, run["id"], "FAILURE")
    backfills.run_due(db, datetime.now(UTC))
    [part] = partitions(tenant, bf["id"])
    retry = tenant.run(run["id"])["retry_run_id"]
    assert retry and part["status"] == "LAUNCHED" and part["run_id"] == retry
    end_run(tenant, retry, "SUCCESS")
    backfills.run_due(db, datetime.now(UTC))
    assert show(tenant, bf["id"])["status"] == "COMPLETED"


def test_a_pass_that_dies_mid_way_launches_nothing_twice(
    tenant: Tenant, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    bf = launch(tenant, job="regions", all_partitions=True)
    made = 0
    real = idempotency.create_once

    def dies_at_the_third(*args: Any, **kwargs: Any) -> Any:
        nonlocal made
        made += 1
        if made == 3:
            raise RuntimeError("the control plane died here")
        return real(*args, **kwargs)

    monkeypatch.setattr(idempotency, "create_once", dies_at_the_third)
    backfills.run_due(db, datetime.now(UTC))  # logs the failure, commits nothing of it
    assert backfill_runs(tenant, bf["id"]) == []
    assert statuses(tenant, bf["id"]) == ["PENDING"] * 4
    monkeypatch.undo()

    restarted = Database(db.url)  # a new control plane on the same database
    try:
        backfills.run_due(restarted, datetime.now(UTC))
        backfills.run_due(restarted, datetime.now(UTC))
    finally:
        restarted.dispose()
    keys = sorted(r["tags"]["tether/partition"] for r in backfill_runs(tenant, bf["id"]))
    assert keys == sorted(REGIONS)
    assert statuses(tenant, bf["id"]) == ["LAUNCHED"] * 4


def test_concurrent_passes_launch_each_partition_once(tenant: Tenant, cp: ControlPlane) -> None:
    bf = launch(tenant, job="hourly", partition_range=["2025-01-01-00:00", "2025-01-02-05:00"])
    assert bf["partition_count"] == 30
    replicas = [Database(cp.database_url) for _ in range(3)]
    start = threading.Barrier(len(replicas))
    errors: list[BaseException] = []

    def replica(found: Database) -> None:
        try:
            start.wait()
            for _ in range(3):
                backfills.run_due(found, datetime.now(UTC))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for r in replicas:
        r.dispose()
    assert not errors
    runs = backfill_runs(tenant, bf["id"])
    keys = [r["tags"]["tether/partition"] for r in runs]
    assert len(keys) == 30 and len(set(keys)) == 30
    assert show(tenant, bf["id"])["counts"]["launched"] == 30


def test_cancel_then_resume_retries_only_what_did_not_succeed(tenant: Tenant, db: Database) -> None:
    bf = launch(tenant, job="regions", all_partitions=True, max_in_flight=2)
    backfills.run_due(db, datetime.now(UTC))
    canceled = post(tenant, f"{bf['id']}/cancel", {"terminate": False})
    assert canceled["status"] == "CANCELING"  # its two runs go on to their end
    assert canceled["counts"]["canceled"] == 2 and canceled["counts"]["launched"] == 2
    runs = {r["tags"]["tether/partition"]: r["id"] for r in backfill_runs(tenant, bf["id"])}
    assert set(runs) == {"eu", "us"}
    backfills.run_due(db, datetime.now(UTC))
    assert show(tenant, bf["id"])["status"] == "CANCELING"
    end_run(tenant, runs["eu"], "SUCCESS")
    end_run(tenant, runs["us"], "FAILURE")
    backfills.run_due(db, datetime.now(UTC))
    assert show(tenant, bf["id"])["status"] == "CANCELED"
    assert len(backfill_runs(tenant, bf["id"])) == 2  # no run after the cancel

    resumed = post(tenant, f"{bf['id']}/resume")
    assert resumed["status"] == "RUNNING" and resumed["counts"]["pending"] == 3
    assert resumed["counts"]["success"] == 1
    backfills.run_due(db, datetime.now(UTC))
    again = [r for r in backfill_runs(tenant, bf["id"]) if r["id"] not in runs.values()]
    assert sorted(r["tags"]["tether/partition"] for r in again) == ["asia", "us"]
    us = next(r for r in again if r["tags"]["tether/partition"] == "us")
    assert us["idempotency_key"] == f"backfill:{bf['id']}:1:2"
    by_key = {p["key"]: p for p in partitions(tenant, bf["id"])}
    assert by_key["eu"]["attempt"] == 1 and by_key["eu"]["run_id"] == runs["eu"]
    assert by_key["us"]["attempt"] == 2 and by_key["us"]["status"] == "LAUNCHED"

    # Cancel with terminate: its runs in flight are terminated, the backfill ends once they
    # have stopped.
    terminated = post(tenant, f"{bf['id']}/cancel", {"terminate": True})
    assert terminated["status"] == "CANCELING"
    for run in again:
        assert tenant.run(run["id"])["status"] == "CANCELING"
        end_run(tenant, run["id"], "CANCELED")
    backfills.run_due(db, datetime.now(UTC))
    ended = show(tenant, bf["id"])
    assert ended["status"] == "CANCELED"
    assert ended["counts"] == {
        "pending": 0,
        "launched": 0,
        "success": 1,
        "failure": 0,
        "canceled": 3,
    }
    assert "already ended" not in post(tenant, f"{bf['id']}/cancel", {}).get("detail", "")

    with tenant.user() as c:
        r = c.get("/api/v1/audit", params={"deployment": tenant.deployment})
        actions = [e["action"] for e in r.json()["entries"] if e["target"] == bf["id"]]
    assert actions[::-1][:5] == [
        "backfill.launch",
        "backfill.cancel",
        "backfill.resume",
        "backfill.cancel",
        "backfill.cancel",
    ]


def test_a_completed_backfill_has_nothing_to_cancel_or_resume(tenant: Tenant, db: Database) -> None:
    bf = launch(tenant, job="regions", partitions=["eu"])
    backfills.run_due(db, datetime.now(UTC))
    [run] = backfill_runs(tenant, bf["id"])
    end_run(tenant, run["id"], "SUCCESS")
    backfills.run_due(db, datetime.now(UTC))
    assert show(tenant, bf["id"])["status"] == "COMPLETED"
    detail = post(tenant, f"{bf['id']}/cancel", {"terminate": True}, status=409)["detail"]
    assert detail == f"backfill {bf['id']} already ended COMPLETED; nothing to cancel"
    detail = post(tenant, f"{bf['id']}/resume", status=409)["detail"]
    assert "has no failed or canceled partition to retry" in detail


def test_a_pace_spaces_its_launches(tenant: Tenant, db: Database) -> None:
    bf = launch(tenant, job="regions", all_partitions=True, runs_per_minute=2)
    t0 = datetime.now(UTC) + timedelta(seconds=1)

    def launched_at(at: datetime) -> tuple[int, datetime | None]:
        due = backfills.run_due(db, at)
        return show(tenant, bf["id"])["counts"]["launched"], due

    assert launched_at(t0)[0] == 1
    count, due = launched_at(t0 + timedelta(seconds=10))
    assert count == 1 and due is not None and abs((due - t0).total_seconds() - 30) < 0.01
    assert launched_at(t0 + timedelta(seconds=30))[0] == 2
    assert launched_at(t0 + timedelta(seconds=45))[0] == 2
    # An idle stretch is no credit for a burst.
    assert launched_at(t0 + timedelta(minutes=10))[0] == 3


def test_missing_and_failed_come_from_the_catalog_for_assets(tenant: Tenant, db: Database) -> None:
    # A run whose worker reports what it made: orders and report for Jan 1 and 2; Jan 3
    # failed at the orders step.
    run = tenant.launch(LOCATION, "plain")
    made = [
        event(
            i + 1,
            "ASSET_MATERIALIZATION",
            step=key,
            data={"asset_key": key, "partition": day, "metadata": {}},
        )
        for i, (key, day) in enumerate(
            (k, d) for d in ("2026-01-01", "2026-01-02") for k in ("orders", "report")
        )
    ]
    made.append(
        event(
            5,
            "STEP_FAILURE",
            step="orders",
            data={"asset_keys": ["orders"], "partitions": ["2026-01-03"]},
        )
    )
    with client(tenant.cp.url, tenant.run_token(run["id"])) as c:
        r = c.post(f"/api/v1/runs/{run['id']}/events", json={"events": made})
        assert r.status_code == 200, r.text

    window = ["2026-01-01", "2026-01-05"]
    missing = launch(tenant, job="daily_assets", partition_range=window, only="missing")
    assert missing["selection"] == "range 2026-01-01..2026-01-05, missing only"
    assert [p["key"] for p in partitions(tenant, missing["id"])] == ["2026-01-04", "2026-01-05"]
    failed = launch(tenant, job="daily_assets", partition_range=window, only="failed")
    assert [p["key"] for p in partitions(tenant, failed["id"])] == ["2026-01-03"]
    # The assets alone: the smallest job that makes them, without a selection tag.
    orders = launch(tenant, assets=["orders"], partitions=["2026-01-02"])
    assert orders["job"] == "orders_only" and "tether/asset_selection" not in orders["tags"]
    report = launch(tenant, job="daily_assets", assets=["report"], partitions=["2026-01-02"])
    assert report["tags"]["tether/asset_selection"] == '["report"]'
    backfills.run_due(db, datetime.now(UTC))
    [run] = backfill_runs(tenant, report["id"])
    assert run["tags"]["tether/asset_selection"] == '["report"]'
    assert run["tags"]["tether/partition"] == "2026-01-02"
    detail = refused(
        tenant,
        code_location=LOCATION,
        job="daily_assets",
        partitions=["2026-01-01", "2026-01-02"],
        only="missing",
    )
    assert detail == (
        "none of the 2 partition(s) of job 'daily_assets' (2 listed, missing only) is missing: "
        "nothing to backfill"
    )


def test_missing_and_failed_come_from_the_latest_runs_without_assets(
    tenant: Tenant, db: Database
) -> None:
    outcomes = {"eu": ["FAILURE", "SUCCESS"], "us": ["SUCCESS", "FAILURE"], "asia": ["CANCELED"]}
    for key, ends in outcomes.items():
        for status in ends:
            run = tenant.launch(LOCATION, "regions", tags={"tether/partition": key})
            end_run(tenant, run["id"], status)
    missing = launch(tenant, job="regions", only="missing")
    assert [p["key"] for p in partitions(tenant, missing["id"])] == ["asia", "africa"]
    assert missing["selection"] == "all, missing only"
    failed = launch(tenant, job="regions", only="failed")
    assert [p["key"] for p in partitions(tenant, failed["id"])] == ["us"]


def test_bad_input_is_refused_with_what_to_fix(tenant: Tenant) -> None:
    loc = {"code_location": LOCATION}
    assert refused(tenant, **loc, job="nope", all_partitions=True) == (
        "job 'nope' is not defined in code location 'lake'; its jobs are: daily_assets, "
        "orders_only, regions, hourly, configured, plain"
    )
    assert refused(tenant, 404, code_location="gone", job="x", all_partitions=True) == (
        "code location 'gone' not found in deployment 'prod'; deploy it with "
        "`tether deploy gone ...`"
    )
    assert refused(tenant, **loc, job="plain", all_partitions=True) == (
        "job 'plain' of code location 'lake' is not partitioned: a backfill launches one run "
        "per partition; launch one run of it with `tether runs launch lake plain`"
    )
    assert refused(tenant, **loc, job="regions") == (
        "name the partitions to backfill: partitions (a list), partition_range ([first, "
        "last]), all_partitions (true), or only ('missing' or 'failed')"
    )
    assert refused(tenant, **loc, job="regions", partitions=["eu"], all_partitions=True) == (
        "give one of partitions, partition_range or all_partitions, not partitions and "
        "all_partitions"
    )
    detail = refused(
        tenant, **loc, job="daily_assets", partition_range=["2026-01-05", "2026-01-01"]
    )
    assert detail == (
        "job 'daily_assets': the range's first key '2026-01-05' is after its last key '2026-01-01'"
    )
    detail = refused(
        tenant, **loc, job="daily_assets", partition_range=["2025-12-31", "2026-01-02"]
    )
    assert detail.startswith(
        "job 'daily_assets': the range's first key '2025-12-31' is not a partition"
    )
    detail = refused(tenant, **loc, job="regions", partitions=["eu", "mars"])
    assert detail.startswith("partition 'mars' does not exist in job 'regions'")
    assert "eu, us, asia, africa" in detail
    detail = refused(
        tenant, **loc, job="regions", all_partitions=True, tags={"tether/backfill": "x"}
    )
    assert detail == "tag tether/backfill is set by the backfill on each of its runs: leave it out"
    detail = refused(
        tenant, **loc, job="configured", all_partitions=True, run_config={"rows": "many"}
    )
    assert "run_config.rows" in detail
    detail = refused(tenant, assets=["nowhere"], all_partitions=True)
    assert "asset(s) 'nowhere'" in detail
    # The assets' location, found for the job named without one.
    assert refused(tenant, assets=["report"], job="orders_only", all_partitions=True) == (
        "job 'orders_only' does not materialize report (its assets: orders)"
    )
    assert refused(tenant, job="regions", all_partitions=True) == (
        "name what to backfill: code_location and job, or assets"
    )
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/backfills/no-such-backfill")
        assert r.status_code == 404
        assert r.json()["detail"] == (
            "backfill 'no-such-backfill' not found in deployment 'prod' (`tether backfill "
            "list` shows its backfills)"
        )
        assert c.get(f"{tenant.dep_path}/backfills").json()["backfills"] == []


def test_ten_thousand_partitions_launch_a_bounded_pass_and_page_by_position(
    tenant: Tenant, db: Database
) -> None:
    # How fast this is, is measured in bench/bench_backfill.py; here: what it answers.
    bf = launch(
        tenant,
        job="hourly",
        partition_range=["2025-01-01-00:00", "2026-02-21-15:00"],
        max_in_flight=5,
    )
    assert bf["partition_count"] == 10_000
    backfills.run_due(db, datetime.now(UTC))
    with tenant.user() as c:
        base = f"{tenant.dep_path}/backfills/{bf['id']}/partitions"
        page = c.get(base, params={"after": 5000, "limit": 3}).json()
        assert [p["position"] for p in page["partitions"]] == [5001, 5002, 5003]
        assert page["next_cursor"] == "5003"
        launched = c.get(base, params={"status": "LAUNCHED"}).json()
        assert [p["position"] for p in launched["partitions"]] == [0, 1, 2, 3, 4]
        assert launched["next_cursor"] is None
        pending = c.get(base, params={"status": "PENDING", "after": 9000}).json()
        assert [p["position"] for p in pending["partitions"]] == list(range(9001, 9101))
        assert pending["next_cursor"] == "9100"
        last = c.get(base, params={"status": "PENDING", "after": 9900}).json()
        assert len(last["partitions"]) == 99 and last["next_cursor"] is None
        listed = c.get(f"{tenant.dep_path}/backfills").json()["backfills"]
        assert bf["id"] in [b["id"] for b in listed]
    assert show(tenant, bf["id"])["counts"] == {
        "pending": 9_995,
        "launched": 5,
        "success": 0,
        "failure": 0,
        "canceled": 0,
    }


# --- the loop of a live control plane ---------------------------------------------------


def test_the_loop_launches_across_a_control_plane_killed_mid_way(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with running_controlplane("sqlite", tmp_path_factory.mktemp("cp-loop")) as live:
        tenant = live.tenant(concurrency=100)
        tenant.report_running(LOCATION, _snapshot())
        bf = launch(
            tenant,
            job="hourly",
            partition_range=["2025-01-01-00:00", "2025-01-01-23:00"],
            runs_per_minute=600,
        )
        wait_until(lambda: show(tenant, bf["id"])["counts"]["launched"] >= 5, timeout=20)
        assert live.proc is not None
        live.proc.kill()  # mid-way: no chance to finish anything
        live.proc.wait()
        live.proc = None
        live.start()
        wait_until(lambda: show(tenant, bf["id"])["counts"]["launched"] == 24, timeout=30)
        runs = backfill_runs(tenant, bf["id"])
        keys = [r["tags"]["tether/partition"] for r in runs]
        assert len(keys) == 24 and len(set(keys)) == 24
        # The end of its runs wakes the loop: the backfill completes at once.
        for run in runs:
            end_run(tenant, run["id"], "SUCCESS")
        ended = wait_until(
            lambda: show(tenant, bf["id"])["status"] == "COMPLETED", timeout=10, interval=0.02
        )
        assert ended
