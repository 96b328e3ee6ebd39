"""TickWorkflow's activities: find the code server, have it evaluate the tick, report."""

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import logpolicy
from activities.context import AgentContext, heartbeating
from activities.locate import location_state
from tether_api.ticks import TickError, TickOutcome, TickResponse
from workflows import names
from workflows.models import EvaluateTickInput, LocateInput, LocateOutput, ReportTickInput

# Heartbeats while the code server evaluates: a lost agent's evaluation is noticed by
# Temporal within the heartbeat timeout instead of after the whole start-to-close timeout.
HEARTBEAT_EVERY_SECONDS = 3.0


class TickActivities:
    def __init__(self, context: AgentContext) -> None:
        self.ctx = context
        self._http = httpx.AsyncClient()

    async def aclose(self) -> None:
        await self._http.aclose()

    @activity.defn(name=names.LOCATE_CODE_SERVER)
    async def locate_code_server(self, input: LocateInput) -> LocateOutput:
        """The serving code server's address, and its host's queue when another agent's host
        runs it. Retryable while the location has none (starting, updating, in ERROR)."""
        state = await location_state(
            self.ctx, input.organization, input.deployment, input.code_location
        )
        if state.address is None:
            raise ApplicationError(
                f"code location {input.code_location} is {state.status.value}"
                + (f": {state.message}" if state.message else "")
                + "; waiting for a RUNNING code server",
                type="CodeLocationNotReady",
            )
        server = state.server
        remote = server is not None and not self.ctx.is_local(server)
        return LocateOutput(
            address=state.address, host_queue=server.host_queue if remote and server else None
        )

    @activity.defn(name=names.EVALUATE_TICK)
    async def evaluate_tick(self, input: EvaluateTickInput) -> TickResponse:
        """``POST /ticks`` on the code server, heartbeating while it evaluates. The user
        function's errors and timeout come back inside the response."""
        call = self._http.post(
            f"{input.address}/ticks",
            content=input.tick.model_dump_json(),
            headers={"Content-Type": "application/json"},
            timeout=input.tick.timeout_seconds + 10,
        )
        try:
            response = await heartbeating(call, HEARTBEAT_EVERY_SECONDS)
        except httpx.HTTPError as exc:
            raise ApplicationError(
                f"the code server of {input.code_location} did not answer: {exc!r}",
                type="CodeServerUnavailable",
            ) from exc
        if response.status_code != 200:
            raise ApplicationError(
                f"the code server of {input.code_location} refused the tick "
                f"({response.status_code}): {response.text[:500]}",
                type="CodeServerRefused",
                non_retryable=True,
            )
        answer = TickResponse.model_validate_json(response.content)
        if answer.error is not None:
            answer.error = await self._outgoing_error(input.code_location, answer.error)
        return answer

    async def _outgoing_error(self, code_location: str, error: TickError) -> TickError:
        """The user function's error as the location's log settings let it leave (and enter
        the workflow's history): masked, or with redact_errors an error ID and class, the
        text in the agent's log under that ID."""
        location = await self.ctx.control_plane.code_location(code_location)
        full = f"{error.message}\n{error.traceback or ''}".rstrip()
        line, _ = logpolicy.redact_error(
            location.log_settings,
            location.spec,
            f"code location {code_location}: a tick's function failed",
            error.message,
            full,
        )
        if location.log_settings.redact_errors:
            return TickError(message=line, traceback=None)
        mask = logpolicy.masker(location.spec)
        return TickError(
            message=line, traceback=mask.text(error.traceback) if error.traceback else None
        )

    @activity.defn(name=names.REPORT_TICK)
    async def report_tick(self, input: ReportTickInput) -> TickOutcome:
        return await self.ctx.control_plane.report_tick(
            input.kind.value, input.tick_id, input.report
        )
