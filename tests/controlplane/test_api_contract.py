"""The published OpenAPI document says what the server does: Schemathesis, with all of its
checks and phases, against a real control plane holding real data, once per kind of caller.

CI uses a fixed seed and a small budget; for a longer, random search run the same thing by
hand (see the README): ``TETHER_FUZZ_SEED=random TETHER_FUZZ_EXAMPLES=200 pytest -k contract``.
"""

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import running_controlplane
from tests.support import ControlPlane, Tenant, client, event

SEED = os.environ.get("TETHER_FUZZ_SEED", "20261129")
EXAMPLES = int(os.environ.get("TETHER_FUZZ_EXAMPLES", "15"))
MAX_FAILURES = 20
STREAM_PATH = "/api/v1/deployments/{dep}/runs/{run_id}/events/stream"
RUNS_PATH = "/api/v1/deployments/{dep}/runs"


@dataclass(frozen=True)
class Caller:
    name: str
    tags: tuple[str, ...]  # the operations this caller is meant for; () for all of them


CALLERS = [
    Caller("user", ("deployments", "code locations", "runs")),
    # Tether's Nexus service: create, read and terminate runs; every other run route is 403.
    Caller("nexus", ("runs",)),
    Caller("agent", ("agent",)),
    Caller("run", ("run worker",)),
    Caller("anonymous", ()),
]


@dataclass(frozen=True)
class Target:
    cp: ControlPlane
    tenant: Tenant
    run_id: str
    run_token: str
    request_id: str
    nexus_token: str


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """A control plane with a deployed location, a run with its token, and a request: the
    path parameters Schemathesis is given name things that exist."""
    with running_controlplane(
        request.param,
        tmp_path_factory.mktemp(f"contract-{request.param}"),
        # Keep a generated long-poll (up to 30 s asked) from stalling the run.
        long_poll_max_seconds=0.2,
        run_wait_max_seconds=0.2,
        run_start_timeout_seconds=3600,
        run_heartbeat_timeout_seconds=3600,
    ) as cp:
        tenant = cp.tenant()
        tenant.deploy("quick")
        run_id = tenant.launch("quick", "etl", run_config={"source": "s3://b/o.csv"})["id"]
        requests = tenant.poll()
        run_token = tenant.run_token(run_id)
        # A finished run with events: its event stream ends instead of holding the fuzzer.
        with client(cp.url, run_token) as c:
            final = [event(1, "RUN_START"), event(2, "LOG", "hello"), event(3, "RUN_SUCCESS")]
            assert c.post(f"/api/v1/runs/{run_id}/events", json={"events": final}).is_success
        with tenant.user() as c:
            r = c.post("/api/v1/tokens", json={"name": "nx", "kind": "nexus", "deployment": "prod"})
            assert r.status_code == 201, r.text
            nexus_token = r.json()["token"]
        yield Target(cp, tenant, run_id, run_token, requests[0]["id"], nexus_token)


def _config(target: Target, caller: Caller, token: str | None) -> str:
    seed = secrets.randbelow(2**31) if SEED == "random" else int(SEED)
    lines = [
        f"seed = {seed}",
        f"max-failures = {MAX_FAILURES}",
        "request-timeout = 20",
        # Every check (as `--checks all` would, but here, so that an operation's section
        # below can turn one off: the command line's choice would override it).
        "[checks]",
        "enabled = true",
        "[generation]",
        f"max-examples = {EXAMPLES}",
        "[parameters]",
        f'"path.dep" = "{target.tenant.deployment}"',
        '"path.name" = "quick"',
        f'"path.run_id" = "{target.run_id}"',
        f'"path.request_id" = "{target.request_id}"',
        # Real names in bodies too, half of the time: a run of a job that exists.
        '"body.code_location" = { dictionary = "locations", probability = 0.5 }',
        '"body.job" = { dictionary = "jobs", probability = 0.5 }',
        "[dictionaries]",
        'locations = { values = ["quick"] }',
        'jobs = { values = ["etl", "refresh_sales"] }',
        # The live event stream's body is text, and its schema says so ({"type": "string"},
        # as OpenAPI 3.1 reads it and generated clients need); Schemathesis reads a 3.1
        # text/event-stream schema as one event's instead, so it does not check this body.
        # Its frames are checked by test_runs.py and test_generated_client.py.
        "[[operations]]",
        f'include-path = "{STREAM_PATH}"',
        "checks.response_schema_conformance.enabled = false",
    ]
    if caller.name != "nexus":
        # A run's `caller` is the Nexus service's alone: from anyone else, a body the schema
        # allows (one schema for every caller) is refused with a 422 naming the field.
        lines += [
            "[[operations]]",
            f'include-name = "POST {RUNS_PATH}"',
            "checks.positive_data_acceptance.enabled = false",
        ]
    if token:
        lines[3:3] = [f'headers = {{ Authorization = "Bearer {token}" }}']
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.name)
def test_server_keeps_its_published_contract(
    target: Target, caller: Caller, tmp_path: Path
) -> None:
    token = {
        "user": target.tenant.user_token,
        "agent": target.tenant.agent_token,
        "run": target.run_token,
        "nexus": target.nexus_token,
        "anonymous": None,
    }[caller.name]
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(target, caller, token))
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{target.cp.url}/openapi.json",
        "--exclude-path",
        "/healthz",
        "--no-color",
    ]
    for tag in caller.tags:
        command += ["--include-tag", tag]
    result = subprocess.run(command, capture_output=True, text=True, timeout=580)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    assert "No operations" not in output, output[-5000:]
