"""RunWorkflow on the time-skipping test server: prepare -> launch -> watch -> finish, and every
way a run ends early (rejected, terminated, timed out, failed to launch)."""

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, NoReturn

import pytest
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.conftest import (
    Recorder,
    canceled_activities,
    handle,
    new_worker,
    unique_id,
    until_canceled,
)
from tether_api.enums import RunStatus
from worker.failures import AgentWordsOnly
from workflows import names
from workflows.handles import Handle
from workflows.models import (
    FinishRunInput,
    LaunchRunWorkerInput,
    PrepareRunInput,
    PrepareRunOutput,
    RunOutcome,
    RunResult,
    RunSettings,
    RunWorkflowInput,
    StopInput,
    StopOutput,
    TerminateSignal,
    ValidateRunInput,
    WatchInput,
    WatchRunWorkerOutput,
)
from workflows.run import RunWorkflow

STOPPED_EXIT_CODE = -15
WORKFLOW_TASK_TIMEOUT = timedelta(seconds=1)


def reconciled(input: FinishRunInput) -> RunResult:
    """What the stand-in finish_run answers: deterministic, so tests can compare results."""
    status = {
        RunOutcome.EXITED: RunStatus.SUCCESS if input.exit_code == 0 else RunStatus.FAILURE,
        RunOutcome.TERMINATED: RunStatus.CANCELED,
    }.get(input.outcome, RunStatus.FAILURE)
    return RunResult(
        run_id=input.run_id,
        status=status,
        message=f"{input.outcome}: {input.message}",
        exit_code=input.exit_code,
    )


class RunStandIns:
    """RunWorkflow's activities, recorded. Each behaviour is an attribute a test replaces;
    the defaults are the happy path (valid, launched, exits 0)."""

    def __init__(self) -> None:
        self.rec = Recorder()
        self.prepare: Callable[[PrepareRunInput], Awaitable[PrepareRunOutput]] = self.valid
        self.launch: Callable[[LaunchRunWorkerInput], Awaitable[Handle]] = self.launched
        self.watch: Callable[[WatchInput], Awaitable[WatchRunWorkerOutput]] = self.exits_0

    @staticmethod
    async def valid(input: PrepareRunInput) -> PrepareRunOutput:
        return PrepareRunOutput(
            proceed=True, status=RunStatus.STARTING, steps=["extract", "transform", "load"]
        )

    @staticmethod
    async def launched(input: LaunchRunWorkerInput) -> Handle:
        return handle(input.label, kind="run-worker", pid=5151)

    @staticmethod
    async def exits_0(input: WatchInput) -> WatchRunWorkerOutput:
        return WatchRunWorkerOutput(running=False, exit_code=0)

    @staticmethod
    async def blocks(input: object) -> NoReturn:
        await until_canceled()

    @property
    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.prepare_run,
            self.launch_run_worker,
            self.watch_run_worker,
            self.stop_run_worker,
            self.finish_run,
        ]

    @activity.defn(name=names.PREPARE_RUN)
    async def prepare_run(self, input: PrepareRunInput) -> PrepareRunOutput:
        self.rec.record(names.PREPARE_RUN, input)
        return await self.prepare(input)

    @activity.defn(name=names.LAUNCH_RUN_WORKER)
    async def launch_run_worker(self, input: LaunchRunWorkerInput) -> Handle:
        self.rec.record(names.LAUNCH_RUN_WORKER, input)
        return await self.launch(input)

    @activity.defn(name=names.WATCH_RUN_WORKER)
    async def watch_run_worker(self, input: WatchInput) -> WatchRunWorkerOutput:
        self.rec.record(names.WATCH_RUN_WORKER, input)
        return await self.watch(input)

    @activity.defn(name=names.STOP_RUN_WORKER)
    async def stop_run_worker(self, input: StopInput) -> StopOutput:
        self.rec.record(names.STOP_RUN_WORKER, input)
        return StopOutput(exit_code=STOPPED_EXIT_CODE)

    @activity.defn(name=names.FINISH_RUN)
    async def finish_run(self, input: FinishRunInput) -> RunResult:
        self.rec.record(names.FINISH_RUN, input)
        return reconciled(input)


