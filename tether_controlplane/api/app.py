"""Application factory: storage, migrations, monitor loop, routers, error handling."""

import asyncio
import gc
import importlib.metadata
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy import text
from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tether_api.wire import ErrorResponse, FieldError, TokenRefusalReason
from tether_controlplane import metrics, migrate
from tether_controlplane.api.docs import add_docs
from tether_controlplane.api.middleware import AuthMiddleware, BodyLimitMiddleware
from tether_controlplane.api.responses import API_ERRORS
from tether_controlplane.api.routes import (
    agent,
    alerts,
    assets,
    audit,
    backfills,
    deployments,
    locations,
    run_worker,
    runs,
    schedules,
    sensors,
    sessions,
    tokens,
)
from tether_controlplane.db import Database
from tether_controlplane.errors import ApiError
from tether_controlplane.monitor import monitor_once
from tether_controlplane.services import backfills as backfill_service
from tether_controlplane.services import delivery, scheduler, ticks
from tether_controlplane.settings import Settings
from tether_controlplane.tables import utcnow
from tether_controlplane.ui import api as ui_api
from tether_controlplane.ui import app as ui
from tether_controlplane.wakeups import run_events_key

log = logging.getLogger("tether.controlplane")


async def _monitor_loop(db: Database, settings: Settings) -> None:
    while True:
        try:
            await run_in_threadpool(monitor_once, db, settings)
        except Exception:  # keep monitoring through a transient database error
            log.exception("monitor pass failed")
        await asyncio.sleep(settings.monitor_interval_seconds)


async def _scheduler_loop(db: Database, settings: Settings) -> None:
    # Sleeps until the next tick is due (at most scheduler_max_sleep_seconds), so a tick is
    # evaluated within milliseconds of its time.
    while True:
        try:
            grace = settings.tick_grace_seconds
            upcoming = await run_in_threadpool(scheduler.run_due, db, utcnow(), grace)
            sensor_due = await run_in_threadpool(ticks.request_due, db, utcnow(), grace)
        except Exception:  # keep scheduling through a transient database error
            log.exception("scheduler pass failed")
            upcoming = sensor_due = None
        wait = settings.scheduler_max_sleep_seconds
        for due in (upcoming, sensor_due):
            if due is not None:
                wait = min(wait, max((due - utcnow()).total_seconds(), 0.0))
        await asyncio.sleep(wait + 0.001)


async def _backfill_loop(db: Database, settings: Settings) -> None:
    # Each pass launches what backfills may launch now; it then sleeps until a paced one may
    # launch again, one of their runs ends on this replica, or backfill_interval_seconds
    # (which covers runs ended on another replica, and new backfills).
    followed: frozenset[int] = frozenset()
    while True:
        try:
            due = await run_in_threadpool(backfill_service.run_due, db, utcnow())
        except Exception:  # keep going through a transient database error
            log.exception("backfill pass failed")
            due = None
        wait = settings.backfill_interval_seconds
        if due is not None:
            wait = min(wait, max((due - utcnow()).total_seconds(), 0.0))
        followed = await _until_one_ends(db, wait, followed)


