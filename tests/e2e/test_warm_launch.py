"""Warm launches (issue 11, first part) end to end: a location deployed with ``launch: warm``
has its run workers forked by its code server's fork server. Real control plane, Temporal
dev server, agent, code servers and workers; one agent for the module."""

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.launchers.process import ProcessLauncher
from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    events,
    stop_launched,
    wait_for_location,
    wait_for_run,
    worker_starts,
)
from tests.support import ControlPlane, Tenant, wait_until

OPS = Path(__file__).parent / "locations" / "ops.py"


@pytest.fixture(scope="module")
def stack(
    e2e_controlplane: ControlPlane,
    temporal_server: TemporalDevServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Tenant, AgentProcess]]:
    tenant = e2e_controlplane.tenant()
    agent = AgentProcess(tenant, temporal_server, tmp_path_factory.mktemp("warm-agent")).start()
    try:
        tenant.deploy("warm", python_file=str(OPS), launch="warm")
        tenant.deploy("cold", python_file=str(OPS))
        for name in ("warm", "cold"):
            assert wait_for_location(tenant, name)["status"] == "RUNNING"
        yield tenant, agent
    finally:
        agent.stop()
        stop_launched(agent.state_dir)


def launched_how(tenant: Tenant, run_id: str) -> str:
    start = next(e for e in events(tenant, run_id) if e["type"] == "RUN_START")
    return str((start.get("data") or {}).get("launch"))


def test_a_warm_run_reports_what_a_cold_run_does(stack: tuple[Tenant, AgentProcess]) -> None:
    tenant, _ = stack
    runs = {how: tenant.launch(how, "quick") for how in ("warm", "cold")}
    seen = {}
    for how, run in runs.items():
        assert wait_for_run(tenant, run["id"])["status"] == "SUCCESS"
        assert launched_how(tenant, run["id"]) == how
        seen[how] = [(e["type"], e.get("step")) for e in events(tenant, run["id"])]
    assert seen["warm"] == seen["cold"]
    failed = tenant.launch("warm", "fails")
    done = wait_for_run(tenant, failed["id"])
    assert done["status"] == "FAILURE" and launched_how(tenant, failed["id"]) == "warm"


def test_a_warm_run_is_terminated_to_canceled(stack: tuple[Tenant, AgentProcess]) -> None:
    tenant, agent = stack
    run = tenant.launch("warm", "slow", run_config={"seconds": 60})
    wait_until(lambda: any(e["type"] == "LOG" for e in events(tenant, run["id"])), timeout=30)
    assert launched_how(tenant, run["id"]) == "warm"
    with tenant.user() as c:
        assert c.post(f"{tenant.dep_path}/runs/{run['id']}/terminate").status_code == 202
    done = wait_for_run(tenant, run["id"], timeout=30)
    assert done["status"] == "CANCELED", done
    assert [e["type"] for e in events(tenant, run["id"])][-1] == "RUN_CANCELED"
    launcher = ProcessLauncher(agent.state_dir)
    wait_until(lambda: launcher.find(f"run:{run['id']}") is None, what="the worker gone")


def test_a_sigkilled_warm_worker_ends_failure(stack: tuple[Tenant, AgentProcess]) -> None:
    tenant, agent = stack
    run = tenant.launch("warm", "slow", run_config={"seconds": 60})
    wait_until(lambda: any(e["type"] == "LOG" for e in events(tenant, run["id"])), timeout=30)
    launcher = ProcessLauncher(agent.state_dir)
    handle = launcher.find(f"run:{run['id']}")
    assert handle is not None
    child = launcher.child_pid(handle)
    assert child is not None
    os.kill(child, signal.SIGKILL)
    done = wait_for_run(tenant, run["id"])
    assert done["status"] == "FAILURE", done
    assert "killed by signal 9" in done["status_message"], done


def test_warm_workers_outlive_a_redeploy_and_a_restarted_agent_adopts_them(
    stack: tuple[Tenant, AgentProcess],
) -> None:
    tenant, agent = stack
    before = wait_for_location(tenant, "warm")["generation"]
    old = tenant.launch("warm", "slow", run_config={"seconds": 6})
    wait_until(lambda: any(e["type"] == "LOG" for e in events(tenant, old["id"])), timeout=30)
    # A redeploy replaces the code server (and its fork server) while the run is in flight:
    # the worker forked from the old one finishes on the old code.
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/code-locations/warm/redeploy")
        assert r.status_code in (200, 202), r.text
    wait_until(
        lambda: wait_for_location(tenant, "warm")["generation"] > before,
        timeout=60,
        what="the new generation",
    )
    assert wait_for_location(tenant, "warm")["status"] == "RUNNING"
    # The agent restarts meanwhile; the new one adopts the worker instead of starting another.
    agent.kill()
    agent.start()
    assert wait_for_run(tenant, old["id"], timeout=60)["status"] == "SUCCESS"
    assert worker_starts(agent.state_dir, old["id"]) == 1
    new = tenant.launch("warm", "quick")
    assert wait_for_run(tenant, new["id"])["status"] == "SUCCESS"
    assert launched_how(tenant, new["id"]) == "warm"