@pytest.fixture
def acts() -> RunStandIns:
    return RunStandIns()


def run_input(settings: RunSettings | None = None) -> RunWorkflowInput:
    return RunWorkflowInput(
        organization="acme",
        deployment="prod",
        run_id=unique_id("run"),
        code_location="quick",
        job="etl",
        settings=settings or RunSettings(),
    )


async def start(
    env: WorkflowEnvironment, task_queue: str, input: RunWorkflowInput, **options: Any
) -> WorkflowHandle[RunWorkflow, RunResult]:
    return await env.client.start_workflow(
        RunWorkflow.run,
        input,
        id=names.run_workflow_id(input.run_id),
        task_queue=task_queue,
        # Short steps may be local activities: while one runs, the worker holds the workflow
        # task and heartbeats it every 80 % of this timeout, which is when a signal or a timer
        # that fired meanwhile reaches the workflow. The default (10 s) makes tests slow.
        task_timeout=WORKFLOW_TASK_TIMEOUT,
        **options,
    )


def finish_input(acts: RunStandIns) -> FinishRunInput:
    finishes = acts.rec.inputs(names.FINISH_RUN)
    assert len(finishes) == 1, acts.rec.names()
    finish: FinishRunInput = finishes[0]
    return finish


async def test_happy_path_prepares_launches_watches_and_finishes(
    env: WorkflowEnvironment, acts: RunStandIns
) -> None:
    input = run_input()
    async with new_worker(env.client, [RunWorkflow], acts.activities) as worker:
        handle_ = await start(env, worker.task_queue, input)
        result = await handle_.result()

    assert acts.rec.names() == [
        names.PREPARE_RUN,
        names.LAUNCH_RUN_WORKER,
        names.WATCH_RUN_WORKER,
        names.FINISH_RUN,
    ]
    workflow_id = names.run_workflow_id(input.run_id)
    prepare: PrepareRunInput = acts.rec.inputs(names.PREPARE_RUN)[0]
    assert prepare == PrepareRunInput(
        organization="acme",
        deployment="prod",
        run_id=input.run_id,
        code_location="quick",
        max_runtime_tag="tether/max_runtime",
    )
    launch: LaunchRunWorkerInput = acts.rec.inputs(names.LAUNCH_RUN_WORKER)[0]
    assert launch.label == workflow_id and launch.run_id == input.run_id
    launched = handle(workflow_id, kind="run-worker", pid=5151)
    watch: WatchInput = acts.rec.inputs(names.WATCH_RUN_WORKER)[0]
    assert watch.handle == launched
    assert watch.max_seconds == input.settings.watch_slice_seconds
    finish = finish_input(acts)
    assert finish == FinishRunInput(
        run_id=input.run_id,
        label=workflow_id,
        handle=launched,
        outcome=RunOutcome.EXITED,
        exit_code=0,
        message=None,
    )
    assert result == reconciled(finish)
    assert result.status == RunStatus.SUCCESS


async def test_a_watch_slice_that_ends_with_the_worker_running_starts_the_next(
    env: WorkflowEnvironment, acts: RunStandIns
) -> None:
    slices = [WatchRunWorkerOutput(running=True), WatchRunWorkerOutput(running=True)]

    async def two_slices_then_exit(input: WatchInput) -> WatchRunWorkerOutput:
        return slices.pop(0) if slices else WatchRunWorkerOutput(running=False, exit_code=0)

    acts.watch = two_slices_then_exit
    async with new_worker(env.client, [RunWorkflow], acts.activities) as worker:
        result = await (await start(env, worker.task_queue, run_input())).result()
    assert acts.rec.count(names.WATCH_RUN_WORKER) == 3
    assert names.STOP_RUN_WORKER not in acts.rec.names()
    assert finish_input(acts).outcome == RunOutcome.EXITED
    assert result.status == RunStatus.SUCCESS


