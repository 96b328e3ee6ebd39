"""A client generated from the published OpenAPI document with openapi-python-client drives
a real control plane: a code location deployed from a file (and read back as one), a run
launched, its events read, its final status. Whatever the schema says, a client made from it
must be able to do; so the schema cannot drift from what the server does.

Every user call goes through the generated client. The agent's calls (a location's status
report, the run's launch) and the run worker's events are plain HTTP, as they are not a
user's; the token the agent uses is made with the generated client.
"""

import importlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import Tenant, client, event
from tether_controlplane.api.app import create_app
from tether_controlplane.settings import Settings
from tether_sdk.examples import quickstart

PACKAGE = "tether_generated_client"
SNAPSHOT = quickstart.defs.snapshot().model_dump(mode="json")
# Generating takes about a second; far more means something is wrong with the document.
GENERATE_BUDGET_SECONDS = 30.0


@dataclass(frozen=True)
class Generated:
    root: Path
    seconds: float

    def module(self, name: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.{name}")

    @property
    def models(self) -> Any:
        return self.module("models")

    def user(self, tenant: Tenant, token: str | None = None) -> Any:
        # Any status the document does not declare for an operation raises.
        return self.module("client").AuthenticatedClient(
            base_url=tenant.cp.url,
            token=token or tenant.user_token,
            raise_on_unexpected_status=True,
            timeout=30,
        )


def _generate(work: Path) -> float:
    app = create_app(Settings(database_url="sqlite://"), migrate_on_start=False)
    document = work / "openapi.json"
    document.write_text(json.dumps(app.openapi()))
    config = work / "config.yaml"
    # No formatting pass (ruff) over the generated code: importing it is all this needs.
    config.write_text("post_hooks: []\n")
    command = [
        str(Path(sys.executable).with_name("openapi-python-client")),
        "generate",
        "--path",
        str(document),
        "--output-path",
        str(work / PACKAGE),
        "--meta",
        "none",
        "--config",
        str(config),
    ]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # A warning is a part of the document the generator could not turn into code.
    assert "Warning" not in output, output
    return seconds


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    work = tmp_path_factory.mktemp("generated-client")
    seconds = _generate(work)
    print(f"openapi-python-client generated the client in {seconds:.2f} s")
    assert seconds < GENERATE_BUDGET_SECONDS, f"generating took {seconds:.1f} s"
    sys.path.insert(0, str(work))
    try:
        package = importlib.import_module(PACKAGE)
        # The package just generated, not another copy found on sys.path.
        assert Path(str(package.__file__)).parent == work / PACKAGE
        yield Generated(work / PACKAGE, seconds)
    finally:
        sys.path.remove(str(work))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_operations_have_names_a_person_would_call(generated: Generated) -> None:
    calls = {p.stem for p in (generated.root / "api").glob("*/*.py") if p.stem != "__init__"}
    assert {
        "create_run",
        "list_runs",
        "get_run",
        "list_run_events",
        "stream_run_events",
        "terminate_run",
        "deploy_code_location",
        "get_code_location",
        "create_token",
        "list_audit",
        "put_alert_policy",
        "agent_report_code_location",
        "worker_post_events",
    } <= calls, sorted(calls)
    # Not FastAPI's default, made of the function, the path and the method.
    assert not [c for c in calls if "api_v1" in c], sorted(calls)
    for call in ("runs.create_run", "runs.list_run_events", "code_locations.deploy_code_location"):
        module = generated.module(f"api.{call}")
        assert callable(module.sync) and callable(module.sync_detailed)


def test_a_generated_client_deploys_launches_follows_and_reads_a_run(
    generated: Generated, tenant: Tenant, tmp_path: Path
) -> None:
    models, dep = generated.models, tenant.deployment
    user = generated.user(tenant)

    # The journey's agent gets a deployment's agent token: one request schema per kind.
    made = generated.module("api.tokens.create_token").sync(
        client=user,
        body=models.NewAgentToken(kind="agent", name="journey-agent", deployment=dep),
    )
    assert isinstance(made, models.TokenSecret), made
    assert made.info.scope == models.TokenScopeKind.DEPLOYMENT and made.info.deployment == dep

    # A location loaded from a file is one, written and read back.
    deploy = generated.module("api.code_locations.deploy_code_location")
    spec = models.CodeLocationDeploy(python_file="definitions.py", working_directory=str(tmp_path))
    put = deploy.sync(dep=dep, name="files", client=user, body=spec)
    assert isinstance(put, models.CodeLocationPutResult), put
    assert put.changed and put.code_location.status == models.CodeLocationStatus.PENDING
    read = generated.module("api.code_locations.get_code_location").sync(
        dep=dep, name="files", client=user
    )
    for location in (put.code_location, read):
        assert isinstance(location.spec, models.CodeLocationSpec)
        assert location.spec.python_file == "definitions.py"
        assert location.spec.module is None
        assert location.spec.working_directory == str(tmp_path)
    # Exactly one of module and python_file: both is a 422 that says so, as ErrorResponse.
    both = deploy.sync_detailed(
        dep=dep,
        name="both",
        client=user,
        body=models.CodeLocationDeploy(module="pkg.defs", python_file="defs.py"),
    )
    assert both.status_code == 422 and isinstance(both.parsed, models.ErrorResponse)
    assert "exactly one of 'module'" in both.parsed.detail, both.parsed.detail

    # The agent reports it RUNNING, with its definitions.
    with client(tenant.cp.url, made.token) as agent:
        r = agent.post(
            "/api/v1/agent/code-locations/files/status",
            json={
                "status": "RUNNING",
                "snapshot": SNAPSHOT,
                "generation": put.code_location.generation,
            },
        )
        assert r.status_code == 200, r.text

    # A run: a config the job's schema refuses is a 422 naming the field; a good one runs.
    create = generated.module("api.runs.create_run")
    refused = create.sync_detailed(
        dep=dep,
        client=user,
        body=models.RunCreate(
            code_location="files",
            job="etl",
            run_config=models.RunCreateRunConfig.from_dict({"source": "s3://b/o.csv", "rows": "x"}),
        ),
    )
    assert refused.status_code == 422 and isinstance(refused.parsed, models.ErrorResponse)
    assert [e.loc for e in refused.parsed.errors] == [["body", "run_config", "rows"]]
    run = create.sync(
        dep=dep,
        client=user,
        body=models.RunCreate(
            code_location="files",
            job="etl",
            run_config=models.RunCreateRunConfig.from_dict({"source": "s3://b/o.csv"}),
            tags=models.RunCreateTags.from_dict({"via": "generated-client"}),
        ),
    )
    assert isinstance(run, models.Run), run
    assert run.status == models.RunStatus.STARTING and run.code_location == "files"

    # The agent launches its worker, which sends the run's events with its run token.
    with client(tenant.cp.url, made.token) as agent:
        launch = agent.post(f"/api/v1/agent/runs/{run.id}/launch")
        assert launch.status_code == 200, launch.text
    sent = [
        event(1, "RUN_START"),
        event(2, "STEP_START", step="extract"),
        event(3, "LOG", "read 10 rows", step="extract", level="INFO", data={"rows": 10}),
        event(4, "STEP_SUCCESS", step="extract"),
        event(5, "RUN_SUCCESS"),
    ]
    with client(tenant.cp.url, launch.json()["token"]) as worker:
        r = worker.post(f"/api/v1/runs/{run.id}/events", json={"events": sent})
        assert r.status_code == 200 and r.json()["accepted"] == 5, r.text

    # Its events, followed through the paged call two at a time.
    list_events = generated.module("api.runs.list_run_events")
    seen: list[Any] = []
    after = 0
    while True:
        page = list_events.sync(dep=dep, run_id=run.id, client=user, after=after, limit=2)
        assert isinstance(page, models.RunEventPage), page
        if not page.events:
            break
        seen += page.events
        after = page.last_seq
    assert page.run_status == models.RunStatus.SUCCESS and page.last_seq == 5
    assert [(e.seq, e.type_.value, e.step) for e in seen] == [
        (1, "RUN_START", None),
        (2, "STEP_START", "extract"),
        (3, "LOG", "extract"),
        (4, "STEP_SUCCESS", "extract"),
        (5, "RUN_SUCCESS", None),
    ]
    log = seen[2]
    assert log.message == "read 10 rows" and log.level == "INFO"
    assert log.data.to_dict() == {"rows": 10}
    assert log.timestamp.tzinfo is not None and log.timestamp.year == 2026

    # The live stream, as the text it is: a frame per event, then `end`.
    stream = generated.module("api.runs.stream_run_events").sync(
        dep=dep, run_id=run.id, client=user, after=3
    )
    assert isinstance(stream, str), stream
    frames = [dict(line.split(": ", 1) for line in f.splitlines()) for f in stream.split("\n\n")]
    frames = [f for f in frames if f]
    assert [(f.get("id"), f["event"]) for f in frames] == [
        ("4", "STEP_SUCCESS"),
        ("5", "RUN_SUCCESS"),
        (None, "end"),
    ]
    assert json.loads(frames[1]["data"])["seq"] == 5
    assert json.loads(frames[2]["data"]) == {"last_seq": 5}

    # The run's final state, read and listed.
    final = generated.module("api.runs.get_run").sync(dep=dep, run_id=run.id, client=user)
    assert isinstance(final, models.Run), final
    assert final.status == models.RunStatus.SUCCESS and final.ended_at is not None
    assert final.tags.to_dict() == {"via": "generated-client"}
    listed = generated.module("api.runs.list_runs").sync(dep=dep, client=user, job="etl")
    assert [r.id for r in listed.runs] == [run.id]


def test_token_kinds_audit_pages_and_alert_channels_round_trip(
    generated: Generated, tenant: Tenant
) -> None:
    models, dep = generated.models, tenant.deployment
    user = generated.user(tenant)
    create_token = generated.module("api.tokens.create_token")

    # Each kind of token has its own request schema, and the server takes what it allows.
    for body, scope in (
        (models.NewUserToken(kind="user", name="ci"), "organization"),
        (models.NewAgentToken(kind="agent", name="fleet", scope="organization"), "organization"),
        (models.NewAgentToken(kind="agent", name="eu", deployment=dep), "deployment"),
    ):
        made = create_token.sync(client=user, body=body)
        assert isinstance(made, models.TokenSecret), made
        assert made.info.scope.value == scope and made.token
    # What the schema's if/then/else excludes (invisible to the generated types) is a 422.
    refused = create_token.sync_detailed(
        client=user, body=models.NewAgentToken(kind="agent", name="nowhere")
    )
    assert refused.status_code == 422 and "needs a deployment" in refused.parsed.detail

    # The audit log, a page of one entry at a time, by next_cursor.
    list_audit = generated.module("api.audit.list_audit")
    ids: list[int] = []
    cursor: Any = None
    for _ in range(20):
        page = list_audit.sync(client=user, limit=1, **({"cursor": cursor} if cursor else {}))
        assert isinstance(page, models.AuditPage), page
        ids += [e.id for e in page.entries]
        cursor = page.next_cursor
        if not isinstance(cursor, str):
            break
    assert len(ids) >= 5 and ids == sorted(ids, reverse=True), ids

    # Alert channels: a union told apart by `type`, read back as the kind written.
    put = generated.module("api.alerts.put_alert_policy")
    webhook = models.WebhookChannel(type_="webhook", url="http://127.0.0.1:9/hook")
    email = models.EmailChannel(
        type_="email", smtp_host="127.0.0.1", sender="t@example.com", recipients=["o@example.com"]
    )
    for name, channel in (("hook", webhook), ("mail", email)):
        body = models.AlertPolicySpec(events=[models.AlertEvent.RUN_FAILURE], channel=channel)
        assert isinstance(put.sync(dep=dep, name=name, client=user, body=body), models.AlertPolicy)
    policies = generated.module("api.alerts.list_alert_policies").sync(dep=dep, client=user)
    kinds = {p.name: type(p.channel).__name__ for p in policies}
    assert kinds == {"hook": "WebhookChannel", "mail": "EmailChannel"}, kinds
    assert {p.name: p.channel.type_ for p in policies} == {"hook": "webhook", "mail": "email"}
