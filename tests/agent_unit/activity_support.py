"""Shared by the activity tests that run the agent's activities in Temporal's
``ActivityEnvironment`` against a real control plane (the session's, on loopback): a
time-skipping Temporal test server of the module's, stand-in CodeLocationWorkflows that
answer the ``state`` query as a location's workflow would, and a control plane client that
keeps what the activities report (the control plane stores only what its settings allow)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from temporalio import workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.controlplane import ControlPlaneClient
from tether_api.agent_api import RunStatusReport
from tether_api.user_api import Run
from worker.temporal_binary import temporal_binary
from workflows import names
from workflows.models import CodeLocationState


@asynccontextmanager
async def temporal_test_server() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server, installed with the test dependencies (offline),
    with the agent's data converter."""
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    try:
        yield environment
    finally:
        await environment.shutdown()


@workflow.defn(name=names.CODE_LOCATION_WORKFLOW)
class LocationStandIn:
    """Answers the ``state`` query with the state it was started with, as a code location's
    workflow answers with where its code server is; it never ends."""

    @workflow.init
    def __init__(self, state: CodeLocationState) -> None:
        self._state = state

    @workflow.run
    async def run(self, state: CodeLocationState) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.query(name=names.QUERY_STATE)
    def state(self) -> CodeLocationState:
        return self._state


@asynccontextmanager
async def location_workflows(client: Client, task_queue: str) -> AsyncIterator[None]:
    """A worker serving ``LocationStandIn`` on ``task_queue`` (unsandboxed: it is the test
    module's class)."""
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[LocationStandIn],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        yield


async def start_location_workflow(
    client: Client,
    task_queue: str,
    organization: str,
    deployment: str,
    state: CodeLocationState,
) -> None:
    """The location's workflow, under the ID the agent looks for, answering with ``state``
    (asked once here, so that the activity's query is answered at once)."""
    handle = await client.start_workflow(
        LocationStandIn.run,
        state,
        id=names.code_location_workflow_id(organization, deployment, state.name),
        task_queue=task_queue,
    )
    await handle.query(LocationStandIn.state)


class RecordingControlPlane(ControlPlaneClient):
    """The agent's real client, keeping each run status report it sends (before the control
    plane applies its own log settings to it)."""

    def __init__(self, base_url: str, token: str) -> None:
        super().__init__(base_url, token)
        self.reports: list[tuple[str, RunStatusReport]] = []

    async def report_run(self, run_id: str, body: RunStatusReport) -> Run:
        self.reports.append((run_id, body))
        return await super().report_run(run_id, body)

    def reports_of(self, run_id: str) -> list[RunStatusReport]:
        return [body for rid, body in self.reports if rid == run_id]


class Heartbeats:
    """An ``ActivityEnvironment`` that counts the activity's heartbeats."""

    def __init__(self) -> None:
        self.env = ActivityEnvironment()
        self.details: list[tuple[Any, ...]] = []
        self.env.on_heartbeat = self._beat

    def _beat(self, *details: Any) -> None:
        self.details.append(details)

    @property
    def count(self) -> int:
        return len(self.details)
