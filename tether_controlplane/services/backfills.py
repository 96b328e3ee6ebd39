"""Backfills: a set of partitions of a job, launched as one run per partition by a
control-plane loop with row locks.

Why a loop here and not a Temporal workflow: the control plane already decides what runs and
when (the run queue, admission under the deployment's concurrency limit, the scheduler), and a
backfill is that decision repeated per partition; its state (a row per partition) must be
queryable by pages anyway; and the agent only runs what it is given, so a backfill goes on while
no agent is connected.

Its parts: backfill_create.py (``create``: the job and the partitions resolved to one row
each, inserted in one statement), backfill_pass.py (``run_due``, the loop's pass in
api/app.py: each active backfill in its own write transaction with its row locked, following
its runs and launching the next partitions, each run created in the transaction that marks its
partition LAUNCHED, so a crash or restart neither loses nor doubles one), and here: cancel,
resume and the reads. Counts by status live on the backfill's row, so its page never counts
partition rows; partition pages go by position (keyset).
"""

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tether_api.backfills import (
    Backfill,
    BackfillCounts,
    BackfillPage,
    BackfillPartition,
    BackfillPartitionPage,
    BackfillPartitionStatus,
    BackfillStatus,
)
from tether_api.enums import TERMINAL_RUN_STATUSES
from tether_controlplane.errors import Conflict, Invalid, NotFound
from tether_controlplane.services import requests, runs
from tether_controlplane.services.backfill_create import create as create
from tether_controlplane.services.backfill_pass import P, chunks, end, follow_runs
from tether_controlplane.services.backfill_pass import advance as advance
from tether_controlplane.services.backfill_pass import in_flight_run_pks as in_flight_run_pks
from tether_controlplane.services.backfill_pass import run_due as run_due
from tether_controlplane.tables import DeploymentRow, RunRow, utcnow
from tether_controlplane.tables_backfills import BackfillPartitionRow, BackfillRow

MAX_PAGE = 1000

# --- cancel, resume -----------------------------------------------------------------------


