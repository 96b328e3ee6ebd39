"""Schedules: kept in step with the snapshots their code locations report, turned on and
off by users, listed with their ticks. Evaluating them is ``services/scheduler.py``'s."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from sqlalchemy import select
from sqlalchemy.orm import Session

from tether_api.audit import AuditAction
from tether_api.enums import AutomationStatus
from tether_api.schedules import Schedule, ScheduleTick
from tether_api.snapshot import DefinitionsSnapshot, ScheduleSnapshot
from tether_api.wire import strip_nul
from tether_controlplane.services.automations import AutomationKind, effective_status
from tether_controlplane.tables import (
    DeploymentRow,
    ScheduleRow,
    ScheduleTickRow,
    utcnow,
)


def next_tick(row: ScheduleRow, after: datetime) -> datetime:
    """The first tick strictly after ``after``, in UTC, in the schedule's time zone's rules."""
    local = after.astimezone(ZoneInfo(row.timezone))
    found: datetime = croniter(row.cron, local).get_next(datetime)
    return found.astimezone(after.tzinfo)


def previous_tick(row: ScheduleRow, until: datetime) -> datetime:
    """The last tick at or before ``until``, in UTC."""
    local = (until + timedelta(seconds=1)).astimezone(ZoneInfo(row.timezone))
    found: datetime = croniter(row.cron, local).get_prev(datetime)
    return found.astimezone(until.tzinfo)


def schedule_error(cron: str, timezone: str) -> str | None:
    """Why the control plane cannot evaluate a schedule (None: it can). The SDK checks the
    syntax; this also needs the time zone here, and a cron that ever fires (``0 0 30 2 *``)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {timezone!r} on the control plane: use an IANA name"
    if not croniter.is_valid(cron):
        return f"invalid cron expression {cron!r}"
    try:
        croniter(cron, datetime.now(zone)).get_next(datetime)
    except (CroniterBadDateError, ValueError) as exc:
        return f"cron expression {cron!r} never fires: {exc}"
    return None


def sync(
    session: Session, dep: DeploymentRow, location: str, snapshot: DefinitionsSnapshot | None
) -> None:
    """Make the stored schedules of ``location`` what its snapshot declares (none when it is
    removed: ``snapshot`` None). A user's on/off choice and the cursor are kept."""
    rows = {
        r.name: r
        for r in session.scalars(
            select(ScheduleRow).where(
                ScheduleRow.deployment_id == dep.id, ScheduleRow.code_location == location
            )
        )
    }
    now = utcnow()
    declared: dict[str, ScheduleSnapshot] = {}
    for found in snapshot.schedules if snapshot else []:
        # The first of each name (the SDK allows one), without NUL: PostgreSQL text columns
        # cannot hold it (the snapshot itself is JSON).
        clean = found.model_copy(
            update={k: strip_nul(getattr(found, k)) for k in ("name", "cron", "timezone", "job")}
        )
        declared.setdefault(clean.name, clean)
    for s in declared.values():
        row = rows.pop(s.name, None)
        if row is None:
            row = ScheduleRow(deployment_id=dep.id, code_location=location, name=s.name)
            session.add(row)
        was_running = (
            row.id is not None and row.present and effective_status(row) == AutomationStatus.RUNNING
        )
        # A new cron or time zone starts from now: its "missed" ticks were never declared.
        moved = row.id is not None and (row.cron, row.timezone) != (s.cron, s.timezone)
        row.cron, row.timezone, row.job = s.cron, s.timezone, s.job
        row.error = schedule_error(s.cron, s.timezone)
        row.run_config, row.tags = s.run_config, s.tags
        row.config_from_code, row.timeout_seconds = s.config_from_code, s.timeout_seconds
        row.default_status, row.missed_ticks = s.default_status, s.missed_ticks
        row.present = True
        row.updated_at = now
        if effective_status(row) == AutomationStatus.RUNNING and (not was_running or moved):
            row.cursor = now  # starts ticking from now: nothing before it is "missed"
    for row in rows.values():  # no longer declared
        row.present = False
        row.updated_at = now


def _turned_on(row: ScheduleRow) -> None:
    row.cursor = utcnow()  # it ticks from now on: the time it was off is not "missed"


def to_model(session: Session, row: ScheduleRow) -> Schedule:
    status = effective_status(row) if row.present and not row.error else AutomationStatus.STOPPED
    last = session.scalar(
        select(ScheduleTickRow)
        .where(ScheduleTickRow.schedule_id == row.id)
        .order_by(ScheduleTickRow.id.desc())
        .limit(1)
    )
    return Schedule(
        code_location=row.code_location,
        name=row.name,
        cron=row.cron,
        timezone=row.timezone,
        job=row.job,
        run_config=row.run_config,
        tags=row.tags,
        status=status,
        default_status=row.default_status,
        status_set_by_user=row.status is not None,
        missed_ticks=row.missed_ticks,
        config_from_code=row.config_from_code,
        present=row.present,
        next_tick_at=next_tick(row, utcnow()) if status == AutomationStatus.RUNNING else None,
        error=row.error,
        last_tick=tick_model(last) if last else None,
    )


def tick_model(row: ScheduleTickRow) -> ScheduleTick:
    return ScheduleTick(
        tick_time=row.tick_time,
        status=row.status,
        run_id=row.run_id,
        error=row.error,
        created_at=row.created_at,
        traceback=row.traceback,
        workflow_id=row.workflow_id,
    )


SCHEDULES: AutomationKind[ScheduleRow, ScheduleTickRow, Schedule, ScheduleTick] = AutomationKind(
    noun="schedule",
    plural="schedules",
    row=ScheduleRow,
    tick_row=ScheduleTickRow,
    tick_fk="schedule_id",
    to_model=to_model,
    tick_model=tick_model,
    turned_on=_turned_on,
    start_action=AuditAction.SCHEDULE_START,
    stop_action=AuditAction.SCHEDULE_STOP,
)
