"""TickWorkflow's activities: find the code server, have it evaluate the tick, report.

What they return or raise enters the workflow's history, so it holds no user text: the
code server's answer (run requests, cursor, the user function's error), its refusals and a
location's status message go to the control plane or to the agent's log, masked (and
redacted as the location's log settings say). ``evaluate_and_report_tick`` is the tick's
one step on the code server's host; ``evaluate_tick`` and ``report_tick`` are the steps of
TickWorkflows started before it, and stay registered for those.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import logpolicy
from activities.context import AgentContext, heartbeating
from activities.controlplane import REFUSED
from activities.locate import location_state
from tether_api.enums import TickStatus
from tether_api.locations import CodeLocation, CodeLocationSpec
from tether_api.ticks import TickError, TickOutcome, TickReport, TickRequest, TickResponse
from workflows import names
from workflows.models import (
    TICK_ERROR_RECORDED,
    EvaluateAndReportTickInput,
    EvaluateTickInput,
    LocateInput,
    LocateOutput,
    ReportTickInput,
    TickReported,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Heartbeats while the code server evaluates (and while the control plane is waited for): a
# lost agent's evaluation is noticed by Temporal within the heartbeat timeout instead of after
# the whole start-to-close timeout.
HEARTBEAT_EVERY_SECONDS = 3.0
# evaluate_and_report_tick's control plane calls, retried through an outage: the first wait,
# doubled after each failure up to the cap (as options.PERSISTENT does between attempts).
RETRY_FIRST_SECONDS = 0.2
RETRY_MAX_SECONDS = 10.0
# Reported for a tick that had ended before the activity read it (an earlier attempt reported
# it, or it passed its deadline): the control plane answers with the tick as it is and
# changes nothing.
ENDED = "the tick had ended before this agent read its request; it was not evaluated again"


class TickActivities:
    def __init__(self, context: AgentContext) -> None:
        self.ctx = context
        self._http = httpx.AsyncClient()

    async def aclose(self) -> None:
        await self._http.aclose()

    @activity.defn(name=names.LOCATE_CODE_SERVER)
    async def locate_code_server(self, input: LocateInput) -> LocateOutput:
        """The serving code server's address, and its host's queue when another agent's host
        runs it. Retryable while the location has none (starting, updating, in ERROR). The
        failure names the status only: its message may be a code server's load error."""
        state = await location_state(
            self.ctx, input.organization, input.deployment, input.code_location
        )
        if state.address is None:
            raise ApplicationError(
                f"code location {input.code_location} is {state.status.value}; waiting for a "
                "RUNNING code server",
                type="CodeLocationNotReady",
            )
        server = state.server
        remote = server is not None and not self.ctx.is_local(server)
        return LocateOutput(
            address=state.address, host_queue=server.host_queue if remote and server else None
        )

    @activity.defn(name=names.EVALUATE_AND_REPORT_TICK)
    async def evaluate_and_report_tick(self, input: EvaluateAndReportTickInput) -> TickReported:
        """Read the tick's request from the control plane (a held tick's workflow carries
        only its identity), have the code server evaluate it (``POST /ticks``), report the
        answer to the control plane, and return what the control plane made of it.

        Retries: the control plane calls are retried in here with backoff and heartbeats, for
        up to ``report_for_seconds`` (plus the evaluation's time), so that an outage neither
        loses an answer nor calls the user's function again for it. Temporal retries the
        activity (EVALUATE_RETRY, three attempts) when the code server did not answer or the
        agent was lost, not for a refusal. Each attempt of a held tick reads the request
        first: once an earlier attempt's report went through the tick has ended, and it is
        not evaluated again. A report for an ended tick changes nothing, so a repeated one is
        harmless. Any other exception (a bug; something read that does not parse) reaches
        the history as its class only: worker/failures.py, on every worker, sees to that."""
        payload = input.payload
        kind, tick_id, name = payload.kind.value, payload.tick_id, payload.code_location
        control_plane = self.ctx.control_plane
        loop = asyncio.get_running_loop()
        deadline = loop.time() + input.report_for_seconds
        tick = payload.tick
        if input.held:
            request = await self._persistently(
                lambda: control_plane.tick_request(kind, tick_id),
                f"read {kind} tick {tick_id}",
                deadline,
            )
            if request is None:
                return await self._report(
                    input, TickReport(error=TickError(message=ENDED)), deadline
                )
            if (request.code_location, request.tick.name) != (name, tick.name):
                raise ApplicationError(
                    f"the control plane's request of {kind} tick {tick_id} is about another "
                    "sensor or schedule than its workflow",
                    type="TickMismatch",
                    non_retryable=True,
                )
            tick = request.tick
        location = await self._persistently(
            lambda: control_plane.code_location(name), f"describe code location {name}", deadline
        )
        started = loop.time()
        answer = _answer(name, await self._ask(name, input.address, tick), location.spec)
        if answer.error is not None:
            answer.error = self._outgoing_error(location, name, answer.error)
        # The evaluation's time does not count against the control plane's outage.
        deadline += loop.time() - started
        return await self._report(input, TickReport(response=answer), deadline)

    async def _report(
        self, input: EvaluateAndReportTickInput, report: TickReport, deadline: float
    ) -> TickReported:
        kind, tick_id = input.payload.kind.value, input.payload.tick_id
        report.workflow_id = input.workflow_id  # recorded on the tick, shown with it
        outcome = await self._persistently(
            lambda: self.ctx.control_plane.report_tick(kind, tick_id, report),
            f"report {kind} tick {tick_id}",
            deadline,
        )
        return TickReported(
            status=outcome.status,
            run_ids=outcome.run_ids,
            already_final=outcome.already_final,
            error=TICK_ERROR_RECORDED if outcome.status == TickStatus.FAILURE else None,
        )

    async def _persistently(
        self, call: Callable[[], Awaitable[T]], what: str, deadline: float
    ) -> T:
        """A control plane call, retried through an outage (connection errors, 5xx, a
        proxy's 401, a token being replaced) with capped backoff, heartbeating, until
        ``deadline``. A refusal (4xx) is not retried; its detail, which may quote what was
        sent, goes to the agent's log and not into the failure."""
        loop = asyncio.get_running_loop()
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                return await heartbeating(call(), HEARTBEAT_EVERY_SECONDS)
            except ApplicationError as exc:
                if exc.non_retryable:
                    log.warning("the control plane refused to %s: %s", what, exc.message)
                    raise ApplicationError(
                        f"the control plane refused to {what}; its answer is in the agent's log",
                        type=exc.type or REFUSED,
                        non_retryable=True,
                    ) from None
                problem = exc.message
            except (httpx.HTTPError, RuntimeError) as exc:
                problem = repr(exc)
            if loop.time() + delay > deadline:
                log.warning("could not %s: %s; giving up", what, problem)
                raise ApplicationError(
                    f"could not {what}: the control plane did not answer in time; the last "
                    "error is in the agent's log",
                    type="ControlPlaneUnavailable",
                    non_retryable=True,
                ) from None
            log.warning("could not %s: %s; trying again in %.1f s", what, problem, delay)
            await heartbeating(asyncio.sleep(delay), HEARTBEAT_EVERY_SECONDS)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _ask(self, code_location: str, address: str, tick: TickRequest) -> httpx.Response:
        """``POST /ticks`` on the code server, heartbeating while it evaluates. The user
        function's errors and timeout come back inside the answer."""
        call = self._http.post(
            f"{address}/ticks",
            content=tick.model_dump_json(),
            headers={"Content-Type": "application/json"},
            timeout=tick.timeout_seconds + 10,
        )
        try:
            return await heartbeating(call, HEARTBEAT_EVERY_SECONDS)
        except httpx.HTTPError as exc:
            raise ApplicationError(
                f"the code server of {code_location} did not answer: {exc!r}",
                type="CodeServerUnavailable",
            ) from exc

    @activity.defn(name=names.EVALUATE_TICK)
    async def evaluate_tick(self, input: EvaluateTickInput) -> TickResponse:
        """The evaluation of TickWorkflows started before ``evaluate_and_report_tick``: the
        answer is its result (the user function's error masked or redacted)."""
        response = await self._ask(input.code_location, input.address, input.tick)
        spec = None
        if response.status_code != 200:
            # Only to mask what it said in the agent's log.
            with contextlib.suppress(Exception):
                spec = (await self.ctx.control_plane.code_location(input.code_location)).spec
        answer = _answer(input.code_location, response, spec)
        if answer.error is not None:
            location = await self.ctx.control_plane.code_location(input.code_location)
            answer.error = self._outgoing_error(location, input.code_location, answer.error)
        return answer

    @staticmethod
    def _outgoing_error(location: CodeLocation, code_location: str, error: TickError) -> TickError:
        """The user function's error as the location's log settings let it leave for the
        control plane: masked, or with redact_errors an error ID and class, the text in the
        agent's log under that ID."""
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
        """Report to the control plane and return its outcome, but not its error text: that
        may be the user function's (or a skip reason of theirs), and the tick records it."""
        outcome = await self.ctx.control_plane.report_tick(
            input.kind.value, input.tick_id, input.report
        )
        failed = outcome.status == TickStatus.FAILURE
        return outcome.model_copy(update={"error": TICK_ERROR_RECORDED if failed else None})


