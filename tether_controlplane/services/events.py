"""Run events: idempotent batch ingestion on (run, seq), listing, worker heartbeats."""

from typing import Any

from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tether_api.enums import FINAL_EVENT_STATUS, EventType, RunStatus
from tether_api.models import EventBatchResult, RunEvent, WorkerHeartbeatResult
from tether_controlplane.db import wake_after_commit
from tether_controlplane.notify import run_events_key
from tether_controlplane.services import runs
from tether_controlplane.tables import DeploymentRow, RunEventRow, RunRow, utcnow


def _insert_ignoring_duplicates(session: Session) -> Insert:
    # Two deliveries of one batch racing each other: the unique (run_pk, seq) decides.
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(RunEventRow).on_conflict_do_nothing()
    return sqlite.insert(RunEventRow).on_conflict_do_nothing()


def ingest(session: Session, run: RunRow, events: list[RunEvent]) -> EventBatchResult:
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
    for event in events:
        if event.seq not in stored:
            fresh.setdefault(event.seq, event)
    rows: list[dict[str, Any]] = [
        {
            "run_pk": run.pk,
            "seq": e.seq,
            "type": e.type.value,
            "timestamp": e.timestamp,
            "step": e.step,
            "level": e.level,
            "message": e.message,
            "data": e.data,
        }
        for e in fresh.values()
    ]
    if rows:
        session.execute(_insert_ignoring_duplicates(session), rows)
        wake_after_commit(session, run_events_key(run.pk))
    run.last_heartbeat_at = utcnow()
    dep = session.get(DeploymentRow, run.deployment_id)
    assert dep is not None
    for event in sorted(fresh.values(), key=lambda e: e.seq):
        if event.type == EventType.RUN_START:
            runs.transition(session, dep, run, RunStatus.STARTED)
        elif event.type in FINAL_EVENT_STATUS:
            runs.transition(
                session, dep, run, FINAL_EVENT_STATUS[event.type], event.message or None
            )
    return EventBatchResult(
        accepted=len(rows), duplicates=len(events) - len(rows), run_status=RunStatus(run.status)
    )


def heartbeat(session: Session, run: RunRow) -> WorkerHeartbeatResult:
    run.last_heartbeat_at = utcnow()
    return WorkerHeartbeatResult(
        run_status=RunStatus(run.status), cancel_requested=run.status == RunStatus.CANCELING
    )


def list_after(session: Session, run: RunRow, after: int, limit: int) -> list[RunEvent]:
    rows = session.scalars(
        select(RunEventRow)
        .where(RunEventRow.run_pk == run.pk, RunEventRow.seq > after)
        .order_by(RunEventRow.seq)
        .limit(limit)
    )
    return [
        RunEvent(
            seq=r.seq,
            type=EventType(r.type),
            timestamp=r.timestamp,
            step=r.step,
            level=r.level,
            message=r.message,
            data=r.data,
        )
        for r in rows
    ]
