"""AgentWorkflow's dispatching activities on their own, in Temporal's ``ActivityEnvironment``:
requests claimed from the session's control plane by the agent's real client, handed to
workflows on a Temporal test server (no worker serves them here: what counts is which
workflows exist, how many times each was started and what it was signaled).

Dispatching is idempotent: a request delivered twice (its lease expired before the ack, the
agent died holding it, an older AgentWorkflow's dispatch_request) reaches the one workflow
its ID names, started once."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment

from activities.agent import AgentActivities
from activities.context import AgentContext
from activities.controlplane import ControlPlaneClient
from tests.agent_unit.activity_support import temporal_test_server
from tests.support import Tenant
from tether_api.agent_requests import AGENT_REQUEST, AgentRequest
from tether_api.enums import RequestType
from workflows import names
from workflows.models import (
    Dispatched,
    DispatchInput,
    DispatchOutput,
    PollDispatchInput,
    PollDispatchOutput,
)

AGENT = "agent-1"


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[Client]:
    async with temporal_test_server() as environment:
        yield environment.client


@dataclass
class Dispatching:
    tenant: Tenant
    temporal: Client
    control_plane: ControlPlaneClient
    ctx: AgentContext

    @property
    def task_queue(self) -> str:
        """Where the default agent queue's workflows go (no worker polls it here)."""
        return names.queue_task_queue(self.ctx.task_queue_base, names.DEFAULT_AGENT_QUEUE)

    def poll_input(self) -> PollDispatchInput:
        return PollDispatchInput(
            organization=self.tenant.org,
            deployment=self.tenant.deployment,
            agent_name=AGENT,
            wait_seconds=0,
            max_requests=20,
        )

    async def poll_and_dispatch(self, agent: AgentActivities) -> list[Dispatched]:
        """One poll_and_dispatch of ``agent`` (an agent process: it holds the acks its next
        poll sends)."""
        output: PollDispatchOutput = await ActivityEnvironment().run(
            agent.poll_and_dispatch, self.poll_input()
        )
        return output.dispatched

    def dispatch_input(self, request: AgentRequest) -> DispatchInput:
        return DispatchInput(
            organization=self.tenant.org, deployment=self.tenant.deployment, request=request
        )

    async def starts(self, workflow_id: str) -> int:
        """How many times the workflow was started (its history's started events)."""
        handle = self.temporal.get_workflow_handle(workflow_id)
        started = [
            e
            async for e in handle.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
        ]
        return len(started)

    async def signals(self, workflow_id: str) -> list[str]:
        handle = self.temporal.get_workflow_handle(workflow_id)
        return [
            e.workflow_execution_signaled_event_attributes.signal_name
            async for e in handle.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ]

    def request_status(self, request: AgentRequest) -> Any:
        """The request's status as the control plane holds it, read through a ``fail``
        that changes nothing once a request is DONE (and would fail it otherwise)."""
        with self.tenant.agent() as c:
            r = c.post(
                f"/api/v1/agent/requests/{request.id}/fail",
                json={"attempt": request.attempt, "error": "probe", "retry": False},
            )
            assert r.status_code == 200, r.text
            return r.json()["status"]


@pytest.fixture
async def dispatching(tenant: Tenant, temporal: Client) -> AsyncIterator[Dispatching]:
    control_plane = ControlPlaneClient(tenant.cp.url, tenant.agent_token)
    base = names.default_task_queue(tenant.org, tenant.deployment)
    ctx = AgentContext(
        control_plane=control_plane,
        launcher=None,  # type: ignore[arg-type]  # dispatching launches nothing
        temporal=temporal,
        agent_name=AGENT,
        worker_control_plane_url=tenant.cp.url,
        task_queue_base=base,
        host_queue=names.host_task_queue(base, AGENT),
    )
    try:
        yield Dispatching(tenant, temporal, control_plane, ctx)
    finally:
        await control_plane.aclose()


def launched_run(tenant: Tenant) -> str:
    """A run of a deployed location: a SYNC_CODE_LOCATION (the deploy) and a LAUNCH_RUN
    request wait in the queue."""
    tenant.deploy("quick")
    run: dict[str, Any] = tenant.launch("quick", "etl", run_config={"source": "s3://orders"})
    return str(run["id"])


def the(dispatched: list[Dispatched], type_: RequestType) -> Dispatched:
    [found] = [d for d in dispatched if d.type == type_]
    return found


