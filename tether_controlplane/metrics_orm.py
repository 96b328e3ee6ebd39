"""What the control plane's transactions do, counted once they commit: runs created and
finished, admissions and their wait, schedule tick lag, alert deliveries, agent
requests finished, events ingested.

Read from the ORM's own change tracking (a flush's new and changed rows), so no service has
to remember to count: whatever path changes a run's status, the change is seen. A flush
notes what changed in ``session.info``; the commit counts it, a rollback drops it. Event
batches are stored with plain SQL (services/events.py), so they are counted from the
statement, when it runs."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, event, inspect, select
from sqlalchemy.orm import Session, UOWTransaction

from tether_api.alerts import DeliveryStatus
from tether_api.enums import TERMINAL_RUN_STATUSES, RequestStatus, RunStatus
from tether_controlplane import metrics
from tether_controlplane.tables import (
    AlertRow,
    DeploymentRow,
    Organization,
    RequestRow,
    RunRow,
    ScheduleRow,
    ScheduleTickRow,
    utcnow,
)

NOTED = "tether.metrics"
# (organization, deployment) by deployment id: names never change once made.
_names: dict[int, tuple[str, str]] = {}
_installed = False


@dataclass(frozen=True)
class _Noted:
    figure: str
    deployment_id: int
    label: str = ""
    value: float = 1.0


def install() -> None:
    """Listen to every session and engine of this process (idempotent)."""
    global _installed
    if _installed:
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_rollback", _after_rollback)
    event.listen(Engine, "after_cursor_execute", _after_execute)
    _installed = True


def _names_of(session: Session, deployment_id: int) -> tuple[str, str]:
    found = _names.get(deployment_id)
    if found is None:
        row = (
            session.connection()
            .execute(
                select(Organization.name, DeploymentRow.name)
                .join(DeploymentRow, DeploymentRow.organization_id == Organization.id)
                .where(DeploymentRow.id == deployment_id)
            )
            .one_or_none()
        )
        found = (row[0], row[1]) if row else ("", str(deployment_id))
        _names[deployment_id] = found
    return found


def _change(obj: Any, attribute: str) -> tuple[Any, Any] | None:
    """(old, new) of an attribute this flush changed; None when it did not change."""
    history = inspect(obj).attrs[attribute].history
    if not history.added:
        return None
    old = history.deleted[0] if history.deleted else None
    new = history.added[0]
    return None if old == new else (old, new)


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max((later - earlier).total_seconds(), 0.0)


def _deployment_of(session: Session, table: type[ScheduleRow], row_id: int) -> int:
    # The evaluation locked and loaded it in this session: no query, as a rule.
    held = session.identity_map.get(inspect(table).identity_key_from_primary_key((row_id,)))
    if held is not None:
        return int(held.deployment_id)
    found = session.connection().execute(select(table.deployment_id).where(table.id == row_id))
    return int(found.scalar_one())


def _noted_new(session: Session, obj: Any) -> _Noted | None:
    if isinstance(obj, RunRow):
        return _Noted("created", obj.deployment_id)
    if isinstance(obj, ScheduleTickRow):
        lag = _seconds(obj.created_at or utcnow(), obj.tick_time)
        if lag is None:
            return None
        return _Noted(
            "schedule_lag", _deployment_of(session, ScheduleRow, obj.schedule_id), "", lag
        )
    return None


def _noted_changed(obj: Any) -> _Noted | None:
    if isinstance(obj, RunRow):
        change = _change(obj, "status")
        if change is None:
            return None
        old, new = change
        if new in TERMINAL_RUN_STATUSES:
            return _Noted("finished", obj.deployment_id, str(new.value))
        if old == RunStatus.QUEUED and new == RunStatus.STARTING:
            wait = _seconds(obj.admitted_at, obj.created_at)
            return _Noted("admitted", obj.deployment_id, "", wait or 0.0)
        return None
    if isinstance(obj, AlertRow):
        change = _change(obj, "status")
        if change is not None and change[1] == DeliveryStatus.DELIVERED:
            return _Noted("alert", obj.deployment_id, "delivered")
        if change is not None and change[1] == DeliveryStatus.FAILED:
            return _Noted("alert", obj.deployment_id, "failed")
        error = _change(obj, "last_error")
        if error is not None and error[1] is not None and obj.status == DeliveryStatus.PENDING:
            return _Noted("alert", obj.deployment_id, "retry")
        return None
    if isinstance(obj, RequestRow):
        change = _change(obj, "status")
        if change is not None and change[1] in (RequestStatus.DONE, RequestStatus.FAILED):
            return _Noted("request", obj.deployment_id, str(change[1].value).lower())
    return None


def _after_flush(session: Session, _: UOWTransaction) -> None:
    noted: list[_Noted] = session.info.setdefault(NOTED, [])
    for obj in session.new:
        found = _noted_new(session, obj)
        if found is not None:
            noted.append(found)
    for obj in session.dirty:
        found = _noted_changed(obj)
        if found is not None:
            noted.append(found)
    for item in noted:  # named now: after the commit, the session's connection is gone
        if item.deployment_id not in _names:
            _names_of(session, item.deployment_id)


def _after_commit(session: Session) -> None:
    noted: list[_Noted] | None = session.info.pop(NOTED, None)
    if not noted:
        return
    for item in noted:
        names = _names.get(item.deployment_id, ("", str(item.deployment_id)))
        if item.figure == "created":
            metrics.RUNS_CREATED.labels(*names).inc()
        elif item.figure == "finished":
            metrics.RUNS_FINISHED.labels(*names, item.label).inc()
        elif item.figure == "admitted":
            metrics.RUN_ADMISSION.labels(*names).observe(item.value)
        elif item.figure == "schedule_lag":
            metrics.SCHEDULE_TICK_LAG.labels(*names).observe(item.value)
        elif item.figure == "alert":
            metrics.ALERT_DELIVERIES.labels(*names, item.label).inc()
        elif item.figure == "request":
            metrics.AGENT_REQUESTS_FINISHED.labels(*names, item.label).inc()


def _after_rollback(session: Session) -> None:
    session.info.pop(NOTED, None)


def _after_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    # services/events.py's batch insert: one row per stored event (duplicates were dropped
    # before it; ON CONFLICT drops only a concurrent delivery's).
    if statement.startswith("INSERT INTO run_events"):
        count = len(parameters) if executemany else 1
        metrics.EVENTS_INGESTED.inc(count)
        metrics.EVENT_BATCH_SIZE.observe(count)
