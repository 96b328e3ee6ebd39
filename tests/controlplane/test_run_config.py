"""Run configs are checked against their job's JSON schema when a run is created (422 naming
each bad field, no run), and by the dry run POST .../runs/validate; GET .../runs/{id}/steps."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from tests.support import Tenant, client, event
from tether_controlplane.services.runconfig import config_errors
from tether_sdk import Definitions
from tether_sdk.examples import quickstart
from tether_sdk.loader import load_definitions
from tether_sdk.unknown_keys import config_json_schema

SNAPSHOT = quickstart.defs.snapshot().model_dump(mode="json")
ETL_SCHEMA = config_json_schema(quickstart.EtlConfig)


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    table: str
    partitions: list[int] = Field(default_factory=list)


class Nested(BaseModel):
    """A config with $defs and $refs, an optional model, and no extra keys allowed."""

    model_config = ConfigDict(extra="forbid")
    target: Target
    backup: Target | None = None
    mode: str = Field(default="append", pattern="^(append|replace)$")


def _running(tenant: Tenant, name: str = "quick", snapshot: dict[str, Any] = SNAPSHOT) -> None:
    tenant.report_running(name, snapshot)


def _post(tenant: Tenant, path: str = "", **body: Any) -> Any:
    with tenant.user() as c:
        return c.post(f"{tenant.dep_path}/runs{path}", json={"code_location": "quick", **body})


def _runs(tenant: Tenant) -> list[dict[str, Any]]:
    with tenant.user() as c:
        return c.get(f"{tenant.dep_path}/runs").json()["runs"]  # type: ignore[no-any-return]


def test_an_invalid_config_is_refused_naming_each_field(tenant: Tenant) -> None:
    _running(tenant)
    r = _post(tenant, job="etl", run_config={"rows": "x", "fail": 1, "sleep_seconds": -1})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == (
        "invalid run config for job 'etl': run_config.fail: 1 is not of type 'boolean'; "
        "run_config.rows: 'x' is not of type 'integer'; "
        "run_config.sleep_seconds: -1 is less than the minimum of 0; "
        "run_config.source: Field required"
    )
    assert [(e["loc"], e["type"]) for e in r.json()["errors"]] == [
        (["body", "run_config", "fail"], "type"),
        (["body", "run_config", "rows"], "type"),
        (["body", "run_config", "sleep_seconds"], "minimum"),
        (["body", "run_config", "source"], "required"),
    ]
    assert _runs(tenant) == []  # nothing was created, nothing queued for an agent
    assert [r for r in tenant.poll() if r["type"] == "LAUNCH_RUN"] == []
    ok = _post(tenant, job="etl", run_config={"source": "s3://b/o.csv", "rows": 5.0})
    assert ok.status_code == 201, ok.text
    assert [run["id"] for run in _runs(tenant)] == [ok.json()["id"]]


def test_nested_models_optional_fields_and_extra_keys(tenant: Tenant) -> None:
    job = {"name": "load", "steps": [{"name": "s"}], "config_schema": Nested.model_json_schema()}
    snapshot = {"jobs": [job]}
    _running(tenant, snapshot=snapshot)
    config = {
        "target": {"table": 1, "partitions": [1, "two"]},
        "backup": {"tabel": "x"},
        "mode": "upsert",
        "extra": True,
    }
    r = _post(tenant, job="load", run_config=config)
    assert r.status_code == 422, r.text
    got = [(e["loc"][2:], e["type"]) for e in r.json()["errors"]]
    assert got == [
        # The optional model's own errors, not "not valid under any of the given schemas".
        (["backup", "tabel"], "additionalProperties"),
        (["backup", "table"], "required"),
        (["extra"], "additionalProperties"),
        (["mode"], "pattern"),
        (["target", "partitions", 1], "type"),
        (["target", "table"], "type"),
    ]
    extra = r.json()["errors"][2]["msg"]  # each extra key named, with the known ones
    assert extra == "unknown key; this job's config takes backup, mode, target"
    assert r.json()["errors"][0]["msg"] == "unknown key; backup takes partitions, table"
    assert "run_config.target.partitions.1: 'two' is not of type 'integer'" in r.json()["detail"]
    assert _post(tenant, job="load", run_config={"target": {"table": "t"}}).status_code == 201


def test_a_job_without_a_config_model_takes_no_config(tenant: Tenant) -> None:
    _running(tenant)
    r = _post(tenant, job="refresh_sales", run_config={"rows": 3})
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "run_config", "rows"]
    assert "this job takes no config" in r.json()["detail"]
    assert _post(tenant, job="refresh_sales").status_code == 201


def test_without_a_snapshot_the_worker_checks(tenant: Tenant) -> None:
    tenant.deploy("quick")  # no agent has reported its definitions yet
    r = _post(tenant, job="etl", run_config={"rows": "x"})
    assert r.status_code == 201, r.text
    dry = _post(tenant, "/validate", job="etl", run_config={"rows": "x"})
    assert dry.json() == {"valid": True, "errors": [], "config_schema": None}


def test_dry_run_answers_without_creating(tenant: Tenant) -> None:
    _running(tenant)
    bad = _post(tenant, "/validate", job="etl", run_config={"rows": -1})
    assert bad.status_code == 200, bad.text
    body = bad.json()
    assert body["valid"] is False and body["config_schema"] == ETL_SCHEMA
    assert [(e["loc"], e["msg"], e["type"]) for e in body["errors"]] == [
        (["body", "run_config", "rows"], "-1 is less than the minimum of 0", "minimum"),
        (["body", "run_config", "source"], "Field required", "required"),
    ]
    good = _post(tenant, "/validate", job="etl", run_config={"source": "s3://b"})
    assert good.json() == {"valid": True, "errors": [], "config_schema": ETL_SCHEMA}
    unknown = _post(tenant, "/validate", job="nope").json()
    assert unknown["valid"] is False and unknown["config_schema"] is None
    assert [e["loc"] for e in unknown["errors"]] == [["body", "job"]]
    assert "its jobs are: etl, refresh_sales" in unknown["errors"][0]["msg"]
    with tenant.user() as c:
        where = f"{tenant.dep_path}/runs/validate"
        missing = c.post(where, json={"code_location": "x", "job": "j"})
        assert missing.status_code == 404 and "tether deploy x" in missing.json()["detail"]
        shape = c.post(where, json={"job": "etl"})
        assert shape.status_code == 422  # the body itself, as for creating a run
        # "validate" is no run ID, and the dry run is POST only.
        for method in ("GET", "OPTIONS", "DELETE"):
            r = c.request(method, where)
            assert (r.status_code, r.headers["allow"]) == (405, "POST"), method
    assert _runs(tenant) == []


def test_steps_of_a_run(tenant: Tenant) -> None:
    _running(tenant)
    run = tenant.launch("quick", "etl", run_config={"source": "s3://b"})["id"]
    with tenant.user() as c:
        steps = c.get(f"{tenant.dep_path}/runs/{run}/steps").json()
    # Not started yet: the job's steps, all pending.
    assert [(s["name"], s["status"]) for s in steps] == [
        (name, "PENDING") for name in ("extract", "transform", "load", "report")
    ]
    with client(tenant.cp.url, tenant.run_token(run)) as w:
        batch = [
            event(1, "RUN_START"),
            event(2, "STEP_START", step="extract"),
            event(3, "STEP_SUCCESS", step="extract", data={"duration_s": 0.5}),
            event(4, "STEP_START", step="transform"),
        ]
        assert w.post(f"/api/v1/runs/{run}/events", json={"events": batch}).is_success
    with tenant.user() as c:
        steps = c.get(f"{tenant.dep_path}/runs/{run}/steps").json()
        assert [(s["name"], s["status"]) for s in steps] == [
            ("extract", "SUCCESS"), ("transform", "RUNNING"), ("load", "PENDING"),
            ("report", "PENDING"),
        ]  # fmt: skip
        assert steps[0]["duration_seconds"] == 0.5
        assert c.get(f"{tenant.dep_path}/runs/nope/steps").status_code == 404


def test_unusable_schemas_check_nothing() -> None:
    # A $ref to nowhere, or a pattern Python cannot compile: the worker's model decides.
    assert config_errors({"properties": {"a": {"$ref": "#/$defs/Gone"}}}, {"a": 1}) == []
    assert config_errors({"properties": {"a": {"pattern": "\\p{L}"}}}, {"a": "1"}) == []


# --- unknown keys, with a snapshot from the SDK's own definitions ------------------------

WEATHER_CODE = '''
from pydantic import BaseModel, ConfigDict
from tether_sdk import Definitions, job, step


class Weather(BaseModel):
    city: str
    fail_load: bool = False


class Station(BaseModel):
    id: str
    height_m: float = 0


class Forecast(BaseModel):
    city: str
    stations: list[Station] = []


class Labels(BaseModel):
    """Takes keys it does not define, on purpose."""

    model_config = ConfigDict(extra="allow")
    team: str = "data"


@step
def fetch(config: Weather) -> str:
    return config.city


@step
def predict(config: Forecast) -> int:
    return len(config.stations)


@step
def label(ctx, config: Labels) -> None:
    ctx.log.info("labels: %s", sorted(config.model_extra or {}))


defs = Definitions(
    jobs=[
        job("weather", steps=[fetch], config=Weather),
        job("forecast", steps=[predict], config=Forecast),
        job("labelled", steps=[label], config=Labels),
    ]
)
'''
WEATHER_UNKNOWN = "unknown key; this job's config takes city, fail_load"


@pytest.fixture(scope="module")
def weather_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weather") / "weather_defs.py"
    path.write_text(WEATHER_CODE)
    return path


@pytest.fixture(scope="module")
def weather_snapshot(weather_code: Path) -> dict[str, Any]:
    """What a code location serving ``WEATHER_CODE`` reports."""
    defs = load_definitions(python_file=str(weather_code))
    assert isinstance(defs, Definitions), defs
    return defs.snapshot().model_dump(mode="json")


def test_an_unknown_key_is_refused_naming_the_keys_allowed(
    tenant: Tenant, weather_snapshot: dict[str, Any]
) -> None:
    _running(tenant, snapshot=weather_snapshot)
    config = {"city": "Oslo", "fail_lod": True}
    r = _post(tenant, job="weather", run_config=config)
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == (
        f"invalid run config for job 'weather': run_config.fail_lod: {WEATHER_UNKNOWN}"
    )
    assert r.json()["errors"] == [
        {
            "loc": ["body", "run_config", "fail_lod"],
            "msg": WEATHER_UNKNOWN,
            "type": "additionalProperties",
        }
    ]
    dry = _post(tenant, "/validate", job="weather", run_config=config).json()
    assert dry["valid"] is False and dry["errors"] == r.json()["errors"]
    assert dry["config_schema"]["additionalProperties"] is False  # what the launchpad checks
    assert _runs(tenant) == []
    assert _post(tenant, job="weather", run_config={"city": "Oslo"}).status_code == 201


def test_a_nested_unknown_key_is_refused_at_its_full_path(
    tenant: Tenant, weather_snapshot: dict[str, Any]
) -> None:
    _running(tenant, snapshot=weather_snapshot)
    config = {"city": "Oslo", "stations": [{"id": "a"}, {"id": "b", "hieght_m": 3}]}
    r = _post(tenant, job="forecast", run_config=config)
    assert r.status_code == 422, r.text
    assert [(e["loc"], e["msg"]) for e in r.json()["errors"]] == [
        (
            ["body", "run_config", "stations", 1, "hieght_m"],
            "unknown key; stations.1 takes height_m, id",
        )
    ]
    assert "run_config.stations.1.hieght_m: unknown key" in r.json()["detail"]


def test_a_job_that_takes_extra_keys_on_purpose_gets_them(
    tenant: Tenant, weather_snapshot: dict[str, Any]
) -> None:
    _running(tenant, snapshot=weather_snapshot)
    config = {"team": "ml", "cost_center": "42"}
    assert _post(tenant, "/validate", job="labelled", run_config=config).json()["valid"] is True
    r = _post(tenant, job="labelled", run_config=config)
    assert r.status_code == 201, r.text


def _run_worker(tenant: Tenant, run_id: str, code: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether_cli.main", "run-worker", "--python-file", str(code)],
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


def test_without_a_snapshot_the_worker_refuses_an_unknown_key(
    tenant: Tenant, weather_code: Path
) -> None:
    tenant.deploy("quick")  # no snapshot yet: the run is created, its worker checks
    run = tenant.launch("quick", "weather", run_config={"city": "Oslo", "fail_lod": True})["id"]
    worker = _run_worker(tenant, run, weather_code)
    assert worker.returncode == 1, worker.stdout + worker.stderr
    final = tenant.run(run)
    assert final["status"] == "FAILURE"
    assert f"fail_lod: {WEATHER_UNKNOWN}" in final["status_message"]
    with tenant.user() as c:
        events = c.get(f"{tenant.dep_path}/runs/{run}/events").json()["events"]
    assert not [e for e in events if e["type"] == "STEP_START"]
    # A model that takes extra keys on purpose gets them in the worker too.
    labelled = tenant.launch("quick", "labelled", run_config={"cost_center": "42"})["id"]
    worker = _run_worker(tenant, labelled, weather_code)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert tenant.run(labelled)["status"] == "SUCCESS"
    with tenant.user() as c:
        events = c.get(f"{tenant.dep_path}/runs/{labelled}/events").json()["events"]
    assert "labels: ['cost_center']" in [e["message"] for e in events]
