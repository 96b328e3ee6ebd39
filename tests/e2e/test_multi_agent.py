"""Several agents on one deployment, each with a state directory of its own as on a host of
its own: runs spread, each launched once; losing an agent's host costs its healthy runs
nothing; code servers come back on a live agent; agent queues route locations and runs.

Real Temporal (the session's dev server), a real control plane, real agent processes and
real run workers and code servers."""

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.launchers.base import LaunchSpec
from activities.launchers.process import ProcessLauncher
from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    location,
    stop_launched,
    wait_for_location,
    wait_for_run,
    worker_starts,
)
from tests.support import ControlPlane, Tenant, wait_until
from tether_api.locations import CodeLocationSpec
from workflows import names
from workflows.models import CodeLocationState

OPS = Path(__file__).parent / "locations" / "ops.py"

# Short enough for a test, in the same proportions as the defaults: an agent heartbeats
# several times per agent timeout; a run worker (every 5 s) likewise per run timeout.
CONTROL_PLANE: dict[str, Any] = {
    "run_start_timeout_seconds": 3600,
    "run_heartbeat_timeout_seconds": 15,
    "agent_heartbeat_timeout_seconds": 12,
    "monitor_interval_seconds": 1,
}
AGENT_ENV = {
    "TETHER_AGENT_HEARTBEAT_INTERVAL": 2,
    "TETHER_RUN_HOST_LOST_AFTER_SECONDS": 3,
    "TETHER_CODE_LOCATION_HOST_LOST_AFTER_SECONDS": 3,
    "TETHER_RUN_LOST_HOST_CHECK_SECONDS": 1,
}


@pytest.fixture
def controlplane(tmp_path: Path) -> Iterator[ControlPlane]:
    (tmp_path / "cp").mkdir()
    cp = ControlPlane(tmp_path / "cp", **CONTROL_PLANE).start()
    try:
        yield cp
    finally:
        cp.stop()


class Agents:
    """The test's agents; everything they launched is stopped at the end."""

    def __init__(self, tenant: Tenant, temporal: TemporalDevServer, workdir: Path) -> None:
        self.tenant = tenant
        self.temporal = temporal
        self.workdir = workdir
        self.all: dict[str, AgentProcess] = {}

    def start(self, name: str, queues: tuple[str, ...] = (), **kwargs: Any) -> AgentProcess:
        agent = AgentProcess(
            self.tenant,
            self.temporal,
            self.workdir,
            name,
            state_dir=self.workdir / f"state-{name}",
            queues=queues,
            **{**AGENT_ENV, **kwargs},
        ).start()
        self.all[name] = agent
        return agent

    def close(self) -> None:
        for agent in self.all.values():
            agent.stop()
            stop_launched(agent.state_dir)


@pytest.fixture
def agents(
    controlplane: ControlPlane, temporal_server: TemporalDevServer, tmp_path: Path
) -> Iterator[Agents]:
    group = Agents(controlplane.tenant(), temporal_server, tmp_path)
    try:
        yield group
    finally:
        group.close()


