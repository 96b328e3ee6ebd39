"""Run configs are checked against their job's JSON schema when a run is created (422 naming
each bad field, no run), and by the dry run POST .../runs/validate; GET .../runs/{id}/steps."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tests.support import Tenant, client, event
from tether_controlplane.services.runconfig import config_errors
from tether_sdk.examples import quickstart

SNAPSHOT = quickstart.defs.snapshot().model_dump(mode="json")
ETL_SCHEMA = quickstart.EtlConfig.model_json_schema()


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
    tenant.deploy(name)
    with tenant.agent() as c:
        r = c.post(
            f"/api/v1/agent/code-locations/{name}/status",
            json={"status": "RUNNING", "snapshot": snapshot, "generation": 1},
        )
        assert r.status_code == 200, r.text


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
    assert extra == (
        "unexpected field 'extra': the config does not define it; "
        "its fields are: backup, mode, target"
    )
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
