"""User API: runs, their events, and a live event stream (SSE)."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import AfterValidator, StringConstraints
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tether_api.audit import AuditAction
from tether_api.enums import TERMINAL_RUN_STATUSES, EventType, RunStatus
from tether_api.logs import MAX_LOG_WAIT_SECONDS, LogForwarding, RunLogs, RunLogsAnswer
from tether_api.steps import StepSummary, summarize_steps
from tether_api.user_api import (
    CALLER_ONLY_FROM_NEXUS,
    MAX_WORKFLOW_ID,
    Run,
    RunConfigValidation,
    RunCreate,
    RunEventPage,
    RunPage,
)
from tether_api.wire import MAX_SEQ, JsonDateTime, Text, strip_nul
from tether_controlplane.api.deps import (
    DbDep,
    Forbidden,
    NamedScope,
    RunIdPath,
    SettingsDep,
    UserOrNexusScope,
    UserScope,
)
from tether_controlplane.api.responses import (
    EVENT_STREAM,
    LOOKUP,
    LOOKUP_OR_CONFLICT,
    EventStreamResponse,
    error_responses,
)
from tether_controlplane.db import Database
from tether_controlplane.errors import AgentTimeout, Invalid
from tether_controlplane.services import (
    audit,
    events,
    idempotency,
    logfetch,
    logs,
    requests,
    runs,
)
from tether_controlplane.tables import DeploymentRow, RunRow
from tether_controlplane.wakeups import run_events_key

router = APIRouter(prefix="/api/v1/deployments/{dep}/runs", tags=["runs"])

SSE_BATCH = 1000
TAG_FILTER_PATTERN = r"^[^=]+=[\s\S]*$"
SSE_KEEPALIVE_SECONDS = 15.0
# How long a stream stays open after its run ended without the worker's final event.
SSE_END_GRACE = 5.0
# The longest a GET of a run waits for it to end (?wait_seconds=).
MAX_RUN_WAIT_SECONDS = 60.0
NEXUS_TERMINATES_ITS_OWN = (
    "a nexus token terminates only the runs started through Tether's Nexus service"
)


def _run_is_final(db: Database, run_pk: int) -> bool:
    with db.read() as s:
        run = s.get(RunRow, run_pk)
        return run is None or run.status in TERMINAL_RUN_STATUSES


@router.post(
    "",
    status_code=201,
    responses={
        200: {
            "model": Run,
            "description": "A run with this idempotency_key already exists in the deployment "
            "(same code_location and job): that run, as it is now; nothing new was created.",
        },
        201: {"description": "The run was created."},
        **LOOKUP_OR_CONFLICT,
    },
)
def create_run(body: RunCreate, scope: UserOrNexusScope, db: DbDep, response: Response) -> Run:
    """Queue a run. It is admitted (STARTING) at once when the deployment has a free slot.

    The job must be one its code location defines, and ``run_config`` must match the job's
    config schema (422 names each bad field); while the location has reported no
    definitions yet, the run worker checks them instead.

    With an ``idempotency_key`` already used in the deployment, answers that run (200)
    instead of creating one; 409 when that run is of another job. ``caller`` is Tether's
    Nexus service's alone (a nexus token): from anyone else it is refused (422)."""
    if body.caller is not None and not scope.is_nexus:
        raise Invalid(CALLER_ONLY_FROM_NEXUS, loc=("body", "caller"))
    with db.write() as s:
        dep = scope.deployment(s)
        run, created = idempotency.create_once(s, dep, body)
        if not created:
            response.status_code = 200
            return runs.to_model(s, dep, run)
        # The run config may hold values people consider sensitive: its keys only.
        details: dict[str, object] = {
            "code_location": body.code_location,
            "job": body.job,
            "tags": body.tags,
            "run_config_keys": sorted(body.run_config),
        }
        if body.idempotency_key is not None:
            details["idempotency_key"] = body.idempotency_key
        if body.caller is not None:
            details["caller"] = body.caller.model_dump(mode="json")
        audit.record(s, scope.principal, AuditAction.RUN_SUBMIT, run.id, details, deployment=dep)
        return runs.to_model(s, dep, run)


# Declared before the /{run_id} routes, so "validate" is never taken for a run ID.
@router.post("/validate", responses=LOOKUP)
def validate_run(body: RunCreate, scope: UserScope, db: DbDep) -> RunConfigValidation:
    """Check a run's job and config as creating it would, without creating it; answers the
    job's config schema too, to show its fields."""
    with db.read() as s:
        return runs.validate(s, scope.deployment(s), body)


