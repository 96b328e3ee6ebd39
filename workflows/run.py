"""RunWorkflow: one per run (``run:{run_id}``).

Short steps (prepare, launch, finish) are local activities: they run in the worker that
holds the workflow, without a round trip through the task queue, which is most of a run's
launch latency and of Temporal's work per run. The watch is a regular heartbeating activity
so that a dead agent is noticed and the watch resumes on the next one.

prepare (validate against the code server) -> launch the run worker -> watch it until it
exits -> reconcile with the control plane. A terminate signal stops the worker and ends
CANCELED; the start timeout and the run's max runtime end in FAILURE. The worker reports its
own final event; ``finish_run`` fills in only what a dead worker could not say.

Host affinity: the launch records the launching agent's own task queue in the handle, and
everything that needs the worker's host (watch, stop, release) goes there, with a
schedule-to-start timeout. When that times out the agent and its host are lost: the run then
follows the control plane, where the worker's own heartbeats keep it alive and its final event
decides it (the control plane fails it, naming the lost agent, once its heartbeats stop), and
keeps a watch waiting on the host's queue in case the same agent comes back and adopts it.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from tether_api.enums import TERMINAL_RUN_STATUSES, RunStatus
    from workflows import names
    from workflows import search_attributes as attrs
    from workflows.errors import failure_message
    from workflows.handles import Handle
    from workflows.models import (
        FinishRunInput,
        LaunchRunWorkerInput,
        PrepareRunInput,
        PrepareRunOutput,
        ReleaseInput,
        RunOutcome,
        RunResult,
        RunSettledInput,
        RunStatusOutput,
        RunWorkflowInput,
        StopInput,
        StopOutput,
        TerminateSignal,
        ValidateRunInput,
        WatchInput,
        WatchRunWorkerOutput,
    )
    from workflows.options import (
        HEARTBEAT_TIMEOUT,
        PERSISTENT,
        SHORT,
        host_lost,
        on_host,
        seconds,
    )


T = TypeVar("T")


@dataclass(frozen=True)
class _NotStarted:
    outcome: RunOutcome
    message: str | None


def _moved(exc: ActivityError) -> bool:
    cause = exc.cause
    return isinstance(cause, ApplicationError) and cause.type == names.CODE_SERVER_MOVED


@workflow.defn(name=names.RUN_WORKFLOW)
class RunWorkflow:
    def __init__(self) -> None:
        self._terminate: TerminateSignal | None = None
        self._phase = "preparing"
        self._handle: Handle | None = None
        self._attributes = False
        self._wait_for_cancel = False
        self._stop_first = False
        # The watch a terminate canceled: waited for once the worker is stopped.
        self._canceling: asyncio.Task[Any] | None = None
        # The run worker's agent is not answering: nothing is asked of its host any more.
        self._lost = False

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
        # Both decided once, at the start, so that replay takes the same branch.
        if settings.search_attributes and workflow.patched(names.PATCH_SEARCH_ATTRIBUTES):
            self._attributes = True
        self._wait_for_cancel = workflow.patched(names.PATCH_WAIT_WATCH_CANCELED)
        # A watch learns of its cancel from its next heartbeat's answer, which Temporal's
        # heartbeat throttling (0.8 x its timeout) can hold back 8 s: a terminate sends SIGTERM
        # first and waits for the watch's cancel after.
        self._stop_first = workflow.patched(names.PATCH_STOP_BEFORE_WATCH_CANCELED)
        self._upsert(input, RunStatus.STARTING)
        self._details(input, "validating the run against the code server")
        start_deadline = workflow.now() + seconds(settings.start_timeout_seconds)

        while True:
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
                f"validate the run of job {input.job} with the code server",
                start_deadline,
            )
            if isinstance(prepared, _NotStarted):
                return await self._finish(input, None, prepared.outcome, None, prepared.message)
            if prepared.proceed and prepared.validate_on is not None:
                validated = await self._validate_on_host(input, prepared, start_deadline)
                if validated is None:
                    # That host is lost, or that code server is no longer the location's:
                    # ask again where the code server is.
                    continue
                if isinstance(validated, _NotStarted):
                    return await self._finish(
                        input, None, validated.outcome, None, validated.message
                    )
                prepared = validated
            break
        if not prepared.proceed:
            return await self._finish(input, None, RunOutcome.NOT_STARTED, None, prepared.message)

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
                code_server_label=prepared.code_server_label,
                code_server_generation=prepared.code_server_generation,
            ),
            Handle,
            f"start the run worker of job {input.job}",
            start_deadline,
        )
        if isinstance(launched, _NotStarted):
            # The launch may have happened just before a cancel: finish_run stops whatever
            # carries this workflow's label.
            return await self._finish(input, None, launched.outcome, None, launched.message)
        self._handle = launched
        self._upsert(input, RunStatus.STARTED)
        return await self._watch(input, launched, prepared.max_runtime_seconds)

    async def _validate_on_host(
        self, input: RunWorkflowInput, prepared: PrepareRunOutput, deadline: datetime
    ) -> "PrepareRunOutput | _NotStarted | None":
        """Validation on the code server's host, whose address only it may reach. None: that
        host's agent is lost, or the code server died and the location moved on."""
        assert prepared.validate_on is not None and prepared.address is not None
        task: workflow.ActivityHandle[PrepareRunOutput] = workflow.start_activity(
            names.VALIDATE_RUN,
            ValidateRunInput(
                run_id=input.run_id,
                code_location=input.code_location,
                address=prepared.address,
                max_runtime_seconds=prepared.max_runtime_seconds,
                organization=input.organization,
                deployment=input.deployment,
            ),
            result_type=PrepareRunOutput,
            task_queue=prepared.validate_on,
            schedule_to_start_timeout=seconds(input.settings.host_lost_after_seconds),
            start_to_close_timeout=SHORT,
            retry_policy=PERSISTENT,
            summary=f"validate the run of job {input.job} on the code server's host",
        )
        try:
            result = await self._race(task, deadline)
        except ActivityError as exc:
            if host_lost(exc):
                return None
            if _moved(exc) and workflow.patched(names.PATCH_VALIDATE_FOLLOWS_LOCATION):
                self._details(input, f"{failure_message(exc)}: locating it again")
                return None
            return _NotStarted(RunOutcome.NOT_STARTED, failure_message(exc))
        if isinstance(result, RunOutcome):
            return _NotStarted(result, None)
        return result

    async def _before_start(
        self, activity: str, arg: Any, result_type: type[T], summary: str, deadline: datetime
    ) -> "T | _NotStarted":
        """A step before the worker runs, as a local activity bounded by the start timeout:
        its result, or why the run will not start (terminated, timed out, failed)."""
        task: workflow.ActivityHandle[T] = workflow.start_local_activity(
            activity,
            arg,
            result_type=result_type,
            start_to_close_timeout=SHORT,
            retry_policy=PERSISTENT,
            summary=summary,
        )
        try:
            result = await self._race(task, deadline)
        except (ActivityError, ApplicationError) as exc:
            # A local activity's failure arrives as the ApplicationError itself.
            return _NotStarted(RunOutcome.NOT_STARTED, failure_message(exc))
        if isinstance(result, RunOutcome):
            return _NotStarted(result, None)
        return result

    async def _watch(
        self, input: RunWorkflowInput, handle: Handle, max_runtime: float | None
    ) -> RunResult:
        settings = input.settings
        self._phase = "running"
        self._details(input, f"run worker running ({handle.where()})")
        deadline = workflow.now() + seconds(max_runtime) if max_runtime else None
        while True:
            watched: WatchRunWorkerOutput | RunOutcome
            try:
                watched = await self._race(
                    self._start_watch(input, handle, settings.host_lost_after_seconds),
                    deadline,
                    stop_first=self._stop_first,
                )
            except ActivityError as exc:
                if not host_lost(exc):
                    raise
                watched = await self._follow_lost_host(input, handle, deadline)
            if isinstance(watched, RunOutcome):
                return await self._finish(input, handle, watched, None)
            if not watched.running:
                return await self._finish(
                    input,
                    handle,
                    RunOutcome.EXITED,
                    watched.exit_code,
                    detail=watched.detail,
                )

    def _start_watch(
        self, input: RunWorkflowInput, handle: Handle, lost_after: float
    ) -> workflow.ActivityHandle[WatchRunWorkerOutput]:
        settings = input.settings
        return workflow.start_activity(
            names.WATCH_RUN_WORKER,
            WatchInput(
                handle=handle, interval_seconds=0.5, max_seconds=settings.watch_slice_seconds
            ),
            result_type=WatchRunWorkerOutput,
            start_to_close_timeout=seconds(settings.watch_slice_seconds + 60),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=PERSISTENT,
            summary=f"watch the run worker of job {input.job} until it exits",
            **self._cancel_option(),
            **on_host(handle, lost_after),
        )

    def _cancel_option(self) -> dict[str, Any]:
        # A canceled watch is over before the workflow moves on: no activity is left pending
        # on a completed workflow.
        if self._wait_for_cancel:
            return {"cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED}
        return {}

    async def _follow_lost_host(
        self, input: RunWorkflowInput, handle: Handle, deadline: datetime | None
    ) -> WatchRunWorkerOutput | RunOutcome:
        """The worker's agent is lost. The run follows the control plane (the worker's own
        heartbeats and final event) until it settles there, while a watch waits on the lost
        agent's queue in case it comes back (then its answer counts)."""
        settings = input.settings
        self._lost = True
        self._phase = "host-lost"
        self._details(
            input,
            f"agent {handle.agent or '?'} ({handle.host_queue}) is not answering: its host is "
            "lost; the run follows its worker's heartbeats to the control plane",
        )
        # Waits as long as a watch slice for the agent to come back.
        watch = self._start_watch(input, handle, settings.watch_slice_seconds)
        settle = self._start_settle(input)
        try:
            while True:
                timeout = None
                if deadline is not None:
                    timeout = max((deadline - workflow.now()).total_seconds(), 0.0)
                try:
                    await workflow.wait_condition(
                        lambda w=watch, s=settle: (  # type: ignore[misc]
                            w.done() or s.done() or self._terminate is not None
                        ),
                        timeout=timeout,
                    )
                except TimeoutError:
                    return RunOutcome.TIMED_OUT
                if settle.done():
                    settled: RunStatusOutput = settle.result()
                    if settled.status in TERMINAL_RUN_STATUSES:
                        return RunOutcome.SETTLED
                    settle = self._start_settle(input)  # the slice ended
                if self._terminate is not None:
                    return RunOutcome.TERMINATED
                if watch.done():
                    try:
                        back: WatchRunWorkerOutput = watch.result()
                    except ActivityError as exc:
                        if not host_lost(exc):
                            raise
                        watch = self._start_watch(input, handle, settings.watch_slice_seconds)
                        continue
                    self._lost = False
                    self._phase = "running"
                    self._details(input, f"agent {handle.agent} is back ({handle.where()})")
                    return back
        finally:
            for task in (watch, settle):
                if not task.done():
                    await self._cancel(task)

    def _start_settle(self, input: RunWorkflowInput) -> workflow.ActivityHandle[RunStatusOutput]:
        settings = input.settings
        return workflow.start_activity(
            names.WAIT_RUN_SETTLED,
            RunSettledInput(
                run_id=input.run_id,
                interval_seconds=settings.lost_host_check_seconds,
                max_seconds=settings.watch_slice_seconds,
            ),
            result_type=RunStatusOutput,
            start_to_close_timeout=seconds(settings.watch_slice_seconds + 60),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=PERSISTENT,
            summary=f"follow run {input.run_id} in the control plane until it settles",
            **self._cancel_option(),
        )

    async def _race(
        self,
        task: workflow.ActivityHandle[T],
        deadline: datetime | None,
        *,
        stop_first: bool = False,
    ) -> T | RunOutcome:
        """Wait for the activity, a terminate signal or the deadline, whichever comes first.
        Returns the activity's result, or why it was canceled first (TIMED_OUT, TERMINATED).
        ``stop_first``: a terminate only requests the activity's cancel; ``_finish`` waits
        for it after stopping the worker."""
        timeout = None
        if deadline is not None:
            timeout = max((deadline - workflow.now()).total_seconds(), 0.0)
        try:
            await workflow.wait_condition(
                lambda: task.done() or self._terminate is not None, timeout=timeout
            )
        except TimeoutError:
            await self._cancel(task)
            return RunOutcome.TIMED_OUT
        if not task.done():
            if stop_first:
                task.cancel()
                self._canceling = task
            else:
                await self._cancel(task)
            return RunOutcome.TERMINATED
        return await task

    @staticmethod
    async def _cancel(task: "asyncio.Task[Any]") -> None:
        task.cancel()
        with contextlib.suppress(ActivityError, ApplicationError, asyncio.CancelledError):
            await task

    async def _finish(
        self,
        input: RunWorkflowInput,
        handle: Handle | None,
        outcome: RunOutcome,
        exit_code: int | None,
        message: str | None = None,
        detail: str | None = None,
    ) -> RunResult:
        settings = input.settings
        if outcome == RunOutcome.TERMINATED and self._terminate is not None:
            message = self._terminate.reason
        elif outcome == RunOutcome.TIMED_OUT:
            message = (
                f"the run did not start within {settings.start_timeout_seconds:g} s"
                if handle is None
                else f"the run exceeded its max runtime (tag {settings.max_runtime_tag})"
            )
        timed_out = outcome == RunOutcome.TIMED_OUT and handle is not None
        if outcome == RunOutcome.TERMINATED and handle is not None:
            exit_code = await self._stop_worker(input, handle, message)
        if self._canceling is not None:
            await self._cancel(self._canceling)
            self._canceling = None
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
                detail=detail,
            ),
            result_type=RunResult,
            start_to_close_timeout=SHORT,
            retry_policy=PERSISTENT,
            summary=f"reconcile the outcome of job {input.job} with the control plane",
        )
        if timed_out and handle is not None:
            # Its outcome is recorded already: the stop also releases what is left of it.
            await self._stop_worker(input, handle, message, release=True)
        elif result.release_on_host and handle is not None and not self._lost:
            await self._release(input, handle, result.status == RunStatus.SUCCESS)
        self._upsert(input, result.status)
        self._phase = "done"
        self._details(input, f"{result.status.value}: {result.message or ''}".rstrip(": "))
        return result

    async def _stop_worker(
        self, input: RunWorkflowInput, handle: Handle, why: str | None, release: bool = False
    ) -> int | None:
        settings = input.settings
        if self._lost:
            # Its host is not answering. The control plane's answer to the worker's next
            # heartbeat stops it: its run ended without its final event.
            return None
        self._phase = "stopping"
        self._details(input, f"stopping the run worker: {why}")
        try:
            stopped = await workflow.execute_activity(
                names.STOP_RUN_WORKER,
                StopInput(
                    handle=handle, grace_seconds=settings.stop_grace_seconds, cleanup=release
                ),
                result_type=StopOutput,
                start_to_close_timeout=seconds(settings.stop_grace_seconds + 30),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=PERSISTENT,
                summary="stop the run worker (SIGTERM, then SIGKILL after the grace)",
                **on_host(handle, settings.host_lost_after_seconds),
            )
        except ActivityError as exc:
            if not host_lost(exc):
                raise
            # Nobody can reach it: the control plane's answer to its heartbeats stops it.
            return None
        return stopped.exit_code

    async def _release(self, input: RunWorkflowInput, handle: Handle, succeeded: bool) -> None:
        """Best effort, on the worker's host: a lost host keeps what is left of it."""
        try:
            await workflow.execute_activity(
                names.RELEASE_RUN_WORKER,
                ReleaseInput(handle=handle, succeeded=succeeded),
                start_to_close_timeout=SHORT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=PERSISTENT,
                summary=f"release what is left of the run worker of job {input.job}",
                **on_host(handle, input.settings.host_lost_after_seconds),
            )
        except ActivityError as exc:
            if not host_lost(exc):
                raise

    def _upsert(self, input: RunWorkflowInput, status: RunStatus) -> None:
        if not self._attributes:
            return
        workflow.upsert_search_attributes(
            [
                attrs.RUN_STATUS.value_set(status.value),
                attrs.JOB.value_set(input.job),
                attrs.CODE_LOCATION.value_set(input.code_location),
                attrs.DEPLOYMENT.value_set(
                    attrs.deployment_value(input.organization, input.deployment)
                ),
            ]
        )

    def _details(self, input: RunWorkflowInput, what: str) -> None:
        workflow.set_current_details(
            f"run {input.run_id} of job **{input.job}** from code location "
            f"**{input.code_location}**: {what}"
        )