def _answer(
    code_location: str, response: httpx.Response, spec: CodeLocationSpec | None
) -> TickResponse:
    """The code server's answer. What a code server says besides one (a traceback, an echo of
    the request: user text) goes to the agent's log, masked with ``spec``'s secrets (None:
    not logged), and not into the failure."""
    if response.status_code != 200:
        _log_said(code_location, f"refused the tick ({response.status_code})", response, spec)
        raise ApplicationError(
            f"the code server of {code_location} refused the tick ({response.status_code}); "
            "what it said is in the agent's log",
            type="CodeServerRefused",
            non_retryable=True,
        )
    try:
        return TickResponse.model_validate_json(response.content)
    except ValidationError:
        _log_said(code_location, "answered with no valid TickResponse", response, spec)
        raise ApplicationError(
            f"the code server of {code_location} answered the tick with no valid TickResponse "
            "(another version of tether?); what it said is in the agent's log",
            type="CodeServerAnswerInvalid",
            non_retryable=True,
        ) from None


def _log_said(
    code_location: str, what: str, response: httpx.Response, spec: CodeLocationSpec | None
) -> None:
    if spec is None:
        log.warning(
            "the code server of %s %s (not logged: its masks were not read)", code_location, what
        )
        return
    said = logpolicy.masker(spec).text(response.text[:2000])
    log.warning("the code server of %s %s: %s", code_location, what, said)
