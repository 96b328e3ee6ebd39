"""The asset catalog on a real control plane (SQLite and PostgreSQL): runs' asset events, as
their workers post them, become each asset's history and state; the list, an asset's page,
its partitions and launching a materialization read them."""

import importlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.support import Tenant, client, event
from tether_api.assets import AssetPartitionStatus
from tether_api.enums import CodeLocationKind
from tether_api.partitions import count_keys
from tether_api.snapshot import (
    AssetCheckSnapshot,
    AssetSnapshot,
    DefinitionsSnapshot,
    JobSnapshot,
    PartitionsSnapshot,
    StepSnapshot,
)
from tether_controlplane.db import Database
from tether_controlplane.services import assets as asset_service
from tether_controlplane.tables import DeploymentRow, Organization

REGIONS = PartitionsSnapshot(kind="static", keys=["eu", "us", "apac"], count=3)
DAILY = PartitionsSnapshot(
    kind="time_window",
    cron="0 0 * * *",
    timezone="UTC",
    start="2026-01-01",
    fmt="%Y-%m-%d",
    location_kind=CodeLocationKind.TETHER,
)


def _quick_snapshot() -> dict[str, Any]:
    """What tether_sdk.examples.quickstart reports: a chain of three assets, one asset job
    holding them all, and a job of plain steps."""
    return DefinitionsSnapshot(
        assets=[
            AssetSnapshot(key="raw_orders"),
            AssetSnapshot(key="order_totals", deps=["raw_orders"], group="sales"),
            AssetSnapshot(key="top_region", deps=["order_totals"], group="sales"),
        ],
        jobs=[
            JobSnapshot(name="etl", steps=[StepSnapshot(name="extract")]),
            JobSnapshot(
                name="refresh_sales",
                steps=[
                    StepSnapshot(name=k, asset_key=k)
                    for k in ("raw_orders", "order_totals", "top_region")
                ],
            ),
        ],
    ).model_dump(mode="json")


def _dagster_snapshot() -> dict[str, Any]:
    """What a Dagster location reports: a key path with '/', a partitioned job whose step
    names its assets, a check."""
    return DefinitionsSnapshot(
        kind=CodeLocationKind.DAGSTER,
        assets=[
            AssetSnapshot(
                key="raw/orders",
                group="raw",
                partitions=REGIONS,
                checks=[AssetCheckSnapshot(name="not_empty", blocking=True)],
            ),
            AssetSnapshot(key="stats", deps=["raw/orders"], group="marts"),
        ],
        jobs=[
            JobSnapshot(
                name="orders_job",
                partitions=REGIONS,
                steps=[StepSnapshot(name="raw__orders", asset_keys=["raw/orders"])],
            ),
            JobSnapshot(
                name="stats_job",
                steps=[StepSnapshot(name="stats", asset_keys=["stats"])],
            ),
        ],
    ).model_dump(mode="json")


def _daily_snapshot() -> dict[str, Any]:
    """A Tether SDK location with a daily-partitioned asset."""
    return DefinitionsSnapshot(
        assets=[AssetSnapshot(key="events_daily", partitions=DAILY)],
        jobs=[
            JobSnapshot(
                name="daily_job",
                partitions=DAILY,
                steps=[StepSnapshot(name="events_daily", asset_key="events_daily")],
            )
        ],
    ).model_dump(mode="json")


def _post_events(
    tenant: Tenant, run_id: str, events: list[dict[str, Any]], token: str | None = None
) -> dict[str, Any]:
    """Post a batch as the run's worker does (its token, made once per run, is passed on)."""
    with client(tenant.cp.url, token or tenant.run_token(run_id)) as c:
        r = c.post(f"/api/v1/runs/{run_id}/events", json={"events": events})
        assert r.status_code == 200, r.text
        return r.json()


def _materialization(seq: int, key: str, partition: str | None = None, **meta: Any) -> dict:
    data: dict[str, Any] = {"asset_key": key, "metadata": meta}
    if partition is not None:
        data["partition"] = partition
    return event(seq, "ASSET_MATERIALIZATION", f"materialized {key}", step=key, data=data)


