"""Agent API: heartbeat, long-poll for requests, ack/fail, status reports, run tokens.

Every call here is idempotent and safe for the agent to retry.
"""

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from tether_api.agent_api import (
    Agent,
    AgentHeartbeat,
    CodeLocationStatusReport,
    NewGeneration,
    PollAck,
    PollRequest,
    PollResponse,
    RequestAck,
    RequestFailure,
    RunLaunch,
    RunStatusReport,
    RunToken,
)
from tether_api.agent_requests import AGENT_REQUEST, AgentRequest
from tether_api.audit import AuditAction
from tether_api.enums import (
    TERMINAL_RUN_STATUSES,
    RequestType,
    RunStatus,
    TickKind,
)
from tether_api.locations import CodeLocation
from tether_api.logs import LogForwarding, RunLogsAnswer, RunLogUrl
from tether_api.names import DEFAULT_AGENT_QUEUE
from tether_api.ticks import EvaluateTickPayload, TickOutcome, TickReport
from tether_api.user_api import Run
from tether_controlplane.api.deps import AgentScope, DbDep, NamePath, RunIdPath, SettingsDep
from tether_controlplane.api.responses import LOOKUP, LOOKUP_OR_CONFLICT
from tether_controlplane.db import Database
from tether_controlplane.errors import Conflict, NotFound
from tether_controlplane.services import (
    agents,
    audit,
    locations,
    logfetch,
    logrelay,
    logs,
    requests,
    runs,
    tenancy,
    ticks,
)
from tether_controlplane.settings import Settings
from tether_controlplane.tables import RequestRow, utcnow
from tether_controlplane.token_secrets import TokenKind
from tether_controlplane.wakeups import requests_key

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/agent", tags=["agent"])


def _request_model(row: RequestRow) -> AgentRequest:
    return AGENT_REQUEST.validate_python(
        {
            "id": str(row.id),
            "type": row.type,
            "payload": row.payload,
            "status": row.status,
            "attempt": row.attempt,
            "queue": row.queue,
            "created_at": row.created_at,
            "lease_expires_at": row.lease_expires_at,
        }
    )


def _handed_out(row: RequestRow) -> AgentRequest | None:
    """The claimed row as a request, or None when its stored payload no longer fits its
    type's model (stored by another version of the control plane): then it is failed, with
    why, rather than failing every poll of the deployment."""
    try:
        return _request_model(row)
    except ValidationError as exc:
        log.error("request %s (%s): its stored payload does not fit: %s", row.id, row.type, exc)
        requests.refuse(
            row,
            f"the stored payload of this {row.type} request does not fit its model (stored by "
            f"another version of the control plane?), so no agent was given it: {exc}",
        )
        return None


@router.post("/heartbeat", responses=LOOKUP)
def heartbeat(body: AgentHeartbeat, scope: AgentScope, db: DbDep, settings: SettingsDep) -> Agent:
    with db.write() as s:
        dep = scope.deployment(s)
        row = agents.heartbeat(s, dep, body)
        return agents.to_model(s, dep, row, settings.agent_heartbeat_timeout_seconds)


@router.get("/agents", responses=LOOKUP)
def list_agents(scope: AgentScope, db: DbDep, settings: SettingsDep) -> list[Agent]:
    """The deployment's agents, with whether each is live: an agent asks before it takes
    over what a silent one ran."""
    with db.read() as s:
        return agents.list_all(s, scope.deployment(s), settings.agent_heartbeat_timeout_seconds)


def _claim(
    db: Database, deployment_id: int, body: PollRequest, lease: float, acks: list[PollAck]
) -> tuple[list[AgentRequest], datetime | None]:
    with db.write() as s:
        for ack in acks:
            with contextlib.suppress(Conflict, NotFound):  # stale or unknown: nothing to do
                requests.ack(s, deployment_id, ack.id, ack.attempt)
        # And the agent's own queue: requests only its host can answer (a run's kept output).
        queues = [*(body.queues or [DEFAULT_AGENT_QUEUE]), requests.agent_queue(body.agent_name)]
        rows = requests.claim(s, deployment_id, body.agent_name, body.max_requests, lease, queues)
        claimed = [r for r in (_handed_out(r) for r in rows) if r is not None]
        if claimed:
            return claimed, None
        return [], requests.next_lease_expiry(s, deployment_id, queues)


