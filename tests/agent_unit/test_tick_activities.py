"""``evaluate_and_report_tick`` on its own: a stand-in control plane and code server (httpx's
mock transport), Temporal's ActivityEnvironment. What it returns and raises goes into the
TickWorkflow's history, so none of it may hold the user's text (a marker here); the answer
goes to the control plane, masked per the location's settings, through an outage."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import ticks
from activities.context import AgentContext
from activities.ticks import TickActivities
from tether_api.enums import CodeLocationStatus, TickKind, TickStatus
from tether_api.locations import CodeLocation, CodeLocationSpec
from tether_api.logs import LogSettings
from tether_api.ticks import (
    EvaluateTickPayload,
    RunRequestSpec,
    TickError,
    TickOutcome,
    TickReport,
    TickRequest,
    TickResponse,
)
from workflows.models import TICK_ERROR_RECORDED, EvaluateAndReportTickInput, TickReported

MARKER = "user-text-41c0de"
SECRET_NAME = "TICKTEST_SECRET"
SECRET = "s3cr3t-value-for-tick-tests"
NOW = datetime(2030, 1, 1, tzinfo=UTC)
# The request as the control plane enqueued it, and the identity the workflow carries.
REQUEST = EvaluateTickPayload(
    kind=TickKind.SENSOR,
    tick_id=7,
    code_location="loc",
    tick=TickRequest(kind=TickKind.SENSOR, name="inbox", cursor=f"c-{MARKER}", tick_time=NOW),
)
HELD = REQUEST.model_copy(update={"tick": REQUEST.tick.model_copy(update={"cursor": None})})


class StandInControlPlane:
    """The agent client's tick calls; ``down`` calls fail as a 5xx or a lost connection do."""

    def __init__(self, redact_errors: bool = False) -> None:
        self.request: EvaluateTickPayload | None = REQUEST
        self.location = CodeLocation(
            name="loc",
            deployment="d",
            spec=CodeLocationSpec(module="m", passthrough_env=[SECRET_NAME]),
            status=CodeLocationStatus.RUNNING,
            generation=1,
            created_at=NOW,
            updated_at=NOW,
            log_settings=LogSettings(redact_errors=redact_errors),
        )
        self.reports: list[TickReport] = []
        self.outcome = TickOutcome(status=TickStatus.SUCCESS, run_ids=["r1"])
        self.down = 0
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.down > 0:
            self.down -= 1
            if self.down % 2:
                raise RuntimeError("control plane answered 503 to GET /ticks: unavailable")
            raise httpx.ConnectError("connection refused")

    async def tick_request(self, kind: str, tick_id: int) -> EvaluateTickPayload | None:
        self._call("tick_request")
        return self.request

    async def code_location(self, name: str) -> CodeLocation:
        self._call("code_location")
        return self.location

    async def report_tick(self, kind: str, tick_id: int, body: TickReport) -> TickOutcome:
        self._call("report_tick")
        self.reports.append(body)
        return self.outcome


class StandInCodeServer:
    def __init__(self, answer: Callable[[TickRequest], httpx.Response]) -> None:
        self.answer = answer
        self.asked: list[TickRequest] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/ticks"
        tick = TickRequest.model_validate_json(request.content)
        self.asked.append(tick)
        return self.answer(tick)


def asks_for_a_run(tick: TickRequest) -> httpx.Response:
    answer = TickResponse(
        run_requests=[RunRequestSpec(run_key="k", run_config={"x": MARKER}, tags={"t": MARKER})],
        cursor=f"next-{MARKER}",
    )
    return httpx.Response(200, content=answer.model_dump_json())


def raises(tick: TickRequest) -> httpx.Response:
    error = TickError(
        message=f"ValueError: {MARKER} {SECRET}", traceback=f"Traceback ...\n{MARKER} {SECRET}\n"
    )
    return httpx.Response(200, content=TickResponse(error=error).model_dump_json())