def _get(c: httpx.Client, path: str, **params: Any) -> Any:
    r = c.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _materialize(tenant: Tenant, **body: Any) -> httpx.Response:
    with tenant.user() as c:
        return c.post(f"{tenant.dep_path}/asset-materializations", json=body)


def test_a_runs_materializations_fill_the_list_the_page_and_the_history(tenant: Tenant) -> None:
    tenant.report_running("quick", _quick_snapshot())
    r = _materialize(tenant, assets=["raw_orders"])
    assert r.status_code == 201, r.text
    run = r.json()
    # The smallest job holding it, running only the asset asked for.
    assert run["job"] == "refresh_sales"
    assert json.loads(run["tags"]["tether/asset_selection"]) == ["raw_orders"]
    batch = [
        event(1, "RUN_START"),
        event(2, "STEP_START", step="raw_orders"),
        event(3, "LOG", "reading"),
        _materialization(4, "raw_orders", rows=10, source="s3://b/o.csv"),
        event(5, "STEP_SUCCESS", step="raw_orders"),
        event(6, "RUN_SUCCESS"),
    ]
    token = tenant.run_token(run["id"])
    assert _post_events(tenant, run["id"], batch, token)["accepted"] == 6
    # Delivered again (a worker's retry): counted once.
    assert _post_events(tenant, run["id"], batch, token)["duplicates"] == 6
    with tenant.user() as c:
        listed = {a["key"]: a for a in _get(c, f"{tenant.dep_path}/assets")["assets"]}
        assert sorted(listed) == ["order_totals", "raw_orders", "top_region"]
        raw = listed["raw_orders"]
        assert raw["status"] == "MATERIALIZED" and raw["declared"] is True
        assert raw["last_materialization"]["run_id"] == run["id"]
        assert raw["jobs"] == ["refresh_sales"] and raw["code_location"] == "quick"
        assert listed["order_totals"]["status"] == "NEVER"
        assert listed["order_totals"]["group"] == "sales"
        sales = _get(c, f"{tenant.dep_path}/assets", group="sales")["assets"]
        assert [a["key"] for a in sales] == ["order_totals", "top_region"]
        first = _get(c, f"{tenant.dep_path}/assets", limit=2)
        rest = _get(c, f"{tenant.dep_path}/assets", after=first["next_cursor"])
        assert [a["key"] for a in first["assets"] + rest["assets"]] == sorted(listed)

        page = _get(c, f"{tenant.dep_path}/assets/order_totals")
        assert page["deps"] == ["raw_orders"] and page["downstream"] == ["top_region"]
        assert {(e["upstream"], e["downstream"]) for e in page["lineage"]["edges"]} == {
            ("raw_orders", "order_totals"),
            ("order_totals", "top_region"),
        }
        page = _get(c, f"{tenant.dep_path}/assets/raw_orders")
        assert page["materializations"] == 1
        assert [p["value"] for p in page["metadata_series"]["rows"]] == [10]
        assert "source" not in page["metadata_series"]  # text is no series

        history = _get(c, f"{tenant.dep_path}/asset-events", key="raw_orders")["events"]
        assert [(e["type"], e["run_id"], e["metadata"]) for e in history] == [
            ("ASSET_MATERIALIZATION", run["id"], {"rows": 10, "source": "s3://b/o.csv"})
        ]
        audit = _get(c, "/api/v1/audit", action="run.submit")["entries"]
        assert audit[0]["target"] == run["id"] and audit[0]["details"]["assets"] == ["raw_orders"]