async def location_state(temporal: TemporalDevServer, tenant: Tenant, name: str) -> Any:
    client = await Client.connect(temporal.address, data_converter=pydantic_data_converter)
    workflow_id = names.code_location_workflow_id(tenant.org, tenant.deployment, name)
    handle = client.get_workflow_handle(workflow_id)
    return await handle.query(names.QUERY_STATE, result_type=CodeLocationState)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its supervisor) counts as gone.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_losing_an_agent_costs_its_healthy_runs_nothing(
    agents: Agents, temporal_server: TemporalDevServer
) -> None:
    tenant = agents.tenant
    first, second = agents.start("host-a"), agents.start("host-b")
    tenant.deploy("ops", python_file=str(OPS))
    assert wait_for_location(tenant, "ops")["status"] == "RUNNING"
    before = await location_state(temporal_server, tenant, "ops")
    assert before.server.agent in ("host-a", "host-b")
    victim = agents.all[before.server.agent]
    survivor = second if victim is first else first

    runs = [tenant.launch("ops", "slow", run_config={"seconds": 30, "tick": 0.2}) for _ in range(8)]
    started = [wait_for_run(tenant, r["id"], ("STARTED",), timeout=90) for r in runs]
    by_agent: dict[str, list[str]] = {}
    for run in started:
        by_agent.setdefault(run["agent"], []).append(run["id"])
    assert set(by_agent) == {"host-a", "host-b"}, f"runs were not spread: {by_agent}"
    # Each launched once, on its own agent's host only.
    for name, ids in by_agent.items():
        other = agents.all["host-b" if name == "host-a" else "host-a"]
        for run_id in ids:
            assert worker_starts(agents.all[name].state_dir, run_id) == 1
            assert worker_starts(other.state_dir, run_id) == 0

    # The victim's host goes away: its agent is killed, and one of its run workers dies
    # with it a moment later; its other workers keep running and heartbeating.
    victims_runs = by_agent[victim.name]
    doomed = victims_runs[0]
    doomed_worker = ProcessLauncher(victim.state_dir).find(f"run:{doomed}")
    assert doomed_worker is not None and doomed_worker.pid is not None
    old_server = before.server
    victim.kill()
    time.sleep(1)
    os.killpg(doomed_worker.pid, signal.SIGKILL)  # its supervisor's group: the whole worker

    for run_id in victims_runs[1:] + by_agent[survivor.name]:
        done = wait_for_run(tenant, run_id, timeout=120)
        assert done["status"] == "SUCCESS", done
    failed = wait_for_run(tenant, doomed, timeout=120)
    assert failed["status"] == "FAILURE", failed
    assert f"agent {victim.name} and its host were lost" in failed["status_message"], failed

    # The code server came back on the live agent; the location serves new runs.
    def moved() -> Any:
        state = wait_for_location(tenant, "ops", ("RUNNING",), timeout=60)
        return state if state["status"] == "RUNNING" else None

    wait_until(moved, timeout=90, what="ops RUNNING again")
    after = await location_state(temporal_server, tenant, "ops")
    assert after.server is not None and after.server.agent == survivor.name, after
    history = [c["message"] or "" for c in location(tenant, "ops")["status_history"]]
    assert any(f"agent {victim.name} is lost" in m for m in history), history
    again = tenant.launch("ops", "quick")
    assert wait_for_run(tenant, again["id"], timeout=60)["status"] == "SUCCESS"

    # Their workflows end too (after best-effort clean-ups on the lost host time out).
    client = await Client.connect(temporal_server.address, data_converter=pydantic_data_converter)
    for run_id in victims_runs:
        handle = client.get_workflow_handle(names.run_workflow_id(run_id))
        result = await asyncio.wait_for(handle.result(), timeout=60)
        assert result["status"] == tenant.run(run_id)["status"]

    # The lost host comes back: its old code server is stopped, so the location does not
    # end with two servers. So is a copy of the new one there (as a start that was retried on
    # the survivor after the victim died inside it would leave): the survivor's is the one.
    assert old_server.pid is not None and alive(old_server.pid)
    assert after.server.label is not None
    copy = ProcessLauncher(victim.state_dir).start(
        LaunchSpec(
            label=after.server.label,
            kind="code-server",
            location=CodeLocationSpec(
                module="unused", command=[sys.executable, "-c", "import time; time.sleep(600)"]
            ),
        )
    )
    assert copy.pid is not None and alive(copy.pid)
    agents.start(victim.name)
    wait_until(lambda: not alive(copy.pid or 0), timeout=60, what="the stray copy stopped")
    wait_until(lambda: not alive(old_server.pid or 0), timeout=60, what="old server stopped")
    for _ in range(100):
        final = await location_state(temporal_server, tenant, "ops")
        if not final.abandoned:
            break
        await asyncio.sleep(0.2)
    assert final.server.label == after.server.label and final.abandoned == []
    assert after.server.pid is not None and alive(after.server.pid)  # the survivor's serves on


async def test_agent_queues_route_locations_and_runs(
    agents: Agents, temporal_server: TemporalDevServer
) -> None:
    tenant = agents.tenant
    agents.start("general")
    agents.start("gpu-box", queues=("gpu",))
    tenant.deploy("trainer", python_file=str(OPS), agent_queue="gpu")
    tenant.deploy("plain", python_file=str(OPS))
    assert wait_for_location(tenant, "trainer")["status"] == "RUNNING"
    assert wait_for_location(tenant, "plain")["status"] == "RUNNING"
    assert (await location_state(temporal_server, tenant, "trainer")).server.agent == "gpu-box"
    assert (await location_state(temporal_server, tenant, "plain")).server.agent == "general"
    for _ in range(3):
        run = tenant.launch("trainer", "quick")
        done = wait_for_run(tenant, run["id"], timeout=60)
        assert done["status"] == "SUCCESS" and done["agent"] == "gpu-box", done

    # A queue nobody serves: the location says so, and is served once an agent does.
    tenant.deploy("spark", python_file=str(OPS), agent_queue="spark")
    waiting = location(tenant, "spark")
    assert waiting["status"] == "PENDING"
    assert "no live agent serves agent queue 'spark'" in waiting["warning"], waiting
    assert "tether agent run --queue spark" in waiting["warning"]
    agents.start("spark-box", queues=("spark",))
    assert wait_for_location(tenant, "spark")["status"] == "RUNNING"
    assert location(tenant, "spark")["warning"] is None
    assert (await location_state(temporal_server, tenant, "spark")).server.agent == "spark-box"


async def test_a_slow_restart_of_the_only_agent_adopts_its_code_server(
    agents: Agents, temporal_server: TemporalDevServer
) -> None:
    """Down for longer than host_lost_after, but no other agent could take over: when it is
    back it adopts its server instead of restarting it."""
    tenant = agents.tenant
    only = agents.start("only")
    tenant.deploy("ops", python_file=str(OPS))
    assert wait_for_location(tenant, "ops")["status"] == "RUNNING"
    before = await location_state(temporal_server, tenant, "ops")
    only.kill()
    time.sleep(20)  # heartbeat timeout (10 s) + host_lost_after (3 s), and then some
    agents.start("only")
    run = tenant.launch("ops", "quick")
    assert wait_for_run(tenant, run["id"], timeout=60)["status"] == "SUCCESS"
    after = await location_state(temporal_server, tenant, "ops")
    assert after.server is not None and before.server is not None
    assert (after.server.label, after.server.pid) == (before.server.label, before.server.pid)
    assert after.deploys == before.deploys and after.abandoned == []
