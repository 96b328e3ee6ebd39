"""NexusRunWorkflow on the time-skipping test server, with stand-in activities: the outcome it
completes the operation with, a retry it follows, a failure it raises, and the terminate a
cancel sends."""

from datetime import UTC, datetime

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment

from tests.workflows.conftest import Recorder, new_worker, unique_id, until_canceled
from tether_api.enums import RunStatus, StepStatus
from tether_api.nexus import RUN_CANCELED_ERROR, RUN_FAILED_ERROR, RunJobResult, StepOutcome
from workflows import names
from workflows.nexus_models import (
    AwaitNexusRunInput,
    NexusCaller,
    NexusRunInput,
    NexusRunOutcome,
    TerminateNexusRunInput,
    TerminateNexusRunOutput,
)
from workflows.nexus_run import NexusRunWorkflow

CALLER = NexusCaller(namespace="billing", workflow_id="close-2026-11", run_id="r-1")


def outcome(run_id: str, status: RunStatus, error: str | None = None) -> RunJobResult:
    return RunJobResult(
        run_id=run_id,
        deployment="prod",
        status=status,
        url=f"http://cp/d/prod/runs/{run_id}",
        steps=[StepOutcome(name="load", status=StepStatus(status.value), error=error)],
        error=error,
        ended_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def run_input(run_id: str = "run-1") -> NexusRunInput:
    return NexusRunInput(
        organization="acme",
        deployment="prod",
        run_id=run_id,
        code_location="etl",
        job="daily",
        caller=CALLER,
    )


def stand_ins(recorder: Recorder, answers: dict[str, NexusRunOutcome | None]) -> list:
    """await_nexus_run answers from ``answers`` by run ID (None: runs until canceled)."""

    @activity.defn(name=names.AWAIT_NEXUS_RUN)
    async def await_run(input: AwaitNexusRunInput) -> NexusRunOutcome:
        recorder.record(names.AWAIT_NEXUS_RUN, input)
        answer = answers.get(input.run_id)
        if answer is None:
            await until_canceled()
        assert answer is not None
        return answer

    @activity.defn(name=names.TERMINATE_NEXUS_RUN)
    async def terminate(input: TerminateNexusRunInput) -> TerminateNexusRunOutput:
        recorder.record(names.TERMINATE_NEXUS_RUN, input)
        # The run ends CANCELED once terminated: the await after the terminate sees it.
        answers[input.run_id] = NexusRunOutcome(result=outcome(input.run_id, RunStatus.CANCELED))
        return TerminateNexusRunOutput(terminated=True)

    return [await_run, terminate]


async def test_a_run_that_succeeds_completes_the_operation_with_its_outcome(
    env: WorkflowEnvironment,
) -> None:
    recorder = Recorder()
    answers = {"run-1": NexusRunOutcome(result=outcome("run-1", RunStatus.SUCCESS))}
    async with new_worker(env.client, [NexusRunWorkflow], stand_ins(recorder, answers)) as w:
        result = await env.client.execute_workflow(
            NexusRunWorkflow.run, run_input(), id=unique_id("nexus-run"), task_queue=w.task_queue
        )
    assert (result.run_id, result.status, result.attempts) == ("run-1", RunStatus.SUCCESS, 1)
    assert recorder.names() == [names.AWAIT_NEXUS_RUN]


async def test_a_retried_run_is_followed_to_its_last_attempt(env: WorkflowEnvironment) -> None:
    recorder = Recorder()
    answers = {
        "run-1": NexusRunOutcome(retry_run_id="run-2"),
        "run-2": NexusRunOutcome(retry_run_id="run-3"),
        "run-3": NexusRunOutcome(result=outcome("run-3", RunStatus.SUCCESS)),
    }
    async with new_worker(env.client, [NexusRunWorkflow], stand_ins(recorder, answers)) as w:
        result = await env.client.execute_workflow(
            NexusRunWorkflow.run, run_input(), id=unique_id("nexus-run"), task_queue=w.task_queue
        )
    assert (result.run_id, result.attempts) == ("run-3", 3)
    assert [i.run_id for i in recorder.inputs(names.AWAIT_NEXUS_RUN)] == ["run-1", "run-2", "run-3"]


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(RunStatus.FAILURE, RUN_FAILED_ERROR), (RunStatus.CANCELED, RUN_CANCELED_ERROR)],
)
async def test_a_run_that_does_not_succeed_fails_the_operation_with_its_error(
    env: WorkflowEnvironment, status: RunStatus, error_type: str
) -> None:
    recorder = Recorder()
    error = "step load failed: ValueError: bad row 7" if status == RunStatus.FAILURE else None
    answers = {"run-1": NexusRunOutcome(result=outcome("run-1", status, error))}
    async with new_worker(env.client, [NexusRunWorkflow], stand_ins(recorder, answers)) as w:
        with pytest.raises(WorkflowFailureError) as failed:
            await env.client.execute_workflow(
                NexusRunWorkflow.run,
                run_input(),
                id=unique_id("nexus-run"),
                task_queue=w.task_queue,
            )
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == error_type and cause.non_retryable
    assert cause.message == (error or f"run run-1 ended {status.value}")
    assert RunJobResult.model_validate(cause.details[0]).status == status


async def test_a_canceled_operation_terminates_the_run_then_ends_canceled(
    env: WorkflowEnvironment,
) -> None:
    recorder = Recorder()
    answers: dict[str, NexusRunOutcome | None] = {"run-1": None}
    async with new_worker(env.client, [NexusRunWorkflow], stand_ins(recorder, answers)) as w:
        handle = await env.client.start_workflow(
            NexusRunWorkflow.run, run_input(), id=unique_id("nexus-run"), task_queue=w.task_queue
        )
        await recorder.wait_for(lambda: recorder.count(names.AWAIT_NEXUS_RUN) == 1)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert isinstance(failed.value.cause, CancelledError)
    (terminate,) = recorder.inputs(names.TERMINATE_NEXUS_RUN)
    assert terminate.run_id == "run-1"
    assert "canceled by close-2026-11" in terminate.reason
    # The terminated run is awaited to its end before the operation reports canceled.
    assert recorder.names() == [
        names.AWAIT_NEXUS_RUN,
        names.TERMINATE_NEXUS_RUN,
        names.AWAIT_NEXUS_RUN,
    ]
