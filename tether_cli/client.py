"""A small typed client of the user API under ``/api/v1/deployments/{dep}``."""

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from tether_api.agent_api import Agent
from tether_api.alerts import Alert, AlertPolicy, AlertPolicySpec
from tether_api.audit import AuditEntry, AuditPage
from tether_api.enums import RunStatus, TickStatus
from tether_api.locations import CodeLocation, CodeLocationPutResult, CodeLocationSpec
from tether_api.logs import LogSettings, RunLogs
from tether_api.run_worker_api import RunEvent
from tether_api.schedules import Schedule, ScheduleTick
from tether_api.sensors import Sensor, SensorTick
from tether_api.sessions import SignInLink, SignInLinkCreate
from tether_api.tokens import Token, TokenCreate, TokenSecret
from tether_api.user_api import Deployment, Run, RunCreate, RunEventPage, RunPage
from tether_cli.context import Connection
from tether_cli.render import CliError, note

M = TypeVar("M", bound=BaseModel)

# Two retries: a control plane restarting behind a load balancer usually answers by then,
# and a CI job should not hang long on one that is really down.
RETRY_DELAYS = (0.5, 1.5)
MAX_PAGE_RUNS = 200  # the server's page size limit
MAX_PAGE_EVENTS = 1000
# The stream sends a keepalive every 15 s; much longer silence means a dead connection.
STREAM_READ_TIMEOUT = 45.0
# A followed stream keeps reconnecting this long without progress before giving up.
STREAM_RECONNECT_SECONDS = 60.0

_LOCATIONS = TypeAdapter(list[CodeLocation])
_DEPLOYMENTS = TypeAdapter(list[Deployment])
_AGENTS = TypeAdapter(list[Agent])
_POLICIES = TypeAdapter(list[AlertPolicy])
_ALERTS = TypeAdapter(list[Alert])
_TOKENS = TypeAdapter(list[Token])
MAX_PAGE_AUDIT = 500

A = TypeVar("A", bound=BaseModel)
T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class AutomationApi(Generic[A, T]):
    """Schedules or sensors, as the API serves them: the same calls under their own path."""

    noun: str
    plural: str
    model: type[A]
    many: TypeAdapter[list[A]]
    ticks: TypeAdapter[list[T]]


SCHEDULES = AutomationApi(
    "schedule", "schedules", Schedule, TypeAdapter(list[Schedule]), TypeAdapter(list[ScheduleTick])
)
SENSORS = AutomationApi(
    "sensor", "sensors", Sensor, TypeAdapter(list[Sensor]), TypeAdapter(list[SensorTick])
)


