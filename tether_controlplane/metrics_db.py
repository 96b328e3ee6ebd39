"""The figures /metrics reads from the database at each scrape: what is true now, the same
on every replica (aggregate them with ``max``).

Every query is bounded by what is active, never by history, so a scrape costs the same
with a million finished runs as with none: runs are counted only in their non-final
statuses, on the (deployment, status) index; agent requests only PENDING and CLAIMED, on
theirs; alerts only PENDING; backfills only active ones. What has finished is counted by the
counters instead (tether_runs_finished_total). The small tables (deployments, agents, code
locations, schedules, sensors) are read whole. tests/controlplane/test_metrics.py holds the
plans to that."""

import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from tether_api.alerts import DeliveryStatus
from tether_api.backfills import ACTIVE_BACKFILL_STATUSES
from tether_api.enums import (
    TERMINAL_RUN_STATUSES,
    AutomationStatus,
    CodeLocationStatus,
    RequestStatus,
    RunStatus,
)
from tether_controlplane.db import Database
from tether_controlplane.services.automations import effective_status
from tether_controlplane.services.schedules import next_tick
from tether_controlplane.services.sensors import next_tick_at
from tether_controlplane.settings import Settings
from tether_controlplane.tables import (
    AgentRow,
    AlertRow,
    CodeLocationRow,
    DeploymentRow,
    Organization,
    RequestRow,
    RunRow,
    ScheduleRow,
    SensorRow,
    utcnow,
)
from tether_controlplane.tables_backfills import BackfillRow

log = logging.getLogger("tether.metrics")

OPEN_RUN_STATUSES = [s for s in RunStatus if s not in TERMINAL_RUN_STATUSES]
OPEN_REQUEST_STATUSES = [RequestStatus.PENDING, RequestStatus.CLAIMED]
DEPLOYMENT = ["organization", "deployment"]

# Every family this collector yields (see metrics.FAMILIES_COUNTED).
FAMILIES_READ = (
    "tether_metrics_database_up",
    "tether_metrics_database_seconds",
    "tether_runs",
    "tether_run_queue_oldest_seconds",
    "tether_agent_requests",
    "tether_agent_requests_lease_expired",
    "tether_agents_available",
    "tether_code_location_status",
    "tether_schedule_lag_seconds",
    "tether_sensor_lag_seconds",
    "tether_schedules_running",
    "tether_sensors_running",
    "tether_backfill_partitions",
    "tether_alerts_pending",
    "tether_db_pool_size",
    "tether_db_pool_connections",
)

Names = dict[int, tuple[str, str]]


def deployments(session: Session) -> Names:
    rows = session.execute(
        select(DeploymentRow.id, Organization.name, DeploymentRow.name).join(
            Organization, DeploymentRow.organization_id == Organization.id
        )
    )
    return {dep_id: (org, name) for dep_id, org, name in rows}


def open_runs(session: Session, ids: list[int]) -> list[tuple[int, RunStatus, int]]:
    """Runs in each non-final status, per deployment: a range of the (deployment, status)
    index per pair, whatever the history holds."""
    rows = session.execute(
        select(RunRow.deployment_id, RunRow.status, func.count())
        .where(RunRow.deployment_id.in_(ids), RunRow.status.in_(OPEN_RUN_STATUSES))
        .group_by(RunRow.deployment_id, RunRow.status)
    )
    return [(d, s, n) for d, s, n in rows]


def oldest_queued(session: Session, deployment_id: int) -> datetime | None:
    """When the deployment's first QUEUED run (the next to be admitted) was created."""
    return session.scalar(
        select(RunRow.created_at)
        .where(RunRow.deployment_id == deployment_id, RunRow.status == RunStatus.QUEUED)
        .order_by(RunRow.pk)
        .limit(1)
    )


def open_requests(session: Session, ids: list[int]) -> list[tuple[int, RequestStatus, int]]:
    rows = session.execute(
        select(RequestRow.deployment_id, RequestRow.status, func.count())
        .where(RequestRow.deployment_id.in_(ids), RequestRow.status.in_(OPEN_REQUEST_STATUSES))
        .group_by(RequestRow.deployment_id, RequestRow.status)
    )
    return [(d, s, n) for d, s, n in rows]


def expired_leases(session: Session, ids: list[int], now: datetime) -> list[tuple[int, int]]:
    """CLAIMED requests whose lease ran out: the agent that took them did not answer."""
    rows = session.execute(
        select(RequestRow.deployment_id, func.count())
        .where(
            RequestRow.deployment_id.in_(ids),
            RequestRow.status == RequestStatus.CLAIMED,
            RequestRow.lease_expires_at < now,
        )
        .group_by(RequestRow.deployment_id)
    )
    return [(d, n) for d, n in rows]


