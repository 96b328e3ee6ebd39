"""The control plane's /metrics on a real control plane (SQLite and PostgreSQL): its own
credential, the figures a user's actions cause (runs, admissions, agent requests, events,
API latency by route template), and the plans of the queries a scrape makes, which must
not scan the runs, agent requests or alerts however long their history. Prometheus scraping
it (and the agent) is tests/e2e/test_metrics.py."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from tests.conftest import running_controlplane
from tests.support import ControlPlane, Tenant, client
from tests.support import event as run_event
from tether_controlplane.db import Database
from tether_controlplane.metrics_db import DatabaseCollector
from tether_controlplane.settings import Settings

SECRET = "metrics-secret-0123456789"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def metrics_cp(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    with running_controlplane(
        request.param,
        Path(tmp_path_factory.mktemp("metrics-cp")),
        metrics_token=SECRET,
        run_start_timeout_seconds=3600,
        run_heartbeat_timeout_seconds=3600,
    ) as cp:
        yield cp


def scrape(cp: ControlPlane, secret: str | None = SECRET) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return httpx.get(f"{cp.url}/metrics", headers=headers, timeout=10)


def samples(cp: ControlPlane) -> list[tuple[str, dict[str, str], float]]:
    response = scrape(cp)
    assert response.status_code == 200, response.text
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    ]


def value(found: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        v for n, ls, v in found if n == name and all(ls.get(k) == x for k, x in labels.items())
    )


def test_metrics_are_off_without_a_token(controlplane: ControlPlane) -> None:
    off = scrape(controlplane)
    assert off.status_code == 404
    assert off.json()["detail"] == (
        "metrics are off: start the control plane with TETHER_METRICS_TOKEN set (at least 16 "
        "characters), and give Prometheus the same secret"
    )


def test_metrics_are_served_only_with_their_own_token(metrics_cp: ControlPlane) -> None:
    missing = scrape(metrics_cp, None)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "missing metrics token" in missing.json()["detail"]
    # A Tether token, even a valid one, is not the metrics credential.
    for wrong in ("not-the-secret-at-all", metrics_cp.tenant().user_token):
        refused = scrape(metrics_cp, wrong)
        assert refused.status_code == 401
        assert refused.json()["detail"] == (
            "invalid metrics token: send the control plane's TETHER_METRICS_TOKEN"
        )

    ok = scrape(metrics_cp)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain")
    assert "process_resident_memory_bytes" in ok.text


def test_metrics_show_what_a_deployment_did(metrics_cp: ControlPlane) -> None:
    tenant: Tenant = metrics_cp.tenant(concurrency=1)
    org = {"organization": tenant.org, "deployment": tenant.deployment}
    tenant.deploy()
    first, second, third = (tenant.launch()["id"] for _ in range(3))
    # Concurrency 1: the first is admitted, the other two wait.
    found = samples(metrics_cp)
    assert value(found, "tether_runs", status="STARTING", **org) == 1
    assert value(found, "tether_runs", status="QUEUED", **org) == 2
    assert value(found, "tether_run_queue_oldest_seconds", **org) > 0
    assert value(found, "tether_runs_created_total", **org) == 3
    # The location's sync and the first run's launch wait for an agent.
    assert value(found, "tether_agent_requests", state="pending", **org) == 2

    claimed = tenant.poll(max_requests=10)
    assert len(claimed) == 2
    with tenant.agent() as agent:
        for request in claimed:
            r = agent.post(f"/api/v1/agent/requests/{request['id']}/ack", json={})
            assert r.status_code == 200, r.text
    # The first run fails: its worker reports it, in two batches.
    token = tenant.run_token(first)
    with client(metrics_cp.url, token) as worker:
        for batch in (
            [run_event(1, "RUN_START")],
            [run_event(2, "LOG", "a"), run_event(3, "LOG", "b"), run_event(4, "RUN_FAILURE")],
        ):
            r = worker.post(f"/api/v1/runs/{first}/events", json={"events": batch})
            assert r.status_code == 200, r.text

    found = samples(metrics_cp)
    assert value(found, "tether_runs_finished_total", status="FAILURE", **org) == 1
    assert value(found, "tether_runs", status="FAILURE", **org) == 0  # finished: counted above
    assert value(found, "tether_runs", status="STARTING", **org) == 1  # the second, admitted
    assert value(found, "tether_runs", status="QUEUED", **org) == 1
    assert value(found, "tether_run_admission_seconds_count", **org) == 2
    assert value(found, "tether_agent_requests_finished_total", outcome="done", **org) == 2
    assert value(found, "tether_events_ingested_total") >= 4
    assert value(found, "tether_event_batch_size_count") >= 2
    location = value(
        found, "tether_code_location_status", location="quick", status="PENDING", **org
    )
    assert location == 1
    # Latency by the route's template: no run ID ever becomes a label.
    runs_route = "/api/v1/deployments/{dep}/runs"
    assert value(found, "tether_http_request_duration_seconds_count", route=runs_route) >= 3
    routes = {ls["route"] for n, ls, _ in found if n.startswith("tether_http_request")}
    assert not [route for route in routes if any(i in route for i in (first, second, third))]
    assert "/api/v1/runs/{run_id}/events" in routes


# The tables a scrape must never read whole, whatever their history.
HISTORY_TABLES = ("runs", "run_events", "agent_requests", "alerts")


def scrape_statements(db: Database) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        families = list(DatabaseCollector(db, Settings(database_url=db.url)).collect())
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    up = next(f for f in families if f.name == "tether_metrics_database_up")
    assert up.samples[0].value == 1
    return seen


def full_scans(db: Database, statement: str, params: Any) -> list[str]:
    """What in the statement's plan reads a history table whole: a scan of the table, or of
    an index without a condition bounding it."""
    with db.engine.connect() as conn:
        if db.sqlite:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
            lines = [str(row[-1]) for row in plan]
            return [
                line
                for line in lines
                if line.startswith("SCAN") and line.split()[1] in HISTORY_TABLES
            ]
        # Tiny test tables are cheapest to scan: forbid it, and see whether an index serves.
        conn.exec_driver_sql("SET enable_seqscan = off")
        [plan] = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", params).scalar()
        return list(_unbounded(plan["Plan"], None))


def _unbounded(node: dict[str, Any], parent_table: str | None) -> Iterator[str]:
    table = node.get("Relation Name") or parent_table  # a bitmap index scan's is its parent's
    kind = node["Node Type"]
    unbounded_index = kind.endswith("Index Scan") or kind == "Index Only Scan"
    unbounded_index = unbounded_index and "Index Cond" not in node
    if table in HISTORY_TABLES and (kind == "Seq Scan" or unbounded_index):
        yield f"{kind} on {table} ({node.get('Index Name', 'no index')})"
    for child in node.get("Plans", []):
        yield from _unbounded(child, table)


def test_a_scrape_reads_no_history_table_whole(controlplane: ControlPlane) -> None:
    tenant = controlplane.tenant(concurrency=1)
    tenant.deploy()
    tenant.launch()
    tenant.launch()  # queued: the oldest queued run is looked up too
    db = Database(controlplane.database_url)
    try:
        statements = scrape_statements(db)
        tables = " ".join(s for s, _ in statements)
        for table in ("runs", "agent_requests", "alerts"):
            assert f"FROM {table}" in tables
        scans = {s: found for s, p in statements if (found := full_scans(db, s, p))}
        assert not scans
    finally:
        db.dispose()
