"""Duplicate deliveries and a control plane outage: nothing starts twice, nothing is lost."""

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment

from activities.agent import AgentActivities
from activities.context import AgentContext
from activities.controlplane import ControlPlaneClient
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
from tests.e2e.test_lifecycle import OPS, deploy_ops
from tests.support import ControlPlane, Tenant
from tether_api.agent_requests import AGENT_REQUEST
from workflows.models import DispatchInput


async def test_a_request_delivered_twice_starts_one_run_worker(
    e2e_tenant: Tenant, agent: AgentProcess, temporal_server: TemporalDevServer
) -> None:
    deploy_ops(e2e_tenant)
    agent.stop()  # the test claims the request itself, then delivers it twice
    run = e2e_tenant.launch("ops", "slow", run_config={"seconds": 2})
    claimed = [r for r in e2e_tenant.poll(wait=5) if r["type"] == "LAUNCH_RUN"]
    assert len(claimed) == 1
    request = AGENT_REQUEST.validate_python(claimed[0])

    temporal = await Client.connect(temporal_server.address, data_converter=pydantic_data_converter)
    control_plane = ControlPlaneClient(e2e_tenant.cp.url, e2e_tenant.agent_token)
    context = AgentContext(
        control_plane=control_plane,
        launcher=ProcessLauncher(agent.state_dir),
        temporal=temporal,
        agent_name=agent.name,
        worker_control_plane_url=e2e_tenant.cp.url,
    )
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, task_queue=agent.task_queue)
    dispatch = AgentActivities(context).dispatch_request
    body = DispatchInput(
        organization=e2e_tenant.org, deployment=e2e_tenant.deployment, request=request
    )
    try:
        first = await env.run(dispatch, body)
        started = await temporal.get_workflow_handle(f"run:{run['id']}").describe()
        second = await env.run(dispatch, body)
        assert first.action == second.action == "started" and first.acknowledged
        # The second delivery joined the same workflow execution: one RunWorkflow, not two.
        executions = [e async for e in temporal.list_workflows(f"WorkflowId = 'run:{run['id']}'")]
        assert [e.run_id for e in executions] == [started.run_id]

        agent.start()  # the run's workflow executes on the real agent
        done = wait_for_run(e2e_tenant, run["id"], timeout=60)
        assert done["status"] == "SUCCESS", done
        assert worker_starts(agent.state_dir, run["id"]) == 1, "one run worker"

        # Delivered again after the run's workflow finished: nothing starts.
        await temporal.get_workflow_handle(f"run:{run['id']}").result()
        third = await env.run(dispatch, body)
        assert third.action == "already-finished"
        time.sleep(1)
        assert worker_starts(agent.state_dir, run["id"]) == 1
    finally:
        await control_plane.aclose()


@pytest.fixture
def own_controlplane(tmp_path: Path) -> Iterator[ControlPlane]:
    cp = ControlPlane(
        tmp_path / "cp",
        run_start_timeout_seconds=3600,
        run_heartbeat_timeout_seconds=3600,
    )
    (tmp_path / "cp").mkdir()
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


def test_control_plane_down_for_30_s_mid_run_loses_nothing(
    own_controlplane: ControlPlane, temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    tenant = own_controlplane.tenant()
    agent = AgentProcess(tenant, temporal_server, tmp_path).start()
    try:
        tenant.deploy("ops", python_file=str(OPS))
        assert wait_for_location(tenant, "ops")["status"] == "RUNNING"
        run = tenant.launch("ops", "slow", run_config={"seconds": 20, "tick": 0.1})
        wait_for_run(tenant, run["id"], ("STARTED",))
        time.sleep(2)
        own_controlplane.stop()
        time.sleep(30)
        own_controlplane.start()
        done = wait_for_run(tenant, run["id"], timeout=120)
        assert done["status"] == "SUCCESS", done
        seen = events(tenant, run["id"])
        assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
        ticks = [e["message"] for e in seen if e["type"] == "LOG" and "tick" in e["message"]]
        assert ticks == [f"tick {i} of 200" for i in range(1, 201)]
        assert [e["type"] for e in seen if e["type"].startswith("RUN_")] == [
            "RUN_START",
            "RUN_SUCCESS",
        ]
        # The agent kept going: a new run after the outage works too.
        again = tenant.launch("ops", "quick")
        assert wait_for_run(tenant, again["id"])["status"] == "SUCCESS"
    finally:
        agent.stop()
        stop_launched(agent.state_dir)