def activities(
    control_plane: StandInControlPlane, code_server: StandInCodeServer
) -> TickActivities:
    context = AgentContext(
        control_plane=cast(Any, control_plane),
        launcher=cast(Any, None),
        temporal=cast(Any, None),
        agent_name="a",
        worker_control_plane_url="http://cp",
    )
    found = TickActivities(context)
    found._http = httpx.AsyncClient(transport=httpx.MockTransport(code_server.handle))
    return found


def tick_input(held: bool = True, report_for: float = 30) -> EvaluateAndReportTickInput:
    return EvaluateAndReportTickInput(
        payload=HELD if held else REQUEST,
        held=held,
        address="http://code-server",
        workflow_id="tick:o:d:loc:sensor:inbox:7",
        report_for_seconds=report_for,
    )


def chained(exc: BaseException) -> bool:
    """Whether Temporal's failure converter would put another exception (and its message)
    under this one: a cause, or a context not suppressed."""
    return exc.__cause__ is not None or (
        exc.__context__ is not None and not exc.__suppress_context__
    )


async def run(found: TickActivities, input: EvaluateAndReportTickInput) -> TickReported:
    result: TickReported = await ActivityEnvironment().run(found.evaluate_and_report_tick, input)
    return result


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_NAME, SECRET)
    monkeypatch.setattr(ticks, "RETRY_FIRST_SECONDS", 0.01)
    monkeypatch.setattr(ticks, "RETRY_MAX_SECONDS", 0.02)


async def test_a_held_tick_is_read_evaluated_and_reported_and_returns_no_user_text() -> None:
    control_plane = StandInControlPlane()
    code_server = StandInCodeServer(asks_for_a_run)
    result = await run(activities(control_plane, code_server), tick_input())
    assert result == TickReported(status=TickStatus.SUCCESS, run_ids=["r1"])
    # The code server was asked what the control plane enqueued, cursor and all.
    assert code_server.asked == [REQUEST.tick]
    [report] = control_plane.reports
    assert report.workflow_id == "tick:o:d:loc:sensor:inbox:7"
    assert report.response is not None and report.response.cursor == f"next-{MARKER}"
    assert MARKER not in result.model_dump_json()


async def test_a_tick_dispatched_before_is_evaluated_from_its_input() -> None:
    control_plane = StandInControlPlane()
    code_server = StandInCodeServer(asks_for_a_run)
    await run(activities(control_plane, code_server), tick_input(held=False))
    assert control_plane.calls == ["code_location", "report_tick"]
    assert code_server.asked == [REQUEST.tick]


@pytest.mark.parametrize("redact", [False, True], ids=["masked", "redacted"])
async def test_the_users_error_goes_to_the_control_plane_only_as_the_settings_allow(
    redact: bool, caplog: pytest.LogCaptureFixture
) -> None:
    control_plane = StandInControlPlane(redact_errors=redact)
    control_plane.outcome = TickOutcome(status=TickStatus.FAILURE, error=f"ValueError: {MARKER}")
    caplog.set_level(logging.ERROR)
    result = await run(activities(control_plane, StandInCodeServer(raises)), tick_input())
    assert result == TickReported(status=TickStatus.FAILURE, error=TICK_ERROR_RECORDED)
    [report] = control_plane.reports
    assert report.response is not None and report.response.error is not None
    error = report.response.error
    assert SECRET not in error.model_dump_json()
    if redact:
        assert error.message.startswith("ValueError (error ID err-") and error.traceback is None
        assert MARKER not in error.model_dump_json()
        assert f"{MARKER} <masked:{SECRET_NAME}>" in caplog.text  # the agent's log has it
    else:
        assert error.message == f"ValueError: {MARKER} <masked:{SECRET_NAME}>"
        assert error.traceback == f"Traceback ...\n{MARKER} <masked:{SECRET_NAME}>\n"


