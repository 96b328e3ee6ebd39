"""NexusRunWorkflow's activities: await a run's end and terminate a run, through the
control plane's run API with the agent's Nexus token (activities/runs_api.py)."""

import asyncio
import contextlib
import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.runs_api import (
    RunsApiClient,
    RunsApiRefused,
    RunsApiRejected,
    RunsApiUnavailable,
)
from tether_api.enums import TERMINAL_RUN_STATUSES, EventType, RunStatus, StepStatus
from tether_api.nexus import Materialization, RunJobResult, StepOutcome
from tether_api.steps import StepSummary
from tether_api.user_api import Run
from workflows import names
from workflows.nexus_models import (
    AwaitNexusRunInput,
    NexusOutcomeDetail,
    NexusRunOutcome,
    TerminateNexusRunInput,
    TerminateNexusRunOutput,
)

log = logging.getLogger("tether.agent.nexus")

# One long-poll of the control plane; the activity heartbeats while it waits.
POLL_SECONDS = 25.0
HEARTBEAT_EVERY_SECONDS = 3.0
# In place of user text when the agent's nexus_outcome setting is 'ids'.
SEE_THE_RUN = "see the run in Tether"


def _retryable(exc: RunsApiUnavailable | RunsApiRejected) -> ApplicationError:
    # Benign: an outage or a token to fix is no bug, so no traceback in the worker's log.
    return ApplicationError(
        str(exc), type=type(exc).__name__, category=ApplicationErrorCategory.BENIGN
    )


def _refused(exc: RunsApiRefused) -> ApplicationError:
    return ApplicationError(str(exc), type="RunsApiRefused", non_retryable=True)


class NexusRunActivities:
    def __init__(self, runs: RunsApiClient) -> None:
        self.runs = runs

    async def aclose(self) -> None:
        await self.runs.aclose()

    @activity.defn(name=names.AWAIT_NEXUS_RUN)
    async def await_nexus_run(self, input: AwaitNexusRunInput) -> NexusRunOutcome:
        """Long-poll the run until it is final, heartbeating; then its retry to follow, or its
        result. Cancelled (the operation was) with the heartbeat's answer."""
        beating = asyncio.create_task(_heartbeat_forever())
        try:
            run = await self._until_final(input.run_id)
            if run.status == RunStatus.FAILURE and run.retry_run_id:
                return NexusRunOutcome(retry_run_id=run.retry_run_id)
            return NexusRunOutcome(result=await self._result(run, input.detail))
        except (RunsApiUnavailable, RunsApiRejected) as exc:
            raise _retryable(exc) from None
        except RunsApiRefused as exc:
            raise _refused(exc) from None
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def _until_final(self, run_id: str) -> Run:
        # A failed run's retry is created in the transaction that failed it: a FAILURE read
        # here already names its retry, if it has one.
        while True:
            run = await self.runs.get(run_id, wait_seconds=POLL_SECONDS)
            if run.status in TERMINAL_RUN_STATUSES:
                return run

    async def _result(self, run: Run, detail: NexusOutcomeDetail) -> RunJobResult:
        steps = await self.runs.steps(run.id)
        full = detail == NexusOutcomeDetail.FULL
        materializations: list[Materialization] = []
        if full:
            events = await self.runs.events(run.id, [EventType.ASSET_MATERIALIZATION.value])
            for event in events:
                if event.type != EventType.ASSET_MATERIALIZATION:
                    continue
                key = event.data.get("asset_key")
                metadata = event.data.get("metadata")
                materializations.append(
                    Materialization(
                        asset_key=str(key) if key is not None else event.message,
                        step=event.step,
                        metadata=metadata if isinstance(metadata, dict) else {},
                    )
                )
        return RunJobResult(
            run_id=run.id,
            deployment=run.deployment,
            status=run.status,
            url=self.runs.run_url(run.id),
            steps=[_step(s, full) for s in steps],
            materializations=materializations,
            error=_error(run, steps, full),
            started_at=run.started_at,
            ended_at=run.ended_at,
        )

    @activity.defn(name=names.TERMINATE_NEXUS_RUN)
    async def terminate_nexus_run(self, input: TerminateNexusRunInput) -> TerminateNexusRunOutput:
        try:
            run = await self.runs.terminate(input.run_id)
        except (RunsApiUnavailable, RunsApiRejected) as exc:
            raise _retryable(exc) from None
        except RunsApiRefused as exc:
            raise _refused(exc) from None
        if run is None:
            log.info("run %s had already ended when its Nexus operation was canceled", input.run_id)
            return TerminateNexusRunOutput(terminated=False)
        log.info("run %s terminated: %s", input.run_id, input.reason)
        return TerminateNexusRunOutput(terminated=True)


async def _heartbeat_forever() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)


def _step(step: StepSummary, full: bool) -> StepOutcome:
    error = step.error if full else (SEE_THE_RUN if step.error else None)
    return StepOutcome(
        name=step.name,
        status=step.status,
        duration_seconds=step.duration_seconds,
        error=error,
    )


def _error(run: Run, steps: list[StepSummary], full: bool) -> str | None:
    """Why a run did not succeed: its first failed step's error, else the run's message."""
    if run.status == RunStatus.SUCCESS:
        return None
    failed = next((s for s in steps if s.status == StepStatus.FAILURE), None)
    if not full:
        where = f" in step {failed.name}" if failed else ""
        return f"run {run.id} ended {run.status.value}{where}: {SEE_THE_RUN}"
    if failed is not None:
        return f"step {failed.name} failed: {failed.error or 'no error recorded'}"
    return run.status_message or f"run {run.id} ended {run.status.value}"