async def test_invalid_config_launches_nothing_and_finishes_not_started(
    env: WorkflowEnvironment, acts: RunStandIns
) -> None:
    async def invalid(input: PrepareRunInput) -> PrepareRunOutput:
        return PrepareRunOutput(
            proceed=False, status=RunStatus.FAILURE, message="source: Field required"
        )

    acts.prepare = invalid
    async with new_worker(env.client, [RunWorkflow], acts.activities) as worker:
        result = await (await start(env, worker.task_queue, run_input())).result()

    assert acts.rec.names() == [names.PREPARE_RUN, names.FINISH_RUN]
    finish = finish_input(acts)
    assert finish.outcome == RunOutcome.NOT_STARTED
    assert finish.message == "source: Field required"
    assert finish.handle is None and finish.exit_code is None
    assert result == reconciled(finish)


async def test_terminate_while_watching_cancels_the_watch_and_stops_the_worker(
    env: WorkflowEnvironment, acts: RunStandIns
) -> None:
    acts.watch = acts.blocks
    input = run_input()
    async with new_worker(env.client, [RunWorkflow], acts.activities) as worker:
        handle_ = await start(env, worker.task_queue, input)
        await acts.rec.wait_for(lambda: acts.rec.count(names.WATCH_RUN_WORKER), what="watch")
        state = await handle_.query(RunWorkflow.state)
        assert state["phase"] == "running" and state["terminate_requested"] is False
        assert state["handle"]["pid"] == 5151
        await handle_.signal(RunWorkflow.terminate, TerminateSignal(reason="asked by alice"))
        result = await handle_.result()

    assert acts.rec.names() == [
        names.PREPARE_RUN,
        names.LAUNCH_RUN_WORKER,
        names.WATCH_RUN_WORKER,
        names.STOP_RUN_WORKER,
        names.FINISH_RUN,
    ]
    assert await canceled_activities(handle_) == [names.WATCH_RUN_WORKER]
    launched = handle(names.run_workflow_id(input.run_id), kind="run-worker", pid=5151)
    stop: StopInput = acts.rec.inputs(names.STOP_RUN_WORKER)[0]
    assert stop == StopInput(handle=launched, grace_seconds=20, cleanup=False)
    finish = finish_input(acts)
    assert finish.outcome == RunOutcome.TERMINATED
    assert finish.message == "asked by alice"
    assert finish.handle == launched
    assert finish.exit_code == STOPPED_EXIT_CODE
    assert result.status == RunStatus.CANCELED


@pytest.mark.parametrize("when", ["with the start", "while preparing", "while launching"])
async def test_terminate_before_the_worker_runs_launches_and_stops_nothing(
    env: WorkflowEnvironment, acts: RunStandIns, when: str
) -> None:
    signal = TerminateSignal(reason="not needed any more")
    options: dict[str, Any] = {}
    if when == "with the start":
        # What dispatch_request does when a terminate overtakes its launch request.
        options = {"start_signal": names.SIGNAL_TERMINATE, "start_signal_args": [signal]}
    elif when == "while preparing":
        acts.prepare = acts.blocks
    else:
        acts.launch = acts.blocks
    async with new_worker(env.client, [RunWorkflow], acts.activities) as worker:
        handle_ = await start(env, worker.task_queue, run_input(), **options)
        if when == "while preparing":
            await acts.rec.wait_for(lambda: acts.rec.count(names.PREPARE_RUN), what="prepare")
            await handle_.signal(RunWorkflow.terminate, signal)
        elif when == "while launching":
            await acts.rec.wait_for(lambda: acts.rec.count(names.LAUNCH_RUN_WORKER), what="launch")
            await handle_.signal(RunWorkflow.terminate, signal)
        result = await handle_.result()

    called = acts.rec.names()
    assert names.WATCH_RUN_WORKER not in called and names.STOP_RUN_WORKER not in called
    if when != "while launching":
        assert names.LAUNCH_RUN_WORKER not in called
    finish = finish_input(acts)
    assert finish.outcome == RunOutcome.TERMINATED
    assert finish.message == "not needed any more"
    # No handle: finish_run looks for whatever carries the run's label and stops it.
    assert finish.handle is None
    assert finish.label == names.run_workflow_id(finish.run_id)
    assert result.status == RunStatus.CANCELED


