"""The backfill loop's pass (``run_due``, called by the loop in api/app.py): each active
backfill in its own write transaction with its row locked (``advance``). It follows its
in-flight partitions' runs (a run retried by its job's policy is followed to its retry), then
creates runs for the next PENDING partitions, up to ``max_in_flight`` and its pace, each in the
transaction that marks it LAUNCHED and with the idempotency key
``backfill:{id}:{position}:{attempt}``. So a crash or restart neither loses nor doubles a
partition's run, and two replicas never both launch one (the second waits for the lock, then
finds the partition LAUNCHED). A pass reads only in-flight and next-pending rows."""

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from tether_api.backfills import ACTIVE_BACKFILL_STATUSES, BackfillPartitionStatus, BackfillStatus
from tether_api.enums import TERMINAL_RUN_STATUSES, CodeLocationKind, RunStatus
from tether_api.runtags import BACKFILL_TAG, partition_tags
from tether_api.snapshot import DefinitionsSnapshot
from tether_api.user_api import RunCreate
from tether_controlplane.db import Database
from tether_controlplane.errors import ApiError, Conflict, NotFound
from tether_controlplane.services import idempotency, locations
from tether_controlplane.tables import CodeLocationRow, DeploymentRow, RunRow
from tether_controlplane.tables_backfills import BackfillPartitionRow, BackfillRow

log = logging.getLogger("tether.backfills")

P = BackfillPartitionStatus
# A paced backfill whose pass came late by up to this long launches what it missed; one idle
# for longer (its runs in flight at max_in_flight) starts its pace again, not a burst.
PACE_SLACK = timedelta(seconds=2)
# Run IDs read with one IN (...) list.
CHUNK = 1000
# A retry of a retry of ...: followed this many hops in one pass at most.
MAX_RETRY_HOPS = 100
# The runs of in-flight partitions the loop waits on (their end wakes it).
MAX_WATCHED_RUNS = 1000

# The column of a backfill's row that counts partitions in each status.
_COUNT = {
    P.PENDING: "pending",
    P.LAUNCHED: "launched",
    P.SUCCESS: "succeeded",
    P.FAILURE: "failed",
    P.CANCELED: "canceled",
}
_RUN_OUTCOME = {
    RunStatus.SUCCESS: P.SUCCESS,
    RunStatus.FAILURE: P.FAILURE,
    RunStatus.CANCELED: P.CANCELED,
}


def location_snapshot(session: Session, location: CodeLocationRow) -> DefinitionsSnapshot:
    snapshot = locations.snapshot_of(session, location)
    if snapshot is None:
        raise Conflict(
            f"code location {location.name!r} has not reported its definitions yet: launch "
            f"the backfill once it is RUNNING (`tether locations show {location.name}`)"
        )
    return snapshot


def first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ()))
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))


def run_body(
    row: BackfillRow, kind: CodeLocationKind, key: str, attempt: int, position: int
) -> RunCreate:
    return RunCreate(
        code_location=row.code_location,
        job=row.job,
        run_config=row.run_config,
        tags={**row.tags, BACKFILL_TAG: row.public_id, **partition_tags(kind, key=key)},
        idempotency_key=f"backfill:{row.public_id}:{position}:{attempt}",
    )


def run_due(db: Database, now: datetime) -> datetime | None:
    """Advance every active backfill, each in its own write transaction with its row locked.
    Returns when a paced one may launch next (None: no such time; the loop's interval and
    the end of a run wake it)."""
    with db.read() as s:
        active = s.scalars(
            select(BackfillRow.id)
            .where(BackfillRow.status.in_(ACTIVE_BACKFILL_STATUSES))
            .order_by(BackfillRow.id)
        ).all()
    due: list[datetime] = []
    for backfill_id in active:
        try:
            with db.write() as s:
                found = advance(s, backfill_id, now)
        except Exception:  # one backfill's trouble must not stop the others
            log.exception("backfill %s: pass failed; it is tried again next pass", backfill_id)
            continue
        if found is not None:
            due.append(found)
    return min(due, default=None)


