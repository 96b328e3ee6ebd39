"""Control plane monitoring with short timeouts: stuck starts, silent workers, silent agents."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import running_controlplane
from tests.support import ControlPlane, Tenant, client, event, wait_until


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fast_cp(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    with running_controlplane(
        request.param,
        Path(tmp_path_factory.mktemp("fastcp")),
        run_start_timeout_seconds=1.5,
        run_heartbeat_timeout_seconds=2,
        agent_heartbeat_timeout_seconds=1,
        monitor_interval_seconds=0.2,
    ) as cp:
        yield cp


def test_run_stuck_starting_fails_and_is_cleaned_up(fast_cp: ControlPlane) -> None:
    tenant = fast_cp.tenant()
    tenant.deploy()
    run = tenant.launch()["id"]
    failed = wait_until(lambda: (r := tenant.run(run))["status"] == "FAILURE" and r, timeout=10)
    assert "did not start within 1.5 s" in failed["status_message"]
    kinds = [(r["type"], r["payload"].get("run_id")) for r in tenant.poll()]
    assert ("TERMINATE_RUN", run) in kinds


def test_silent_worker_fails_and_a_beating_one_does_not(fast_cp: ControlPlane) -> None:
    tenant: Tenant = fast_cp.tenant()
    tenant.deploy()
    silent, beating = tenant.launch()["id"], tenant.launch()["id"]
    tokens = {r: tenant.run_token(r) for r in (silent, beating)}
    for run, token in tokens.items():
        with client(fast_cp.url, token) as w:
            w.post(f"/api/v1/runs/{run}/events", json={"events": [event(1, "RUN_START")]})

    def silent_failed() -> bool:
        with client(fast_cp.url, tokens[beating]) as w:
            w.post(f"/api/v1/runs/{beating}/heartbeat")
        return tenant.run(silent)["status"] == "FAILURE"

    wait_until(silent_failed, timeout=10, interval=0.3)
    assert "no heartbeat from the run worker for 2 s" in tenant.run(silent)["status_message"]
    assert tenant.run(beating)["status"] == "STARTED"
    assert ("TERMINATE_RUN", silent) in [
        (r["type"], r["payload"].get("run_id")) for r in tenant.poll(max_requests=100)
    ]


def test_agent_without_heartbeat_shows_unavailable(fast_cp: ControlPlane) -> None:
    tenant = fast_cp.tenant()
    with tenant.agent() as a:
        a.post(
            "/api/v1/agent/heartbeat",
            json={
                "agent_name": "edge",
                "version": "0.1.0",
                "launcher": "process",
                "code_locations": [{"name": "quick", "status": "RUNNING"}],
            },
        )
    with tenant.user() as c:
        agents = c.get(f"{tenant.dep_path}/agents").json()
        assert agents[0]["available"] is True and agents[0]["code_locations"][0]["name"] == "quick"
        wait_until(
            lambda: c.get(f"{tenant.dep_path}/agents").json()[0]["available"] is False, timeout=5
        )
