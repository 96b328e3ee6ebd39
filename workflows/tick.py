"""TickWorkflow: one evaluation of a sensor (or of a schedule whose run config is code) in
the location's code server (``tick:{org}:{deployment}:{location}:{kind}:{name}:{tick_id}``).

locate the code server -> on its host, read the tick's request from the control plane,
evaluate it (``POST /ticks``) and report the answer to the control plane, which creates the
runs (``evaluate_and_report_tick``). The user function's own failure is part of the answer,
not an activity failure; only getting no answer (no code server, a host lost, a timeout) is,
and this workflow reports that itself (``report_tick``).

No user text enters the history: the input is the tick's identity (``held``: no cursor, no
ended runs), the answer goes from the code server's host to the control plane, and what this
workflow reports and returns is in the agent's words (an activity's failure is named by its
type, never by its message). Histories from before the patch ``PATCH_TICK_HELD`` keep their
path: ``evaluate_tick`` returned the answer and ``report_tick`` carried it.
"""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from tether_api.enums import TickStatus
    from tether_api.ticks import TickError, TickOutcome, TickReport, TickResponse
    from workflows import names
    from workflows.errors import failure_message
    from workflows.models import (
        TICK_ERROR_RECORDED,
        EvaluateAndReportTickInput,
        EvaluateTickInput,
        LocateInput,
        LocateOutput,
        ReportTickInput,
        TickReported,
        TickWorkflowInput,
    )
    from workflows.options import HEARTBEAT_TIMEOUT, PERSISTENT, SHORT, host_lost, seconds

# An evaluation is retried only for transport errors (a code server restarting): calling a
# user's function again after it timed out would only time out again.
EVALUATE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_attempts=3, non_retryable_error_types=[]
)
# The control plane ignores a report after the tick's deadline; trying for an hour covers
# any outage that short and then leaves the tick to have failed there.
REPORT_FOR = timedelta(hours=1)
# evaluate_and_report_tick: the code server's round trip on top of the tick's timeout, and
# the last control plane call's own timeout on top of REPORT_FOR.
EVALUATE_AND_REPORT_MARGIN = timedelta(seconds=75)

# Why an activity gave no answer, by its failure's type (the agent's activities name them),
# never by its message: a message from an agent of an earlier version may quote a code
# server's answer or a location's load error.
NO_ANSWER = {
    "CodeLocationNotReady": "the code location had no RUNNING code server",
    "CodeServerUnavailable": "the code server did not answer",
    "CodeServerRefused": "the code server refused the tick (what it said is in the agent's log)",
    "CodeServerAnswerInvalid": "the code server's answer was not a TickResponse (see the "
    "agent's log)",
    "ControlPlaneUnavailable": "the control plane could not be reached",
}


