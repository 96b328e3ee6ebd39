"""NexusRunWorkflow: the workflow behind one `run_job` operation of the Nexus service
``tether.v1.Runs`` (``nexus-run:{run_id}``).

The operation's start handler (worker/nexus_service.py) has already created the run through
the control plane, keyed by the caller's request ID; this workflow awaits its end and
completes the operation with it. The run itself is the control plane's and its RunWorkflow's,
as any other run: queued under the deployment's limit, launched, watched.

await the run (one heartbeating activity that long-polls the control plane, however long the
run takes: the history stays a handful of events) -> a retry the job's policy started is
followed -> SUCCESS returns the result; FAILURE and CANCELED fail the operation with it.
Cancelling the operation (the caller canceled it, or its workflow) terminates the run and
waits, briefly, for it to end, then reports the operation canceled.
"""

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from tether_api.enums import RunStatus
    from tether_api.nexus import RUN_CANCELED_ERROR, RUN_FAILED_ERROR, RunJobResult
    from workflows import names
    from workflows.nexus_models import (
        AwaitNexusRunInput,
        NexusRunInput,
        NexusRunOutcome,
        TerminateNexusRunInput,
        TerminateNexusRunOutput,
    )
    from workflows.options import HEARTBEAT_TIMEOUT, PERSISTENT, SHORT

# The await activity heartbeats every few seconds while it long-polls; a dead agent's poll is
# taken over by another (or the restarted) agent after this long.
AWAIT_HEARTBEAT_TIMEOUT = HEARTBEAT_TIMEOUT
# A run may take days; the activity ends when the run does (or its workflow is canceled).
AWAIT_START_TO_CLOSE = timedelta(days=30)
# After a cancel: how long the terminated run gets to end before the operation reports
# canceled anyway (the run's own stop grace is the agent's, usually seconds).
CANCEL_WAIT = timedelta(minutes=2)
# Follow at most this many retries in one history, then continue as new.
RETRIES_PER_HISTORY = 50


@workflow.defn(name=names.NEXUS_RUN_WORKFLOW)
class NexusRunWorkflow:
    @workflow.run
    async def run(self, input: NexusRunInput) -> RunJobResult:
        run_id = input.run_id
        attempts = input.attempts
        followed = 0
        try:
            while True:
                workflow.set_current_details(
                    f"awaiting Tether run {run_id} (workflow {names.run_workflow_id(run_id)}), "
                    f"attempt {attempts}"
                )
                outcome = await self._await(run_id, input)
                if outcome.retry_run_id is None:
                    break
                run_id, attempts, followed = outcome.retry_run_id, attempts + 1, followed + 1
                if followed >= RETRIES_PER_HISTORY:
                    workflow.continue_as_new(
                        input.model_copy(update={"run_id": run_id, "attempts": attempts})
                    )
        except (asyncio.CancelledError, ActivityError) as exc:
            # A canceled activity surfaces as an ActivityError whose cause is the cancel.
            if not is_cancelled_exception(exc):
                raise
            await self._terminate(run_id, input)
            raise
        result = outcome.result
        assert result is not None  # a final run without a retry has its result
        result = result.model_copy(update={"attempts": attempts})
        if result.status == RunStatus.SUCCESS:
            return result
        kind = RUN_CANCELED_ERROR if result.status == RunStatus.CANCELED else RUN_FAILED_ERROR
        raise ApplicationError(
            result.error or f"run {result.run_id} ended {result.status.value}",
            result,
            type=kind,
            non_retryable=True,
        )

    async def _await(
        self,
        run_id: str,
        input: NexusRunInput,
        within: timedelta | None = None,
        summary: str = "await run",
    ) -> NexusRunOutcome:
        """The run's outcome once it is final; ``within``: give up after that long."""
        return await workflow.execute_activity(
            names.AWAIT_NEXUS_RUN,
            AwaitNexusRunInput(run_id=run_id, detail=input.detail),
            result_type=NexusRunOutcome,
            start_to_close_timeout=within or AWAIT_START_TO_CLOSE,
            schedule_to_close_timeout=within,
            heartbeat_timeout=AWAIT_HEARTBEAT_TIMEOUT,
            retry_policy=PERSISTENT,
            # It only reads: on a cancel the workflow terminates the run at once, without
            # waiting for the cancel to reach the activity (Temporal throttles heartbeats to
            # 0.8 x their timeout, so that can take 8 s).
            cancellation_type=ActivityCancellationType.TRY_CANCEL,
            summary=f"{summary} {run_id}",
        )

    async def _terminate(self, run_id: str, input: NexusRunInput) -> None:
        """The caller canceled: terminate the run, and give it a little while to end."""
        caller = input.caller.workflow_id if input.caller else "its caller"
        done = await workflow.execute_activity(
            names.TERMINATE_NEXUS_RUN,
            TerminateNexusRunInput(
                run_id=run_id, reason=f"the Nexus operation was canceled by {caller}"
            ),
            result_type=TerminateNexusRunOutput,
            start_to_close_timeout=SHORT,
            retry_policy=PERSISTENT,
            schedule_to_close_timeout=CANCEL_WAIT,
        )
        if not done.terminated:
            return
        try:
            await self._await(run_id, input, CANCEL_WAIT, "await terminated run")
        except ActivityError:  # canceled either way: the run ends on its own
            workflow.logger.warning(
                "run %s did not end within %s of its terminate", run_id, CANCEL_WAIT
            )
