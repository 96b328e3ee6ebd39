"""Sensors: kept in step with the snapshots their code locations report, turned on and off
by users, listed with their ticks. When they are evaluated is ``services/ticks.py``'s."""

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether_api.audit import AuditAction
from tether_api.enums import AutomationStatus, SensorKind
from tether_api.sensors import Sensor, SensorTick
from tether_api.snapshot import DefinitionsSnapshot, SensorSnapshot
from tether_api.wire import strip_nul
from tether_controlplane.services.automations import AutomationKind, effective_status
from tether_controlplane.tables import DeploymentRow, SensorRow, SensorTickRow, utcnow


def sync(
    session: Session, dep: DeploymentRow, location: str, snapshot: DefinitionsSnapshot | None
) -> None:
    """Make the stored sensors of ``location`` what its snapshot declares (none: removed).
    A user's on/off choice and the cursor are kept across redeploys."""
    rows = {
        r.name: r
        for r in session.scalars(
            select(SensorRow).where(
                SensorRow.deployment_id == dep.id, SensorRow.code_location == location
            )
        )
    }
    now = utcnow()
    declared: dict[str, SensorSnapshot] = {}
    for found in snapshot.sensors if snapshot else []:
        # The first of each name (the SDK allows one), without NUL: PostgreSQL text columns
        # cannot hold it (the snapshot itself is JSON).
        clean = found.model_copy(
            update={
                "name": strip_nul(found.name),
                "job": strip_nul(found.job) if found.job else None,
                "description": strip_nul(found.description) if found.description else None,
            }
        )
        declared.setdefault(clean.name, clean)
    for s in declared.values():
        row = rows.pop(s.name, None)
        if row is None:
            row = SensorRow(deployment_id=dep.id, code_location=location, name=s.name)
            session.add(row)
        if row.kind is not None and row.kind != s.kind:
            row.cursor = None  # a cursor means something else to the other kind
        row.kind, row.job, row.description = s.kind, s.job, s.description
        row.minimum_interval_seconds = s.minimum_interval_seconds
        row.timeout_seconds = s.timeout_seconds
        row.monitored_jobs = s.monitored_jobs
        row.monitored_status = s.monitored_status
        row.default_status = s.default_status
        if s.kind == SensorKind.RUN_STATUS and row.cursor is None:
            # It reacts to runs that end from now on, not to the deployment's whole past.
            row.cursor = run_cursor(now, 0)
        row.present = True
        row.updated_at = now
    for row in rows.values():  # no longer declared
        row.present = False
        row.updated_at = now


def run_cursor(ended_at: datetime, run_pk: int) -> str:
    """A run-status sensor's position: runs are ordered by when they ended, then by pk."""
    return f"{ended_at.isoformat()}|{run_pk}"


def parse_run_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor or "|" not in cursor:
        return None
    when, _, pk = cursor.partition("|")
    try:
        return datetime.fromisoformat(when), int(pk)
    except ValueError:
        return None


def _turned_on(row: SensorRow) -> None:
    row.last_tick_at = None  # evaluated at once, then at its interval
    if row.kind == SensorKind.RUN_STATUS:
        # Runs that ended while it was off are not news to it now.
        row.cursor = run_cursor(utcnow(), 0)


def next_tick_at(row: SensorRow, now: datetime | None = None) -> datetime | None:
    """When it is next evaluated (``now`` if it never was); None while it is not running."""
    if not row.present or effective_status(row) != AutomationStatus.RUNNING:
        return None
    if row.last_tick_at is None:
        return now or utcnow()
    return row.last_tick_at + timedelta(seconds=row.minimum_interval_seconds)


def to_model(session: Session, row: SensorRow) -> Sensor:
    status = effective_status(row) if row.present else AutomationStatus.STOPPED
    last = SENSORS.last_tick(session, row)
    return Sensor(
        code_location=row.code_location,
        name=row.name,
        kind=row.kind,
        job=row.job,
        description=row.description,
        minimum_interval_seconds=row.minimum_interval_seconds,
        timeout_seconds=row.timeout_seconds,
        monitored_jobs=row.monitored_jobs,
        monitored_status=row.monitored_status,
        status=status,
        default_status=row.default_status,
        status_set_by_user=row.status is not None,
        present=row.present,
        cursor=row.cursor,
        next_tick_at=next_tick_at(row),
        last_tick=tick_model(last) if last else None,
    )


def tick_model(row: SensorTickRow) -> SensorTick:
    return SensorTick(
        id=row.id,
        status=row.status,
        tick_time=row.tick_time,
        finished_at=row.finished_at,
        run_ids=list(row.run_ids or []),
        run_keys_skipped=list(row.run_keys_skipped or []),
        skip_reason=row.skip_reason,
        error=row.error,
        traceback=row.traceback,
        cursor=row.cursor,
        workflow_id=row.workflow_id,
    )


SENSORS: AutomationKind[SensorRow, SensorTickRow, Sensor, SensorTick] = AutomationKind(
    noun="sensor",
    plural="sensors",
    row=SensorRow,
    tick_row=SensorTickRow,
    tick_fk="sensor_id",
    to_model=to_model,
    tick_model=tick_model,
    turned_on=_turned_on,
    start_action=AuditAction.SENSOR_START,
    stop_action=AuditAction.SENSOR_STOP,
)
