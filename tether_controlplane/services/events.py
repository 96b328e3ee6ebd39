"""Run events: idempotent batch ingestion on (run, seq), listing, worker heartbeats."""

import functools
import json
from collections.abc import Sequence
from datetime import UTC

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether_api.enums import FINAL_EVENT_STATUS, EventType, FailureCause, RunStatus
from tether_api.run_worker_api import EventBatchResult, RunEvent, WorkerHeartbeatResult
from tether_controlplane.db import wake_after_commit
from tether_controlplane.services import asset_ingest, logs, runs
from tether_controlplane.tables import DeploymentRow, RunEventRow, RunRow, utcnow
from tether_controlplane.wakeups import run_events_key

# Plain SQL that both SQLite (3.24+) and PostgreSQL accept, run as the driver's own
# executemany with values encoded here (naive UTC, JSON text): SQLAlchemy's per-row parameter
# handling costs more than the insert itself. ON CONFLICT covers two deliveries of one batch
# racing each other.
_COLUMNS = ("run_pk", "seq", "type", "timestamp", "step", "level", "message", "data")


@functools.cache
def _insert_sql(paramstyle: str) -> str:
    mark = "?" if paramstyle == "qmark" else "%s"
    return (
        f"INSERT INTO run_events ({', '.join(_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(_COLUMNS))}) ON CONFLICT (run_pk, seq) DO NOTHING"
    )


def ingest(
    session: Session, dep: DeploymentRow, run: RunRow, events: list[RunEvent]
) -> EventBatchResult:
    seqs = [e.seq for e in events]
    stored = set(
        session.scalars(
            select(RunEventRow.seq).where(
                RunEventRow.run_pk == run.pk,
                RunEventRow.seq >= min(seqs),
                RunEventRow.seq <= max(seqs),
            )
        )
    )
    fresh: dict[int, RunEvent] = {}
    # What the run's log settings let the control plane keep (see services/logs.py).
    for event in logs.enforce_events(logs.run_settings(session, dep, run), events):
        if event.seq not in stored:
            fresh.setdefault(event.seq, event)
    rows = [
        (
            run.pk,
            e.seq,
            e.type.value,
            e.timestamp.astimezone(UTC).replace(tzinfo=None),
            e.step,
            e.level,
            e.message,
            json.dumps(e.data) if e.data else "{}",
        )
        for e in fresh.values()
    ]
    if rows:
        connection = session.connection()
        connection.exec_driver_sql(_insert_sql(connection.dialect.paramstyle), rows)
        wake_after_commit(session, run_events_key(run.pk))
    run.last_heartbeat_at = utcnow()
    ordered = sorted(fresh.values(), key=lambda e: e.seq)
    # The asset catalog, in this transaction: only for the events it keeps (fresh ones only,
    # so a batch delivered twice counts once); a batch of log lines pays a set lookup each.
    catalog = [e for e in ordered if asset_ingest.wants(e)]
    if catalog:
        asset_ingest.record(session, dep, run, catalog)
    for event in ordered:
        if event.type == EventType.RUN_START:
            runs.transition(session, dep, run, RunStatus.STARTED)
        elif event.type in FINAL_EVENT_STATUS:
            runs.transition(
                session,
                dep,
                run,
                FINAL_EVENT_STATUS[event.type],
                event.message or None,
                cause=FailureCause.RUN_FAILED,
            )
    return EventBatchResult(
        accepted=len(rows), duplicates=len(events) - len(rows), run_status=run.status
    )


def heartbeat(session: Session, run: RunRow) -> WorkerHeartbeatResult:
    run.last_heartbeat_at = utcnow()
    # A worker still running for a run that ended without its final event must stop: nobody
    # else may be able to reach it (its agent's host is lost). One that sent its final event
    # is ending anyway and is left to flush.
    stop = run.status == RunStatus.CANCELING or (
        run.status in (RunStatus.CANCELED, RunStatus.FAILURE) and not has_final_event(session, run)
    )
    return WorkerHeartbeatResult(run_status=run.status, cancel_requested=stop)


def list_after(
    session: Session,
    run: RunRow,
    after: int,
    limit: int,
    types: Sequence[EventType] = (),
) -> list[RunEvent]:
    """Events with seq > ``after``, in order; only those of ``types`` when given (the
    (run_pk, type) index reads them without the run's log lines)."""
    query = select(RunEventRow).where(RunEventRow.run_pk == run.pk, RunEventRow.seq > after)
    if types:
        query = query.where(RunEventRow.type.in_(list(types)))
    rows = session.scalars(query.order_by(RunEventRow.seq).limit(limit))
    return [_to_model(r) for r in rows]


# What a step summary reads (tether_api.steps): a run's logs can outnumber these a thousandfold.
STEP_EVENT_TYPES = [t for t in EventType if t.startswith("STEP_")]


def step_events(session: Session, run: RunRow) -> list[RunEvent]:
    """The run's STEP_* events, in order."""
    rows = session.scalars(
        select(RunEventRow)
        .where(RunEventRow.run_pk == run.pk, RunEventRow.type.in_(STEP_EVENT_TYPES))
        .order_by(RunEventRow.seq)
    )
    return [_to_model(r) for r in rows]


def _to_model(r: RunEventRow) -> RunEvent:
    return RunEvent(
        seq=r.seq,
        type=r.type,
        timestamp=r.timestamp,
        step=r.step,
        level=r.level,
        message=r.message,
        data=r.data,
    )


def has_final_event(session: Session, run: RunRow) -> bool:
    final_types = list(FINAL_EVENT_STATUS)
    return (
        session.scalar(
            select(RunEventRow.id)
            .where(RunEventRow.run_pk == run.pk, RunEventRow.type.in_(final_types))
            .limit(1)
        )
        is not None
    )