def test_history_pages_newest_first_and_numbers_make_a_series(tenant: Tenant) -> None:
    tenant.report_running("quick", _quick_snapshot())
    run = tenant.launch("quick", "refresh_sales")
    _post_events(
        tenant,
        run["id"],
        [_materialization(i, "top_region", rows=i * 10, share=0.5) for i in range(1, 6)],
    )
    path = f"{tenant.dep_path}/asset-events"
    with tenant.user() as c:
        first = _get(c, path, key="top_region", limit=2)
        second = _get(c, path, key="top_region", limit=2, before=first["next_cursor"])
        third = _get(c, path, key="top_region", limit=2, before=second["next_cursor"])
        rows = [e["metadata"]["rows"] for e in first["events"] + second["events"] + third["events"]]
        assert rows == [50, 40, 30, 20, 10] and third["next_cursor"] is None
        only = _get(c, path, key="top_region", type="ASSET_OBSERVATION")
        assert only["events"] == []
        series = _get(c, f"{tenant.dep_path}/assets/top_region")["metadata_series"]
        assert [p["value"] for p in series["rows"]] == [10, 20, 30, 40, 50]
        assert [p["value"] for p in series["share"]] == [0.5] * 5


def test_dagster_partitions_failures_and_checks(tenant: Tenant) -> None:
    tenant.report_running("dg", _dagster_snapshot())
    r = _materialize(tenant, assets=["raw/orders"], partition="eu")
    assert r.status_code == 201, r.text
    eu = r.json()
    assert eu["job"] == "orders_job" and eu["tags"]["dagster/partition"] == "eu"
    assert "tether/asset_selection" not in eu["tags"]  # the job is exactly these assets
    check = event(
        3,
        "ASSET_CHECK_EVALUATION",
        step="raw__orders",
        data={
            "asset_key": "raw/orders",
            "check": "not_empty",
            "passed": False,
            "severity": "ERROR",
            "metadata": {"rows": 0},
        },
    )
    _post_events(
        tenant,
        eu["id"],
        [event(1, "RUN_START"), _materialization(2, "raw/orders", "eu", rows=3), check],
    )
    us = _materialize(tenant, assets=["raw/orders"], partition="us").json()
    # A Dagster step's failure says no asset: the job's snapshot and the run's tag do.
    failure = event(2, "STEP_FAILURE", "raw__orders failed", step="raw__orders", data={})
    _post_events(tenant, us["id"], [event(1, "RUN_START"), failure, event(3, "RUN_FAILURE")])

    with tenant.user() as c:
        page = _get(c, f"{tenant.dep_path}/assets/raw/orders")
        assert page["key"] == "raw/orders" and page["status"] == "FAILED"
        assert page["partition_counts"] == {
            "total": 3,
            "materialized": 1,
            "failed": 1,
            "missing": 1,
        }
        assert page["last_failure"]["run_id"] == us["id"]
        assert page["last_failure"]["partition"] == "us"
        assert page["downstream"] == ["stats"]
        [result] = page["checks"]
        assert (result["name"], result["passed"], result["blocking"]) == ("not_empty", False, True)
        assert result["run_id"] == eu["id"]

        path = f"{tenant.dep_path}/asset-partitions"
        parts = _get(c, path, key="raw/orders")["partitions"]
        assert [(p["key"], p["status"], p["run_id"]) for p in parts] == [
            ("eu", "MATERIALIZED", eu["id"]),
            ("us", "FAILED", us["id"]),
            ("apac", "MISSING", None),
        ]
        missing = _get(c, path, key="raw/orders", status="MISSING")["partitions"]
        assert [p["key"] for p in missing] == ["apac"]
        first = _get(c, path, key="raw/orders", limit=1)
        second = _get(c, path, key="raw/orders", limit=1, after=first["next_cursor"])
        assert [p["key"] for p in first["partitions"] + second["partitions"]] == ["eu", "us"]

        listed = {a["key"]: a for a in _get(c, f"{tenant.dep_path}/assets")["assets"]}
        assert listed["raw/orders"]["partitioned"] is True
        assert listed["raw/orders"]["status"] == "FAILED"

    # The same partition materialized again: no longer failed.
    again = _materialize(tenant, assets=["raw/orders"], partition="us").json()
    _post_events(tenant, again["id"], [_materialization(1, "raw/orders", "us", rows=5)])
    with tenant.user() as c:
        counts = _get(c, f"{tenant.dep_path}/asset-partitions", key="raw/orders")["counts"]
        assert counts == {"total": 3, "materialized": 2, "failed": 0, "missing": 1}
        assert _get(c, f"{tenant.dep_path}/assets/raw/orders")["status"] == "MATERIALIZED"

    # What a backfill's "missing" and "failed" selections read.
    db = Database(tenant.cp.database_url)
    try:
        with db.read() as s:
            org = s.query(Organization).filter_by(name=tenant.org).one()
            dep = s.query(DeploymentRow).filter_by(organization_id=org.id).one()
            found = asset_service.statuses(s, dep.id, ["raw/orders", "stats"])
        assert found == {
            "raw/orders": {
                "eu": AssetPartitionStatus.MATERIALIZED,
                "us": AssetPartitionStatus.MATERIALIZED,
            },
            "stats": {},
        }
    finally:
        db.dispose()