@workflow.defn(name=names.TICK_WORKFLOW)
class TickWorkflow:
    @workflow.run
    async def run(self, input: TickWorkflowInput) -> TickOutcome:
        payload = input.tick
        tick = payload.tick
        what = f"{payload.kind.value} {tick.name} of {payload.code_location}"
        # Decided once, first: a history recorded before it keeps the old path throughout.
        held = workflow.patched(names.PATCH_TICK_HELD)
        report = TickReport(workflow_id=workflow.info().workflow_id)
        try:
            # A regular activity, not a local one: its schedule-to-close bound is the server's
            # to enforce, and each attempt shows in the history.
            located = await workflow.execute_activity(
                names.LOCATE_CODE_SERVER,
                LocateInput(
                    organization=input.organization,
                    deployment=input.deployment,
                    code_location=payload.code_location,
                ),
                result_type=LocateOutput,
                start_to_close_timeout=SHORT,
                schedule_to_close_timeout=seconds(input.locate_for_seconds),
                retry_policy=PERSISTENT,
                summary=f"find the code server of {payload.code_location}",
            )
        except (ActivityError, ApplicationError) as exc:
            why = _why(exc, input.host_lost_after_seconds) if held else failure_message(exc)
            report.error = TickError(
                message=f"no code server of {payload.code_location} to evaluate {what}: " + why
            )
        else:
            if held:
                try:
                    done = await self._evaluate_and_report(input, located, what)
                except ActivityError as exc:
                    why = _why(exc, input.host_lost_after_seconds)
                    report.error = TickError(message=f"could not evaluate {what}: {why}")
                else:
                    failed = done.status == TickStatus.FAILURE
                    return TickOutcome(
                        status=done.status,
                        run_ids=done.run_ids,
                        error=TICK_ERROR_RECORDED if failed else None,
                        already_final=done.already_final,
                    )
            else:
                report = await self._evaluate(input, located, report, what)
        outcome = await workflow.execute_activity(
            names.REPORT_TICK,
            ReportTickInput(kind=payload.kind, tick_id=payload.tick_id, report=report),
            result_type=TickOutcome,
            start_to_close_timeout=SHORT,
            schedule_to_close_timeout=REPORT_FOR,
            retry_policy=PERSISTENT,
            summary=f"report the tick of {what} to the control plane",
        )
        # The control plane's error may be the user function's (a tick that had ended): the
        # tick records it, the result only says so. (Old histories' results held it.)
        failed = outcome.status == TickStatus.FAILURE
        return outcome.model_copy(update={"error": TICK_ERROR_RECORDED if failed else None})

    async def _evaluate_and_report(
        self, input: TickWorkflowInput, located: LocateOutput, what: str
    ) -> TickReported:
        """On the code server's host: the activity reads the request, evaluates, reports,
        and returns what the control plane made of it (see its docstring for its retries)."""
        payload = input.tick
        result: TickReported = await workflow.execute_activity(
            names.EVALUATE_AND_REPORT_TICK,
            EvaluateAndReportTickInput(
                payload=payload,
                held=input.held,
                address=located.address,
                workflow_id=workflow.info().workflow_id,
                report_for_seconds=REPORT_FOR.total_seconds(),
            ),
            result_type=TickReported,
            # The code server answers by the tick's timeout; the control plane is waited for
            # through an outage of up to REPORT_FOR besides.
            start_to_close_timeout=seconds(payload.tick.timeout_seconds)
            + REPORT_FOR
            + EVALUATE_AND_REPORT_MARGIN,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=EVALUATE_RETRY,
            summary=f"evaluate {what} in its code server and report it",
            **_on_host(input, located),
        )
        return result

    async def _evaluate(
        self, input: TickWorkflowInput, located: LocateOutput, report: TickReport, what: str
    ) -> TickReport:
        """The path of histories recorded before PATCH_TICK_HELD: the answer is the
        activity's result, and the workflow reports it (when it can go: workflows/README.md,
        "Deprecations")."""
        tick = input.tick.tick
        try:
            response = await workflow.execute_activity(
                names.EVALUATE_TICK,
                EvaluateTickInput(
                    code_location=input.tick.code_location,
                    address=located.address,
                    tick=tick,
                ),
                result_type=TickResponse,
                # The code server answers by its timeout; the margin covers the round trip.
                start_to_close_timeout=seconds(tick.timeout_seconds + 15),
                heartbeat_timeout=seconds(10),
                retry_policy=EVALUATE_RETRY,
                summary=f"evaluate {what} in its code server",
                **_on_host(input, located),
            )
        except ActivityError as exc:
            report.error = TickError(message=f"could not evaluate {what}: {failure_message(exc)}")
            return report
        report.response = response
        return report


def _on_host(input: TickWorkflowInput, located: LocateOutput) -> dict[str, Any]:
    """The code server's host's queue, with the time after which its agent counts as lost;
    nothing when the code server is this agent's."""
    if located.host_queue is None:
        return {}
    return {
        "task_queue": located.host_queue,
        "schedule_to_start_timeout": seconds(input.host_lost_after_seconds),
    }


def _why(exc: BaseException, lost_after: float) -> str:
    """Why an activity gave no answer, in the agent's words: its failure's type and whether
    it timed out, never its message."""
    if host_lost(exc):
        return (
            f"no agent took the evaluation from the code server's host's queue within "
            f"{lost_after:g} s (its agent is lost?)"
        )
    failure_type: str | None = None
    timed_out: str | None = None
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, ActivityTimeout) and timed_out is None:
            timed_out = current.type.name if current.type is not None else "TIMEOUT"
        elif isinstance(current, ApplicationError) and failure_type is None:
            failure_type = current.type
        current = current.__cause__
    if failure_type is None:
        why = "the activity failed"
    else:
        why = NO_ANSWER.get(failure_type, f"the activity failed with {failure_type}")
    if timed_out is not None:
        why += f" (timed out: {timed_out})"
    elif isinstance(exc, ActivityError) and exc.retry_state == RetryState.TIMEOUT:
        why += " (retried until its time ran out)"
    return why
