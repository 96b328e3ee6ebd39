"""TickWorkflow on the time-skipping test server: locate -> evaluate on the code server's
host -> report, and every way of getting no answer (no code server, a server that does not
answer, a lost host), each reported to the control plane as the tick's error."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.conftest import Recorder, new_worker, unique_id
from tether_api.enums import TickKind, TickStatus
from tether_api.ticks import (
    EvaluateTickPayload,
    RunRequestSpec,
    TickOutcome,
    TickRequest,
    TickResponse,
)
from workflows import names
from workflows.models import (
    EvaluateTickInput,
    LocateInput,
    LocateOutput,
    ReportTickInput,
    TickWorkflowInput,
)
from workflows.tick import TickWorkflow

TICK = TickRequest(
    kind=TickKind.SENSOR,
    name="inbox",
    cursor="c1",
    tick_time=datetime(2030, 1, 1, tzinfo=UTC),
    timeout_seconds=5,
)


class TickStandIns:
    def __init__(self) -> None:
        self.rec = Recorder()
        self.locate: Callable[[LocateInput], Awaitable[LocateOutput]] = self.here
        self.evaluate: Callable[[EvaluateTickInput], Awaitable[TickResponse]] = self.asks_for_one

    @staticmethod
    async def here(input: LocateInput) -> LocateOutput:
        return LocateOutput(address="http://127.0.0.1:4567")

    @staticmethod
    async def asks_for_one(input: EvaluateTickInput) -> TickResponse:
        return TickResponse(run_requests=[RunRequestSpec(run_key="a.csv")], cursor="c2")

    def activities(self) -> list[Callable[..., object]]:
        @activity.defn(name=names.LOCATE_CODE_SERVER)
        async def locate_code_server(input: LocateInput) -> LocateOutput:
            self.rec.record(names.LOCATE_CODE_SERVER, input)
            return await self.locate(input)

        @activity.defn(name=names.EVALUATE_TICK)
        async def evaluate_tick(input: EvaluateTickInput) -> TickResponse:
            self.rec.record(names.EVALUATE_TICK, activity.info().task_queue)
            return await self.evaluate(input)

        @activity.defn(name=names.REPORT_TICK)
        async def report_tick(input: ReportTickInput) -> TickOutcome:
            self.rec.record(names.REPORT_TICK, input)
            failed = input.report.error or (input.report.response and input.report.response.error)
            status = TickStatus.FAILURE if failed else TickStatus.SUCCESS
            return TickOutcome(status=status, run_ids=["r1"] if not failed else [])

        return [locate_code_server, evaluate_tick, report_tick]


async def run_tick(
    env: WorkflowEnvironment, stand_ins: TickStandIns, worker: Worker, **extra: object
) -> TickOutcome:
    payload = EvaluateTickPayload(kind=TickKind.SENSOR, tick_id=7, code_location="loc", tick=TICK)
    outcome: TickOutcome = await env.client.execute_workflow(
        TickWorkflow.run,
        TickWorkflowInput(organization="o", deployment="d", payload=payload, **extra),  # type: ignore[arg-type]
        id=unique_id("tick"),
        task_queue=worker.task_queue,
    )
    return outcome


def reported(stand_ins: TickStandIns) -> ReportTickInput:
    [report] = stand_ins.rec.inputs(names.REPORT_TICK)
    assert isinstance(report, ReportTickInput)
    return report


async def test_the_answer_of_the_code_server_is_reported(env: WorkflowEnvironment) -> None:
    stand_ins = TickStandIns()
    worker = new_worker(env.client, [TickWorkflow], stand_ins.activities())
    async with worker:
        outcome = await run_tick(env, stand_ins, worker)
    assert outcome.status == TickStatus.SUCCESS and outcome.run_ids == ["r1"]
    assert stand_ins.rec.names() == [
        names.LOCATE_CODE_SERVER,
        names.EVALUATE_TICK,
        names.REPORT_TICK,
    ]
    report = reported(stand_ins)
    assert report.kind == TickKind.SENSOR and report.tick_id == 7
    assert report.report.response is not None and report.report.response.cursor == "c2"
    assert report.report.workflow_id and report.report.workflow_id.startswith("tick-")


async def test_evaluation_runs_on_the_code_servers_host(env: WorkflowEnvironment) -> None:
    stand_ins = TickStandIns()
    host = new_worker(env.client, [], stand_ins.activities())
    worker = new_worker(env.client, [TickWorkflow], stand_ins.activities())

    async def elsewhere(input: LocateInput) -> LocateOutput:
        return LocateOutput(address="http://10.0.0.2:4567", host_queue=host.task_queue)

    stand_ins.locate = elsewhere
    async with worker, host:
        await run_tick(env, stand_ins, worker)
    assert stand_ins.rec.inputs(names.EVALUATE_TICK) == [host.task_queue]


async def test_no_code_server_is_reported_as_the_ticks_error(env: WorkflowEnvironment) -> None:
    stand_ins = TickStandIns()

    async def not_ready(input: LocateInput) -> LocateOutput:
        raise ApplicationError("code location loc is STARTING", type="CodeLocationNotReady")

    stand_ins.locate = not_ready
    worker = new_worker(env.client, [TickWorkflow], stand_ins.activities())
    async with worker:
        outcome = await run_tick(env, stand_ins, worker, locate_for_seconds=2)
    assert outcome.status == TickStatus.FAILURE
    assert stand_ins.rec.count(names.EVALUATE_TICK) == 0
    assert stand_ins.rec.count(names.LOCATE_CODE_SERVER) > 1  # retried until the bound
    error = reported(stand_ins).report.error
    assert error is not None and "no code server of loc" in error.message
    assert "STARTING" in error.message


async def test_a_code_server_that_does_not_answer_is_tried_three_times(
    env: WorkflowEnvironment,
) -> None:
    stand_ins = TickStandIns()

    async def down(input: EvaluateTickInput) -> TickResponse:
        raise ApplicationError("connection refused", type="CodeServerUnavailable")

    stand_ins.evaluate = down
    worker = new_worker(env.client, [TickWorkflow], stand_ins.activities())
    async with worker:
        outcome = await run_tick(env, stand_ins, worker)
    assert outcome.status == TickStatus.FAILURE
    assert stand_ins.rec.count(names.EVALUATE_TICK) == 3
    error = reported(stand_ins).report.error
    assert error is not None and "could not evaluate sensor inbox of loc" in error.message
    assert "connection refused" in error.message


async def test_a_lost_host_is_reported_after_host_lost_seconds(env: WorkflowEnvironment) -> None:
    stand_ins = TickStandIns()

    async def on_a_lost_host(input: LocateInput) -> LocateOutput:
        return LocateOutput(address="http://10.0.0.9:4567", host_queue="nobody-polls-this")

    stand_ins.locate = on_a_lost_host
    worker = new_worker(env.client, [TickWorkflow], stand_ins.activities())
    async with worker:
        outcome = await run_tick(env, stand_ins, worker, host_lost_after_seconds=2)
    assert outcome.status == TickStatus.FAILURE
    error = reported(stand_ins).report.error
    assert error is not None and "could not evaluate" in error.message