async def _until_one_ends(db: Database, timeout: float, followed: frozenset[int]) -> frozenset[int]:
    """Sleep ``timeout`` seconds, or less when a run of a backfill's in-flight partition
    ends. ``followed``: the ended runs the last pass was made for; one of them still in
    flight means its backfill's pass failed, which is tried again at the interval, never in a
    spin. Every event batch of a run wakes its waiter: a wake costs this read, and ends the
    sleep only when a run has ended. Returns the ended runs the next pass is made for."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    ended: frozenset[int] = frozenset()
    while (left := deadline - loop.time()) > 0:
        try:
            going, ended = await run_in_threadpool(backfill_service.in_flight_run_pks, db)
        except Exception:
            log.exception("backfill loop: reading the runs in flight failed")
            going = []
        if ended - followed:
            break
        waiters = [db.notifier.register(run_events_key(pk)) for pk in going]
        if not waiters:
            await asyncio.sleep(left + 0.001)
            break
        tasks = [asyncio.create_task(w.wait(left)) for w in waiters]
        try:
            done, _ = await asyncio.wait(
                tasks, timeout=left + 0.001, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in tasks:
                task.cancel()
            for waiter in waiters:
                waiter.close()
        if not any(task.result() for task in done if not task.cancelled()):
            break  # timed out
    return ended


async def _delivery_loop(db: Database, settings: Settings) -> None:
    # Its own loop: a slow webhook delays other alerts, never a run or a request.
    while True:
        try:
            lease = timedelta(seconds=settings.alert_delivery_lease_seconds)
            await run_in_threadpool(delivery.deliver_due, db, lease)
        except Exception:
            log.exception("alert delivery pass failed")
        await asyncio.sleep(settings.alert_delivery_interval_seconds)


def create_app(settings: Settings | None = None, migrate_on_start: bool = True) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        if migrate_on_start:
            await run_in_threadpool(migrate.upgrade, db.engine)
        db.notifier.bind(asyncio.get_running_loop())
        app.state.db = db
        app.state.settings = settings
        # Everything loaded so far (modules, the app, its routes) lives as long as the process:
        # left out of the cyclic GC's full collections, which otherwise walk those ~180,000
        # objects and put ~100 ms on whichever request triggers one (bench/bench_scale.py).
        gc.collect()
        gc.freeze()
        loops = [asyncio.create_task(_monitor_loop(db, settings))]
        if settings.scheduler_enabled:
            loops.append(asyncio.create_task(_scheduler_loop(db, settings)))
        loops.append(asyncio.create_task(_delivery_loop(db, settings)))
        if settings.backfills_enabled:
            loops.append(asyncio.create_task(_backfill_loop(db, settings)))
        try:
            yield
        finally:
            for loop in loops:
                loop.cancel()
            await ui_api.close(app)
            db.dispose()

    app = FastAPI(
        title="Tether control plane",
        version=importlib.metadata.version("tether"),
        lifespan=lifespan,
        # Served by add_docs from local files, not FastAPI's CDN-loaded page.
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        # (401s come from AuthMiddleware, with their WWW-Authenticate header.)
        return _error(exc.status_code, exc.detail, exc.errors, reason=exc.reason)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Name each bad field in one readable line, and keep the structured list.
        problems = []
        errors = []
        for err in exc.errors():
            error = _field_error(err)
            where = ".".join(str(p) for p in error.loc if p != "body")
            problems.append(f"{where}: {error.msg}" if where else error.msg)
            errors.append(error)
        return _error(422, "; ".join(problems), errors)

    @app.exception_handler(DataError)
    async def _unstorable(_: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses (out of range, bad encoding) is the caller's to fix; a
        # 5xx would make a well-behaved client retry the same bad request forever.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "invalid value"
        return _error(422, f"a value could not be stored: {reason}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and ui.wants_page(request):
            return ui.not_found(request)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route that matched the path only;
            # RFC 9110 wants every method the resource supports.
            allow = allowed_methods(request.app, request.url.path) or [headers.get("Allow", "")]
            headers["Allow"] = ", ".join(allow)
            detail = f"method {request.method} is not allowed here; use {headers['Allow']}"
        elif exc.status_code == 404:
            detail = f"no such endpoint: {request.url.path} (see /docs for the API)"
        else:
            detail = str(exc.detail)
        return _error(exc.status_code, detail, headers=headers or None)

    @app.get("/healthz", tags=["health"])
    def healthz(request: Request) -> dict[str, str]:
        """Liveness and database reachability. The one endpoint without a token."""
        db: Database = request.app.state.db
        with db.read() as s:
            s.execute(text("SELECT 1"))
        return {"status": "ok"}

    for module in (
        deployments,
        locations,
        runs,
        schedules,
        sensors,
        alerts,
        agent,
        run_worker,
        sessions,
        tokens,
        audit,
        assets,
        backfills,
    ):
        app.include_router(module.router, responses=API_ERRORS)
    add_docs(app)
    ui.install(app)
    # The last added runs first: a request without a valid token is refused before its
    # body is read at all.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(AuthMiddleware)
    # /metrics, and (with metrics_token set) the outermost middleware, timing every request.
    metrics.install(app, settings)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


# The tag of the operations whose callers are not people: their IDs say whose they are.
_CALLER_PREFIX = {"agent": "agent_", "run worker": "worker_"}


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operationId, the name a generated client gives the call: its
    function's (``create_run``, ``deploy_code_location``), prefixed for the agent's and the
    run worker's own APIs (``agent_get_run``, ``worker_post_events``). _openapi checks that
    they are unique."""
    tag = str(route.tags[0]) if route.tags else ""
    return _CALLER_PREFIX.get(tag, "") + route.name


def _field_error(err: Any) -> FieldError:
    """One pydantic error as a FieldError. A union told apart by a field (``kind``, ``type``)
    without it, or with a value it does not know, is an error of that field, said as for
    any other: "Field required", "Input should be 'webhook' or 'email'"."""
    loc: list[str | int] = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
    msg, kind = str(err.get("msg")), str(err.get("type", "value_error"))
    ctx = err.get("ctx") or {}
    key = str(ctx.get("discriminator", "")).strip("'")
    if kind in ("union_tag_not_found", "union_tag_invalid") and key.isidentifier():
        loc.append(key)
        if kind == "union_tag_not_found":
            msg, kind = "Field required", "missing"
        else:
            tags = str(ctx.get("expected_tags", "")).split(", ")
            listed = " or ".join([", ".join(tags[:-1]), tags[-1]] if len(tags) > 1 else tags)
            msg, kind = f"Input should be {listed}", "literal_error"
    return FieldError(loc=loc, msg=msg, type=kind)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = FastAPI.openapi(app)  # caches it in app.openapi_schema
    ids = [op["operationId"] for item in schema["paths"].values() for op in item.values()]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        app.openapi_schema = None
        raise RuntimeError(f"operation IDs must be unique; rename the routes of: {twice}")
    # FastAPI gives declared error answers the route's own media type (the event stream's
    # text/event-stream); every error body is JSON.
    for path_item in schema["paths"].values():
        for operation in path_item.values():
            for code, response in operation.get("responses", {}).items():
                if code[0] in "45" and response.get("content"):
                    media = next(iter(response["content"].values()))
                    response["content"] = {"application/json": media}
    return schema


def _error(
    status: int,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    reason: TokenRefusalReason | None = None,
) -> JSONResponse:
    body = ErrorResponse(detail=detail, errors=errors or [], reason=reason)
    # ``reason`` only on a refused token's 401, absent (not null) elsewhere.
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers
    )


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method the published API serves at ``path`` (from the OpenAPI document, the
    one list of what exists). The most literal paths win: ``.../runs/validate`` is not the
    run ``{run_id}`` "validate"."""
    table: list[tuple[re.Pattern[str], int, list[str]]] | None = getattr(app.state, "allow", None)
    if table is None:
        table = [
            (
                re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"),
                template.count("{"),
                [method.upper() for method in item],
            )
            for template, item in app.openapi()["paths"].items()
        ]
        app.state.allow = table
    matches = [(params, found) for pattern, params, found in table if pattern.match(path)]
    fewest = min((params for params, _ in matches), default=0)
    return sorted({m for params, found in matches if params == fewest for m in found})