def pending_alerts(session: Session) -> list[tuple[int, int]]:
    rows = session.execute(
        select(AlertRow.deployment_id, func.count())
        .where(AlertRow.status == DeliveryStatus.PENDING)
        .group_by(AlertRow.deployment_id)
    )
    return [(d, n) for d, n in rows]


class DatabaseCollector(Collector):
    """One scrape's figures (prometheus_client calls ``collect``)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        start = time.perf_counter()
        up = GaugeMetricFamily(
            "tether_metrics_database_up",
            "1 when this scrape could read the database (the figures read from it follow).",
        )
        try:
            with self.db.read() as session:
                families = list(self._read(session, utcnow()))
        except Exception:  # a scrape must still answer: the process figures stay useful
            log.exception("metrics: reading the database failed")
            up.add_metric([], 0)
            families = []
        else:
            up.add_metric([], 1)
        yield up
        yield from families
        yield from self._pool()
        took = GaugeMetricFamily(
            "tether_metrics_database_seconds", "How long this scrape's database reads took."
        )
        took.add_metric([], time.perf_counter() - start)
        yield took

    def _read(self, session: Session, now: datetime) -> Iterator[Metric]:
        names = deployments(session)
        ids = list(names)
        yield from self._runs(session, names, ids, now)
        yield from self._requests(session, names, ids, now)
        yield from self._agents(session, names, now)
        yield from self._locations(session, names)
        yield from self._automations(session, names, now)
        yield from self._backfills(session, names)
        alerts = GaugeMetricFamily(
            "tether_alerts_pending", "Alerts decided and not delivered yet.", labels=DEPLOYMENT
        )
        counts = dict(pending_alerts(session))
        for dep_id, labels in names.items():
            alerts.add_metric(list(labels), counts.get(dep_id, 0))
        yield alerts

    def _runs(
        self, session: Session, names: Names, ids: list[int], now: datetime
    ) -> Iterator[Metric]:
        runs = GaugeMetricFamily(
            "tether_runs",
            "Runs in each non-final status (QUEUED is the queue's depth). Finished runs are "
            "counted by tether_runs_finished_total.",
            labels=[*DEPLOYMENT, "status"],
        )
        counts = {(d, s): n for d, s, n in open_runs(session, ids)}
        for dep_id, labels in names.items():
            for status in OPEN_RUN_STATUSES:
                runs.add_metric([*labels, status.value], counts.get((dep_id, status), 0))
        yield runs
        oldest = GaugeMetricFamily(
            "tether_run_queue_oldest_seconds",
            "Age of the oldest QUEUED run (0: none queued): a queue that does not move.",
            labels=DEPLOYMENT,
        )
        for dep_id, labels in names.items():
            age = 0.0
            if counts.get((dep_id, RunStatus.QUEUED)):
                created = oldest_queued(session, dep_id)
                age = (now - created).total_seconds() if created else 0.0
            oldest.add_metric(list(labels), max(age, 0.0))
        yield oldest

    def _requests(
        self, session: Session, names: Names, ids: list[int], now: datetime
    ) -> Iterator[Metric]:
        requests = GaugeMetricFamily(
            "tether_agent_requests",
            "Agent requests waiting for an agent (state pending) and leased to one (claimed).",
            labels=[*DEPLOYMENT, "state"],
        )
        counts = {(d, s): n for d, s, n in open_requests(session, ids)}
        for dep_id, labels in names.items():
            for status in OPEN_REQUEST_STATUSES:
                requests.add_metric(
                    [*labels, status.value.lower()], counts.get((dep_id, status), 0)
                )
        yield requests
        expired = GaugeMetricFamily(
            "tether_agent_requests_lease_expired",
            "Claimed agent requests whose lease ran out unanswered (another agent may claim "
            "them again).",
            labels=DEPLOYMENT,
        )
        lapsed = dict(expired_leases(session, ids, now))
        for dep_id, labels in names.items():
            expired.add_metric(list(labels), lapsed.get(dep_id, 0))
        yield expired

    def _agents(self, session: Session, names: Names, now: datetime) -> Iterator[Metric]:
        timeout = timedelta(seconds=self.settings.agent_heartbeat_timeout_seconds)
        rows = session.execute(
            select(AgentRow.deployment_id, func.count())
            .where(AgentRow.last_heartbeat_at >= now - timeout)
            .group_by(AgentRow.deployment_id)
        )
        counts = {d: n for d, n in rows}
        agents = GaugeMetricFamily(
            "tether_agents_available",
            "Agents heard from within agent_heartbeat_timeout_seconds.",
            labels=DEPLOYMENT,
        )
        for dep_id, labels in names.items():
            agents.add_metric(list(labels), counts.get(dep_id, 0))
        yield agents

    def _locations(self, session: Session, names: Names) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "tether_code_location_status",
            "1 for each code location's current status, 0 for the others.",
            labels=[*DEPLOYMENT, "location", "status"],
        )
        rows = session.execute(
            select(
                CodeLocationRow.deployment_id, CodeLocationRow.name, CodeLocationRow.status
            ).where(CodeLocationRow.removed.is_(False))
        )
        for dep_id, name, current in rows:
            if dep_id not in names:
                continue
            for status in CodeLocationStatus:
                family.add_metric(
                    [*names[dep_id], name, status.value], 1 if status == current else 0
                )
        yield family

    def _automations(self, session: Session, names: Names, now: datetime) -> Iterator[Metric]:
        schedule_lag: dict[int, float] = dict.fromkeys(names, 0.0)
        schedules: dict[int, int] = dict.fromkeys(names, 0)
        query = select(ScheduleRow).where(
            ScheduleRow.present.is_(True), ScheduleRow.error.is_(None)
        )
        for row in session.scalars(query):
            if effective_status(row) != AutomationStatus.RUNNING or row.deployment_id not in names:
                continue
            schedules[row.deployment_id] += 1
            try:
                due = next_tick(row, row.cursor or now)
            except Exception:  # the scheduler reports it; one bad schedule must not end a scrape
                continue
            late = (now - due).total_seconds()
            schedule_lag[row.deployment_id] = max(schedule_lag[row.deployment_id], late)
        sensor_lag: dict[int, float] = dict.fromkeys(names, 0.0)
        sensors: dict[int, int] = dict.fromkeys(names, 0)
        for sensor in session.scalars(select(SensorRow).where(SensorRow.present.is_(True))):
            at = next_tick_at(sensor, now)
            if at is None or sensor.deployment_id not in names:
                continue
            sensors[sensor.deployment_id] += 1
            late = (now - at).total_seconds()
            sensor_lag[sensor.deployment_id] = max(sensor_lag[sensor.deployment_id], late)
        for name, help_text, values in (
            (
                "tether_schedule_lag_seconds",
                "How long the most overdue tick of a running schedule has been due and not "
                "evaluated (0: none overdue).",
                schedule_lag,
            ),
            ("tether_schedules_running", "Running schedules.", schedules),
            (
                "tether_sensor_lag_seconds",
                "How long the most overdue running sensor has been due and not started.",
                sensor_lag,
            ),
            ("tether_sensors_running", "Running sensors.", sensors),
        ):
            family = GaugeMetricFamily(name, help_text, labels=DEPLOYMENT)
            for dep_id, value in values.items():
                family.add_metric(list(names[dep_id]), value)
            yield family

    def _backfills(self, session: Session, names: Names) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "tether_backfill_partitions",
            "Partitions of each active backfill by state (pending, launched, succeeded, "
            "failed, canceled); progress is the finished share of their sum.",
            labels=[*DEPLOYMENT, "backfill", "state"],
        )
        query = select(BackfillRow).where(BackfillRow.status.in_(ACTIVE_BACKFILL_STATUSES))
        for row in session.scalars(query):
            if row.deployment_id not in names:
                continue
            labels = [*names[row.deployment_id], row.public_id]
            for state, value in (
                ("pending", row.pending),
                ("launched", row.launched),
                ("succeeded", row.succeeded),
                ("failed", row.failed),
                ("canceled", row.canceled),
            ):
                family.add_metric([*labels, state], value)
        yield family

    def _pool(self) -> Iterator[Metric]:
        pool = self.db.engine.pool
        size = GaugeMetricFamily(
            "tether_db_pool_size", "Connections the database pool keeps (pool_size)."
        )
        connections = GaugeMetricFamily(
            "tether_db_pool_connections",
            "The pool's connections: checked_out (in use), idle, overflow (beyond its size).",
            labels=["state"],
        )
        if isinstance(pool, QueuePool):
            size.add_metric([], pool.size())
            connections.add_metric(["checked_out"], pool.checkedout())
            connections.add_metric(["idle"], pool.checkedin())
            connections.add_metric(["overflow"], max(pool.overflow(), 0))
        yield size
        yield connections
