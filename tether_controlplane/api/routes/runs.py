"""User API: runs, their events, and a live event stream (SSE)."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from tether_api.enums import TERMINAL_RUN_STATUSES, RunStatus
from tether_api.models import Run, RunCreate, RunEventPage, RunPage
from tether_controlplane.api.deps import DbDep, RunIdPath, SettingsDep, UserScope
from tether_controlplane.db import Database
from tether_controlplane.errors import Invalid
from tether_controlplane.notify import run_events_key
from tether_controlplane.services import events, runs, tenancy

router = APIRouter(prefix="/api/v1/deployments/{dep}/runs", tags=["runs"])

SSE_BATCH = 1000
SSE_KEEPALIVE_SECONDS = 15.0


@router.post("", status_code=201)
def create_run(body: RunCreate, scope: UserScope, db: DbDep) -> Run:
    """Queue a run. It is admitted (STARTING) at once when the deployment has a free slot."""
    with db.write() as s:
        dep = scope.deployment(s)
        return runs.to_model(dep, runs.create(s, dep, body))


def _parse_tags(tag: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in tag:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise Invalid(f"invalid tag filter {item!r}: use tag=KEY=VALUE")
        parsed[key] = value
    return parsed


@router.get("")
def list_runs(
    scope: UserScope,
    db: DbDep,
    status: Annotated[list[RunStatus], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    code_location: str | None = None,
    tag: Annotated[list[str], Query(description="KEY=VALUE; repeat to AND them")] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> RunPage:
    """Newest first. Pass ``next_cursor`` back as ``cursor`` for older runs."""
    with db.read() as s:
        return runs.list_page(
            s, scope.deployment(s), status, code_location, _parse_tags(tag), limit, cursor
        )


@router.get("/{run_id}")
def get_run(run_id: RunIdPath, scope: UserScope, db: DbDep) -> Run:
    with db.read() as s:
        dep = scope.deployment(s)
        return runs.to_model(dep, runs.find(s, dep, run_id))


@router.post("/{run_id}/terminate", status_code=202)
def terminate_run(run_id: RunIdPath, scope: UserScope, db: DbDep) -> Run:
    with db.write() as s:
        dep = scope.deployment(s)
        run = runs.terminate(s, dep, runs.find(s, dep, run_id), "terminated by a user")
        return runs.to_model(dep, run)


@router.get("/{run_id}/events")
def list_run_events(
    run_id: RunIdPath,
    scope: UserScope,
    db: DbDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> RunEventPage:
    """Events with seq > ``after``, in order."""
    with db.read() as s:
        dep = scope.deployment(s)
        run = runs.find(s, dep, run_id)
        page = events.list_after(s, run, after, limit)
        return RunEventPage(
            events=page,
            last_seq=page[-1].seq if page else after,
            run_status=RunStatus(run.status),
        )


def _read_page(
    db: Database, deployment_id: int, run_id: str, after: int
) -> tuple[list[str], int, bool, int]:
    with db.read() as s:
        dep = tenancy.deployment_by_id(s, deployment_id)
        run = runs.find(s, dep, run_id)
        page = events.list_after(s, run, after, SSE_BATCH)
        done = RunStatus(run.status) in TERMINAL_RUN_STATUSES
        frames = [
            f"id: {e.seq}\nevent: {e.type.value}\ndata: {e.model_dump_json()}\n\n" for e in page
        ]
        return frames, (page[-1].seq if page else after), done, run.pk


@router.get("/{run_id}/events/stream")
async def stream_run_events(
    run_id: RunIdPath,
    request: Request,
    scope: UserScope,
    db: DbDep,
    settings: SettingsDep,
    after: Annotated[int, Query(ge=0)] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events: every event after ``after`` (or ``Last-Event-ID``), then live ones.
    Ends with an ``end`` event once the run has finished and every event was sent."""
    if last_event_id and last_event_id.isdigit():
        after = max(after, int(last_event_id))
    # Resolve now, so a wrong run answers 404 rather than an empty stream.
    first = await run_in_threadpool(_read_page, db, scope.deployment_id, run_id, after)

    async def frames() -> AsyncIterator[str]:
        nonlocal after
        page, after, done, run_pk = first
        idle = 0.0
        while True:
            waiter = db.notifier.register(run_events_key(run_pk))
            try:
                if not page and done:
                    yield f'event: end\ndata: {{"last_seq": {after}}}\n\n'
                    return
                for frame in page:
                    yield frame
                if page:
                    idle = 0.0
                else:
                    if await request.is_disconnected():
                        return
                    woke = await waiter.wait(settings.recheck_interval_seconds)
                    idle = 0.0 if woke else idle + settings.recheck_interval_seconds
                    if idle >= SSE_KEEPALIVE_SECONDS:
                        idle = 0.0
                        yield ": keepalive\n\n"
                page, after, done, _ = await run_in_threadpool(
                    _read_page, db, scope.deployment_id, run_id, after
                )
            finally:
                waiter.close()
            await asyncio.sleep(0)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
