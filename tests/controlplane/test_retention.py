"""Retention on real storage (SQLite and PostgreSQL): a deployment's rules set through the API
and the CLI, applied by the control plane's own retention pass; a pass with a clock moved
ahead removes each kind of row past its rule and keeps what it must (runs that have not
ended, pending alerts, ticks being evaluated, a location's newest history, the asset
catalog's latest materialization); the audit log stays append-only for everyone but the pass.

The control plane here is the module's own (its database is not shared with other tests):
a pass with a clock a year ahead would otherwise remove other tests' rows."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from tests.conftest import running_controlplane
from tests.support import ControlPlane, Tenant, cli, client, event, wait_until
from tether_api.alerts import AlertEvent, DeliveryStatus
from tether_api.assets import AssetStatus
from tether_api.enums import (
    AutomationStatus,
    CodeLocationStatus,
    EventType,
    SensorKind,
    TickStatus,
)
from tether_controlplane.db import Database
from tether_controlplane.services import retention
from tether_controlplane.settings import Settings
from tether_controlplane.tables import (
    AlertPolicyRow,
    AlertRow,
    AuditRow,
    CodeLocationRow,
    CodeLocationStatusRow,
    DeploymentRow,
    Organization,
    RunEventRow,
    RunRow,
    RunTagRow,
    SensorRow,
    SensorTickRow,
    TokenRow,
    utcnow,
)
from tether_controlplane.tables_assets import AssetEventRow, AssetSummaryRow

YEAR = timedelta(days=366)
# Past every default rule, the asset history's two years included.
LATER = timedelta(days=1100)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def retention_cp(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    with running_controlplane(
        request.param,
        tmp_path_factory.mktemp(f"cp-retention-{request.param}"),
        run_start_timeout_seconds=3600,
        run_heartbeat_timeout_seconds=3600,
        retention_interval_seconds=0.3,
        monitor_interval_seconds=0.2,
    ) as cp:
        yield cp


@pytest.fixture
def tenant(retention_cp: ControlPlane) -> Tenant:
    return retention_cp.tenant()


@pytest.fixture
def db(retention_cp: ControlPlane) -> Iterator[Database]:
    database = Database(retention_cp.database_url)
    try:
        yield database
    finally:
        database.dispose()


def settings_of(cp: ControlPlane, **overrides: Any) -> Settings:
    return Settings(database_url=cp.database_url, **overrides)


def deployment_id(db: Database, tenant: Tenant) -> int:
    with db.read() as s:
        found = s.scalar(
            select(DeploymentRow.id)
            .join(Organization, Organization.id == DeploymentRow.organization_id)
            .where(Organization.name == tenant.org, DeploymentRow.name == tenant.deployment)
        )
    assert found is not None
    return found


def finished_run(tenant: Tenant, status: str = "SUCCESS", logs: int = 0) -> str:
    """A run launched and ended as its worker and agent would end it, with ``logs`` log
    events, a tag and a run token."""
    run_id: str = tenant.launch(tags={"team": "data"})["id"]
    with client(tenant.cp.url, tenant.run_token(run_id)) as worker:
        batch = [event(1, "RUN_START")] + [event(2 + i, "LOG", f"line {i}") for i in range(logs)]
        r = worker.post(f"/api/v1/runs/{run_id}/events", json={"events": batch})
        assert r.status_code == 200, r.text
    with tenant.agent() as c:
        r = c.post(f"/api/v1/agent/runs/{run_id}/status", json={"status": status})
        assert r.status_code == 200, r.text
    return run_id


def run_ids(tenant: Tenant) -> set[str]:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/runs", params={"limit": 200})
        assert r.status_code == 200, r.text
        return {run["id"] for run in r.json()["runs"]}


def audit_entries(tenant: Tenant) -> list[dict[str, Any]]:
    with tenant.user() as c:
        r = c.get("/api/v1/audit")
        assert r.status_code == 200, r.text
        return r.json()["entries"]  # type: ignore[no-any-return]


# --- a deployment's rules, through the API and the CLI -------------------------------------


def test_the_cli_sets_a_count_and_the_control_plane_keeps_the_newest_runs(
    tenant: Tenant,
) -> None:
    tenant.deploy()
    active = tenant.launch()["id"]  # the oldest, and never ended: it stays
    older, newer, newest = (
        finished_run(tenant, "FAILURE"),
        finished_run(tenant),
        finished_run(tenant),
    )
    done = cli(tenant, "deployments", "set-retention", "--max-runs", "2", "--tick-days", "7")
    assert done.returncode == 0, done.stderr
    assert "retention updated" in done.stdout
    assert "max runs         2" in done.stdout and "ticks kept       7 days" in done.stdout
    assert "runs kept        365 days" in done.stdout  # what was not given stays

    wait_until(lambda: run_ids(tenant) == {active, newer, newest}, timeout=15, what="retention")
    with tenant.user() as c:
        assert c.get(f"{tenant.dep_path}/runs/{older}").status_code == 404
        shown = c.get(tenant.dep_path).json()["retention"]
        assert shown["max_runs"] == 2 and shown["tick_days"] == 7 and shown["run_days"] == 365
        [entry] = c.get("/api/v1/audit", params={"action": "deployment.update"}).json()["entries"]
    assert entry["details"]["retention"]["from"]["max_runs"] == 0
    assert entry["details"]["retention"]["to"]["max_runs"] == 2


def test_bad_retention_is_refused_naming_the_field_and_changes_nothing(tenant: Tenant) -> None:
    with tenant.user() as c:
        r = c.patch(tenant.dep_path, json={"retention": {"run_days": -1}})
        assert r.status_code == 422
        assert r.json()["detail"] == (
            "retention.run_days: Input should be greater than or equal to 0"
        )
        assert r.json()["errors"][0]["loc"] == ["body", "retention", "run_days"]
        r = c.patch(tenant.dep_path, json={"retention": {"max_run": 5}})  # a typo
        assert r.status_code == 422
        assert r.json()["detail"] == "retention.max_run: Extra inputs are not permitted"
        assert c.get(tenant.dep_path).json()["retention"]["run_days"] == 365
    done = cli(tenant, "deployments", "set-retention", "--run-days", "-1")
    assert done.returncode != 0
    assert "--run-days: Input should be greater than or equal to 0" in done.stderr
    done = cli(tenant, "deployments", "set-retention")
    assert done.returncode != 0 and "nothing to change: give --run-days" in done.stderr


# --- one pass, each kind ----------------------------------------------------------------------


def test_a_pass_removes_what_is_past_each_rule_and_keeps_what_it_must(
    tenant: Tenant, db: Database, retention_cp: ControlPlane
) -> None:
    tenant.deploy()
    gone_run = finished_run(tenant, logs=30)
    kept_run = tenant.launch()["id"]  # STARTING: never removed, however old
    dep = deployment_id(db, tenant)
    with db.read() as s:
        gone_pk = s.scalar(select(RunRow.pk).where(RunRow.id == gone_run))
    now = utcnow()
    with db.write() as s:
        location = s.scalar(
            select(CodeLocationRow).where(
                CodeLocationRow.deployment_id == dep, CodeLocationRow.name == "quick"
            )
        )
        assert location is not None
        # Rows written now, for a pass whose clock is three years ahead. 60 status changes
        # of a location: an outage that began with the 3rd (after the RUNNING 2nd) and its
        # restarts.
        statuses = [CodeLocationStatus.STARTING, CodeLocationStatus.RUNNING]
        statuses += [CodeLocationStatus.ERROR, CodeLocationStatus.STARTING] * 29
        changes = [
            CodeLocationStatusRow(code_location_id=location.id, status=st, at=now)
            for st in statuses
        ]
        s.add_all(changes)
        policy = AlertPolicyRow(deployment_id=dep, name="p", spec={}, enabled=True)
        s.add(policy)
        s.flush()
        for key, status in (("sent", DeliveryStatus.DELIVERED), ("due", DeliveryStatus.PENDING)):
            s.add(
                AlertRow(
                    public_id=f"{tenant.org}-{key}",
                    deployment_id=dep,
                    policy_id=policy.id,
                    event=AlertEvent.RUN_FAILURE,
                    key=key,
                    summary=key,
                    details={},
                    created_at=now,
                    status=status,
                    # Not due: the control plane's delivery loop leaves it alone.
                    next_attempt_at=now + LATER,
                )
            )
        sensor = SensorRow(
            deployment_id=dep,
            code_location="quick",
            name="watch",
            kind=SensorKind.STANDARD,
            minimum_interval_seconds=30,
            timeout_seconds=60,
            default_status=AutomationStatus.STOPPED,  # never evaluated here
        )
        s.add(sensor)
        s.flush()
        for status in (TickStatus.SUCCESS, TickStatus.SKIPPED, TickStatus.EVALUATING):
            s.add(
                SensorTickRow(
                    sensor_id=sensor.id,
                    tick_time=now,
                    status=status,
                    deadline=now + LATER,  # never expired by the live control plane
                )
            )
        assets = [
            AssetEventRow(
                deployment_id=dep,
                asset_key="orders",
                type=EventType.ASSET_MATERIALIZATION,
                run_id=gone_run,
                job="etl",
                code_location="quick",
                timestamp=now,
                metadata_={"n": n},
            )
            for n in range(3)
        ]
        s.add_all(assets)
        s.flush()
        s.add(
            AssetSummaryRow(
                deployment_id=dep,
                asset_key="orders",
                code_location="quick",
                status=AssetStatus.MATERIALIZED,
                last_materialization_id=assets[-1].id,
            )
        )
    outage_start = changes[2].id

    removed = retention.run_pass(db, settings_of(retention_cp), now=now + LATER)

    assert removed["runs"] >= 1 and removed["run_events"] >= 31
    assert run_ids(tenant) == {kept_run}
    with db.read() as s:
        assert s.scalar(select(func.count()).where(RunEventRow.run_pk == gone_pk)) == 0
        assert s.scalar(select(func.count()).where(RunTagRow.run_pk == gone_pk)) == 0
        assert s.scalar(select(func.count()).where(TokenRow.run_id == gone_run)) == 0
        left = list(
            s.scalars(
                select(CodeLocationStatusRow.id).where(
                    CodeLocationStatusRow.code_location_id == location.id
                )
            )
        )
        ticks = set(
            s.scalars(select(SensorTickRow.status).where(SensorTickRow.sensor_id == sensor.id))
        )
        events = list(s.scalars(select(AssetEventRow.id).where(AssetEventRow.deployment_id == dep)))
    # Its page's 50, and the changes its outage is dated from (RUNNING, the first ERROR).
    assert len(left) == 50 + 2 and {changes[1].id, outage_start} <= set(left)
    assert ticks == {TickStatus.EVALUATING}
    assert events == [assets[-1].id]  # the asset's latest materialization
    with tenant.user() as c:
        alerts = c.get(f"{tenant.dep_path}/alerts").json()
    assert [a["status"] for a in alerts] == ["PENDING"]


def test_a_pass_stops_at_its_time_limit_and_the_next_goes_on(
    tenant: Tenant, db: Database, retention_cp: ControlPlane
) -> None:
    tenant.deploy()
    runs = [finished_run(tenant) for _ in range(5)]
    later = utcnow() + YEAR
    short = settings_of(retention_cp, retention_batch_size=2, retention_pass_max_seconds=1e-9)
    retention.run_pass(db, short, now=later)  # spent before its first batch
    assert run_ids(tenant) == set(runs)
    small = settings_of(retention_cp, retention_batch_size=2)
    assert retention.run_pass(db, small, now=later)["runs"] >= 5  # two at a time
    assert run_ids(tenant) == set()


# --- the audit log ------------------------------------------------------------------------


def test_the_audit_log_loses_old_entries_only_to_the_pass(
    tenant: Tenant, db: Database, retention_cp: ControlPlane
) -> None:
    with tenant.user() as c:
        r = c.patch(tenant.dep_path, json={"run_concurrency_limit": 4})
        assert r.status_code == 200, r.text
    statements = ["UPDATE audit_log SET actor_name = 'someone else'", "DELETE FROM audit_log"]
    if not db.sqlite:
        statements.append("TRUNCATE audit_log")
    for statement in statements:  # a user's path: refused, as before migration 0014
        with pytest.raises(DatabaseError, match="audit_log is append-only"), db.write() as s:
            s.execute(text(statement))
    # The gate opens DELETE only: an UPDATE is refused inside the pass's own transaction too.
    with pytest.raises(DatabaseError, match="audit_log is append-only"), db.write() as s:
        s.execute(text("INSERT INTO audit_retention_gate (id) VALUES (1)"))
        s.execute(text("UPDATE audit_log SET actor_name = 'someone else'"))

    with db.read() as s:
        org = s.scalar(select(Organization.id).where(Organization.name == tenant.org))
        ours = select(func.count()).where(AuditRow.organization_id == org)
        before = s.scalar(ours)
    assert before == 3  # bootstrap's two tokens, and the update
    now = utcnow()
    # Within the rule (400 days by default): nothing goes; 0 keeps them forever.
    retention.run_pass(db, settings_of(retention_cp), now=now + timedelta(days=399))
    retention.run_pass(db, settings_of(retention_cp, audit_retention_days=0), now=now + YEAR * 10)
    with db.read() as s:
        assert s.scalar(ours) == before
        assert s.scalar(text("SELECT count(*) FROM audit_retention_gate")) == 0
    removed = retention.run_pass(db, settings_of(retention_cp), now=now + timedelta(days=401))
    assert removed["audit_entries"] >= 3
    assert audit_entries(tenant) == []
    with db.read() as s:
        assert s.scalar(text("SELECT count(*) FROM audit_retention_gate")) == 0
    with tenant.user() as c:  # a new entry: the gate is closed again for it
        assert c.patch(tenant.dep_path, json={"run_concurrency_limit": 5}).status_code == 200
    with pytest.raises(DatabaseError, match="audit_log is append-only"), db.write() as s:
        s.execute(text("DELETE FROM audit_log"))
    assert [e["action"] for e in audit_entries(tenant)] == ["deployment.update"]