async def test_start_timeout_ends_timed_out_when_prepare_keeps_failing(
    env: WorkflowEnvironment, acts: RunStandIns
) -> None:
    async def not_ready(input: PrepareRunInput) -> PrepareRunOutput:
        raise ApplicationError(
            "code location quick is STARTING; waiting for its code server",
            type="CodeLocationNotReady",
        )

    acts.prepare = not_ready
    # A short start timeout: prepare may be a local activity, retried in the worker in real
    # time, which the test server cannot skip.
    input = run_input(RunSettings(start_timeout_seconds=2))
    async with new_worker(env.client, [RunWorkflow], acts.activities) as worker:
        result = await (await start(env, worker.task_queue, input)).result()

    prepares = acts.rec.of(names.PREPARE_RUN)
    assert len(prepares) >= 3, "retried with backoff until the start timeout"
    assert [c.attempt for c in prepares] == list(range(1, len(prepares) + 1))
    assert set(acts.rec.names()) == {names.PREPARE_RUN, names.FINISH_RUN}
    finish = finish_input(acts)
    assert finish.outcome == RunOutcome.TIMED_OUT
    assert finish.message == "the run did not start within 2 s"
    assert finish.handle is None
    waited = acts.rec.of(names.FINISH_RUN)[0].scheduled - prepares[0].scheduled
    assert waited.total_seconds() >= 2
    assert result.status == RunStatus.FAILURE


async def test_max_runtime_stops_the_worker_and_ends_timed_out(
    env: WorkflowEnvironment, acts: RunStandIns
) -> None:
    async def valid_with_max_runtime(input: PrepareRunInput) -> PrepareRunOutput:
        return PrepareRunOutput(proceed=True, status=RunStatus.STARTING, max_runtime_seconds=60)

    async def never_completes(input: WatchInput) -> WatchRunWorkerOutput:
        # The test server's clock stands still while an activity runs, so a watch that runs
        # for 60 s would take 60 real seconds. A watch that never completes (each attempt
        # fails, and the retry timers let the clock skip) is the same to the workflow.
        raise ApplicationError("cannot inspect the run worker right now")

    acts.prepare = valid_with_max_runtime
    acts.watch = never_completes
    input = run_input()
    async with new_worker(env.client, [RunWorkflow], acts.activities) as worker:
        handle_ = await start(env, worker.task_queue, input)
        result = await handle_.result()

    called = acts.rec.names()
    assert called[:3] == [names.PREPARE_RUN, names.LAUNCH_RUN_WORKER, names.WATCH_RUN_WORKER]
    # FAILURE is recorded first: a worker stopped first would report itself CANCELED.
    assert called[-2:] == [names.FINISH_RUN, names.STOP_RUN_WORKER]
    assert await canceled_activities(handle_) == [names.WATCH_RUN_WORKER]
    launched = handle(names.run_workflow_id(input.run_id), kind="run-worker", pid=5151)
    assert acts.rec.inputs(names.STOP_RUN_WORKER)[0].handle == launched
    finish = finish_input(acts)
    assert finish.outcome == RunOutcome.TIMED_OUT
    assert finish.message is not None and "max runtime" in finish.message
    assert finish.handle == launched
    assert finish.exit_code is None
    watched = (
        acts.rec.of(names.STOP_RUN_WORKER)[0].scheduled
        - acts.rec.of(names.WATCH_RUN_WORKER)[0].scheduled
    )
    assert 60 <= watched.total_seconds() < 70
    assert result.status == RunStatus.FAILURE


async def test_a_killed_worker_finishes_with_its_exit_code(
    env: WorkflowEnvironment, acts: RunStandIns
) -> None:
    async def killed(input: WatchInput) -> WatchRunWorkerOutput:
        return WatchRunWorkerOutput(running=False, exit_code=-9)

    acts.watch = killed
    async with new_worker(env.client, [RunWorkflow], acts.activities) as worker:
        result = await (await start(env, worker.task_queue, run_input())).result()

    assert names.STOP_RUN_WORKER not in acts.rec.names()
    finish = finish_input(acts)
    assert finish.outcome == RunOutcome.EXITED and finish.exit_code == -9
    assert result.exit_code == -9 and result.status == RunStatus.FAILURE