@router.post("/requests/poll", responses=LOOKUP)
async def poll_requests(
    body: PollRequest, scope: AgentScope, db: DbDep, settings: SettingsDep, http: Request
) -> PollResponse:
    """Claim visible requests with a lease. With none, hold up to ``wait_seconds`` and answer
    as soon as one is enqueued (or a lease expires). An agent that hung up meanwhile (killed
    mid-poll) claims nothing: its requests would wait out their lease."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(body.wait_seconds, settings.long_poll_max_seconds)
    lease = body.lease_seconds or settings.request_lease_seconds
    key = requests_key(scope.deployment_id)
    acks = body.acks  # applied with the first claim
    while True:
        waiter = db.notifier.register(key)
        try:
            claimed, next_expiry = await run_in_threadpool(
                _claim, db, scope.deployment_id, body, lease, acks
            )
            acks = []
            remaining = deadline - loop.time()
            if claimed or remaining <= 0:
                return PollResponse(requests=claimed)
            timeout = min(remaining, settings.recheck_interval_seconds)
            if next_expiry is not None:
                until_expiry = (next_expiry - utcnow()).total_seconds() + 0.005
                timeout = min(timeout, max(until_expiry, 0.0))
            await waiter.wait(timeout)
            if await http.is_disconnected():
                return PollResponse(requests=[])
        finally:
            waiter.close()


@router.post("/requests/{request_id}/ack", responses=LOOKUP_OR_CONFLICT)
def ack_request(
    request_id: str, scope: AgentScope, db: DbDep, body: RequestAck | None = None
) -> AgentRequest:
    """Mark handled. Send the claim's ``attempt`` so a stale claim cannot finish a newer one."""
    attempt = body.attempt if body else None
    with db.write() as s:
        return _request_model(requests.ack(s, scope.deployment_id, request_id, attempt))


def _fail(
    db: Database, deployment_id: int, request_id: str, body: RequestFailure
) -> tuple[AgentRequest, str | None]:
    """The failed request, and the replica waiting for it when it is a log fetch."""
    with db.write() as s:
        row = requests.fail(s, deployment_id, request_id, body.error, body.retry, body.attempt)
        return _request_model(row), logfetch.waiting_replica(row)


@router.post("/requests/{request_id}/fail", responses=LOOKUP_OR_CONFLICT)
async def fail_request(
    request_id: str,
    body: RequestFailure,
    scope: AgentScope,
    db: DbDep,
    settings: SettingsDep,
    http: Request,
) -> AgentRequest:
    request, waiting = await run_in_threadpool(_fail, db, scope.deployment_id, request_id, body)
    if request.type == RequestType.FETCH_RUN_LOGS and not body.retry:
        # A user call waits for it, here or on another replica: tell it why there is no log.
        answer = RunLogsAnswer(agent_name="", error=body.error[:2000])
        if not logfetch.answer(request_id, answer):
            await _relay_answer(http, settings, waiting, f"{request.id}/fail", body)
    return request


def _answer_logs(
    db: Database, deployment_id: int, request_id: str
) -> tuple[AgentRequest, str | None]:
    """The acknowledged request, and the replica waiting for its answer (None: unknown)."""
    with db.write() as s:
        row = requests.get(s, deployment_id, request_id)
        if row.type != RequestType.FETCH_RUN_LOGS:
            raise Conflict(
                f"request {request_id} is a {row.type} request, not FETCH_RUN_LOGS: "
                "acknowledge it with POST .../ack instead"
            )
        acked = requests.ack(s, deployment_id, request_id)
        return _request_model(acked), logfetch.waiting_replica(acked)


