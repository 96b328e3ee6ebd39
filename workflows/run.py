"""RunWorkflow: one per run (``run:{run_id}``).

Short steps (prepare, launch, finish) are local activities: they run in the worker that
holds the workflow, without a round trip through the task queue, which is most of a run's
launch latency and of Temporal's work per run. The watch is a regular heartbeating activity
so that a dead agent is noticed and the watch resumes on the next one.

prepare (validate against the code server) -> launch the run worker -> watch it until it
exits -> reconcile with the control plane. A terminate signal stops the worker and ends
CANCELED; the start timeout and the run's max runtime end in FAILURE. The worker reports its
own final event; ``finish_run`` fills in only what a dead worker could not say.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import names
    from workflows.errors import failure_message
    from workflows.handles import Handle
    from workflows.models import (
        FinishRunInput,
        LaunchRunWorkerInput,
        PrepareRunInput,
        PrepareRunOutput,
        RunResult,
        RunWorkflowInput,
        StopInput,
        StopOutput,
        TerminateSignal,
        WatchInput,
        WatchRunWorkerOutput,
    )
    from workflows.options import HEARTBEAT_TIMEOUT, PERSISTENT, SHORT, seconds


T = TypeVar("T")


@dataclass(frozen=True)
class _NotStarted:
    outcome: str
    message: str | None


class _Outcome:
    """Why waiting for an activity stopped, when it was not the activity finishing."""

    TERMINATED = "terminated"
    TIMED_OUT = "timed-out"


@workflow.defn(name="RunWorkflow")
class RunWorkflow:
    def __init__(self) -> None:
        self._terminate: TerminateSignal | None = None
        self._phase = "preparing"
        self._handle: Handle | None = None

    @workflow.signal(name=names.SIGNAL_TERMINATE)
    def terminate(self, signal: TerminateSignal) -> None:
        if self._terminate is None:
            self._terminate = signal

    @workflow.query(name=names.QUERY_STATE)
    def state(self) -> dict[str, Any]:
        return {
            "phase": self._phase,
            "handle": self._handle.model_dump(mode="json") if self._handle else None,
            "terminate_requested": self._terminate is not None,
        }

    @workflow.run
    async def run(self, input: RunWorkflowInput) -> RunResult:
        settings = input.settings
        self._details(input, "validating the run against the code server")
        start_deadline = workflow.now() + seconds(settings.start_timeout_seconds)

        prepared = await self._before_start(
            names.PREPARE_RUN,
            PrepareRunInput(
                organization=input.organization,
                deployment=input.deployment,
                run_id=input.run_id,
                code_location=input.code_location,
                max_runtime_tag=settings.max_runtime_tag,
            ),
            PrepareRunOutput,
            "validate the run config with the code server",
            start_deadline,
        )
        if isinstance(prepared, _NotStarted):
            return await self._finish(input, None, prepared.outcome, None, prepared.message)
        if not prepared.proceed:
            return await self._finish(input, None, "not-started", None, prepared.message)

        self._phase = "launching"
        self._details(input, f"launching the run worker ({len(prepared.steps)} steps)")
        launched = await self._before_start(
            names.LAUNCH_RUN_WORKER,
            LaunchRunWorkerInput(
                organization=input.organization,
                deployment=input.deployment,
                run_id=input.run_id,
                code_location=input.code_location,
                label=workflow.info().workflow_id,
            ),
            Handle,
            "start the run worker",
            start_deadline,
        )
        if isinstance(launched, _NotStarted):
            # The launch may have happened just before a cancel: finish_run stops whatever
            # carries this workflow's label.
            return await self._finish(input, None, launched.outcome, None, launched.message)
        self._handle = launched
        return await self._watch(input, launched, prepared.max_runtime_seconds)

    async def _before_start(
        self, activity: str, arg: Any, result_type: type[T], summary: str, deadline: datetime
    ) -> "T | _NotStarted":
        """A step before the worker runs, as a local activity bounded by the start timeout:
        its result, or why the run will not start (terminated, timed out, failed)."""
        try:
            result = await self._race(
                workflow.start_local_activity(
                    activity,
                    arg,
                    result_type=result_type,
                    start_to_close_timeout=SHORT,
                    retry_policy=PERSISTENT,
                    summary=summary,
                ),
                deadline,
            )
        except (ActivityError, ApplicationError) as exc:
            # A local activity's failure arrives as the ApplicationError itself.
            return _NotStarted("not-started", failure_message(exc))
        if isinstance(result, str):
            return _NotStarted(result, None)
        return result

    async def _watch(
        self, input: RunWorkflowInput, handle: Handle, max_runtime: float | None
    ) -> RunResult:
        settings = input.settings
        self._phase = "running"
        self._details(input, f"run worker running (pid {handle.pid})")
        deadline = workflow.now() + seconds(max_runtime) if max_runtime else None
        while True:
            watched = await self._race(
                workflow.start_activity(
                    names.WATCH_RUN_WORKER,
                    WatchInput(
                        handle=handle,
                        interval_seconds=0.5,
                        max_seconds=settings.watch_slice_seconds,
                    ),
                    result_type=WatchRunWorkerOutput,
                    start_to_close_timeout=seconds(settings.watch_slice_seconds + 60),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=PERSISTENT,
                    summary="watch the run worker until it exits",
                ),
                deadline,
            )
            if isinstance(watched, str):
                return await self._finish(input, handle, watched, None)
            if not watched.running:
                return await self._finish(input, handle, "exited", watched.exit_code)

    async def _race(self, task: Any, deadline: Any) -> Any:
        """Wait for the activity, a terminate signal or the deadline, whichever comes first.
        Returns the activity's result, or an ``_Outcome`` string (the activity canceled)."""
        timeout = None
        if deadline is not None:
            timeout = max((deadline - workflow.now()).total_seconds(), 0.0)
        try:
            await workflow.wait_condition(
                lambda: task.done() or self._terminate is not None, timeout=timeout
            )
        except TimeoutError:
            await self._cancel(task)
            return _Outcome.TIMED_OUT
        if not task.done():
            await self._cancel(task)
            return _Outcome.TERMINATED
        return await task

    @staticmethod
    async def _cancel(task: Any) -> None:
        task.cancel()
        with contextlib.suppress(ActivityError, ApplicationError, asyncio.CancelledError):
            await task

    async def _finish(
        self,
        input: RunWorkflowInput,
        handle: Handle | None,
        outcome: str,
        exit_code: int | None,
        message: str | None = None,
    ) -> RunResult:
        settings = input.settings
        if outcome == _Outcome.TERMINATED and self._terminate is not None:
            message = self._terminate.reason
        elif outcome == _Outcome.TIMED_OUT:
            message = (
                f"the run did not start within {settings.start_timeout_seconds:g} s"
                if handle is None
                else f"the run exceeded its max runtime (tag {settings.max_runtime_tag})"
            )
        timed_out = outcome == _Outcome.TIMED_OUT and handle is not None
        if outcome == _Outcome.TERMINATED and handle is not None:
            exit_code = await self._stop_worker(input, handle, message)
        # A timeout is recorded as FAILURE *before* the worker is stopped: stopped, the worker
        # would report itself CANCELED, and the first final status is the one that stays.
        self._phase = "finishing"
        result = await workflow.execute_local_activity(
            names.FINISH_RUN,
            FinishRunInput(
                run_id=input.run_id,
                label=workflow.info().workflow_id,
                handle=handle,
                outcome=outcome,
                exit_code=exit_code,
                message=message,
            ),
            result_type=RunResult,
            start_to_close_timeout=SHORT,
            retry_policy=PERSISTENT,
            summary="reconcile the outcome with the control plane",
        )
        if timed_out and handle is not None:
            # Its outcome is recorded already: the stop also releases what is left of it.
            await self._stop_worker(input, handle, message, release=True)
        self._phase = "done"
        self._details(input, f"{result.status.value}: {result.message or ''}".rstrip(": "))
        return result

    async def _stop_worker(
        self, input: RunWorkflowInput, handle: Handle, why: str | None, release: bool = False
    ) -> int | None:
        settings = input.settings
        self._phase = "stopping"
        self._details(input, f"stopping the run worker: {why}")
        stopped = await workflow.execute_activity(
            names.STOP_RUN_WORKER,
            StopInput(handle=handle, grace_seconds=settings.stop_grace_seconds, cleanup=release),
            result_type=StopOutput,
            start_to_close_timeout=seconds(settings.stop_grace_seconds + 30),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=PERSISTENT,
            summary="stop the run worker (SIGTERM, then SIGKILL after the grace)",
        )
        return stopped.exit_code

    def _details(self, input: RunWorkflowInput, what: str) -> None:
        workflow.set_current_details(
            f"run {input.run_id} of job **{input.job}** from code location "
            f"**{input.code_location}**: {what}"
        )
