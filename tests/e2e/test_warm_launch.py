"""Warm launches end to end: a location deployed with ``launch: warm`` (the default) has its run
workers forked by its code server's fork server; one with ``launch: cold`` never forks. Real
control plane, Temporal dev server, agent, code servers and workers; one agent for the
module."""

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
from tests.support import ControlPlane, Tenant, children, command_pid, wait_until

OPS = Path(__file__).parent / "locations" / "ops.py"
VERSIONED = Path(__file__).parent / "locations" / "versioned.py"


@pytest.fixture(scope="module")
def stack(
    e2e_controlplane: ControlPlane,
    temporal_server: TemporalDevServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Tenant, AgentProcess, Path]]:
    tenant = e2e_controlplane.tenant()
    agent = AgentProcess(tenant, temporal_server, tmp_path_factory.mktemp("warm-agent")).start()
    # A copy, edited between generations by the redeploy test.
    versioned = tmp_path_factory.mktemp("versioned") / "versioned.py"
    versioned.write_text(VERSIONED.read_text())
    try:
        tenant.deploy("warm", python_file=str(OPS))  # warm by default
        tenant.deploy("cold", python_file=str(OPS), launch="cold")
        tenant.deploy("versioned", python_file=str(versioned))
        for name in ("warm", "cold", "versioned"):
            assert wait_for_location(tenant, name)["status"] == "RUNNING"
        yield tenant, agent, versioned
    finally:
        agent.stop()
        stop_launched(agent.state_dir)


def launched_how(tenant: Tenant, run_id: str) -> str:
    start = next(e for e in events(tenant, run_id) if e["type"] == "RUN_START")
    return str((start.get("data") or {}).get("launch"))


def test_a_warm_run_reports_what_a_cold_run_does(stack: tuple[Tenant, AgentProcess, Path]) -> None:
    tenant, _, _ = stack
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


def test_a_warm_run_is_terminated_to_canceled(stack: tuple[Tenant, AgentProcess, Path]) -> None:
    tenant, agent, _ = stack
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


def test_a_sigkilled_warm_worker_ends_failure(stack: tuple[Tenant, AgentProcess, Path]) -> None:
    tenant, agent, _ = stack
    run = tenant.launch("warm", "slow", run_config={"seconds": 60})
    wait_until(lambda: any(e["type"] == "LOG" for e in events(tenant, run["id"])), timeout=30)
    launcher = ProcessLauncher(agent.state_dir)
    handle = launcher.find(f"run:{run['id']}")
    assert handle is not None
    os.kill(command_pid(handle.pid), signal.SIGKILL)
    done = wait_for_run(tenant, run["id"])
    assert done["status"] == "FAILURE", done
    assert "killed by signal 9" in done["status_message"], done


def run_output(agent: AgentProcess, run_id: str) -> str:
    """The run's output.log, which says why a warm start fell back to a cold one."""
    found = list((agent.state_dir / "processes").glob(f"run_{run_id}*/output.log"))
    return found[0].read_text()[:3000] if found else "(no output.log)"


def version_logged(tenant: Tenant, run_id: str) -> str:
    logs = [e["message"] for e in events(tenant, run_id) if e["type"] == "LOG"]
    return next(m.split()[-1] for m in logs if m.startswith("code version"))


def test_warm_workers_finish_on_the_old_code_after_a_redeploy_and_are_adopted(
    stack: tuple[Tenant, AgentProcess, Path],
) -> None:
    tenant, agent, versioned = stack
    before = wait_for_location(tenant, "versioned")["generation"]
    old = tenant.launch("versioned", "version", run_config={"seconds": 8})
    wait_until(
        lambda: any(e["type"] == "STEP_START" for e in events(tenant, old["id"])), timeout=30
    )
    assert launched_how(tenant, old["id"]) == "warm"
    # New code, and a redeploy that replaces the code server (and its fork server) while the
    # old run is in flight.
    versioned.write_text(
        versioned.read_text().replace('CODE_VERSION = "v1"', 'CODE_VERSION = "v2"')
    )
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/code-locations/versioned/redeploy")
        assert r.status_code in (200, 202), r.text
    wait_until(
        lambda: wait_for_location(tenant, "versioned")["generation"] > before,
        timeout=60,
        what="the new generation",
    )
    wait_until(
        lambda: wait_for_location(tenant, "versioned")["status"] == "RUNNING",
        timeout=60,
        what="the new code server",
    )
    # The agent restarts meanwhile; the new one adopts the worker instead of starting another.
    agent.kill()
    agent.start()
    new = tenant.launch("versioned", "version")
    assert wait_for_run(tenant, new["id"])["status"] == "SUCCESS"
    # The new generation's code, whether forked from its code server or (while the restarted
    # agent's location workflow catches up) started cold: never the old server's.
    assert version_logged(tenant, new["id"]) == "v2", run_output(agent, new["id"])
    assert wait_for_run(tenant, old["id"], timeout=60)["status"] == "SUCCESS"
    assert version_logged(tenant, old["id"]) == "v1"  # finished on the old generation's code
    assert worker_starts(agent.state_dir, old["id"]) == 1

    def warm_on_v2() -> bool:
        run = tenant.launch("versioned", "version")
        assert wait_for_run(tenant, run["id"])["status"] == "SUCCESS"
        assert version_logged(tenant, run["id"]) == "v2"
        return launched_how(tenant, run["id"]) == "warm"

    # And warm again from the new generation's code server once the agent has caught up.
    wait_until(warm_on_v2, timeout=60, interval=1, what="a warm run on the new code server")


def test_a_cold_location_never_forks(stack: tuple[Tenant, AgentProcess, Path]) -> None:
    tenant, agent, _ = stack
    run = tenant.launch("cold", "quick")
    assert wait_for_run(tenant, run["id"])["status"] == "SUCCESS"
    assert launched_how(tenant, run["id"]) == "cold"
    launcher = ProcessLauncher(agent.state_dir)
    servers = {}
    for label in launcher.labels():
        handle = launcher.find(label)
        if handle is not None and handle.kind == "code-server":
            servers[label] = command_pid(handle.pid)
    location = {label: label.rsplit("#", 1)[0].rsplit(":", 1)[-1] for label in servers}
    cold = [label for label in servers if location[label] == "cold"]
    warm = [label for label in servers if location[label] == "warm"]
    assert cold and warm, servers
    for label in cold:  # no fork server: no socket, no child process
        assert not launcher.fork_socket(label).exists()
        assert children(servers[label]) == []
    for label in warm:  # while a warm location's code server has its fork server
        assert launcher.fork_socket(label).exists()
        assert len(children(servers[label])) == 1
    # Its run's output says how it started.
    handle_log = (agent.state_dir / "processes").glob(f"run_{run['id']}*/output.log")
    text = next(handle_log).read_text()
    assert "(warm, forked" not in text and "starting run-worker" in text
