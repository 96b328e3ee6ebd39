"""The scheduler: turns the due ticks of RUNNING schedules into runs, each exactly once.

A pass reads which schedules have a tick due, then evaluates each in its own write
transaction with the schedule's row locked, so two control-plane replicas on one PostgreSQL
(or a pass retried after a crash) never both act on a tick: the second finds the cursor moved.
The tick's row is unique on (schedule, tick time) besides, and is written in the transaction
that creates its run.
"""

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from tether_api import partitions as keys_of
from tether_api.enums import AutomationStatus, MissedTicks, TickStatus
from tether_api.runtags import PARTITION_TAGS, partition_tags
from tether_api.snapshot import PartitionsSnapshot
from tether_api.user_api import RunCreate
from tether_controlplane.db import Database
from tether_controlplane.errors import ApiError
from tether_controlplane.services import locations, runs, ticks
from tether_controlplane.services.automations import effective_status
from tether_controlplane.services.schedules import next_tick, previous_tick
from tether_controlplane.tables import CodeLocationRow, DeploymentRow, ScheduleRow, ScheduleTickRow

log = logging.getLogger("tether.scheduler")

# A tick evaluated within this long of its time is on time; older ones were missed (the
# control plane was down) and follow the schedule's missed_ticks policy.
ON_TIME = timedelta(seconds=60)
# Catching up runs (or records as skipped) at most this many missed ticks of a schedule.
MAX_CATCH_UP_TICKS = 100
# Past this many ticks, a long outage of a frequent schedule is not walked tick by tick.
MAX_WALK = 100_000


def run_due(db: Database, now: datetime, grace_seconds: float = 120.0) -> datetime | None:
    """Evaluate every tick due by ``now``; return when the next one is due (None: none)."""
    due: list[int] = []
    upcoming: list[datetime] = []
    with db.read() as s:
        rows = s.scalars(
            select(ScheduleRow).where(ScheduleRow.present.is_(True), ScheduleRow.error.is_(None))
        ).all()
        for r in rows:
            if effective_status(r) != AutomationStatus.RUNNING:
                continue
            try:
                if next_tick(r, r.cursor or now) <= now:
                    due.append(r.id)
                upcoming.append(next_tick(r, max(r.cursor or now, now)))
            except Exception:  # checked at sync; one bad schedule must not stop the others
                log.exception(
                    "schedule %s of %s: cannot compute its ticks", r.name, r.code_location
                )
    for schedule_id in due:
        try:
            with db.write() as s:
                evaluate(s, schedule_id, now, grace_seconds)
        except Exception:  # one schedule's trouble must not stop the others
            log.exception("evaluating schedule %s failed; it is tried again next pass", schedule_id)
    return min(upcoming, default=None)


def evaluate(
    session: Session, schedule_id: int, now: datetime, grace_seconds: float = 120.0
) -> list[ScheduleTickRow]:
    """The ticks of one schedule up to ``now``, with its row locked: runs for those its
    policy runs (or, when its config is code, requests to evaluate them in the code server),
    SKIPPED rows for the others. Returns the ticks written."""
    row = session.scalar(select(ScheduleRow).where(ScheduleRow.id == schedule_id).with_for_update())
    if (
        row is None
        or not row.present
        or row.error is not None
        or effective_status(row) != AutomationStatus.RUNNING
    ):
        return []
    location = session.scalar(
        select(CodeLocationRow).where(
            CodeLocationRow.deployment_id == row.deployment_id,
            CodeLocationRow.name == row.code_location,
        )
    )
    if location is None or location.removed:
        return []
    # Never backwards: a pass that read the time before another replica's pass moved the
    # cursor finds nothing due, instead of walking ticks that replica already handled.
    if row.cursor is not None and row.cursor >= now:
        return []
    recorded = set(
        session.scalars(
            select(ScheduleTickRow.tick_time).where(
                ScheduleTickRow.schedule_id == row.id,
                ScheduleTickRow.tick_time > (row.cursor or now),
            )
        )
    )
    due = [t for t in _due_ticks(row, now) if t not in recorded]
    row.cursor = now
    if not due:
        return []
    on_time = [t for t in due if now - t <= ON_TIME]
    missed = [t for t in due if now - t > ON_TIME]
    policy = row.missed_ticks
    if policy == MissedTicks.ALL:
        to_run, skipped = missed[-MAX_CATCH_UP_TICKS:] + on_time, missed[:-MAX_CATCH_UP_TICKS]
    elif policy == MissedTicks.SKIP or on_time:
        to_run, skipped = on_time, missed
    else:  # LATEST, with nothing on time: the most recent missed tick
        to_run, skipped = missed[-1:], missed[:-1]
    dep = session.get(DeploymentRow, row.deployment_id)
    assert dep is not None
    written = [
        ScheduleTickRow(
            schedule_id=row.id,
            tick_time=t,
            status=TickStatus.SKIPPED,
            error=f"missed while the scheduler was not running (missed_ticks: {policy.value})",
            created_at=now,
        )
        for t in skipped[-MAX_CATCH_UP_TICKS:]
    ]
    session.add_all(written)
    partitions = _tick_partitions(session, location, row)
    written += [_run_tick(session, dep, row, t, now, grace_seconds, partitions) for t in to_run]
    session.flush()
    return written