@router.post("/requests/{request_id}/run-logs", responses=LOOKUP_OR_CONFLICT)
async def answer_run_logs(
    request_id: str,
    body: RunLogsAnswer,
    scope: AgentScope,
    db: DbDep,
    settings: SettingsDep,
    http: Request,
) -> AgentRequest:
    """Answer a FETCH_RUN_LOGS request with the run's (masked) output: handed to the user
    call waiting for it (on this replica, or relayed to the one that holds it), never
    stored; the request is acknowledged."""
    request, waiting = await run_in_threadpool(_answer_logs, db, scope.deployment_id, request_id)
    if not logfetch.answer(request_id, body):
        await _relay_answer(http, settings, waiting, f"{request.id}/run-logs", body)
    return request


async def _relay_answer(
    http: Request, settings: Settings, waiting: str | None, route: str, body: BaseModel
) -> None:
    """Send an answer no call here waits for on to the replica whose call does."""
    if waiting is not None and logrelay.should_relay(
        waiting, settings.replica_url, http.headers.get(logrelay.RELAYED_HEADER)
    ):
        await logrelay.relay(
            waiting,
            f"{router.prefix}/requests/{route}",
            body.model_dump_json().encode(),
            http.headers.get("authorization", ""),
            settings.replica_url,
            settings.relay_timeout_seconds,
        )


@router.get("/code-locations/{name}", responses=LOOKUP)
def get_code_location(name: NamePath, scope: AgentScope, db: DbDep) -> CodeLocation:
    """The location's spec, removed ones included (the agent may be removing it)."""
    with db.read() as s:
        dep = scope.deployment(s)
        return locations.to_model(s, dep, locations.find(s, dep, name, include_removed=True))


@router.post("/code-locations/{name}/status", responses=LOOKUP)
def report_code_location(
    name: NamePath, body: CodeLocationStatusReport, scope: AgentScope, db: DbDep
) -> CodeLocation:
    with db.write() as s:
        dep = scope.deployment(s)
        return locations.to_model(s, dep, locations.report(s, dep, name, body))


@router.post("/code-locations/{name}/generations", status_code=201, responses=LOOKUP)
def new_code_location_generation(
    name: NamePath, body: NewGeneration, scope: AgentScope, db: DbDep
) -> CodeLocation:
    """A redeploy asked of the location's workflow directly (a Temporal signal or update):
    records a new generation, without enqueueing a sync (the workflow is deploying it), and
    an audit entry: the agent that reported it, and the Temporal identity that sent it. With
    `follows`, only one after that generation: a retry answers the location as it is."""
    with db.write() as s:
        dep = scope.deployment(s)
        row, recorded = locations.new_generation(s, dep, name, body.reason, follows=body.follows)
        if recorded:
            via = f"temporal {body.requested_via}" if body.requested_via else "temporal"
            details = {
                "generation": row.generation,
                "via": via,
                "temporal_identity": body.requested_by or "unknown",
            }
            audit.record(
                s, scope.principal, AuditAction.LOCATION_REDEPLOY, name, details, deployment=dep
            )
        return locations.to_model(s, dep, row)


@router.get("/runs/{run_id}", responses=LOOKUP)
def get_run(run_id: RunIdPath, scope: AgentScope, db: DbDep) -> Run:
    with db.read() as s:
        dep = scope.deployment(s)
        return runs.to_model(s, dep, runs.find(s, dep, run_id))


@router.post("/runs/{run_id}/status", responses=LOOKUP)
def report_run(run_id: RunIdPath, body: RunStatusReport, scope: AgentScope, db: DbDep) -> Run:
    """Apply a status the state machine allows; a finished run keeps its final status."""
    with db.write() as s:
        dep = scope.deployment(s)
        return runs.to_model(
            s, dep, runs.report(s, dep, runs.find(s, dep, run_id, lock=True), body)
        )


