"""A run waiting on a code server that died follows the location to its new one.

Two agents, each with a state directory of its own as on a host of its own. The agent that
hosts the location's code server is stopped (SIGTERM) and the code server killed; runs
submitted meanwhile are prepared by the other agent, which still finds the dead server in the
location's state and sends their validation to its host. When that agent is back, the
location restarts its server; the runs, whose validation there finds nobody at the old
address, look for the location again and start on the new server, instead of asking the
dead address until their start timeout (5 minutes).

Real Temporal (the session's dev server), a real control plane, real agent processes, code
servers and run workers."""

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from tests.agent_support import TemporalDevServer, events, location, wait_for_location, wait_for_run
from tests.e2e.test_multi_agent import CONTROL_PLANE, OPS, Agents, alive, location_state
from tests.support import ControlPlane, wait_until
from workflows import names

# The stopped agent is back long before its queue counts as lost: its host is not, and what
# waits on that queue (the code server's watch, the runs' validation) is done by it.
HOST_LOST_AFTER = 60


@pytest.fixture
def agents(temporal_server: TemporalDevServer, tmp_path: Path) -> Iterator[Agents]:
    """Two agents' worth of test_multi_agent's set-up: a control plane of the test's own,
    with agent and run timeouts short enough for a test."""
    (tmp_path / "cp").mkdir()
    cp = ControlPlane(tmp_path / "cp", **CONTROL_PLANE).start()
    group = Agents(cp.tenant(), temporal_server, tmp_path)
    try:
        yield group
    finally:
        group.close()
        cp.stop()


async def pending_validations(client: Client, run_ids: list[str]) -> int:
    """How many of these runs wait on a validate_run."""
    waiting = 0
    for run_id in run_ids:
        try:
            described = await client.get_workflow_handle(names.run_workflow_id(run_id)).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            continue  # not dispatched yet
        pending = described.raw_description.pending_activities
        waiting += any(a.activity_type.name == names.VALIDATE_RUN for a in pending)
    return waiting


async def test_runs_waiting_on_a_dead_code_server_start_on_its_replacement(
    agents: Agents, temporal_server: TemporalDevServer
) -> None:
    tenant = agents.tenant
    lost = {
        "TETHER_RUN_HOST_LOST_AFTER_SECONDS": HOST_LOST_AFTER,
        "TETHER_CODE_LOCATION_HOST_LOST_AFTER_SECONDS": HOST_LOST_AFTER,
    }
    agents.start("host-a", **lost)
    agents.start("host-b", **lost)
    tenant.deploy("ops", python_file=str(OPS))
    assert wait_for_location(tenant, "ops")["status"] == "RUNNING"
    before = await location_state(temporal_server, tenant, "ops")
    assert before.server is not None and before.server.pid is not None
    assert before.server.agent is not None
    host = agents.all[before.server.agent]

    host.stop()  # SIGTERM: its code server is left running, to be adopted
    assert alive(before.server.pid)
    os.killpg(before.server.pid, signal.SIGKILL)
    wait_until(lambda: not alive(before.server.pid or 0), what="the code server dead")
    runs = [tenant.launch("ops", "quick")["id"] for _ in range(3)]

    # The other agent prepared them: their validation waits on the stopped agent's queue.
    client = await Client.connect(temporal_server.address, data_converter=pydantic_data_converter)
    for _ in range(300):
        if await pending_validations(client, runs) == len(runs):
            break
        await asyncio.sleep(0.1)
    assert await pending_validations(client, runs) == len(runs)
    time.sleep(3)
    agents.start(host.name, **lost)
    back = time.monotonic()

    for run_id in runs:
        done = wait_for_run(tenant, run_id, timeout=60)
        assert done["status"] == "SUCCESS", done
        assert next(e["type"] for e in events(tenant, run_id)) == "RUN_START"
    assert time.monotonic() - back < 60
    after = await location_state(temporal_server, tenant, "ops")
    assert after.server is not None and after.server.label != before.server.label
    history = [c["message"] or "" for c in location(tenant, "ops")["status_history"]]
    assert any(m.startswith("code server #1 exited") for m in history), history
