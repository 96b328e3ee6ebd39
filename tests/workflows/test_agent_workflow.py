"""AgentWorkflow on the time-skipping test server: heartbeat, poll and dispatch every request,
continue-as-new once the history grows. (The path before PATCH_POLL_DISPATCHES, a poll then a
local activity per request, is covered by replaying tests/histories/agent.json.)"""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.workflows.conftest import Recorder, event_types, new_worker
from tether_api.agent_requests import AGENT_REQUEST, AgentRequest
from tether_api.enums import RequestStatus, RequestType
from workflows import names
from workflows.agent import AgentWorkflow
from workflows.models import (
    AgentHeartbeatInput,
    AgentWorkflowInput,
    Dispatched,
    DispatchInput,
    PollDispatchInput,
    PollDispatchOutput,
)

ORG, DEPLOYMENT, AGENT = "acme", "prod", "agent-1"


def request(id: str, type: RequestType, **payload: Any) -> AgentRequest:
    return AGENT_REQUEST.validate_python(
        {
            "id": id,
            "type": type,
            "payload": payload,
            "status": RequestStatus.CLAIMED,
            "attempt": 1,
            "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        }
    )


class AgentStandIns:
    """AgentWorkflow's activities, recorded. ``batches`` are answered by the first polls;
    after them every poll finds nothing (after a short wait, like a long poll)."""

    def __init__(self, batches: list[list[AgentRequest]] | None = None) -> None:
        self.rec = Recorder()
        self.batches = list(batches or [])

    @property
    def activities(self) -> list[Callable[..., Any]]:
        return [self.send_agent_heartbeat, self.poll_and_dispatch]

    @activity.defn(name=names.SEND_AGENT_HEARTBEAT)
    async def send_agent_heartbeat(self, input: AgentHeartbeatInput) -> None:
        self.rec.record(names.SEND_AGENT_HEARTBEAT, input)

    @activity.defn(name=names.POLL_AND_DISPATCH)
    async def poll_and_dispatch(self, input: PollDispatchInput) -> PollDispatchOutput:
        self.rec.record(names.POLL_AND_DISPATCH, input)
        if not self.batches:
            await asyncio.sleep(0.02)
            return PollDispatchOutput(dispatched=[])
        dispatched = []
        for r in self.batches.pop(0):
            # What the real activity hands each request to (recorded as its dispatch).
            self.rec.record(
                names.DISPATCH_REQUEST,
                DispatchInput(
                    organization=input.organization, deployment=input.deployment, request=r
                ),
            )
            dispatched.append(
                Dispatched(
                    workflow_id=f"for:{r.subject()}",
                    action="started",
                    acknowledged=True,
                    request_id=r.id,
                    type=r.type,
                    subject=r.subject(),
                )
            )
        return PollDispatchOutput(dispatched=dispatched)


def agent_input(**overrides: Any) -> AgentWorkflowInput:
    return AgentWorkflowInput(
        organization=ORG, deployment=DEPLOYMENT, agent_name=AGENT, **overrides
    )


async def start(
    env: WorkflowEnvironment, task_queue: str, input: AgentWorkflowInput
) -> WorkflowHandle[AgentWorkflow, None]:
    return await env.client.start_workflow(
        AgentWorkflow.run,
        input,
        id=names.agent_workflow_id(ORG, DEPLOYMENT, AGENT),
        task_queue=task_queue,
    )


async def test_heartbeats_first_then_dispatches_every_polled_request(
    env: WorkflowEnvironment,
) -> None:
    launch = request("req-1", RequestType.LAUNCH_RUN, run_id="r1", code_location="q", job="etl")
    sync = request("req-2", RequestType.SYNC_CODE_LOCATION, code_location="q", generation=3)
    acts = AgentStandIns([[launch, sync]])
    async with new_worker(env.client, [AgentWorkflow], acts.activities) as worker:
        agent = await start(env, worker.task_queue, agent_input(heartbeat_interval_seconds=3600))
        await acts.rec.wait_for(lambda: acts.rec.count(names.POLL_AND_DISPATCH) >= 4, what="polls")
        state = await agent.query(AgentWorkflow.state)
        await agent.signal(AgentWorkflow.stop)
        await agent.result()

    called = acts.rec.names()
    assert called[:2] == [names.SEND_AGENT_HEARTBEAT, names.POLL_AND_DISPATCH]
    assert sorted(called[2:4]) == [names.DISPATCH_REQUEST] * 2  # within the first poll
    assert called.count(names.SEND_AGENT_HEARTBEAT) == 1, "one heartbeat per interval"
    assert acts.rec.inputs(names.SEND_AGENT_HEARTBEAT)[0] == AgentHeartbeatInput(
        organization=ORG, deployment=DEPLOYMENT, agent_name=AGENT
    )
    assert acts.rec.inputs(names.POLL_AND_DISPATCH)[0] == PollDispatchInput(
        organization=ORG, deployment=DEPLOYMENT, agent_name=AGENT, wait_seconds=20, max_requests=20
    )
    dispatched: list[DispatchInput] = acts.rec.inputs(names.DISPATCH_REQUEST)
    assert sorted(dispatched, key=lambda d: d.request.id) == [
        DispatchInput(organization=ORG, deployment=DEPLOYMENT, request=launch),
        DispatchInput(organization=ORG, deployment=DEPLOYMENT, request=sync),
    ]
    assert state == {"dispatched": 2}


async def test_continues_as_new_when_the_history_grows(env: WorkflowEnvironment) -> None:
    acts = AgentStandIns()
    input = agent_input(continue_as_new_after_events=12, heartbeat_interval_seconds=3600)

    def runs() -> list[str | None]:
        return list(dict.fromkeys(c.run_id for c in acts.rec.calls))

    async with new_worker(env.client, [AgentWorkflow], acts.activities) as worker:
        agent = await start(env, worker.task_queue, input)
        first_run = agent.result_run_id
        await acts.rec.wait_for(lambda: len(runs()) >= 3, what="two continue-as-new")
        description = await agent.describe()
        await agent.terminate(reason="end of test")

    assert runs()[0] == first_run
    assert description.run_id not in (None, first_run)
    first = env.client.get_workflow_handle(agent.id, run_id=first_run)
    history = await event_types(first)
    assert history[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert len(history) > input.continue_as_new_after_events
    # Every run starts with a heartbeat (it does not know when the last one was sent) and
    # carries the same input.
    for run_id in runs():
        calls = [c for c in acts.rec.calls if c.run_id == run_id]
        assert calls[0].name == names.SEND_AGENT_HEARTBEAT
        assert all(c.input.agent_name == AGENT for c in calls)
    polls: list[PollDispatchInput] = acts.rec.inputs(names.POLL_AND_DISPATCH)
    assert {p.model_dump_json() for p in polls} == {polls[0].model_dump_json()}


async def test_stop_ends_the_workflow_even_when_the_run_continues_as_new(
    env: WorkflowEnvironment,
) -> None:
    """A stop that arrives during the iteration that continues as new must not be lost:
    here every iteration continues as new."""
    acts = AgentStandIns()
    input = agent_input(continue_as_new_after_events=12, heartbeat_interval_seconds=3600)
    async with new_worker(env.client, [AgentWorkflow], acts.activities) as worker:
        agent = await start(env, worker.task_queue, input)
        try:
            await acts.rec.wait_for(lambda: acts.rec.count(names.POLL_AND_DISPATCH) >= 2)
            await agent.signal(AgentWorkflow.stop)
            try:
                await asyncio.wait_for(agent.result(), timeout=3)
            except TimeoutError:
                runs = len({c.run_id for c in acts.rec.calls})
                pytest.fail(f"still running after the stop signal ({runs} runs so far)")
        finally:
            if (await agent.describe()).status == WorkflowExecutionStatus.RUNNING:
                await agent.terminate(reason="end of test")


@pytest.mark.parametrize(
    "batches", [[], [[request("req-9", RequestType.REMOVE_CODE_LOCATION, code_location="q")]]]
)
async def test_stop_ends_the_workflow_after_the_current_poll(
    env: WorkflowEnvironment, batches: list[list[AgentRequest]]
) -> None:
    acts = AgentStandIns(batches)
    async with new_worker(env.client, [AgentWorkflow], acts.activities) as worker:
        agent = await start(env, worker.task_queue, agent_input())
        await acts.rec.wait_for(lambda: acts.rec.count(names.POLL_AND_DISPATCH) >= 2, what="polls")
        polls_at_stop = acts.rec.count(names.POLL_AND_DISPATCH)
        await agent.signal(AgentWorkflow.stop)
        # An ignored stop would poll forever: bounded, so that fails instead of hanging.
        await asyncio.wait_for(agent.result(), timeout=10)

    # The poll under way when the stop arrived may finish; no further one starts.
    assert acts.rec.count(names.POLL_AND_DISPATCH) <= polls_at_stop + 1
    assert acts.rec.count(names.DISPATCH_REQUEST) == sum(len(b) for b in batches)
