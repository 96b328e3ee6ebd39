"""TickWorkflow on the time-skipping test server: locate -> evaluate and report on the code
server's host, and every way of getting no answer (no code server, a server that does not
answer, a lost host), each reported to the control plane as the tick's error in the agent's
words. The user's text (cursor, run requests, the function's error) never passes through the
workflow: what it reports and returns is checked for a marker the stand-ins put in their
failures and answers. (The path from before the patch is replayed from tests/histories/.)"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.conftest import Recorder, new_worker, unique_id
from tether_api.enums import TickKind, TickStatus
from tether_api.ticks import EvaluateTickPayload, TickOutcome, TickRequest
from workflows import names
from workflows.models import (
    TICK_ERROR_RECORDED,
    EvaluateAndReportTickInput,
    LocateInput,
    LocateOutput,
    ReportTickInput,
    TickReported,
    TickWorkflowInput,
)
from workflows.tick import TickWorkflow

MARKER = "user-text-7f3a9c"
# The tick's identity, as the agent's dispatch starts the workflow with (held: no cursor,
# no ended runs).
TICK = TickRequest(
    kind=TickKind.SENSOR,
    name="inbox",
    tick_time=datetime(2030, 1, 1, tzinfo=UTC),
    timeout_seconds=5,
)


class TickStandIns:
    def __init__(self) -> None:
        self.rec = Recorder()
        self.locate: Callable[[LocateInput], Awaitable[LocateOutput]] = self.here
        self.evaluate: Callable[[EvaluateAndReportTickInput], Awaitable[TickReported]] = (
            self.made_a_run
        )

    @staticmethod
    async def here(input: LocateInput) -> LocateOutput:
        return LocateOutput(address="http://127.0.0.1:4567")

    @staticmethod
    async def made_a_run(input: EvaluateAndReportTickInput) -> TickReported:
        return TickReported(status=TickStatus.SUCCESS, run_ids=["r1"])

    def activities(self) -> list[Callable[..., object]]:
        @activity.defn(name=names.LOCATE_CODE_SERVER)
        async def locate_code_server(input: LocateInput) -> LocateOutput:
            self.rec.record(names.LOCATE_CODE_SERVER, input)
            return await self.locate(input)

        @activity.defn(name=names.EVALUATE_AND_REPORT_TICK)
        async def evaluate_and_report_tick(input: EvaluateAndReportTickInput) -> TickReported:
            self.rec.record(names.EVALUATE_AND_REPORT_TICK, (input, activity.info().task_queue))
            return await self.evaluate(input)

        @activity.defn(name=names.REPORT_TICK)
        async def report_tick(input: ReportTickInput) -> TickOutcome:
            self.rec.record(names.REPORT_TICK, input)
            # As the control plane answers a tick that had ended with the user's error.
            return TickOutcome(
                status=TickStatus.FAILURE, error=f"ValueError: {MARKER}", already_final=True
            )

        return [locate_code_server, evaluate_and_report_tick, report_tick]


async def run_tick(
    env: WorkflowEnvironment, worker: Worker, held: bool = True, **extra: float
) -> tuple[str, TickOutcome]:
    payload = EvaluateTickPayload(kind=TickKind.SENSOR, tick_id=7, code_location="loc", tick=TICK)
    workflow_id = unique_id("tick")
    outcome: TickOutcome = await env.client.execute_workflow(
        TickWorkflow.run,
        TickWorkflowInput(
            organization="o",
            deployment="d",
            **({"held_payload": payload} if held else {"payload": payload}),
            **extra,
        ),
        id=workflow_id,
        task_queue=worker.task_queue,
    )
    return workflow_id, outcome


def evaluated(stand_ins: TickStandIns) -> list[tuple[EvaluateAndReportTickInput, str]]:
    return list(stand_ins.rec.inputs(names.EVALUATE_AND_REPORT_TICK))


def reported(stand_ins: TickStandIns) -> ReportTickInput:
    [report] = stand_ins.rec.inputs(names.REPORT_TICK)
    assert isinstance(report, ReportTickInput)
    return report


@pytest.mark.parametrize("held", [True, False], ids=["held", "dispatched-before"])
async def test_the_code_servers_host_evaluates_and_reports(
    env: WorkflowEnvironment, held: bool
) -> None:
    stand_ins = TickStandIns()
    worker = new_worker(env.client, [TickWorkflow], stand_ins.activities())
    async with worker:
        workflow_id, outcome = await run_tick(env, worker, held=held)
        history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    assert outcome == TickOutcome(status=TickStatus.SUCCESS, run_ids=["r1"])
    # The activity reports itself: the workflow does not, and never holds the answer.
    assert stand_ins.rec.names() == [names.LOCATE_CODE_SERVER, names.EVALUATE_AND_REPORT_TICK]
    [(input, queue)] = evaluated(stand_ins)
    assert input.held is held  # a workflow an earlier agent started has the whole request
    assert (input.payload.kind, input.payload.tick_id, input.payload.tick) == (
        TickKind.SENSOR,
        7,
        TICK,
    )
    assert input.workflow_id == workflow_id and input.address == "http://127.0.0.1:4567"
    assert input.report_for_seconds == 3600
    assert queue == worker.task_queue
    markers = [
        e.marker_recorded_event_attributes.marker_name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    assert markers == ["core_patch"]  # the patch, recorded before the first activity


async def test_evaluation_runs_on_the_code_servers_host(env: WorkflowEnvironment) -> None:
    stand_ins = TickStandIns()
    host = new_worker(env.client, [], stand_ins.activities())
    worker = new_worker(env.client, [TickWorkflow], stand_ins.activities())

    async def elsewhere(input: LocateInput) -> LocateOutput:
        return LocateOutput(address="http://10.0.0.2:4567", host_queue=host.task_queue)

    stand_ins.locate = elsewhere
    async with worker, host:
        await run_tick(env, worker)
    [(input, queue)] = evaluated(stand_ins)
    assert queue == host.task_queue and input.address == "http://10.0.0.2:4567"


async def test_a_failed_tick_is_returned_without_its_error(env: WorkflowEnvironment) -> None:
    stand_ins = TickStandIns()

    async def function_raised(input: EvaluateAndReportTickInput) -> TickReported:
        return TickReported(status=TickStatus.FAILURE, error=TICK_ERROR_RECORDED)

    stand_ins.evaluate = function_raised
    worker = new_worker(env.client, [TickWorkflow], stand_ins.activities())
    async with worker:
        _, outcome = await run_tick(env, worker)
    assert outcome == TickOutcome(status=TickStatus.FAILURE, error=TICK_ERROR_RECORDED)
    assert stand_ins.rec.count(names.REPORT_TICK) == 0


async def test_no_code_server_is_reported_in_the_agents_words(env: WorkflowEnvironment) -> None:
    stand_ins = TickStandIns()

    async def not_ready(input: LocateInput) -> LocateOutput:
        # As an agent of an earlier version says it: with the location's load error.
        raise ApplicationError(f"code location loc is ERROR: {MARKER}", type="CodeLocationNotReady")

    stand_ins.locate = not_ready
    worker = new_worker(env.client, [TickWorkflow], stand_ins.activities())
    async with worker:
        _, outcome = await run_tick(env, worker, locate_for_seconds=2)
    assert stand_ins.rec.count(names.EVALUATE_AND_REPORT_TICK) == 0
    assert stand_ins.rec.count(names.LOCATE_CODE_SERVER) > 1  # retried until the bound
    error = reported(stand_ins).report.error
    assert error is not None and error.message == (
        "no code server of loc to evaluate sensor inbox of loc: the code location had no "
        "RUNNING code server (retried until its time ran out)"
    )
    assert reported(stand_ins).report.response is None
    # The control plane's answer (the tick's error) is not the workflow's result.
    assert outcome.status == TickStatus.FAILURE and outcome.error == TICK_ERROR_RECORDED


async def test_a_code_server_that_does_not_answer_is_tried_three_times(
    env: WorkflowEnvironment,
) -> None:
    stand_ins = TickStandIns()

    async def down(input: EvaluateAndReportTickInput) -> TickReported:
        raise ApplicationError(f"connection refused {MARKER}", type="CodeServerUnavailable")

    stand_ins.evaluate = down
    worker = new_worker(env.client, [TickWorkflow], stand_ins.activities())
    async with worker:
        _, outcome = await run_tick(env, worker)
    assert outcome.status == TickStatus.FAILURE and MARKER not in str(outcome)
    assert stand_ins.rec.count(names.EVALUATE_AND_REPORT_TICK) == 3
    report = reported(stand_ins)
    assert (report.kind, report.tick_id) == (TickKind.SENSOR, 7)
    assert report.report.error is not None
    assert report.report.error.message == (
        "could not evaluate sensor inbox of loc: the code server did not answer"
    )
    assert report.report.workflow_id and report.report.workflow_id.startswith("tick-")


async def test_a_refusal_is_not_retried_and_named_by_its_type(env: WorkflowEnvironment) -> None:
    stand_ins = TickStandIns()

    async def refused(input: EvaluateAndReportTickInput) -> TickReported:
        raise ApplicationError(f"odd {MARKER}", type="SomethingNew", non_retryable=True)

    stand_ins.evaluate = refused
    worker = new_worker(env.client, [TickWorkflow], stand_ins.activities())
    async with worker:
        await run_tick(env, worker)
    assert stand_ins.rec.count(names.EVALUATE_AND_REPORT_TICK) == 1
    error = reported(stand_ins).report.error
    assert error is not None and MARKER not in error.message
    assert error.message.endswith(": the activity failed with SomethingNew")


async def test_a_lost_host_is_reported_after_host_lost_seconds(env: WorkflowEnvironment) -> None:
    stand_ins = TickStandIns()

    async def on_a_lost_host(input: LocateInput) -> LocateOutput:
        return LocateOutput(address="http://10.0.0.9:4567", host_queue="nobody-polls-this")

    stand_ins.locate = on_a_lost_host
    worker = new_worker(env.client, [TickWorkflow], stand_ins.activities())
    async with worker:
        _, outcome = await run_tick(env, worker, host_lost_after_seconds=2)
    assert outcome.status == TickStatus.FAILURE
    error = reported(stand_ins).report.error
    assert error is not None and error.message == (
        "could not evaluate sensor inbox of loc: no agent took the evaluation from the code "
        "server's host's queue within 2 s (its agent is lost?)"
    )


def test_an_agent_of_an_earlier_version_cannot_read_a_held_input() -> None:
    """During a rolling upgrade both versions poll the same queues. The earlier version's
    TickWorkflowInput required ``payload``: it must fail to read a held input (its workflow
    task fails and is retried until a current agent takes it) rather than evaluate a sensor
    with no cursor and no ended runs."""

    class EarlierTickWorkflowInput(BaseModel):  # as released before PATCH_TICK_HELD
        organization: str
        deployment: str
        payload: EvaluateTickPayload
        host_lost_after_seconds: float = 60
        locate_for_seconds: float = 60

    payload = EvaluateTickPayload(kind=TickKind.SENSOR, tick_id=7, code_location="loc", tick=TICK)
    held = TickWorkflowInput(organization="o", deployment="d", held_payload=payload)
    with pytest.raises(ValidationError, match="payload"):
        EarlierTickWorkflowInput.model_validate_json(held.model_dump_json())
    # And what an earlier agent dispatched, this version reads as it was.
    earlier = EarlierTickWorkflowInput(organization="o", deployment="d", payload=payload)
    read = TickWorkflowInput.model_validate_json(earlier.model_dump_json())
    assert read.tick == payload and not read.held