def _due_ticks(row: ScheduleRow, now: datetime) -> Iterator[datetime]:
    """The ticks after the cursor up to ``now``, oldest first. After an outage longer than
    MAX_WALK ticks, the first MAX_WALK and then the most recent one (which "latest" runs)."""
    tick = row.cursor or now
    for _ in range(MAX_WALK):
        tick = next_tick(row, tick)
        if tick > now:
            return
        yield tick
    latest = previous_tick(row, now)
    if latest > tick:
        yield latest


def _run_tick(
    session: Session,
    dep: DeploymentRow,
    row: ScheduleRow,
    tick: datetime,
    now: datetime,
    grace_seconds: float,
    partitions: PartitionsSnapshot | None = None,
) -> ScheduleTickRow:
    if row.config_from_code:
        return ticks.start_schedule_tick(session, row, tick, now, grace_seconds)
    # Added once its outcome is known: creating the run flushes the session.
    record = ScheduleTickRow(schedule_id=row.id, tick_time=tick, created_at=now)
    partition: dict[str, str] = {}
    if partitions is not None:
        # The tick runs the partition of the window that just ended (as Dagster's schedule
        # of a partitioned job does); none has ended before the first window's end.
        key = keys_of.key_for_tick(partitions, tick)
        if key is None:
            record.status = TickStatus.SKIPPED
            record.error = (
                f"no partition of job {row.job!r} has ended by this tick (the first window "
                f"starts at {partitions.start})"
            )
            session.add(record)
            return record
        partition = partition_tags(partitions.location_kind, key)
    try:
        body = RunCreate(
            code_location=row.code_location,
            job=row.job,
            run_config=row.run_config,
            tags={
                **row.tags,
                **partition,
                ticks.SCHEDULE_TAG: row.name,
                ticks.TICK_TAG: tick.isoformat(),
            },
        )
        with session.begin_nested():  # a refused run leaves nothing behind
            run = runs.create(session, dep, body)
    except ApiError as exc:
        ticks.fail_schedule_tick(session, dep, row, record, exc.detail)
    except ValidationError as exc:
        ticks.fail_schedule_tick(session, dep, row, record, str(exc))
    else:
        record.status, record.run_id = TickStatus.SUCCESS, run.id
    session.add(record)
    return record


def _tick_partitions(
    session: Session, location: CodeLocationRow, row: ScheduleRow
) -> PartitionsSnapshot | None:
    """The time-window partitions of the schedule's job, whose ticks each target a partition;
    None when its job has none, or its tags name a partition already."""
    snapshot = locations.snapshot_of(session, location)
    if snapshot is None or any(t in row.tags for t in PARTITION_TAGS):
        return None
    job = snapshot.job(row.job)
    p = job.partitions if job else None
    return p if p is not None and p.kind == keys_of.TIME_WINDOW else None