@pytest.mark.parametrize("failing", [names.PREPARE_RUN, names.LAUNCH_RUN_WORKER])
async def test_a_non_retryable_failure_before_the_worker_runs_finishes_not_started(
    env: WorkflowEnvironment, acts: RunStandIns, failing: str
) -> None:
    message = "working_directory /srv/etl does not exist on this agent"

    async def fails(input: object) -> NoReturn:
        raise ApplicationError(message, type="LaunchError", non_retryable=True)

    if failing == names.PREPARE_RUN:
        acts.prepare = fails
    else:
        acts.launch = fails
    async with new_worker(env.client, [RunWorkflow], acts.activities) as worker:
        result = await (await start(env, worker.task_queue, run_input())).result()

    assert acts.rec.count(failing) == 1, "a non-retryable error is not retried"
    called = acts.rec.names()
    assert called[-1] == names.FINISH_RUN
    assert names.WATCH_RUN_WORKER not in called and names.STOP_RUN_WORKER not in called
    finish = finish_input(acts)
    assert finish.outcome == RunOutcome.NOT_STARTED
    assert finish.message == message
    assert finish.handle is None
    assert result.status == RunStatus.FAILURE


async def test_a_failure_reaches_the_history_in_the_agents_words_only(
    dev_env: WorkflowEnvironment, acts: RunStandIns
) -> None:
    """worker/failures.py on a real worker: an exception an activity did not raise on purpose
    (here a ValueError quoting a code server's answer) leaves as its class name, and an
    ApplicationError's cause (a library's error quoting it) is dropped. validate_run is a
    regular activity: its first attempt's failure is recorded too (the started event's
    last failure, which the dev server keeps), its second ends the run."""
    env = dev_env
    secret = f"printed-by-user-code-{uuid.uuid4().hex}"
    task_queue = unique_id("tq")

    async def elsewhere(input: PrepareRunInput) -> PrepareRunOutput:
        return PrepareRunOutput(
            proceed=True,
            status=RunStatus.STARTING,
            validate_on=task_queue,
            address="http://127.0.0.1:1",
        )

    @activity.defn(name=names.VALIDATE_RUN)
    async def validate_run(input: ValidateRunInput) -> PrepareRunOutput:
        if activity.info().attempt == 1:
            raise ValueError(f"1 validation error: input_value='{secret}'")
        try:
            raise ValueError(secret)
        except ValueError as exc:
            raise ApplicationError(
                "the code server's answer is unreadable", type="Unreadable", non_retryable=True
            ) from exc

    acts.prepare = elsewhere
    worker = Worker(
        env.client,
        task_queue=task_queue,
        workflows=[RunWorkflow],
        activities=[*acts.activities, validate_run],
        interceptors=[AgentWordsOnly()],
    )
    async with worker:
        handle = await start(env, task_queue, run_input())
        result = await handle.result()
        history = await handle.fetch_history()

    assert result.status == RunStatus.FAILURE
    assert finish_input(acts).message == "the code server's answer is unreadable"
    text = history.to_json()
    assert secret not in text
    assert "ValueError in activity validate_run" in text  # the first attempt, in its words


def test_outcomes_are_sent_as_the_strings_they_replaced() -> None:
    """``FinishRunInput.outcome`` was a string before it was a RunOutcome: the values are
    the ones RunWorkflow sent, and a payload holds the same JSON either way."""
    assert [o.value for o in RunOutcome] == [
        "exited",
        "terminated",
        "timed-out",
        "not-started",
        "settled",
    ]

    class FinishRunInputBefore(BaseModel):  # as released before RunOutcome
        run_id: str
        label: str
        handle: Handle | None
        outcome: str
        exit_code: int | None = None
        message: str | None = None
        detail: str | None = None

    converter = pydantic_data_converter.payload_converter
    for outcome in RunOutcome:
        finish = FinishRunInput(run_id="r1", label="run:r1", handle=None, outcome=outcome)
        before = FinishRunInputBefore(**finish.model_dump(mode="json"))
        assert before.outcome == outcome.value and type(before.outcome) is str
        [sent] = converter.to_payloads([finish])
        assert sent == converter.to_payloads([before])[0]
        assert json.loads(sent.data)["outcome"] == outcome.value
        [read] = converter.from_payloads([sent], [FinishRunInput])
        assert read == finish and read.outcome is outcome