def in_flight_run_pks(
    db: Database, limit: int = MAX_WATCHED_RUNS
) -> tuple[list[int], frozenset[int]]:
    """The runs of active backfills' in-flight partitions, by pk: those still going (the loop
    waits on their end) and those that have ended (the next pass follows them)."""
    with db.read() as s:
        found = s.execute(
            select(RunRow.pk, RunRow.status)
            .join(BackfillPartitionRow, BackfillPartitionRow.run_id == RunRow.id)
            .join(BackfillRow, BackfillRow.id == BackfillPartitionRow.backfill_id)
            .where(
                BackfillRow.status.in_(ACTIVE_BACKFILL_STATUSES),
                BackfillPartitionRow.status == P.LAUNCHED,
            )
            .limit(limit)
        ).all()
    going = [pk for pk, status in found if status not in TERMINAL_RUN_STATUSES]
    return going, frozenset(pk for pk, status in found if status in TERMINAL_RUN_STATUSES)


def advance(session: Session, backfill_id: int, now: datetime) -> datetime | None:
    """One backfill's pass, with its row locked: follow its runs, launch what it may, end it
    when nothing is left. Returns when it may launch next, when paced."""
    row = session.scalar(select(BackfillRow).where(BackfillRow.id == backfill_id).with_for_update())
    if row is None or row.status not in ACTIVE_BACKFILL_STATUSES:
        return None  # another replica ended it, or someone canceled it, meanwhile
    dep = session.get(DeploymentRow, row.deployment_id)
    assert dep is not None
    follow_runs(session, row, now)
    due = None
    if row.status == BackfillStatus.CANCELING:
        if row.launched == 0:
            end(row, BackfillStatus.CANCELED, now)
        return None
    if row.status == BackfillStatus.REQUESTED:
        row.status = BackfillStatus.RUNNING
        row.updated_at = now
    if row.pending:
        due = _launch(session, dep, row, now)
    if row.pending == 0 and row.launched == 0:
        clean = row.failed == 0 and row.canceled == 0
        end(row, BackfillStatus.COMPLETED if clean else BackfillStatus.COMPLETED_WITH_FAILURES, now)
    return due


def _move(row: BackfillRow, part: BackfillPartitionRow, status: P, now: datetime) -> None:
    """Change a partition's status, and the backfill's counts with it."""
    if part.status == status:
        return
    old, new = _COUNT[part.status], _COUNT[status]
    setattr(row, old, getattr(row, old) - 1)
    setattr(row, new, getattr(row, new) + 1)
    part.status = status
    part.updated_at = now
    row.updated_at = now


def end(row: BackfillRow, status: BackfillStatus, now: datetime) -> None:
    row.status = status
    row.ended_at = now
    row.updated_at = now
    row.message = None
    row.next_launch_at = None


def follow_runs(session: Session, row: BackfillRow, now: datetime) -> None:
    """Move each in-flight partition whose run has ended to that run's outcome; a failed run
    that its job's retry policy retried is followed to the retry (created in the transaction
    that recorded the failure, so it exists by the time the failure is seen)."""
    launched = session.scalars(
        select(BackfillPartitionRow).where(
            BackfillPartitionRow.backfill_id == row.id,
            BackfillPartitionRow.status == P.LAUNCHED,
        )
    ).all()
    if not launched:
        return
    status_of = _run_statuses(session, [p.run_id for p in launched if p.run_id])
    for _ in range(MAX_RETRY_HOPS):
        failed = [p for p in launched if p.run_id and status_of.get(p.run_id) == RunStatus.FAILURE]
        retries = _retries_of(session, [p.run_id for p in failed if p.run_id])
        if not retries:
            break
        for part in failed:
            if part.run_id in retries:
                part.run_id, retry_status = retries[part.run_id]
                status_of[part.run_id] = retry_status
                part.updated_at = now
    for part in launched:
        ended = status_of.get(part.run_id) if part.run_id else None
        if ended is None:
            part.error = f"its run {part.run_id} no longer exists"
            _move(row, part, P.FAILURE, now)
        elif ended in _RUN_OUTCOME:
            _move(row, part, _RUN_OUTCOME[ended], now)


def chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _run_statuses(session: Session, run_ids: Sequence[str]) -> dict[str, RunStatus]:
    found: dict[str, RunStatus] = {}
    for chunk in chunks(run_ids):
        query = select(RunRow.id, RunRow.status).where(RunRow.id.in_(chunk))
        found.update({run_id: status for run_id, status in session.execute(query)})
    return found


def _retries_of(session: Session, run_ids: Sequence[str]) -> dict[str, tuple[str, RunStatus]]:
    """Failed run ID -> (its retry's ID, status), for those that have one."""
    found: dict[str, tuple[str, RunStatus]] = {}
    for chunk in chunks(run_ids):
        for parent, child, status in session.execute(
            select(RunRow.parent_run_id, RunRow.id, RunRow.status).where(
                RunRow.parent_run_id.in_(chunk)
            )
        ):
            if parent is not None:
                found[parent] = (child, status)
    return found


def _launch(
    session: Session, dep: DeploymentRow, row: BackfillRow, now: datetime
) -> datetime | None:
    """Create runs for the next PENDING partitions, as many as max_in_flight and the pace
    allow, each marked LAUNCHED in this transaction. Returns when the pace allows the next."""
    free = row.max_in_flight - row.launched
    if free <= 0:
        return None
    budget, interval = free, None
    if row.runs_per_minute:
        interval = timedelta(seconds=60.0 / row.runs_per_minute)
        slot = row.next_launch_at
        if slot is None or slot < now - PACE_SLACK:
            slot = now
        if slot > now:
            return slot
        budget = min(budget, int((now - slot) / interval) + 1)
        row.next_launch_at = slot
    try:
        job = location_snapshot(session, locations.find(session, dep, row.code_location)).job(
            row.job
        )
    except (NotFound, Conflict) as exc:
        _wait(row, exc.detail, now)
        return None
    if job is None or job.partitions is None:
        # Its code changed under it (or is being redeployed): nothing launches until the job
        # is back, partitioned; cancel the backfill to give up.
        what = "defined" if job is None else "partitioned"
        _wait(
            row, f"job {row.job!r} is no longer {what} in code location {row.code_location!r}", now
        )
        return None
    kind = job.partitions.location_kind
    pending = session.scalars(
        select(BackfillPartitionRow)
        .where(BackfillPartitionRow.backfill_id == row.id, BackfillPartitionRow.status == P.PENDING)
        .order_by(BackfillPartitionRow.position)
        .limit(budget)
    ).all()
    made = 0
    for part in pending:
        try:
            body = run_body(row, kind, part.partition_key, part.attempt, part.position)
            with session.begin_nested():  # a refused run leaves nothing behind
                run, _ = idempotency.create_once(session, dep, body)
        except (Conflict, NotFound) as exc:
            # Its location is in ERROR, or was removed: nothing launches now; tried again
            # next pass (cancel the backfill to give up).
            _wait(row, exc.detail, now)
            break
        except ApiError as exc:  # this partition's run is refused (its key, its config)
            part.error = exc.detail
            _move(row, part, P.FAILURE, now)
        except ValidationError as exc:
            part.error = first_error(exc)
            _move(row, part, P.FAILURE, now)
        else:
            part.run_id = run.id
            part.error = None
            _move(row, part, P.LAUNCHED, now)
            row.message = None
        made += 1
    if interval is not None and row.next_launch_at is not None:
        row.next_launch_at += interval * made
        if row.pending and row.launched < row.max_in_flight:
            return max(row.next_launch_at, now)
    return None


def _wait(row: BackfillRow, reason: str, now: datetime) -> None:
    message = f"waiting to launch: {reason}"
    if row.message != message:
        row.message = message
        row.updated_at = now