@router.get("/validate", include_in_schema=False)
def validate_run_get() -> None:
    # GET would otherwise reach get_run, as the run "validate" (404): the dry run is POST.
    raise StarletteHTTPException(405)


def _parse_tags(tag: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in tag:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise Invalid(f"invalid tag filter {item!r}: use tag=KEY=VALUE", loc=("query", "tag"))
        parsed[key] = value
    return parsed


@router.get("", responses=LOOKUP)
def list_runs(
    scope: UserScope,
    db: DbDep,
    status: Annotated[list[RunStatus], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    code_location: Annotated[Text | None, Query()] = None,
    job: Annotated[Text | None, Query(description="Only runs of this job.")] = None,
    tag: Annotated[
        list[
            Annotated[str, StringConstraints(pattern=TAG_FILTER_PATTERN), AfterValidator(strip_nul)]
        ],
        Query(description="KEY=VALUE; repeat to AND them"),
    ] = [],  # noqa: B006
    created_after: Annotated[
        JsonDateTime | None,
        Query(
            description="Only runs created at or after this time: an ISO 8601 date-time with "
            "a time zone."
        ),
    ] = None,
    created_before: Annotated[
        JsonDateTime | None,
        Query(
            description="Only runs created before this time: an ISO 8601 date-time with a "
            "time zone."
        ),
    ] = None,
    caller_workflow_id: Annotated[
        Text | None,
        Query(
            max_length=MAX_WORKFLOW_ID,
            description="Only runs started through Tether's Nexus service by the Temporal "
            "workflow with this ID.",
        ),
    ] = None,
    caller_namespace: Annotated[
        Text | None,
        Query(
            max_length=255,
            description="Only runs started through Tether's Nexus service by a workflow of "
            "this Temporal namespace.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,18}$", description="next_cursor of a previous page")
    ] = None,
) -> RunPage:
    """Newest first. Pass ``next_cursor`` back as ``cursor`` for older runs (with the same
    filters)."""
    with db.read() as s:
        return runs.list_page(
            s,
            scope.deployment(s),
            status,
            code_location,
            _parse_tags(tag),
            limit,
            cursor,
            job,
            created_after=created_after,
            created_before=created_before,
            caller_workflow_id=caller_workflow_id,
            caller_namespace=caller_namespace,
        )


def _read_run(db: Database, scope: NamedScope, run_id: str) -> tuple[Run, int]:
    """The run as the API answers it, and its pk (the key of its wake-ups)."""
    with db.read() as s:
        dep = scope.deployment(s)
        row = runs.find(s, dep, run_id)
        return runs.to_model(s, dep, row), row.pk


@router.get("/{run_id}", responses=LOOKUP)
async def get_run(
    run_id: RunIdPath,
    scope: UserOrNexusScope,
    db: DbDep,
    settings: SettingsDep,
    wait_seconds: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_RUN_WAIT_SECONDS,
            description="Wait up to this long for the run to end: answered as soon as it is "
            "SUCCESS, FAILURE or CANCELED, or after this many seconds (at most the server's "
            "run_wait_max_seconds) as it is then. 0: at once.",
        ),
    ] = 0,
) -> Run:
    run, run_pk = await run_in_threadpool(_read_run, db, scope, run_id)
    if wait_seconds <= 0 or run.status in TERMINAL_RUN_STATUSES:
        return run
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait_seconds, settings.run_wait_max_seconds)
    while True:
        # Registered before the re-read: an end committed in between still wakes it. The
        # periodic re-read covers an end recorded by another replica. Each re-read checks the
        # status alone; the run is read whole once, to answer.
        waiter = db.notifier.register(run_events_key(run_pk))
        try:
            final = await run_in_threadpool(_run_is_final, db, run_pk)
            left = deadline - loop.time()
            if final or left <= 0:
                break
            await waiter.wait(min(left, settings.recheck_interval_seconds))
        finally:
            waiter.close()
    run, _ = await run_in_threadpool(_read_run, db, scope, run_id)
    return run


@router.post("/{run_id}/terminate", status_code=202, responses=LOOKUP_OR_CONFLICT)
def terminate_run(run_id: RunIdPath, scope: UserOrNexusScope, db: DbDep) -> Run:
    """Terminate a run: a queued one is CANCELED at once, a running one CANCELING until its
    agent has stopped it. A nexus token terminates only the runs started through Tether's
    Nexus service (those with a ``caller``): any other, 403."""
    with db.write() as s:
        dep = scope.deployment(s)
        row = runs.find(s, dep, run_id, lock=True)
        reason = "terminated by a user"
        if scope.is_nexus:
            if row.caller_workflow_id is None:
                raise Forbidden(NEXUS_TERMINATES_ITS_OWN)
            reason = (
                "terminated through Tether's Nexus service (its operation was canceled by "
                f"Temporal workflow {row.caller_workflow_id})"
            )
        run = runs.terminate(s, dep, row, reason)
        details = {"job": run.job, "code_location": run.code_location, "status": run.status}
        audit.record(s, scope.principal, AuditAction.RUN_TERMINATE, run.id, details, deployment=dep)
        return runs.to_model(s, dep, run)