async def test_a_launch_delivered_twice_starts_the_runs_workflow_once(
    dispatching: Dispatching,
) -> None:
    """An agent claims the requests and dispatches them, then dies before its next poll
    could acknowledge them; once their lease expires another agent's poll_and_dispatch gets
    them again and dispatches them again: still one RunWorkflow, started once; that agent's
    next poll acknowledges them."""
    tenant = dispatching.tenant
    run_id = launched_run(tenant)
    workflow_id = names.run_workflow_id(run_id)

    # The first agent: a claim with a short lease, each request dispatched as
    # poll_and_dispatch does; its acknowledgements die with it.
    claimed = [AGENT_REQUEST.validate_python(r) for r in tenant.poll(lease_seconds=1)]
    assert {r.type for r in claimed} == {RequestType.LAUNCH_RUN, RequestType.SYNC_CODE_LOCATION}
    first = AgentActivities(dispatching.ctx)
    for request in claimed:
        output = await ActivityEnvironment().run(
            first._dispatch_or_fail, dispatching.dispatch_input(request)
        )
        assert output.action in ("started", names.SIGNAL_SYNC)
    started = await dispatching.temporal.get_workflow_handle(workflow_id).describe()
    assert started.task_queue == dispatching.task_queue

    await asyncio.sleep(1.2)  # the lease expires: the requests are visible again
    second = AgentActivities(dispatching.ctx)
    dispatched = await dispatching.poll_and_dispatch(second)

    launch = the(dispatched, RequestType.LAUNCH_RUN)
    assert launch == Dispatched(
        workflow_id=workflow_id,
        action="started",
        acknowledged=False,  # its ack rides on the next poll
        request_id=launch.request_id,
        type=RequestType.LAUNCH_RUN,
        subject=run_id,
    )
    again = await dispatching.temporal.get_workflow_handle(workflow_id).describe()
    assert again.run_id == started.run_id and again.status == WorkflowExecutionStatus.RUNNING
    assert await dispatching.starts(workflow_id) == 1
    # The location's workflow too: started once, signaled once per delivery.
    sync = the(dispatched, RequestType.SYNC_CODE_LOCATION)
    assert sync.workflow_id == names.code_location_workflow_id(tenant.org, "prod", "quick")
    assert await dispatching.starts(sync.workflow_id) == 1
    assert await dispatching.signals(sync.workflow_id) == [names.SIGNAL_SYNC] * 2

    # The next poll acknowledges them (in its claim) and finds nothing new.
    assert await dispatching.poll_and_dispatch(second) == []
    [launched] = [r for r in claimed if r.type == RequestType.LAUNCH_RUN]
    assert dispatching.request_status(launched.model_copy(update={"attempt": 2})) == "DONE"


async def test_a_launch_of_a_finished_runs_workflow_starts_nothing(
    dispatching: Dispatching,
) -> None:
    """A run's workflow ID is never reused: the launch dispatched again after the run's
    workflow closed (here dispatch_request, the activity of AgentWorkflows from before
    poll_and_dispatch, retried because its first answer was lost) starts no second one,
    says so, and is acknowledged."""
    run_id = launched_run(dispatching.tenant)
    workflow_id = names.run_workflow_id(run_id)
    [request] = [
        AGENT_REQUEST.validate_python(r)
        for r in dispatching.tenant.poll()
        if r["type"] == RequestType.LAUNCH_RUN
    ]
    agent = AgentActivities(dispatching.ctx)
    first = await ActivityEnvironment().run(
        agent.dispatch_request, dispatching.dispatch_input(request)
    )
    assert first == DispatchOutput(workflow_id=workflow_id, action="started", acknowledged=True)
    handle = dispatching.temporal.get_workflow_handle(workflow_id)
    await handle.terminate("the run ended")

    again = await ActivityEnvironment().run(
        agent.dispatch_request, dispatching.dispatch_input(request)
    )

    assert again == DispatchOutput(
        workflow_id=workflow_id, action="already-finished", acknowledged=True
    )
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
    assert await dispatching.starts(workflow_id) == 1
    assert dispatching.request_status(request) == "DONE"


async def test_a_terminate_and_its_launch_in_one_poll_reach_one_workflow(
    dispatching: Dispatching,
) -> None:
    """A run terminated while its launch waits: both requests come in one poll and are
    dispatched at once; the launch starts the workflow or the terminate does (signal with
    start), and the other joins it: one workflow, started once, signaled to terminate with
    the reason."""
    tenant = dispatching.tenant
    run_id = launched_run(tenant)
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/runs/{run_id}/terminate")
        assert r.status_code == 202, r.text

    dispatched = await dispatching.poll_and_dispatch(AgentActivities(dispatching.ctx))

    workflow_id = names.run_workflow_id(run_id)
    assert the(dispatched, RequestType.LAUNCH_RUN).workflow_id == workflow_id
    terminate = the(dispatched, RequestType.TERMINATE_RUN)
    assert (terminate.workflow_id, terminate.action) == (workflow_id, names.SIGNAL_TERMINATE)
    assert await dispatching.starts(workflow_id) == 1
    assert await dispatching.signals(workflow_id) == [names.SIGNAL_TERMINATE]


