"""Dagster code locations end to end: the example Dagster project (examples/dagster_project)
deployed by its folder alone (its pyproject.toml names the module), warm and cold, on the
process launcher, with a real control plane, Temporal dev server, agent, code servers and
run workers. Jobs run, fail, are refused and terminated as a Tether location's are; a
sensor's run keys make one run each; an agent killed mid-run is replaced and the run is
adopted, started once."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    events,
    location,
    stop_launched,
    wait_for_location,
    wait_for_run,
    worker_starts,
)
from tests.support import REPO, ControlPlane, Tenant, wait_until

PROJECT = REPO / "examples" / "dagster_project"
ETL = {"ops": {"extract": {"config": {"source": "s3://orders", "rows": 4}}}}


class Stack:
    def __init__(self, tenant: Tenant, agent: AgentProcess, marker: Path) -> None:
        self.tenant, self.agent, self.marker = tenant, agent, marker


@pytest.fixture(scope="module")
def stack(
    e2e_controlplane: ControlPlane,
    temporal_server: TemporalDevServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    tenant = e2e_controlplane.tenant()
    work = tmp_path_factory.mktemp("dagster-e2e")
    agent = AgentProcess(tenant, temporal_server, work).start()
    marker = work / "teardowns.txt"
    env = {"ACME_TEARDOWN_MARKER": str(marker), "TETHER_DAGSTER_STORAGE": str(work / "storage")}
    common: dict[str, Any] = {"kind": "dagster", "working_directory": str(PROJECT), "env": env}
    try:
        tenant.deploy("acme", **common)
        tenant.deploy("acme-cold", **common, launch="cold")
        for name in ("acme", "acme-cold"):
            found = wait_for_location(tenant, name)
            assert found["status"] == "RUNNING", found
        yield Stack(tenant, agent, marker)
    finally:
        agent.stop()
        stop_launched(agent.state_dir)


def of_type(run_events: list[dict[str, Any]], *types: str) -> list[dict[str, Any]]:
    return [e for e in run_events if e["type"] in types]


def test_the_location_reports_its_dagster_definitions(stack: Stack) -> None:
    found = location(stack.tenant, "acme")
    snapshot = found["snapshot"]
    assert found["spec"]["kind"] == "dagster" and snapshot["kind"] == "dagster"
    jobs = {j["name"]: j for j in snapshot["jobs"]}
    assert {"etl", "fanout", "fails", "slow", "assets"} <= set(jobs)
    assert "outer.inner.double" in [s["name"] for s in jobs["fanout"]["steps"]]
    assert {s["name"] for s in snapshot["sensors"]} == {"etl_batches"}


@pytest.mark.parametrize("name", ["acme", "acme-cold"])
def test_a_dagster_job_runs_warm_and_cold_with_its_events_as_they_happen(
    stack: Stack, name: str
) -> None:
    tenant = stack.tenant
    run = tenant.launch(name, "etl", run_config=ETL)
    done = wait_for_run(tenant, run["id"])
    assert done["status"] == "SUCCESS", done
    run_events = events(tenant, run["id"])
    start = run_events[0]
    assert start["type"] == "RUN_START"
    assert start["data"]["launch"] == ("warm" if name == "acme" else "cold")
    steps = [(e["type"], e["step"]) for e in of_type(run_events, "STEP_START", "STEP_SUCCESS")]
    assert steps == [
        ("STEP_START", "extract"),
        ("STEP_SUCCESS", "extract"),
        ("STEP_START", "transform"),
        ("STEP_SUCCESS", "transform"),
        ("STEP_START", "load"),
        ("STEP_SUCCESS", "load"),
    ]
    logs = [(e["step"], e["message"]) for e in of_type(run_events, "LOG")]
    assert ("extract", "extracting 4 rows from s3://orders") in logs  # context.log
    assert ("transform", "transform: multiplying 4 rows by 10") in logs  # print, captured
    # Dagster's console logger does not repeat every event on the captured stderr.
    assert not [m for _, m in logs if "STEP_SUCCESS" in m]


def test_a_failing_op_fails_the_run_naming_it(stack: Stack) -> None:
    tenant = stack.tenant
    run = tenant.launch("acme", "fails")
    done = wait_for_run(tenant, run["id"])
    assert done["status"] == "FAILURE" and "explode" in (done["status_message"] or ""), done
    run_events = events(tenant, run["id"])
    [failure] = of_type(run_events, "STEP_FAILURE")
    assert failure["step"] == "explode"
    assert failure["data"]["error"] == "ValueError: payload has no 'missing' field"
    [skipped] = of_type(run_events, "STEP_SKIPPED")
    assert skipped["step"] == "never_runs"


def test_a_bad_config_is_a_422_naming_the_field_and_no_run(stack: Stack) -> None:
    tenant = stack.tenant
    with tenant.user() as c:
        before = len(c.get(f"{tenant.dep_path}/runs").json()["runs"])
        answer = c.post(
            f"{tenant.dep_path}/runs",
            json={
                "code_location": "acme",
                "job": "etl",
                "run_config": {"ops": {"extract": {"config": {"rows": "many"}}}},
            },
        )
        after = len(c.get(f"{tenant.dep_path}/runs").json()["runs"])
    assert answer.status_code == 422, answer.text
    locs = {tuple(e["loc"]) for e in answer.json()["errors"]}
    base = ("body", "run_config", "ops", "extract", "config")
    assert {(*base, "rows"), (*base, "source")} <= locs, locs
    assert before == after


def test_an_unknown_partition_or_asset_is_a_422_naming_the_tag(stack: Stack) -> None:
    tenant = stack.tenant
    with tenant.user() as c:
        partition = c.post(
            f"{tenant.dep_path}/runs",
            json={
                "code_location": "acme",
                "job": "daily_assets",
                "tags": {"dagster/partition": "1999-01-01"},
            },
        )
        asset = c.post(
            f"{tenant.dep_path}/runs",
            json={
                "code_location": "acme",
                "job": "assets",
                "tags": {"tether/asset_selection": '["raw/nope"]'},
            },
        )
        fine = c.post(
            f"{tenant.dep_path}/runs/validate",
            json={
                "code_location": "acme",
                "job": "daily_assets",
                "tags": {"dagster/partition": "2026-01-05"},
            },
        )
    assert partition.status_code == 422, partition.text
    [error] = partition.json()["errors"]
    assert error["loc"] == ["body", "tags", "dagster/partition"]
    assert "does not exist" in error["msg"]
    assert asset.status_code == 422, asset.text
    assert asset.json()["errors"][0]["loc"] == ["body", "tags", "tether/asset_selection"]
    assert fine.status_code == 200 and fine.json()["valid"], fine.text


def test_a_dagster_backfill_and_a_materialization_fill_the_asset_catalog(stack: Stack) -> None:
    """Dagster runs' materializations, metadata, partitions and check results reach the
    catalog: a backfill of three days of the daily asset job, and a launch of two assets."""
    tenant = stack.tenant
    days = ["2026-01-02", "2026-01-03", "2026-01-04"]
    with tenant.user() as c:
        r = c.post(
            f"{tenant.dep_path}/backfills",
            json={"code_location": "acme", "job": "daily_assets", "partitions": days},
        )
        assert r.status_code == 201, r.text
        backfill_id = r.json()["id"]
        r = c.post(
            f"{tenant.dep_path}/asset-materializations",
            json={"assets": ["raw/orders", "revenue_by_customer"]},
        )
        assert r.status_code == 201, r.text
        launched = r.json()
    assert launched["job"] == "assets"
    assert wait_for_run(tenant, launched["id"], timeout=90)["status"] == "SUCCESS"

    def ended() -> dict[str, Any] | None:
        with tenant.user() as c:
            found: dict[str, Any] = c.get(f"{tenant.dep_path}/backfills/{backfill_id}").json()
        return found if found["status"] not in ("REQUESTED", "RUNNING") else None

    final = wait_until(ended, timeout=120, interval=0.5, what="the backfill to end")
    assert (final["status"], final["counts"]["success"]) == ("COMPLETED", 3), final
    with tenant.user() as c:
        counts = c.get(f"{tenant.dep_path}/assets/daily_event_counts").json()
        history = c.get(
            f"{tenant.dep_path}/asset-events",
            params={"key": "daily_event_counts", "type": "ASSET_MATERIALIZATION"},
        ).json()["events"]
        partitions = c.get(
            f"{tenant.dep_path}/asset-partitions",
            params={"key": "daily_event_counts", "status": "MATERIALIZED"},
        ).json()
        orders = c.get(f"{tenant.dep_path}/assets/raw/orders").json()
        revenue = c.get(f"{tenant.dep_path}/assets/revenue_by_customer").json()
    assert counts["status"] == "MATERIALIZED" and counts["partitioned"]
    assert sorted(e["partition"] for e in history) == days
    assert all(isinstance(e["metadata"].get("events"), int) for e in history), history
    assert [p["key"] for p in partitions["partitions"]] == days
    assert partitions["counts"]["materialized"] == 3
    assert orders["last_materialization"]["run_id"] == launched["id"]
    assert orders["metadata_series"]["rows"][-1]["value"] > 0
    assert orders["downstream"] == ["revenue_by_customer"]
    [check] = revenue["checks"]
    assert (check["name"], check["passed"], check["run_id"]) == (
        "revenue_is_positive",
        True,
        launched["id"],
    )


def test_terminate_stops_the_run_through_dagster_with_teardown(stack: Stack) -> None:
    tenant = stack.tenant
    run = tenant.launch("acme", "slow")
    wait_until(
        lambda: any("still napping" in e["message"] for e in events(tenant, run["id"])),
        timeout=60,
        what="the nap to be under way",
    )
    with tenant.user() as c:
        assert c.post(f"{tenant.dep_path}/runs/{run['id']}/terminate").status_code == 202
    done = wait_for_run(tenant, run["id"], timeout=60)
    run_events = events(tenant, run["id"])
    assert done["status"] == "CANCELED", [
        (e["type"], e["step"], e["message"][:200]) for e in run_events
    ][-8:]
    assert run_events[-1]["type"] == "RUN_CANCELED"
    assert [e["step"] for e in of_type(run_events, "STEP_CANCELED")] == ["nap"]
    # The resource's teardown ran (Dagster's own interruption, not a kill).
    assert run["id"] in stack.marker.read_text()


def test_a_sensors_run_keys_make_one_run_each(stack: Stack) -> None:
    tenant = stack.tenant
    with tenant.user() as c:
        answer = c.post(f"{tenant.dep_path}/sensors/acme/etl_batches/start")
        assert answer.status_code == 200, answer.text

    def batches() -> list[str]:
        with tenant.user() as c:
            runs = c.get(f"{tenant.dep_path}/runs", params={"limit": 100}).json()["runs"]
        return sorted(
            r["tags"].get("batch", "") for r in runs if r["job"] == "etl" and r["tags"].get("batch")
        )

    wait_until(lambda: len(batches()) >= 2, timeout=60, what="the sensor's first runs")
    with tenant.user() as c:
        c.post(f"{tenant.dep_path}/sensors/acme/etl_batches/stop")
    found = batches()
    assert len(found) == len(set(found)), found  # one run per run key
    assert found[:2] == ["1", "2"]


def test_an_agent_killed_mid_run_is_replaced_and_the_run_adopted_started_once(
    stack: Stack,
) -> None:
    tenant, agent = stack.tenant, stack.agent
    run = tenant.launch("acme", "slow", run_config={"ops": {"nap": {"config": {"seconds": 8}}}})
    wait_until(
        lambda: any(e["type"] == "STEP_START" for e in events(tenant, run["id"])),
        timeout=60,
        what="the nap to start",
    )
    agent.kill()
    time.sleep(1)
    agent.start()
    done = wait_for_run(tenant, run["id"], timeout=90)
    assert done["status"] == "SUCCESS", done
    assert worker_starts(agent.state_dir, run["id"]) == 1
