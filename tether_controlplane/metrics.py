"""Prometheus metrics of the control plane, served at ``GET /metrics`` (text format) to callers
that send the ``metrics_token`` setting as a bearer secret; 404 while it is unset.

Why a bearer secret rather than a port of its own: one listener keeps working behind the
same load balancer, TLS and network policy as the API, Prometheus sends it with
``authorization: {credentials_file: ...}``, and nothing new listens by default. It is not a
Tether token: scraping needs no organization, and a leaked one shows counts, never data.

Three kinds of figures (the names are in ``FAMILIES``, which the tests hold the dashboard to):

- counted in this process (metrics_orm.py, metrics_http.py): what this replica saw happen;
  with several replicas, ``sum`` them;
- read from the database at scrape time (metrics_db.py): the same on every replica; with
  several, take ``max``, not ``sum``;
- the process's own (``process_*``, ``python_*``).
"""

import hmac

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)
from starlette.concurrency import run_in_threadpool

from tether_api.wire import ErrorResponse
from tether_controlplane.settings import Settings

# No `_created` series beside every counter and histogram: twice the series, for a timestamp
# Prometheus does not need (process-wide, and the control plane is the process's owner).
disable_created_metrics()
# The process-wide figures (counters, histograms). The database's are collected per scrape
# by metrics_db.DatabaseCollector, outside this registry: a test process may hold several
# apps on several databases.
REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

DEPLOYMENT = ("organization", "deployment")

# Up to the longest long-poll (30 s) and run wait (60 s).
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
HTTP_DURATION = Histogram(
    "tether_http_request_duration_seconds",
    "API and web UI requests by route template (not raw path), method and status class; "
    "the agent's long-polls show their waits here (route /api/v1/agent/requests/poll).",
    ["method", "route", "code"],
    buckets=HTTP_BUCKETS,
    registry=REGISTRY,
)
HTTP_IN_PROGRESS = Gauge(
    "tether_http_requests_in_progress",
    "Requests being served now, by route template: on the poll route, agents waiting in a "
    "long-poll.",
    ["method", "route"],
    registry=REGISTRY,
)
RUNS_CREATED = Counter(
    "tether_runs_created",
    "Runs created (by users, schedules, sensors, backfills, retries).",
    DEPLOYMENT,
    registry=REGISTRY,
)
RUNS_FINISHED = Counter(
    "tether_runs_finished",
    "Runs that reached a final status (SUCCESS, FAILURE, CANCELED), counted when the change "
    "committed.",
    [*DEPLOYMENT, "status"],
    registry=REGISTRY,
)
RUN_ADMISSION = Histogram(
    "tether_run_admission_seconds",
    "Time from a run's creation to its admission (QUEUED to STARTING): how long it waited "
    "for a slot of its deployment's concurrency limit.",
    DEPLOYMENT,
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0),
    registry=REGISTRY,
)
EVENTS_INGESTED = Counter(
    "tether_events_ingested",
    "Run events stored (duplicates of a batch delivered twice are not counted).",
    registry=REGISTRY,
)
EVENT_BATCH_SIZE = Histogram(
    "tether_event_batch_size",
    "Events stored per ingested batch.",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
    registry=REGISTRY,
)
SCHEDULE_TICK_LAG = Histogram(
    "tether_schedule_tick_lag_seconds",
    "How long after its time a schedule's tick was evaluated.",
    DEPLOYMENT,
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0),
    registry=REGISTRY,
)
ALERT_DELIVERIES = Counter(
    "tether_alert_deliveries",
    "Alert delivery attempts by outcome: delivered, retry (an attempt failed, another "
    "follows) or failed (given up, or its policy was disabled).",
    [*DEPLOYMENT, "outcome"],
    registry=REGISTRY,
)
AGENT_REQUESTS_FINISHED = Counter(
    "tether_agent_requests_finished",
    "Agent requests finished, by outcome: done (acknowledged) or failed.",
    [*DEPLOYMENT, "outcome"],
    registry=REGISTRY,
)

# Every family /metrics serves, as Prometheus names it (a counter's name with _total). The
# dashboard's and the alert rules' queries may name only these (tests/e2e/test_metrics.py).
FAMILIES_COUNTED = (
    "tether_http_request_duration_seconds",
    "tether_http_requests_in_progress",
    "tether_runs_created_total",
    "tether_runs_finished_total",
    "tether_run_admission_seconds",
    "tether_events_ingested_total",
    "tether_event_batch_size",
    "tether_schedule_tick_lag_seconds",
    "tether_alert_deliveries_total",
    "tether_agent_requests_finished_total",
)

NOT_ENABLED = (
    "metrics are off: start the control plane with TETHER_METRICS_TOKEN set (at least 16 "
    "characters), and give Prometheus the same secret"
)
MISSING = "missing metrics token: send 'Authorization: Bearer <TETHER_METRICS_TOKEN>'"
INVALID = "invalid metrics token: send the control plane's TETHER_METRICS_TOKEN"


def _refusal(status: int, detail: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = ErrorResponse(detail=detail).model_dump(mode="json", exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers)


def authorized(settings: Settings, header: str | None) -> JSONResponse | None:
    """None when ``header`` carries the metrics token; else the answer to send."""
    if settings.metrics_token is None:
        return _refusal(404, NOT_ENABLED)
    scheme, _, secret = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return _refusal(401, MISSING)
    expected = settings.metrics_token.get_secret_value().encode()
    if not hmac.compare_digest(secret.strip().encode(), expected):
        return _refusal(401, INVALID)
    return None


def install(app: FastAPI, settings: Settings) -> None:
    """Serve /metrics and count what happens, when ``settings.metrics_token`` is set; with it
    unset only the 404 route is added, and nothing is counted (no cost per request)."""
    # Imported here: they import this module's figures.
    from tether_controlplane import metrics_db, metrics_http, metrics_orm

    async def metrics(request: Request) -> Response:
        refused = authorized(settings, request.headers.get("authorization"))
        if refused is not None:
            return refused
        collector = metrics_db.DatabaseCollector(request.app.state.db, settings)
        database = await run_in_threadpool(generate_latest, collector)
        return Response(generate_latest(REGISTRY) + database, media_type=CONTENT_TYPE_LATEST)

    app.router.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    if settings.metrics_token is None:
        return
    metrics_orm.install()
    app.add_middleware(metrics_http.MetricsMiddleware)
