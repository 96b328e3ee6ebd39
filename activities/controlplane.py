"""The agent's client for the control plane's agent API (``/api/v1/agent``).

Failures are sorted for Temporal's retry policy: connection errors, timeouts and 5xx are
retryable (raised as they are); a 4xx means retrying cannot help, so it becomes a
non-retryable ``ApplicationError`` naming the call and the server's answer.

A 401 is different. When it is Tether's own (its JSON body has a ``reason``: the token is
missing, unknown, revoked or expired), every call will fail alike until the agent restarts
with a new token. The client tells the agent process (``on_rejected``, which stops it) and
raises a *retryable* ``TOKEN_REJECTED`` error: failing the activity for good would fail the
runs and locations it serves, which are fine; retried, it waits for an agent with a valid
token, and the restarted agent carries on where this one stopped.

Any other 401 (no JSON, or no ``reason``) came from something in front of the control plane,
an ingress or an auth proxy, and may be a one-off: it is logged as a warning and retried like
a 5xx, and the agent keeps running.

The control plane down or restarting (no connection, a dropped one, a timeout, a 5xx) is
expected, not a bug: each failed call is one warning line naming the URL and the error, and
the first call that gets through after them one line saying it is reachable again. The call
raises a retryable ``ApplicationError`` of type ``ControlPlaneUnavailable`` in the *benign*
category, so neither the failure interceptor nor Temporal's worker logs a traceback for it;
unexpected errors keep theirs.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, RootModel, ValidationError
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from tether_api.agent_api import (
    Agent,
    AgentHeartbeat,
    CodeLocationStatusReport,
    NewGeneration,
    PollRequest,
    RunLaunch,
    RunStatusReport,
)
from tether_api.agent_requests import AGENT_REQUEST, AgentRequest
from tether_api.durations import duration_text
from tether_api.locations import CodeLocation
from tether_api.logs import RunLogsAnswer, RunLogUrl
from tether_api.ticks import EvaluateTickPayload, TickOutcome, TickReport
from tether_api.tokens import DEPLOYMENT_HEADER
from tether_api.user_api import Run
from tether_api.wire import TokenRefusalReason

log = logging.getLogger("tether.agent")

M = TypeVar("M", bound=BaseModel)

REFUSED = "ControlPlaneRefused"
TOKEN_REJECTED = "AgentTokenRejected"
UNAVAILABLE = "ControlPlaneUnavailable"


class Reachability:
    """The log's account of whether the control plane answers: a warning line per failed
    call, and one line when a call gets through after failures."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.failures = 0
        self._since = 0.0

    def failed(self, method: str, url: str, problem: str) -> None:
        if self.failures == 0:
            self._since = time.monotonic()
        self.failures += 1
        log.warning(
            "cannot reach the control plane at %s (%s %s): %s; retrying",
            self.base_url,
            method,
            url,
            problem,
        )

    def answered(self) -> None:
        if self.failures == 0:
            return
        log.info(
            "the control plane at %s is reachable again, after %s and %d failed %s",
            self.base_url,
            duration_text(time.monotonic() - self._since),
            self.failures,
            "call" if self.failures == 1 else "calls",
        )
        self.failures = 0


def _problem(exc: httpx.TransportError) -> str:
    text = str(exc).strip().rstrip(".")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Agents(RootModel[list[Agent]]):
    pass


class _RawPoll(BaseModel):
    requests: list[dict[str, Any]]


class _Handled(BaseModel):
    """The part of the control plane's answer to an ack or a fail that the agent reads."""

    id: str


@dataclass(frozen=True)
class Unreadable:
    """A handed-out request this agent cannot read, and why (pydantic's error, which may
    quote the payload: it goes back to the control plane only, never into a history)."""

    id: str
    attempt: int
    type: str
    error: str

    @classmethod
    def of(cls, raw: dict[str, Any], exc: ValidationError) -> "Unreadable":
        attempt = raw.get("attempt")
        return cls(
            id=str(raw.get("id", "")),
            attempt=attempt if isinstance(attempt, int) else 1,
            type=str(raw.get("type", "")),
            error=str(exc),
        )


@dataclass
class Polled:
    """One poll's requests: those read, and those this agent cannot read."""

    requests: list[AgentRequest] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)


class StaleClaim(Exception):
    """An ack or fail for a claim whose lease expired and was claimed again (409)."""


class ControlPlaneClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        verify: bool | str = True,
        timeout: float = 30.0,
        deployment: str | None = None,
        on_rejected: Callable[[str], None] | None = None,
    ) -> None:
        """``deployment``: sent with every call (X-Tether-Deployment), needed with an
        organization-wide token. ``on_rejected(reason)``: called when the control plane
        itself refuses the token (a 401 with a ``reason``), with its detail."""
        self.base_url = base_url.rstrip("/")
        self.on_rejected = on_rejected
        self.reachability = Reachability(self.base_url)
        headers = {"Authorization": f"Bearer {token}", "User-Agent": "tether-agent"}
        if deployment:
            headers[DEPLOYMENT_HEADER] = deployment
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            verify=verify,
            # Every run's watch and report goes through this one client.
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        body: BaseModel | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["content"] = body.model_dump_json(exclude_none=True)
            kwargs["headers"] = {"Content-Type": "application/json"}
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            response = await self._http.request(method, f"/api/v1/agent{path}", **kwargs)
        except httpx.TransportError as exc:
            raise self._unavailable(method, path, _problem(exc)) from None
        if response.status_code >= 500:
            # Temporal retries it with backoff.
            problem = f"answered {response.status_code}: {_detail(response)[:200]}"
            raise self._unavailable(method, path, problem)
        self.reachability.answered()
        if response.status_code == 401:
            if refusal_reason(response) is None:
                # Not Tether's answer (a proxy in front of it?): maybe a one-off, so retried.
                log.warning(
                    "%s %s answered 401 without Tether's reason (from a proxy in front of the "
                    "control plane?); retrying: %s",
                    method,
                    response.url,
                    _detail(response)[:200],
                )
                raise RuntimeError(
                    f"{response.url} answered 401 to {method}, not as Tether's control plane "
                    f"does (no reason): {_detail(response)[:200]}"
                )
            reason = _detail(response)
            if self.on_rejected is not None:
                self.on_rejected(reason)
            raise ApplicationError(
                f"the control plane rejected the agent token ({method} {path}): {reason}; "
                "the agent stops until it is restarted with a new token",
                reason,
                type=TOKEN_REJECTED,
            )
        return response

    def _unavailable(self, method: str, path: str, problem: str) -> ApplicationError:
        """Logged as one line; a retryable failure without a traceback in the log."""
        self.reachability.failed(method, f"/api/v1/agent{path}", problem)
        return ApplicationError(
            f"cannot reach the control plane at {self.base_url} ({method} {path}): {problem}",
            type=UNAVAILABLE,
            category=ApplicationErrorCategory.BENIGN,
        )

    @staticmethod
    def _parse(response: httpx.Response, model: type[M], what: str) -> M:
        if response.status_code >= 400:
            raise ApplicationError(
                f"the control plane refused to {what} ({response.status_code}): "
                f"{_detail(response)}",
                type=REFUSED,
                non_retryable=True,
            )
        return model.model_validate_json(response.content)

    async def heartbeat(self, body: AgentHeartbeat) -> Agent:
        return self._parse(await self._call("POST", "/heartbeat", body), Agent, "take a heartbeat")

    async def agents(self) -> list[Agent]:
        response = await self._call("GET", "/agents")
        return self._parse(response, _Agents, "list the deployment's agents").root

    async def poll(self, body: PollRequest) -> Polled:
        """The requests handed out, each read as its type's model. One this agent cannot
        read (a type it does not know, from a newer control plane; a payload that does not
        fit) does not fail the poll: it is returned apart, for the caller to refuse, and the
        others are served."""
        response = await self._call("POST", "/requests/poll", body, timeout=body.wait_seconds + 30)
        polled = Polled()
        for raw in self._parse(response, _RawPoll, "hand out requests").requests:
            try:
                polled.requests.append(AGENT_REQUEST.validate_python(raw))
            except ValidationError as exc:
                polled.unreadable.append(Unreadable.of(raw, exc))
        return polled

    async def ack(self, request_id: str, attempt: int) -> None:
        response = await self._call(
            "POST", f"/requests/{request_id}/ack", _Attempt(attempt=attempt)
        )
        if response.status_code == 409:
            raise StaleClaim(_detail(response))
        self._parse(response, _Handled, f"acknowledge request {request_id}")

    async def fail(self, request_id: str, attempt: int, error: str, retry: bool = False) -> None:
        response = await self._call(
            "POST",
            f"/requests/{request_id}/fail",
            _Failure(attempt=attempt, error=error[:60_000], retry=retry),
        )
        if response.status_code == 409:
            raise StaleClaim(_detail(response))
        self._parse(response, _Handled, f"record the failure of request {request_id}")

    async def code_location(self, name: str) -> CodeLocation:
        response = await self._call("GET", f"/code-locations/{name}")
        return self._parse(response, CodeLocation, f"describe code location {name}")

    async def report_code_location(self, name: str, body: CodeLocationStatusReport) -> None:
        response = await self._call("POST", f"/code-locations/{name}/status", body)
        self._parse(response, CodeLocation, f"record the status of code location {name}")

    async def new_generation(
        self,
        name: str,
        reason: str,
        follows: int | None = None,
        requested_by: str | None = None,
        requested_via: Literal["signal", "update"] | None = None,
    ) -> CodeLocation:
        """A new generation after ``follows``: the control plane records it only while the
        location's generation is still that one, so a retry records none (it answers the
        location as it is). Without ``follows``, every call records one (as before)."""
        response = await self._call(
            "POST",
            f"/code-locations/{name}/generations",
            NewGeneration(
                reason=reason,
                follows=follows,
                requested_by=requested_by,
                requested_via=requested_via,
            ),
        )
        return self._parse(response, CodeLocation, f"record a new generation of {name}")

    async def run(self, run_id: str) -> Run:
        return self._parse(
            await self._call("GET", f"/runs/{run_id}"), Run, f"describe run {run_id}"
        )

    async def report_run(self, run_id: str, body: RunStatusReport) -> Run:
        response = await self._call("POST", f"/runs/{run_id}/status", body)
        return self._parse(response, Run, f"record the status of run {run_id}")

    async def tick_request(self, kind: str, tick_id: int) -> EvaluateTickPayload | None:
        """The tick's request as the control plane enqueued it (its cursor, a run-status
        sensor's ended runs: user text the TickWorkflow does not carry); None once the tick
        has ended (409: reported already, or past its deadline)."""
        response = await self._call("GET", f"/ticks/{kind}/{tick_id}")
        if response.status_code == 409:
            return None
        return self._parse(response, EvaluateTickPayload, f"read {kind} tick {tick_id}")

    async def report_tick(self, kind: str, tick_id: int, body: TickReport) -> TickOutcome:
        response = await self._call("POST", f"/ticks/{kind}/{tick_id}", body)
        return self._parse(response, TickOutcome, f"record {kind} tick {tick_id}")

    async def launch(self, run_id: str) -> RunLaunch:
        """The run, its code location and (while it is STARTING) a fresh token, in one call."""
        response = await self._call("POST", f"/runs/{run_id}/launch")
        return self._parse(response, RunLaunch, f"prepare the launch of run {run_id}")

    async def answer_run_logs(self, request_id: str, body: RunLogsAnswer) -> None:
        """A FETCH_RUN_LOGS request's answer, handed to the user call waiting for it (which
        acknowledges the request)."""
        response = await self._call("POST", f"/requests/{request_id}/run-logs", body)
        self._parse(response, _Handled, f"answer request {request_id}")

    async def report_run_log_url(self, run_id: str, url: str) -> Run:
        response = await self._call("POST", f"/runs/{run_id}/log-url", RunLogUrl(url=url))
        return self._parse(response, Run, f"record where run {run_id}'s log was stored")


class _Attempt(BaseModel):
    attempt: int


class _Failure(_Attempt):
    error: str
    retry: bool


def refusal_reason(response: httpx.Response) -> TokenRefusalReason | None:
    """The control plane's reason for refusing the token, if ``response`` is its 401."""
    try:
        body = response.json()
    except ValueError:
        return None
    reason = body.get("reason") if isinstance(body, dict) else None
    try:
        return TokenRefusalReason(reason) if isinstance(reason, str) else None
    except ValueError:
        return None


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        # A validation error: where and what, never the "input" it quotes (what the agent
        # sent may be a run's output or a sensor's answer, and this text becomes an activity
        # failure, in a workflow's history).
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', '')}"
            if isinstance(item, dict)
            else "invalid"
            for item in detail
        )
    return str(detail) if detail else response.text[:500]