@router.post("/runs/{run_id}/log-url", responses=LOOKUP_OR_CONFLICT)
def report_run_log_url(run_id: RunIdPath, body: RunLogUrl, scope: AgentScope, db: DbDep) -> Run:
    """Where the agent wrote the run's output (forwarding 'local' with a store URL): the
    control plane keeps the URL, never the text."""
    with db.write() as s:
        dep = scope.deployment(s)
        run = runs.find(s, dep, run_id, lock=True)
        settings = logs.run_settings(s, dep, run)
        if settings.forwarding != LogForwarding.LOCAL or not settings.store_url:
            raise Conflict(
                f"run {run_id} was not launched with a log store_url: its log location is "
                "not recorded"
            )
        run.log_url = body.url
        return runs.to_model(s, dep, run)


# For agents before POST /runs/{id}/launch (release R0 included); when it can go:
# workflows/README.md, "Deprecations".
@router.post("/runs/{run_id}/token", responses=LOOKUP_OR_CONFLICT)
def mint_run_token(run_id: RunIdPath, scope: AgentScope, db: DbDep) -> RunToken:
    """A fresh token for the run's worker; it revokes any earlier one for this run."""
    with db.write() as s:
        dep = scope.deployment(s)
        run = runs.find(s, dep, run_id, lock=True)
        if run.status in TERMINAL_RUN_STATUSES:
            raise Conflict(f"run {run_id} already finished with {run.status}; it needs no worker")
        logs.record_launch(s, dep, run)  # agents from before POST .../launch mint here
        tenancy.revoke_run_tokens(s, run.id)
        secret = tenancy.mint(s, TokenKind.RUN, dep.organization_id, dep.id, run_id=run.id)[0]
        return RunToken(token=secret)


@router.post("/runs/{run_id}/launch", responses=LOOKUP)
def launch_run(run_id: RunIdPath, scope: AgentScope, db: DbDep) -> RunLaunch:
    """The run, its code location and, while the run is STARTING, a fresh token for its worker:
    the three calls a launch made before (run, code location, token) in one transaction."""
    with db.write() as s:
        dep = scope.deployment(s)
        row = runs.find(s, dep, run_id, lock=True)
        location = locations.find(s, dep, row.code_location, include_removed=True)
        token = None
        if row.status == RunStatus.STARTING:
            logs.record_launch(s, dep, row)
            tenancy.revoke_run_tokens(s, row.id)
            token = tenancy.mint(s, TokenKind.RUN, dep.organization_id, dep.id, run_id=row.id)[0]
        return RunLaunch(
            run=runs.to_model(s, dep, row),
            code_location=locations.to_model(s, dep, location),
            token=token,
        )


@router.get("/ticks/{kind}/{tick_id}", responses=LOOKUP_OR_CONFLICT)
def get_tick_request(
    kind: TickKind,
    tick_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    scope: AgentScope,
    db: DbDep,
) -> EvaluateTickPayload:
    """The tick's ``EVALUATE_TICK`` payload as it was enqueued (the sensor's cursor, a
    run-status sensor's ended runs): the agent's TickWorkflow carries only the tick's
    identity, so that no user text enters its Temporal history, and its activity reads the
    rest here. 409 once the tick has ended (reported, or past its deadline)."""
    with db.read() as s:
        return ticks.enqueued_request(s, scope.deployment(s), kind, tick_id)


@router.post("/ticks/{kind}/{tick_id}", responses=LOOKUP)
def report_tick(
    kind: TickKind,
    tick_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: TickReport,
    scope: AgentScope,
    db: DbDep,
) -> TickOutcome:
    """The code server's answer to a tick (or why there is none). Creates the runs it asks
    for, once each per run key, and moves the sensor's cursor; a tick that has already
    ended (reported before, or past its deadline) is described and left unchanged."""
    with db.write() as s:
        return ticks.complete(s, scope.deployment(s), kind, tick_id, body)