def test_the_newer_fact_wins_whatever_order_runs_report_in(tenant: Tenant) -> None:
    """A run that failed earlier may report after a later run materialized the same asset
    (its worker retried after an outage): the later materialization stays the state."""
    tenant.report_running("dg", _dagster_snapshot())
    tenant.report_running("quick", _quick_snapshot())
    early = "2026-03-01T00:00:00Z"
    late = "2026-03-02T00:00:00Z"

    def at(when: str, found: dict[str, Any]) -> dict[str, Any]:
        return {**found, "timestamp": when}

    # A partition: the later run's materialization arrives first, the earlier failure after.
    older = _materialize(tenant, assets=["raw/orders"], partition="eu").json()
    newer = _materialize(tenant, assets=["raw/orders"], partition="eu").json()
    _post_events(tenant, newer["id"], [at(late, _materialization(1, "raw/orders", "eu"))])
    failure = event(1, "STEP_FAILURE", "raw__orders failed", step="raw__orders", data={})
    _post_events(tenant, older["id"], [at(early, failure)])
    # An asset without partitions, the same way round.
    first = _materialize(tenant, assets=["raw_orders"]).json()
    second = _materialize(tenant, assets=["raw_orders"]).json()
    _post_events(tenant, second["id"], [at(late, _materialization(1, "raw_orders"))])
    failed = event(1, "STEP_FAILURE", "raw_orders failed", step="raw_orders", data={})
    _post_events(tenant, first["id"], [at(early, failed)])

    with tenant.user() as c:
        path = f"{tenant.dep_path}/asset-partitions"
        parts = _get(c, path, key="raw/orders")["partitions"]
        eu = next(p for p in parts if p["key"] == "eu")
        assert (eu["status"], eu["run_id"]) == ("MATERIALIZED", newer["id"])
        for key, run in (("raw/orders", newer), ("raw_orders", second)):
            page = _get(c, f"{tenant.dep_path}/assets/{key}")
            assert page["status"] == "MATERIALIZED", (key, page)
            assert page["last_materialization"]["run_id"] == run["id"]
        # The failures happened, and history keeps them.
        page = _get(c, f"{tenant.dep_path}/assets/raw_orders")
        assert page["last_failure"]["run_id"] == first["id"]
        # A failure newer than the materialization does set the state.
        third = _materialize(tenant, assets=["raw_orders"]).json()
        failed_later = event(1, "STEP_FAILURE", "failed", step="raw_orders", data={})
        _post_events(tenant, third["id"], [at("2026-03-03T00:00:00Z", failed_later)])
        assert _get(c, f"{tenant.dep_path}/assets/raw_orders")["status"] == "FAILED"


