"""The code server as a real subprocess, queried over HTTP."""

import os
import signal
from collections.abc import Callable
from pathlib import Path

from tether_api.codeserver import Health, SnapshotResponse, ValidateResponse

from .conftest import CodeServerProcess

Start = Callable[..., CodeServerProcess]


def test_health_and_snapshot(code_server: Start) -> None:
    server = code_server("--module", "tether_sdk.examples.quickstart")
    health = Health.model_validate(server.client.get("/health").json())
    assert health.loaded and health.load_error is None and health.pid == server.process.pid
    response = server.client.get("/snapshot")
    assert response.status_code == 200
    snap = SnapshotResponse.model_validate(response.json())
    assert snap.load_error is None and snap.snapshot is not None
    assert [j.name for j in snap.snapshot.jobs] == ["etl", "refresh_sales"]
    assert [s.name for s in snap.snapshot.schedules] == ["nightly_etl"]


def test_validate(code_server: Start) -> None:
    client = code_server("--module", "tether_sdk.examples.quickstart").client

    def validate(body: dict[str, object]) -> ValidateResponse:
        response = client.post("/validate", json=body)
        assert response.status_code == 200
        return ValidateResponse.model_validate(response.json())

    ok = validate({"job": "etl", "run_config": {"source": "s3://x"}})
    assert ok.valid and ok.steps == ["extract", "transform", "load", "report"]

    unknown = validate({"job": "nope"})
    assert not unknown.valid and unknown.message is not None
    assert "'nope'" in unknown.message and "etl, refresh_sales" in unknown.message

    bad = validate({"job": "etl", "run_config": {"rows": "many"}})
    assert not bad.valid and bad.message is not None
    assert "source: Field required" in bad.message
    assert {e.field for e in bad.errors} == {"source", "rows"}

    extra = validate({"job": "refresh_sales", "run_config": {"oops": 1}})
    assert not extra.valid and [e.field for e in extra.errors] == ["oops"]


def test_nested_config_errors_are_dotted(code_server: Start, tmp_path: Path) -> None:
    path = tmp_path / "nested_defs.py"
    path.write_text(
        "from pydantic import BaseModel\n"
        "from tether_sdk import Definitions, job, step\n"
        "class Source(BaseModel):\n    bucket: str\n"
        "class Cfg(BaseModel):\n    source: Source\n"
        "@step\ndef s(config: Cfg) -> None: ...\n"
        "defs = Definitions(jobs=[job('nested', steps=[s], config=Cfg)])\n"
    )
    client = code_server("--python-file", str(path)).client
    body = client.post("/validate", json={"job": "nested", "run_config": {"source": {}}}).json()
    assert body["valid"] is False
    assert body["errors"] == [{"field": "source.bucket", "message": "Field required"}]


def test_bad_requests_get_json_errors(code_server: Start) -> None:
    client = code_server("--module", "tether_sdk.examples.quickstart").client
    malformed = client.post(
        "/validate", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and "Invalid JSON" in malformed.json()["detail"]
    missing_job = client.post("/validate", json={"run_config": {}})
    assert missing_job.status_code == 400 and "job: Field required" in missing_job.json()["detail"]
    assert client.get("/nope").status_code == 404
    assert client.post("/nope", json={}).json()["detail"] == "no such path: POST /nope"
    # Still serving after all that.
    assert client.get("/health").status_code == 200


def test_broken_module_serves_its_traceback(code_server: Start) -> None:
    server = code_server("--module", "tether_sdk.examples.broken")
    health = server.client.get("/health")
    assert health.status_code == 200
    body = Health.model_validate(health.json())
    assert not body.loaded and body.load_error is not None
    assert "the warehouse is unreachable" in body.load_error.message
    assert "_connect_to_warehouse" in body.load_error.traceback

    snap = SnapshotResponse.model_validate(server.client.get("/snapshot").json())
    assert snap.snapshot is None and snap.load_error == body.load_error

    validate = server.client.post("/validate", json={"job": "etl"}).json()
    assert validate["valid"] is False and "failed to load" in validate["message"]


def test_env_vars_and_clean_sigterm_exit(code_server: Start) -> None:
    server = code_server(env={"TETHER_MODULE": "tether_sdk.examples.chatty"})
    snap = server.client.get("/snapshot").json()["snapshot"]
    assert [j["name"] for j in snap["jobs"]] == ["chatty"]
    os.kill(server.process.pid, signal.SIGTERM)
    assert server.process.wait(timeout=10) == 0
    _, err = server.process.communicate()
    assert f"pid {server.process.pid}" in err and "stopped" in err
