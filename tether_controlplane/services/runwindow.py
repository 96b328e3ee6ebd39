"""A run list's created-at window as a range of run pks, found through the (deployment, pk)
index: with a million runs, a time filter must not read every run newer (or older) than
its window, and ``created_at`` has no index of its own.

A run's pk and its ``created_at`` grow together (both are set as the run is inserted), so
the first run created at or after a time is found by bisecting the pks, one index seek a
step (about 20 for a million runs). Concurrent inserts (PostgreSQL, replicas with slightly
different clocks) can put a few runs out of step: the pk range is widened by ``SLACK`` on
each side, and the caller still filters by ``created_at`` exactly, so a run out of step by
less than that is neither lost nor wrongly shown."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether_controlplane.tables import RunRow

SLACK = timedelta(minutes=10)
# The times a window may start or end at: a bound outside them (year 1 at +17:00 is in year 0
# in UTC) is moved to them, so that neither the SLACK nor UTC overflows a datetime.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def bounded(at: datetime | None) -> datetime | None:
    """``at`` in UTC, moved into [EARLIEST, LATEST]; None stays None."""
    if at is None:
        return None
    try:
        utc = at.astimezone(UTC)
    except OverflowError:
        return EARLIEST if at.year < 5000 else LATEST
    return min(max(utc, EARLIEST), LATEST)


def pk_range(
    session: Session,
    deployment_id: int,
    created_after: datetime | None,
    created_before: datetime | None,
) -> tuple[int | None, int | None]:
    """``(low, high)``: the deployment's runs created in the window have ``low <= pk <
    high``; None is no bound on that side."""
    low = high = None
    if created_after is not None:
        first = _first_pk_from(session, deployment_id, created_after - SLACK)
        # No run that late: a bound no run reaches.
        low = first if first is not None else _after_last(session, deployment_id)
    if created_before is not None:
        high = _first_pk_from(session, deployment_id, created_before + SLACK)
    return low, high


def _row_from(session: Session, deployment_id: int, pk: int) -> tuple[int, datetime] | None:
    """The deployment's first run with a pk of at least ``pk``: one index seek."""
    found = session.execute(
        select(RunRow.pk, RunRow.created_at)
        .where(RunRow.deployment_id == deployment_id, RunRow.pk >= pk)
        .order_by(RunRow.pk)
        .limit(1)
    ).first()
    return (found[0], found[1]) if found else None


def _after_last(session: Session, deployment_id: int) -> int:
    last = session.scalar(
        select(RunRow.pk)
        .where(RunRow.deployment_id == deployment_id)
        .order_by(RunRow.pk.desc())
        .limit(1)
    )
    return (last or 0) + 1


def _first_pk_from(session: Session, deployment_id: int, at: datetime) -> int | None:
    """The pk of the deployment's first run created at or after ``at``, or None."""
    first = _row_from(session, deployment_id, 0)
    if first is None:
        return None
    if first[1] >= at:
        return first[0]
    low, high = first[0] + 1, _after_last(session, deployment_id)
    # The smallest pk value whose next run is created at or after ``at``; ``high`` (past
    # the last run) stands for "none".
    while low < high:
        middle = (low + high) // 2
        row = _row_from(session, deployment_id, middle)
        if row is None or row[1] >= at:  # no run from there on counts as "late enough"
            high = middle
        else:
            low = middle + 1
    row = _row_from(session, deployment_id, low)
    return row[0] if row is not None else None