def test_a_tether_range_run_records_each_partition(tenant: Tenant) -> None:
    tenant.report_running("daily", _daily_snapshot())
    r = _materialize(tenant, assets=["events_daily"], partition_range=["2026-01-01", "2026-01-03"])
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["tags"]["tether/partition_range_start"] == "2026-01-01"
    assert run["tags"]["tether/partition_range_end"] == "2026-01-03"
    failure = event(
        4,
        "STEP_FAILURE",
        "events_daily failed",
        step="events_daily",
        data={"error": "boom", "asset_keys": ["events_daily"], "partitions": ["2026-01-03"]},
    )
    _post_events(
        tenant,
        run["id"],
        [
            event(1, "RUN_START"),
            _materialization(2, "events_daily", "2026-01-01", rows=1),
            _materialization(3, "events_daily", "2026-01-02", rows=2),
            failure,
        ],
    )
    total = count_keys(DAILY, datetime.now(UTC))
    with tenant.user() as c:
        path = f"{tenant.dep_path}/asset-partitions"
        page = _get(c, path, key="events_daily", limit=4)
        assert page["counts"] == {
            "total": total,
            "materialized": 2,
            "failed": 1,
            "missing": total - 3,
        }
        assert [(p["key"], p["status"]) for p in page["partitions"]] == [
            ("2026-01-01", "MATERIALIZED"),
            ("2026-01-02", "MATERIALIZED"),
            ("2026-01-03", "FAILED"),
            ("2026-01-04", "MISSING"),
        ]
        failed = _get(c, path, key="events_daily", status="FAILED")
        assert [p["key"] for p in failed["partitions"]] == ["2026-01-03"]
        assert failed["next_cursor"] is None
        # One status a page at a time, in the definition's order.
        made = _get(c, path, key="events_daily", status="MATERIALIZED", limit=1)
        assert [p["key"] for p in made["partitions"]] == ["2026-01-01"]
        assert made["next_cursor"] == "2026-01-01"
        made = _get(c, path, key="events_daily", status="MATERIALIZED", after="2026-01-01")
        assert [p["key"] for p in made["partitions"]] == ["2026-01-02"]
        assert made["next_cursor"] is None
        missing = _get(c, path, key="events_daily", status="MISSING", limit=2)
        assert [p["key"] for p in missing["partitions"]] == ["2026-01-04", "2026-01-05"]
        assert missing["next_cursor"] == "2026-01-05"
        tail = _get(c, path, key="events_daily", status="MISSING", after=missing["next_cursor"])
        assert tail["partitions"][0]["key"] == "2026-01-06"


def test_assets_no_location_declares_stay_listed(tenant: Tenant) -> None:
    tenant.report_running("quick", _quick_snapshot())
    run = tenant.launch("quick", "refresh_sales")
    _post_events(
        tenant,
        run["id"],
        [
            _materialization(1, "old_table", rows=1),
            event(2, "ASSET_OBSERVATION", data={"asset_key": "old_table", "metadata": {}}),
        ],
    )
    with tenant.user() as c:
        listed = {a["key"]: a for a in _get(c, f"{tenant.dep_path}/assets")["assets"]}
        assert listed["old_table"]["declared"] is False
        assert listed["old_table"]["code_location"] == "quick"
        page = _get(c, f"{tenant.dep_path}/assets/old_table")
        assert (page["materializations"], page["observations"]) == (1, 1)
        assert page["last_observed_at"] is not None


def test_bad_input_is_refused_naming_the_fix(tenant: Tenant) -> None:
    tenant.report_running("quick", _quick_snapshot())
    tenant.report_running("dg", _dagster_snapshot())

    def refused(status: int, **body: Any) -> str:
        r = _materialize(tenant, **body)
        assert r.status_code == status, r.text
        return str(r.json()["detail"])

    assert "'nope'" in refused(422, assets=["raw_orders", "nope"])
    assert "`tether assets list`" in refused(422, assets=["nope"])
    two = refused(422, assets=["raw_orders", "stats"])
    assert "different code locations" in two and "'quick'" in two and "'dg'" in two
    none = refused(422, assets=["raw/orders", "stats"])
    assert "add them to one asset_job" in none
    assert "ranges are for Tether SDK jobs" in refused(
        422, assets=["raw/orders"], partition_range=["eu", "us"]
    )
    assert "tether/partition" in refused(422, assets=["raw_orders"], tags={"tether/partition": "x"})
    assert "not both" in refused(
        422, assets=["raw/orders"], partition="eu", partition_range=["eu", "us"]
    )
    assert "'mars'" in refused(422, assets=["raw/orders"], partition="mars")
    refused(422, assets=[])
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/assets/nope")
        assert r.status_code == 404 and "`tether assets list`" in r.json()["detail"]
        r = c.get(f"{tenant.dep_path}/asset-events", params={"key": "nope"})
        assert r.status_code == 404
        r = c.get(f"{tenant.dep_path}/asset-events", params={"key": "raw_orders", "type": "LOG"})
        assert r.status_code == 422 and "not an asset event" in r.json()["detail"]
        r = c.get(f"{tenant.dep_path}/asset-partitions", params={"key": "raw/orders", "after": "x"})
        assert r.status_code == 422 and "after='x'" in r.json()["detail"]