@router.get("/{run_id}/steps", responses=LOOKUP)
def list_run_steps(run_id: RunIdPath, scope: UserOrNexusScope, db: DbDep) -> list[StepSummary]:
    """Each step's status, start, end and duration, from the run's STEP_* events. While the
    run is going, the job's steps it has not reached yet are listed as PENDING."""
    with db.read() as s:
        dep = scope.deployment(s)
        run = runs.find(s, dep, run_id)
        return summarize_steps(events.step_events(s, run), runs.planned_steps(s, dep, run))


@router.get("/{run_id}/events", responses=LOOKUP)
def list_run_events(
    run_id: RunIdPath,
    scope: UserOrNexusScope,
    db: DbDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    type: Annotated[
        list[EventType],
        Query(description="Only events of these types (repeat it); all when absent."),
    ] = [],  # noqa: B006 - FastAPI copies defaults
) -> RunEventPage:
    """Events with seq > ``after``, in order. A nexus token reads them too: its service
    returns a run's materializations to the operation's caller."""
    with db.read() as s:
        dep = scope.deployment(s)
        run = runs.find(s, dep, run_id)
        page = events.list_after(s, run, after, limit, type)
        return RunEventPage(
            events=page,
            last_seq=page[-1].seq if page else after,
            run_status=run.status,
        )


def _logs_or_request(
    db: Database,
    scope: NamedScope,
    run_id: str,
    future: "asyncio.Future[RunLogsAnswer]",
    replica_url: str | None = None,
) -> RunLogs | str:
    """The answer, when the control plane has it; else the ID of a FETCH_RUN_LOGS request
    for the run's agents, whose answer ``future`` awaits (registered before the request is
    committed: an agent may answer at once). ``replica_url``: this replica's, named in the
    request so that another replica the answer lands on relays it here."""
    registered: str | None = None
    try:
        with db.write() as s:
            dep = scope.deployment(s)
            run = runs.find(s, dep, run_id)
            found = _stored_logs(s, dep, run)
            if found is not None:
                return found
            registered = logfetch.enqueue(s, dep, run, replica_url)
            logfetch.expect(registered, future)
            # Reading a run's output is what a platform team most wants on record.
            audit.record(s, scope.principal, AuditAction.RUN_LOGS_FETCH, run.id, deployment=dep)
            return registered
    except BaseException:
        if registered is not None:  # the commit failed: nobody will answer it
            logfetch.forget(registered)
        raise


def _stored_logs(s: Session, dep: DeploymentRow, run: RunRow) -> RunLogs | None:
    """What the control plane can answer itself, without asking an agent."""
    settings = logs.run_settings(s, dep, run)
    mode = settings.forwarding
    if mode == LogForwarding.ALL:
        return RunLogs(
            run_id=run.id,
            forwarding=mode,
            source="events",
            message="forwarded as LOG events: read them with GET .../events",
        )
    if mode == LogForwarding.STRUCTURED:
        return RunLogs(
            run_id=run.id,
            forwarding=mode,
            source="none",
            message="this run's log text is not forwarded (log forwarding 'structured'): "
            "it stays in the run's output on the agent's host",
        )
    if run.log_url:
        return RunLogs(
            run_id=run.id,
            forwarding=mode,
            source="store",
            url=run.log_url,
            message="written by the agent to your log store",
        )
    return None