class ApiError(CliError):
    """The control plane answered with an error; ``detail`` is its message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Unreachable(CliError):
    """No answer from the control plane."""


def _reason(exc: httpx.TransportError) -> str:
    return str(exc) or type(exc).__name__


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str) and detail:
        return detail
    if detail:
        return str(detail)
    text = response.text.strip()[:500] or response.reason_phrase
    return f"HTTP {response.status_code} from {response.request.url}: {text}"


def _segment(value: str) -> str:
    # A name with '/' or '?' must stay one path segment; the server then rejects it by name.
    return quote(value, safe="")


class TetherClient:
    """Blocking calls to one deployment. Errors raise ApiError or Unreachable."""

    def __init__(self, connection: Connection, timeout: float = 30.0) -> None:
        self.connection = connection
        self._http = httpx.Client(
            base_url=connection.url,
            headers={"Authorization": f"Bearer {connection.token}"},
            timeout=timeout,
        )
        self._base = f"/api/v1/deployments/{_segment(connection.deployment)}"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- transport ----------------------------------------------------------------------

    def _unreachable(self, exc: httpx.TransportError) -> Unreachable:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return Unreachable(
                f"cannot reach the control plane at {self.connection.url}: {_reason(exc)}; "
                "is it running? (`tether dev` or `tether controlplane serve`)"
            )
        return Unreachable(
            f"lost the connection to the control plane at {self.connection.url}: {_reason(exc)}"
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        root: bool = False,
        retry: bool = True,
        repeatable: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """``path`` is under the deployment, or (``root``) under the server itself.
        ``repeatable``: the request may be sent again (it carries an idempotency key)."""
        # GETs (and repeatable requests) are retried on any transport error or 5xx; other
        # methods only when the connection was never made, so a request is never applied twice.
        idempotent = (method == "GET" or repeatable) and retry
        for delay in (*RETRY_DELAYS, None):
            try:
                url = path if root else self._base + path
                response = self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if delay is None or not (idempotent or unsent):
                    raise self._unreachable(exc) from exc
                time.sleep(delay)
                continue
            if response.status_code >= 500 and idempotent and delay is not None:
                time.sleep(delay)
                continue
            if response.is_error:
                raise ApiError(response.status_code, _detail(response))
            return response
        raise AssertionError("unreachable")  # the loop always returns or raises

    def call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        """One request to a route under the deployment, its answer parsed as ``model``: the
        transport every command shares (retries of GETs, errors said plainly). A command
        group with routes of its own (assets, backfills) builds on this rather than on
        httpx."""
        return model.model_validate_json(self._request(method, path, **kwargs).content)

    # --- code locations -----------------------------------------------------------------

    def put_location(self, name: str, spec: CodeLocationSpec) -> CodeLocationPutResult:
        return self.call(
            CodeLocationPutResult,
            "PUT",
            f"/code-locations/{_segment(name)}",
            json=spec.model_dump(mode="json"),
        )

    def get_location(self, name: str) -> CodeLocation:
        return self.call(CodeLocation, "GET", f"/code-locations/{_segment(name)}")

    def list_locations(self) -> list[CodeLocation]:
        return _LOCATIONS.validate_json(self._request("GET", "/code-locations").content)

    def redeploy_location(self, name: str) -> CodeLocation:
        return self.call(CodeLocation, "POST", f"/code-locations/{_segment(name)}/redeploy")

    def remove_location(self, name: str) -> CodeLocation:
        return self.call(CodeLocation, "DELETE", f"/code-locations/{_segment(name)}")

    def get_deployment(self) -> Deployment:
        return self.call(Deployment, "GET", "")

    def list_deployments(self) -> list[Deployment]:
        """The organization's deployments (the token's), by name."""
        response = self._request("GET", "/api/v1/deployments", root=True)
        return _DEPLOYMENTS.validate_json(response.content)

    def create_deployment(self, name: str) -> Deployment:
        """Create deployment ``name`` (the server returns an existing one as it is)."""
        path = f"/api/v1/deployments/{_segment(name)}"
        return self.call(Deployment, "POST", path, root=True)

    def set_log_settings(self, settings: LogSettings) -> Deployment:
        body = {"log_settings": settings.model_dump(mode="json")}
        return self.call(Deployment, "PATCH", "", json=body)

    def run_logs(self, run_id: str, wait_seconds: float = 20.0) -> RunLogs:
        """A run's log text as its settings allow (fetched from its agent for 'local'); not
        retried: a 504 already waited ``wait_seconds`` for an agent."""
        response = self._request(
            "GET",
            f"/runs/{_segment(run_id)}/logs",
            retry=False,
            params={"wait_seconds": wait_seconds},
            timeout=wait_seconds + 30,
        )
        return RunLogs.model_validate_json(response.content)

    def list_agents(self) -> list[Agent]:
        return _AGENTS.validate_json(self._request("GET", "/agents").content)

    def agents_available(self) -> int:
        """How many of the deployment's agents sent a heartbeat within the timeout."""
        return sum(1 for agent in self.list_agents() if agent.available)

    # --- schedules and sensors ----------------------------------------------------------

    def list_automations(self, kind: "AutomationApi[A, T]") -> list[A]:
        return kind.many.validate_json(self._request("GET", f"/{kind.plural}").content)

    def set_automation(self, kind: "AutomationApi[A, T]", location: str, name: str, on: bool) -> A:
        action = "start" if on else "stop"
        path = f"/{kind.plural}/{_segment(location)}/{_segment(name)}/{action}"
        return self.call(kind.model, "POST", path)

    def automation_ticks(
        self,
        kind: "AutomationApi[A, T]",
        location: str,
        name: str,
        limit: int,
        status: TickStatus | None = None,
    ) -> list[T]:
        """Newest first, up to ``limit``; only those with ``status`` when given."""
        path = f"/{kind.plural}/{_segment(location)}/{_segment(name)}/ticks"
        params: dict[str, str | int] = {"limit": limit}
        if status:
            params["status"] = status.value
        return kind.ticks.validate_json(self._request("GET", path, params=params).content)

    # --- alerts -------------------------------------------------------------------------

    def list_policies(self) -> list[AlertPolicy]:
        return _POLICIES.validate_json(self._request("GET", "/alert-policies").content)

    def put_policy(self, name: str, spec: AlertPolicySpec) -> AlertPolicy:
        body = spec.model_dump(mode="json")
        return self.call(AlertPolicy, "PUT", f"/alert-policies/{_segment(name)}", json=body)

    def delete_policy(self, name: str) -> None:
        self._request("DELETE", f"/alert-policies/{_segment(name)}")

    def test_policy(self, name: str) -> Alert:
        return self.call(Alert, "POST", f"/alert-policies/{_segment(name)}/test")

    def list_alerts(self, limit: int) -> list[Alert]:
        return _ALERTS.validate_json(
            self._request("GET", "/alerts", params={"limit": limit}).content
        )

    # --- tokens and the audit log (the organization's, not one deployment's) -------------

    def list_tokens(self) -> list[Token]:
        return _TOKENS.validate_json(self._request("GET", "/api/v1/tokens", root=True).content)

    def create_token(self, body: TokenCreate) -> TokenSecret:
        payload = body.model_dump(mode="json", exclude_none=True)
        return self.call(TokenSecret, "POST", "/api/v1/tokens", root=True, json=payload)

    def revoke_token(self, token_id: int) -> Token:
        return self.call(Token, "POST", f"/api/v1/tokens/{token_id}/revoke", root=True)

    def audit(
        self,
        actions: list[str],
        since: datetime | None,
        deployment: str | None,
        limit: int,
        until: datetime | None = None,
        actor: str | None = None,
    ) -> list[AuditEntry]:
        """Newest first, up to ``limit``, following the pages' cursors."""
        found: list[AuditEntry] = []
        cursor: str | None = None
        while len(found) < limit:
            params: list[tuple[str, str | int]] = [("action", a) for a in actions]
            params.append(("limit", min(limit - len(found), MAX_PAGE_AUDIT)))
            if since is not None:
                params.append(("since", since.isoformat()))
            if until is not None:
                params.append(("until", until.isoformat()))
            if actor:
                params.append(("actor", actor))
            if deployment:
                params.append(("deployment", deployment))
            if cursor:
                params.append(("cursor", cursor))
            page = self.call(AuditPage, "GET", "/api/v1/audit", root=True, params=params)
            found += page.entries
            cursor = page.next_cursor
            if not cursor or not page.entries:
                break
        return found[:limit]

    # --- web UI -------------------------------------------------------------------------

    def sign_in_link(self, ttl_seconds: int) -> str:
        """A one-time link that signs its first visitor in to the web UI as this user."""
        body = SignInLinkCreate(ttl_seconds=ttl_seconds).model_dump()
        answer = self._request("POST", "/api/v1/sign-in-links", root=True, json=body)
        link = SignInLink.model_validate_json(answer.content)
        return self.connection.url.rstrip("/") + link.path

    # --- runs ---------------------------------------------------------------------------

    def create_run(self, body: RunCreate) -> Run:
        """Creates the run once, even if a replica dies after creating it but before
        answering: the request carries an idempotency key (a new one unless the caller
        gave one) and is sent again with it, and the control plane answers the repeat with
        the run it made."""
        if body.idempotency_key is None:
            body = body.model_copy(update={"idempotency_key": f"cli:{uuid.uuid4()}"})
        payload = body.model_dump(mode="json")
        return self.call(Run, "POST", "/runs", json=payload, repeatable=True)

    def get_run(self, run_id: str) -> Run:
        return self.call(Run, "GET", f"/runs/{_segment(run_id)}")

    def terminate_run(self, run_id: str) -> Run:
        return self.call(Run, "POST", f"/runs/{_segment(run_id)}/terminate")

    def list_runs(
        self,
        statuses: list[RunStatus],
        code_location: str | None,
        tags: dict[str, str],
        limit: int,
        job: str | None = None,
        caller_workflow_id: str | None = None,
    ) -> list[Run]:
        """Newest first, up to ``limit``, following the pages' cursors. ``caller_workflow_id``:
        only the runs that Temporal workflow started through Tether's Nexus service."""
        runs: list[Run] = []
        cursor: str | None = None
        while len(runs) < limit:
            params: list[tuple[str, str | int]] = [("status", s.value) for s in statuses]
            params += [("tag", f"{k}={v}") for k, v in tags.items()]
            params.append(("limit", min(limit - len(runs), MAX_PAGE_RUNS)))
            if code_location:
                params.append(("code_location", code_location))
            if job:
                params.append(("job", job))
            if caller_workflow_id:
                params.append(("caller_workflow_id", caller_workflow_id))
            if cursor:
                params.append(("cursor", cursor))
            page = self.call(RunPage, "GET", "/runs", params=params)
            runs += page.runs
            cursor = page.next_cursor
            if not cursor or not page.runs:
                break
        return runs[:limit]

    def events(self, run_id: str, after: int = 0, limit: int = MAX_PAGE_EVENTS) -> RunEventPage:
        return self.call(
            RunEventPage,
            "GET",
            f"/runs/{_segment(run_id)}/events",
            params={"after": after, "limit": limit},
        )

    def all_events(self, run_id: str) -> list[RunEvent]:
        """Every event of the run so far, in order, page by page."""
        found: list[RunEvent] = []
        after = 0
        while True:
            page = self.events(run_id, after, MAX_PAGE_EVENTS)
            found += page.events
            if len(page.events) < MAX_PAGE_EVENTS:
                return found
            after = page.last_seq

    def follow_events(self, run_id: str, after: int = 0) -> Iterator[RunEvent]:
        """Every event after ``after``, live, until the stream's ``end``. A dropped
        connection is resumed from the last event received (``Last-Event-ID``)."""
        path = f"{self._base}/runs/{_segment(run_id)}/events/stream"
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT)
        # Until the stream first opens, fail as fast as any call; once it was open, a drop is
        # likely a restart or a proxy timeout, worth waiting out for a while.
        patient_until: float | None = None
        failures = 0
        while True:
            headers = {"Last-Event-ID": str(after)} if after else {}
            try:
                with self._http.stream(
                    "GET", path, params={"after": after}, headers=headers, timeout=timeout
                ) as response:
                    if response.is_error:
                        response.read()
                        if response.status_code < 500:
                            raise ApiError(response.status_code, _detail(response))
                        problem = _detail(response)
                    else:
                        patient_until = time.monotonic() + STREAM_RECONNECT_SECONDS
                        for kind, _, data in _sse_frames(response.iter_lines()):
                            if kind == "end":
                                return
                            event = RunEvent.model_validate_json(data)
                            after = event.seq
                            patient_until = time.monotonic() + STREAM_RECONNECT_SECONDS
                            failures = 0
                            yield event
                        problem = "the stream closed before its end"
                error: CliError = Unreachable(
                    f"the event stream of run {run_id} kept failing: {problem}"
                )
            except httpx.TransportError as exc:
                problem, error = _reason(exc), self._unreachable(exc)
            failures += 1
            delay = min(0.5 * 2 ** (failures - 1), 2.0)
            if patient_until is None:
                if failures > len(RETRY_DELAYS):
                    raise error
            elif time.monotonic() + delay > patient_until:
                raise error
            else:
                note(f"event stream interrupted ({problem}); resuming after event {after}")
            time.sleep(delay)


def _sse_frames(lines: Iterator[str]) -> Iterator[tuple[str, str, str]]:
    """(event, id, data) per server-sent event; comments (keepalives) are skipped."""
    kind, event_id = "message", ""
    data: list[str] = []
    for line in lines:
        if not line:
            if data or kind != "message":
                yield kind, event_id, "\n".join(data)
            kind, event_id, data = "message", "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            kind = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