async def test_the_report_goes_through_a_control_plane_outage() -> None:
    control_plane = StandInControlPlane()
    code_server = StandInCodeServer(asks_for_a_run)
    found = activities(control_plane, code_server)
    original = control_plane.report_tick
    failures = iter([True, True, True, False])

    async def flaky(kind: str, tick_id: int, body: TickReport) -> TickOutcome:
        if next(failures):
            raise RuntimeError("control plane answered 502 to POST /ticks/sensor/7")
        return await original(kind, tick_id, body)

    control_plane.report_tick = flaky  # type: ignore[method-assign]
    result = await run(found, tick_input())
    assert result.status == TickStatus.SUCCESS
    assert len(code_server.asked) == 1  # the user's function was called once
    assert len(control_plane.reports) == 1


async def test_an_outage_at_the_start_is_waited_out_too() -> None:
    control_plane = StandInControlPlane()
    control_plane.down = 3
    code_server = StandInCodeServer(asks_for_a_run)
    result = await run(activities(control_plane, code_server), tick_input())
    assert result.status == TickStatus.SUCCESS
    assert control_plane.calls[:4] == ["tick_request"] * 4


async def test_an_outage_longer_than_report_for_gives_up_in_the_agents_words() -> None:
    control_plane = StandInControlPlane()
    control_plane.down = 10_000
    with pytest.raises(ApplicationError) as raised:
        await run(
            activities(control_plane, StandInCodeServer(asks_for_a_run)), tick_input(report_for=0.2)
        )
    assert raised.value.type == "ControlPlaneUnavailable" and raised.value.non_retryable
    assert not chained(raised.value)


async def test_a_tick_that_has_ended_is_not_evaluated_again() -> None:
    control_plane = StandInControlPlane()
    control_plane.request = None  # 409: an earlier attempt reported it
    control_plane.outcome = TickOutcome(
        status=TickStatus.FAILURE, error=f"ValueError: {MARKER}", already_final=True
    )
    code_server = StandInCodeServer(asks_for_a_run)
    result = await run(activities(control_plane, code_server), tick_input())
    assert code_server.asked == []
    assert result == TickReported(
        status=TickStatus.FAILURE, error=TICK_ERROR_RECORDED, already_final=True
    )
    [report] = control_plane.reports
    assert report.response is None and report.error == TickError(message=ticks.ENDED)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, text=f"Traceback ...\nKeyError: {MARKER} {SECRET}"),
        httpx.Response(200, text=f'{{"cursor": "{MARKER} {SECRET}", "run_requests": 3}}'),
    ],
    ids=["refused", "not-a-tick-response"],
)
async def test_what_a_code_server_says_besides_an_answer_goes_to_the_agents_log_masked(
    answer: httpx.Response, caplog: pytest.LogCaptureFixture
) -> None:
    control_plane = StandInControlPlane()
    caplog.set_level(logging.WARNING)
    found = activities(control_plane, StandInCodeServer(lambda tick: answer))
    with pytest.raises(ApplicationError) as raised:
        await run(found, tick_input())
    failure = raised.value
    assert failure.non_retryable and not chained(failure)
    assert MARKER not in str(failure) and "in the agent's log" in str(failure)
    assert control_plane.reports == []  # the workflow reports it, in its own words
    assert f"{MARKER} <masked:{SECRET_NAME}>" in caplog.text and SECRET not in caplog.text


async def test_a_refused_report_names_the_call_not_the_control_planes_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    control_plane = StandInControlPlane()

    async def refuses(kind: str, tick_id: int, body: TickReport) -> TickOutcome:
        raise ApplicationError(
            f"the control plane refused to record sensor tick 7 (422): {MARKER}",
            type="ControlPlaneRefused",
            non_retryable=True,
        )

    control_plane.report_tick = refuses  # type: ignore[method-assign]
    with pytest.raises(ApplicationError) as raised:
        await run(activities(control_plane, StandInCodeServer(asks_for_a_run)), tick_input())
    assert raised.value.message == (
        "the control plane refused to report sensor tick 7; its answer is in the agent's log"
    )
    assert raised.value.type == "ControlPlaneRefused" and not chained(raised.value)
    assert MARKER in caplog.text
