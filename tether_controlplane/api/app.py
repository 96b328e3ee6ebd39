"""Application factory: storage, migrations, monitor loop, routers, error handling."""

import asyncio
import importlib.metadata
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool

from tether_controlplane import migrate
from tether_controlplane.api.middleware import BodyLimitMiddleware
from tether_controlplane.api.routes import agent, deployments, locations, runs, worker
from tether_controlplane.db import Database
from tether_controlplane.errors import ApiError
from tether_controlplane.monitor import monitor_once
from tether_controlplane.settings import Settings

log = logging.getLogger("tether.controlplane")


async def _monitor_loop(db: Database, settings: Settings) -> None:
    while True:
        try:
            await run_in_threadpool(monitor_once, db, settings)
        except Exception:  # keep monitoring through a transient database error
            log.exception("monitor pass failed")
        await asyncio.sleep(settings.monitor_interval_seconds)


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
        monitor = asyncio.create_task(_monitor_loop(db, settings))
        try:
            yield
        finally:
            monitor.cancel()
            db.dispose()

    app = FastAPI(
        title="Tether control plane",
        version=importlib.metadata.version("tether"),
        lifespan=lifespan,
        docs_url="/docs",
    )

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Name each bad field in one readable line, and keep the structured list.
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return JSONResponse(
            {"detail": "; ".join(problems), "errors": _jsonable(exc.errors())}, status_code=422
        )

    @app.exception_handler(DataError)
    async def _unstorable(_: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses (out of range, bad encoding) is the caller's to fix; a
        # 5xx would make a well-behaved client retry the same bad request forever.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "invalid value"
        return JSONResponse({"detail": f"a value could not be stored: {reason}"}, status_code=422)

    @app.get("/healthz", tags=["health"])
    def healthz(request: Request) -> dict[str, str]:
        """Liveness and database reachability. The one endpoint without a token."""
        db: Database = request.app.state.db
        with db.read() as s:
            s.execute(text("SELECT 1"))
        return {"status": "ok"}

    for module in (deployments, locations, runs, agent, worker):
        app.include_router(module.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    return app


def _jsonable(errors: object) -> object:
    # Validation errors may carry exception objects in "ctx", and "input" may echo megabytes
    # back: keep only plain, small data.
    if isinstance(errors, dict):
        return {k: _jsonable(v) for k, v in errors.items() if k not in ("ctx", "input", "url")}
    if isinstance(errors, list | tuple):
        return [_jsonable(v) for v in errors]
    if isinstance(errors, float) and not math.isfinite(errors):
        return str(errors)  # e.g. a body of 1e999 parses to inf, which JSON cannot carry
    if isinstance(errors, str | int | float | bool) or errors is None:
        return errors
    return str(errors)