@router.get("/{run_id}/logs", responses={**LOOKUP, **error_responses(504)})
async def get_run_logs(
    run_id: RunIdPath,
    scope: UserScope,
    db: DbDep,
    settings: SettingsDep,
    wait_seconds: Annotated[float, Query(gt=0, le=MAX_LOG_WAIT_SECONDS)] = 20.0,
) -> RunLogs:
    """The run's log text as its log settings allow: with forwarding 'local', fetched now
    from the agent that keeps it (through the deployment's request queue; never stored by
    the control plane), or the URL of the store the agent wrote it to."""
    future: asyncio.Future[RunLogsAnswer] = asyncio.get_running_loop().create_future()
    try:
        found = await run_in_threadpool(
            _logs_or_request, db, scope, run_id, future, settings.replica_url
        )
    except asyncio.CancelledError:
        # The caller went away while the request was being made: the thread may still
        # register the future; a cancelled one is dropped (logfetch.expect, answer).
        future.cancel()
        logfetch.forget_future(future)
        raise
    if isinstance(found, RunLogs):
        return found
    request_id = found
    try:
        answer = await asyncio.wait_for(asyncio.shield(future), timeout=wait_seconds)
    except TimeoutError:
        await run_in_threadpool(_give_up, db, scope, request_id)
        raise AgentTimeout(
            f"no agent of deployment {scope.deployment_name} answered within "
            f"{wait_seconds:g} s with the log of run {run_id}: check that the agent that "
            "ran it (the run's 'agent') is up (`tether agents`), then ask again"
        ) from None
    finally:
        logfetch.forget(request_id)
    if answer.error is not None:
        return RunLogs(
            run_id=run_id,
            forwarding=LogForwarding.LOCAL,
            source="none",
            agent=answer.agent_name,
            message=answer.error,
        )
    return RunLogs(
        run_id=run_id,
        forwarding=LogForwarding.LOCAL,
        source="agent",
        text=answer.text,
        truncated=answer.truncated,
        agent=answer.agent_name,
        message=f"fetched from agent {answer.agent_name}; not stored by the control plane",
    )


def _give_up(db: Database, scope: NamedScope, request_id: str) -> None:
    """Nobody waits for a late answer: an agent that claims the request later drops it."""
    with db.write() as s:
        dep = scope.deployment(s)
        requests.fail(s, dep.id, request_id, "no agent answered in time", retry=False)


def _read_page(
    db: Database, scope: NamedScope, run_id: str, after: int
) -> tuple[list[str], int, bool, int]:
    """Frames after ``after``, the new ``after``, whether the stream may end, the run's pk.

    It may end once the run is final and its worker's final event is stored; a run ended by
    the agent or the monitor may still get events from a worker flushing its buffer, so for
    those the caller waits a grace period first."""
    with db.read() as s:
        dep = scope.deployment(s)
        run = runs.find(s, dep, run_id)
        page = events.list_after(s, run, after, SSE_BATCH)
        done = run.status in TERMINAL_RUN_STATUSES and events.has_final_event(s, run)
        frames = [
            f"id: {e.seq}\nevent: {e.type.value}\ndata: {e.model_dump_json()}\n\n" for e in page
        ]
        return frames, (page[-1].seq if page else after), done, run.pk


@router.get("/{run_id}/events/stream", response_class=EventStreamResponse, responses=EVENT_STREAM)
async def stream_run_events(
    run_id: RunIdPath,
    request: Request,
    scope: UserScope,
    db: DbDep,
    settings: SettingsDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventStreamResponse:
    """Server-sent events: every event after ``after`` (or ``Last-Event-ID``), then live ones.
    Ends with an ``end`` event once the run has finished and every event was sent."""
    resume = requests.parse_id(last_event_id or "")
    if resume is not None:
        after = max(after, min(resume, MAX_SEQ))
    # Resolve now, so a wrong run answers 404 rather than an empty stream.
    first = await run_in_threadpool(_read_page, db, scope, run_id, after)

    async def frames() -> AsyncIterator[str]:
        nonlocal after
        page, after, done, run_pk = first
        loop = asyncio.get_running_loop()
        idle = 0.0
        ended_at: float | None = None  # when the run was first seen final with nothing new
        while True:
            waiter = db.notifier.register(run_events_key(run_pk))
            try:
                for frame in page:
                    yield frame
                if page:
                    idle = 0.0
                    ended_at = None
                else:
                    if ended_at is None and await run_in_threadpool(_run_is_final, db, run_pk):
                        ended_at = loop.time()
                    grace_left = (
                        None if ended_at is None else SSE_END_GRACE - (loop.time() - ended_at)
                    )
                    if done or (grace_left is not None and grace_left <= 0):
                        yield f'event: end\ndata: {{"last_seq": {after}}}\n\n'
                        return
                    if await request.is_disconnected():
                        return
                    wait = settings.recheck_interval_seconds
                    if grace_left is not None:
                        wait = min(wait, max(grace_left, 0.05))
                    woke = await waiter.wait(wait)
                    idle = 0.0 if woke else idle + wait
                    if idle >= SSE_KEEPALIVE_SECONDS:
                        idle = 0.0
                        yield ": keepalive\n\n"
                page, after, done, _ = await run_in_threadpool(_read_page, db, scope, run_id, after)
            finally:
                waiter.close()

    return EventStreamResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