def cancel(session: Session, dep: DeploymentRow, row: BackfillRow, terminate: bool) -> BackfillRow:
    """No new runs: PENDING partitions CANCELED at once; with ``terminate``, its runs in
    flight are terminated too (else they run to their end). The backfill is CANCELING until
    they have ended. ``row`` is locked (``find(..., lock=True)``)."""
    if row.status in (BackfillStatus.COMPLETED, BackfillStatus.COMPLETED_WITH_FAILURES):
        raise Conflict(
            f"backfill {row.public_id} already ended {row.status.value}; nothing to cancel"
        )
    now = utcnow()
    if row.pending:
        session.execute(
            update(BackfillPartitionRow)
            .where(
                BackfillPartitionRow.backfill_id == row.id,
                BackfillPartitionRow.status == P.PENDING,
            )
            .values(status=P.CANCELED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        row.canceled += row.pending
        row.pending = 0
    if terminate and row.launched:
        in_flight = session.scalars(
            select(BackfillPartitionRow.run_id).where(
                BackfillPartitionRow.backfill_id == row.id,
                BackfillPartitionRow.status == P.LAUNCHED,
            )
        ).all()
        reason = f"terminated: its backfill {row.public_id} was canceled"
        # Locked in one statement, in pk order, as any writer of runs would lock them.
        for chunk in chunks([run_id for run_id in in_flight if run_id is not None]):
            going = session.scalars(
                select(RunRow)
                .where(RunRow.id.in_(chunk), RunRow.status.not_in(TERMINAL_RUN_STATUSES))
                .order_by(RunRow.pk)
                .with_for_update()
            ).all()
            for run in going:
                runs.terminate(session, dep, run, reason)
        follow_runs(session, row, now)  # runs still queued were CANCELED at once
    if row.status != BackfillStatus.CANCELED:
        row.status = BackfillStatus.CANCELING
        if row.launched == 0:
            end(row, BackfillStatus.CANCELED, now)
    row.updated_at = now
    row.message = None
    return row


def resume(session: Session, dep: DeploymentRow, row: BackfillRow) -> BackfillRow:
    """FAILURE and CANCELED partitions back to PENDING, each with its attempt plus one (a new
    run, with a new idempotency key); nothing else is relaunched. ``row`` is locked."""
    again = row.failed + row.canceled
    if again == 0:
        raise Conflict(
            f"backfill {row.public_id} has no failed or canceled partition to retry "
            f"({row.status.value})"
        )
    now = utcnow()
    session.execute(
        update(BackfillPartitionRow)
        .where(
            BackfillPartitionRow.backfill_id == row.id,
            BackfillPartitionRow.status.in_([P.FAILURE, P.CANCELED]),
        )
        .values(
            status=P.PENDING,
            attempt=BackfillPartitionRow.attempt + 1,
            run_id=None,
            error=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    row.pending += again
    row.failed = row.canceled = 0
    row.status = BackfillStatus.RUNNING
    row.ended_at = None
    row.message = None
    row.next_launch_at = None
    row.updated_at = now
    return row


# --- reading ------------------------------------------------------------------------------


def find(session: Session, dep: DeploymentRow, backfill_id: str, lock: bool = False) -> BackfillRow:
    query = select(BackfillRow).where(BackfillRow.public_id == backfill_id)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None or row.deployment_id != dep.id:
        raise NotFound(
            f"backfill {backfill_id!r} not found in deployment {dep.name!r} "
            "(`tether backfill list` shows its backfills)"
        )
    return row


def to_model(dep: DeploymentRow, row: BackfillRow) -> Backfill:
    return Backfill(
        id=row.public_id,
        deployment=dep.name,
        code_location=row.code_location,
        job=row.job,
        assets=row.assets,
        selection=row.selection,
        status=row.status,
        message=row.message,
        partition_count=row.partition_count,
        first_partition=row.first_partition,
        last_partition=row.last_partition,
        counts=BackfillCounts(
            pending=row.pending,
            launched=row.launched,
            success=row.succeeded,
            failure=row.failed,
            canceled=row.canceled,
        ),
        run_config=row.run_config,
        tags=row.tags,
        max_in_flight=row.max_in_flight,
        runs_per_minute=row.runs_per_minute,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
    )


def list_page(
    session: Session,
    dep: DeploymentRow,
    statuses: Sequence[BackfillStatus],
    limit: int,
    cursor: str | None,
) -> BackfillPage:
    """Newest first, a page at a time by id (never OFFSET)."""
    query = select(BackfillRow).where(BackfillRow.deployment_id == dep.id)
    if statuses:
        query = query.where(BackfillRow.status.in_(statuses))
    if cursor is not None:
        before = requests.parse_id(cursor)
        if before is None:
            raise Invalid(
                f"invalid cursor {cursor!r}: pass the next_cursor of a previous page",
                loc=("query", "cursor"),
            )
        query = query.where(BackfillRow.id < before)
    rows = session.scalars(query.order_by(BackfillRow.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return BackfillPage(
        backfills=[to_model(dep, r) for r in rows],
        next_cursor=str(rows[-1].id) if more and rows else None,
    )


def partitions_page(
    session: Session,
    row: BackfillRow,
    statuses: Sequence[BackfillPartitionStatus],
    after: int | None,
    limit: int,
) -> BackfillPartitionPage:
    """Its partitions in position order, a page at a time by position (keyset)."""
    query = select(BackfillPartitionRow).where(BackfillPartitionRow.backfill_id == row.id)
    if statuses:
        query = query.where(BackfillPartitionRow.status.in_(statuses))
    if after is not None:
        query = query.where(BackfillPartitionRow.position > after)
    limit = min(limit, MAX_PAGE)
    found = session.scalars(query.order_by(BackfillPartitionRow.position).limit(limit + 1)).all()
    more = len(found) > limit
    found = found[:limit]
    return BackfillPartitionPage(
        partitions=[
            BackfillPartition(
                position=p.position,
                key=p.partition_key,
                status=p.status,
                attempt=p.attempt,
                run_id=p.run_id,
                error=p.error,
                updated_at=p.updated_at,
            )
            for p in found
        ],
        next_cursor=str(found[-1].position) if more and found else None,
    )