def _run_worker(tenant: Tenant, run_id: str, module: str) -> subprocess.CompletedProcess[str]:
    """A real ``tether run-worker`` for the run, as an agent's launcher starts it."""
    return subprocess.run(
        [sys.executable, "-m", "tether_cli.main", "run-worker", "--module", module],
        env={
            **os.environ,
            "TETHER_RUN_ID": run_id,
            "TETHER_CONTROL_PLANE_URL": tenant.cp.url,
            "TETHER_RUN_TOKEN": tenant.run_token(run_id),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_real_run_worker_fills_the_catalog(tenant: Tenant) -> None:
    """The partitioned example, run by the SDK's run worker: a range of days materialized,
    one day failed on purpose, each partition's status and rows as the worker reported."""
    module = "tether_sdk.examples.partitioned"
    tenant.report_running(
        "orders", importlib.import_module(module).defs.snapshot().model_dump(mode="json")
    )
    r = _materialize(tenant, assets=["raw_orders"], partition_range=["2024-01-01", "2024-01-03"])
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["job"] == "daily_orders"
    worker = _run_worker(tenant, run["id"], module)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    r = _materialize(
        tenant,
        assets=["raw_orders"],
        partition="2024-01-04",
        run_config={"fail_on": ["2024-01-04"]},
    )
    assert r.status_code == 201, r.text
    failed = r.json()
    assert _run_worker(tenant, failed["id"], module).returncode == 1
    with tenant.user() as c:
        page = _get(c, f"{tenant.dep_path}/asset-partitions", key="raw_orders", limit=5)
        assert [(p["key"], p["status"], p["run_id"]) for p in page["partitions"]] == [
            ("2024-01-01", "MATERIALIZED", run["id"]),
            ("2024-01-02", "MATERIALIZED", run["id"]),
            ("2024-01-03", "MATERIALIZED", run["id"]),
            ("2024-01-04", "FAILED", failed["id"]),
            ("2024-01-05", "MISSING", None),
        ]
        history = _get(c, f"{tenant.dep_path}/asset-events", key="raw_orders")["events"]
        assert [e["partition"] for e in history] == ["2024-01-03", "2024-01-02", "2024-01-01"]
        assert all(e["metadata"]["rows"] > 0 for e in history)
        listed = {a["key"]: a for a in _get(c, f"{tenant.dep_path}/assets")["assets"]}
        assert listed["raw_orders"]["status"] == "FAILED"
        assert listed["daily_revenue"]["status"] == "NEVER"  # not selected: not run


def test_runs_ingesting_at_once_keep_exact_counts(tenant: Tenant) -> None:
    """Four runs post their materializations of one asset's partitions at the same time (on
    PostgreSQL truly in parallel): every event is counted once, every partition once."""
    tenant.report_running("dg", _dagster_snapshot())
    runs = [
        _materialize(tenant, assets=["raw/orders"], partition=p).json()
        for p in ("eu", "us", "apac", "eu")
    ]
    tokens = [tenant.run_token(r["id"]) for r in runs]

    def post(i: int) -> None:
        partition = runs[i]["tags"]["dagster/partition"]
        for seq in range(1, 11):
            batch = [_materialization(seq, "raw/orders", partition, rows=seq)]
            _post_events(tenant, runs[i]["id"], batch, tokens[i])

    with ThreadPoolExecutor(len(runs)) as pool:
        list(pool.map(post, range(len(runs))))
    with tenant.user() as c:
        page = _get(c, f"{tenant.dep_path}/assets/raw/orders")
        assert page["materializations"] == 40
        assert page["partition_counts"] == {
            "total": 3,
            "materialized": 3,
            "failed": 0,
            "missing": 0,
        }