def _rewrite_payload(tenant: Tenant, type_: RequestType, payload: dict[str, Any]) -> None:
    """Store another payload in the tenant's pending request of that type, as a control plane
    of another version might have."""
    with _database(tenant).begin() as db:
        changed = db.execute(
            text(
                "UPDATE agent_requests SET payload = :payload WHERE type = :type "
                f"AND status = 'PENDING' AND deployment_id = ({_DEPLOYMENT})"
            ),
            {"payload": json.dumps(payload), "type": type_.value, "org": tenant.org},
        ).rowcount
    assert changed == 1


_DEPLOYMENT = (
    "SELECT d.id FROM deployments d JOIN organizations o ON d.organization_id = o.id "
    "WHERE o.name = :org"
)


def _database(tenant: Tenant) -> Engine:
    return create_engine(tenant.cp.database_url, poolclass=NullPool)


def _requests(tenant: Tenant, type_: RequestType) -> list[tuple[str, str]]:
    with _database(tenant).connect() as db:
        rows = db.execute(
            text(
                "SELECT status, error FROM agent_requests WHERE type = :type "
                f"AND deployment_id = ({_DEPLOYMENT})"
            ),
            {"type": type_.value, "org": tenant.org},
        )
        return [(status, error) for status, error in rows]


async def test_a_stored_payload_that_does_not_fit_fails_that_request_only(
    dispatching: Dispatching,
) -> None:
    """A request whose stored payload no longer fits its type's model is not handed out
    (every poll of the deployment would fail on it): it is failed, saying why, and the
    request beside it in the same poll is dispatched."""
    tenant = dispatching.tenant
    run_id = launched_run(tenant)
    _rewrite_payload(tenant, RequestType.LAUNCH_RUN, {"run_id": run_id})  # no location, job

    dispatched = await dispatching.poll_and_dispatch(AgentActivities(dispatching.ctx))

    assert [d.type for d in dispatched] == [RequestType.SYNC_CODE_LOCATION]
    with tenant.user() as c:
        answer = c.get(f"{tenant.dep_path}/runs/{run_id}")
    # Admitted, and no agent started it (the run monitor fails it after its start timeout).
    assert answer.json()["status"] == "STARTING" and answer.json()["agent"] is None
    [row] = _requests(tenant, RequestType.LAUNCH_RUN)
    status, error = row
    assert status == "FAILED"
    assert "does not fit its model" in error and "code_location" in error


async def test_a_request_type_this_agent_does_not_know_is_refused_and_the_rest_served(
    dispatching: Dispatching,
) -> None:
    """An agent older than its control plane polls a request of a type it does not know
    (here the control plane's answer is rewritten on its way, as a newer control plane's
    would read): the poll does not fail, the request is failed for good with why and what
    to do, and the request beside it is dispatched."""
    tenant = dispatching.tenant
    launched_run(tenant)
    real = httpx.AsyncClient(base_url=tenant.cp.url)

    async def newer_control_plane(request: httpx.Request) -> httpx.Response:
        answer = await real.send(
            real.build_request(
                request.method, request.url.path, headers=request.headers, content=request.content
            )
        )
        body = answer.content
        if request.url.path.endswith("/requests/poll"):
            polled = json.loads(body)
            for r in polled["requests"]:
                if r["type"] == RequestType.LAUNCH_RUN:
                    r["type"] = "MATERIALIZE_ASSETS"
            body = json.dumps(polled).encode()
        return httpx.Response(answer.status_code, content=body, headers=answer.headers)

    client = dispatching.control_plane
    original = client._http
    client._http = httpx.AsyncClient(
        base_url=original.base_url,
        headers=original.headers,
        transport=httpx.MockTransport(newer_control_plane),
    )
    try:
        dispatched = await dispatching.poll_and_dispatch(AgentActivities(dispatching.ctx))
    finally:
        await client._http.aclose()
        client._http = original
        await real.aclose()

    assert [d.type for d in dispatched] == [RequestType.SYNC_CODE_LOCATION]
    [(status, error)] = _requests(tenant, RequestType.LAUNCH_RUN)
    assert status == "FAILED"
    assert f"agent {AGENT} cannot read request" in error
    assert "'MATERIALIZE_ASSETS'" in error and "upgrade the agent" in error
