"""TickWorkflow: one evaluation of a sensor (or of a schedule whose run config is code) in
the location's code server (``tick:{org}:{deployment}:{location}:{kind}:{name}:{tick_id}``).

locate the code server -> evaluate on its host (``POST /ticks``) -> report to the control
plane, which creates the runs. The user function's own failure is part of the answer, not an
activity failure; only getting no answer (no code server, a host lost, a timeout) is.
"""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from tether_api.ticks import TickError, TickOutcome, TickReport, TickResponse
    from workflows import names
    from workflows.errors import failure_message
    from workflows.models import (
        EvaluateTickInput,
        LocateInput,
        LocateOutput,
        ReportTickInput,
        TickWorkflowInput,
    )
    from workflows.options import PERSISTENT, SHORT, seconds

# An evaluation is retried only for transport errors (a code server restarting): calling a
# user's function again after it timed out would only time out again.
EVALUATE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_attempts=3, non_retryable_error_types=[]
)
# The control plane ignores a report after the tick's deadline; trying for an hour covers
# any outage that short and then leaves the tick to have failed there.
REPORT_FOR = timedelta(hours=1)


@workflow.defn(name="TickWorkflow")
class TickWorkflow:
    @workflow.run
    async def run(self, input: TickWorkflowInput) -> TickOutcome:
        payload = input.payload
        tick = payload.tick
        what = f"{payload.kind.value} {tick.name} of {payload.code_location}"
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
            report.error = TickError(
                message=f"no code server of {payload.code_location} to evaluate {what}: "
                + failure_message(exc)
            )
        else:
            report = await self._evaluate(input, located, report, what)
        return await workflow.execute_activity(
            names.REPORT_TICK,
            ReportTickInput(kind=payload.kind, tick_id=payload.tick_id, report=report),
            result_type=TickOutcome,
            start_to_close_timeout=SHORT,
            schedule_to_close_timeout=REPORT_FOR,
            retry_policy=PERSISTENT,
            summary=f"report the tick of {what} to the control plane",
        )

    async def _evaluate(
        self, input: TickWorkflowInput, located: LocateOutput, report: TickReport, what: str
    ) -> TickReport:
        tick = input.payload.tick
        host: dict[str, Any] = {}
        if located.host_queue is not None:
            host = {
                "task_queue": located.host_queue,
                "schedule_to_start_timeout": seconds(input.host_lost_after_seconds),
            }
        try:
            response = await workflow.execute_activity(
                names.EVALUATE_TICK,
                EvaluateTickInput(
                    code_location=input.payload.code_location,
                    address=located.address,
                    tick=tick,
                ),
                result_type=TickResponse,
                # The code server answers by its timeout; the margin covers the round trip.
                start_to_close_timeout=seconds(tick.timeout_seconds + 15),
                heartbeat_timeout=seconds(10),
                retry_policy=EVALUATE_RETRY,
                summary=f"evaluate {what} in its code server",
                **host,
            )
        except ActivityError as exc:
            report.error = TickError(message=f"could not evaluate {what}: {failure_message(exc)}")
            return report
        report.response = response
        return report
