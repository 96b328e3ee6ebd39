"""Forgetting what only piles up: finished agent requests and skipped sensor ticks.

A sensor evaluated every 30 s writes a request and a tick 2,880 times a day, and most of its
ticks are SKIPPED ("nothing new"). Those are deleted after their retention; ticks that
created runs or failed, and everything else, are kept; the audit log above all (its table
refuses deletes). Deletes go in batches so that a pass
never holds a long transaction.
"""

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tether_api.enums import RequestStatus, TickStatus
from tether_controlplane.tables import RequestRow, SensorTickRow

BATCH = 1000


def purge(session: Session, now: datetime, request_hours: float, skipped_tick_days: float) -> int:
    """Delete up to BATCH finished requests and BATCH skipped sensor ticks past their
    retention; return how many rows went."""
    old_requests = select(RequestRow.id).where(
        RequestRow.status.in_([RequestStatus.DONE, RequestStatus.FAILED]),
        RequestRow.finished_at < now - timedelta(hours=request_hours),
    )
    old_ticks = select(SensorTickRow.id).where(
        SensorTickRow.status == TickStatus.SKIPPED,
        SensorTickRow.tick_time < now - timedelta(days=skipped_tick_days),
    )
    gone = 0
    for table, query in ((RequestRow, old_requests), (SensorTickRow, old_ticks)):
        ids = list(session.scalars(query.limit(BATCH)))
        if ids:
            session.execute(delete(table).where(table.id.in_(ids)))
            gone += len(ids)
    return gone
