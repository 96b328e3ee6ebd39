"""Code locations: create/update, redeploy, remove, and status reports from agents."""

import threading
from collections import OrderedDict
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tether_api.agent_api import CodeLocationStatusReport
from tether_api.agent_requests import RemoveCodeLocationPayload, SyncCodeLocationPayload
from tether_api.enums import CodeLocationStatus
from tether_api.locations import CodeLocation, CodeLocationError, CodeLocationSpec, StatusChange
from tether_api.names import DEFAULT_AGENT_QUEUE
from tether_api.snapshot import DefinitionsSnapshot
from tether_controlplane.errors import Conflict, NotFound
from tether_controlplane.services import agents, alerts, logs, requests, schedules, sensors
from tether_controlplane.tables import (
    AgentRow,
    CodeLocationRow,
    CodeLocationStatusRow,
    DeploymentRow,
    utcnow,
)

HISTORY_IN_VIEW = 50


def _sync_key(name: str) -> str:
    return f"sync:{name}"


def _remove_key(name: str) -> str:
    return f"remove:{name}"


def find(
    session: Session, dep: DeploymentRow, name: str, include_removed: bool = False
) -> CodeLocationRow:
    row = session.scalar(
        select(CodeLocationRow).where(
            CodeLocationRow.deployment_id == dep.id, CodeLocationRow.name == name
        )
    )
    if row is None or (row.removed and not include_removed):
        raise NotFound(
            f"code location {name!r} not found in deployment {dep.name!r}; "
            f"deploy it with `tether deploy {name} ...`"
        )
    return row


def _record(
    session: Session, row: CodeLocationRow, status: CodeLocationStatus, message: str | None
) -> CodeLocationStatusRow:
    now = utcnow()
    row.status = status
    row.updated_at = now
    change = CodeLocationStatusRow(code_location_id=row.id, status=status, message=message, at=now)
    session.add(change)
    session.flush()
    return change


def queue_of(row: CodeLocationRow | None) -> str:
    """The agent queue serving the location."""
    queue = row.spec.get("agent_queue") if row is not None else None
    return queue or DEFAULT_AGENT_QUEUE


def queue_of_name(session: Session, dep: DeploymentRow, name: str) -> str:
    row = session.scalar(
        select(CodeLocationRow).where(
            CodeLocationRow.deployment_id == dep.id, CodeLocationRow.name == name
        )
    )
    return queue_of(row)


def _enqueue_sync(session: Session, dep: DeploymentRow, row: CodeLocationRow) -> None:
    requests.supersede(session, dep.id, _remove_key(row.name), "superseded by a new deploy")
    payload = SyncCodeLocationPayload(code_location=row.name, generation=row.generation)
    requests.enqueue(
        session,
        dep.id,
        payload,
        _sync_key(row.name),
        queue=queue_of(row),
    )


def put(
    session: Session, dep: DeploymentRow, name: str, spec: CodeLocationSpec
) -> tuple[CodeLocationRow, bool]:
    """Create or update. The same spec again is a no-op: nothing is enqueued."""
    spec_json = spec.model_dump(mode="json")
    row = session.scalar(
        select(CodeLocationRow).where(
            CodeLocationRow.deployment_id == dep.id, CodeLocationRow.name == name
        )
    )
    now = utcnow()
    # Compared as read back: a spec stored before a field existed equals one giving its default.
    if (
        row is not None
        and not row.removed
        and CodeLocationSpec.model_validate(row.spec).model_dump(mode="json") == spec_json
    ):
        return row, False
    if (
        row is not None
        and not row.removed
        and queue_of(row) != (spec.agent_queue or DEFAULT_AGENT_QUEUE)
    ):
        # Its workflow and server live on the old queue's agents: moving them is a removal
        # and a new deploy, which the user should see happen.
        raise Conflict(
            f"code location {name} is served by agent queue '{queue_of(row)}'; a deployed "
            f"location cannot move to '{spec.agent_queue or DEFAULT_AGENT_QUEUE}': remove "
            f"it (`tether locations remove {name}`), then deploy it with the new agent_queue "
            f"(or deploy it with --agent-queue {queue_of(row)})"
        )
    if row is None:
        row = CodeLocationRow(
            deployment_id=dep.id,
            name=name,
            spec=spec_json,
            status=CodeLocationStatus.PENDING,
            generation=1,
            created_at=now,
            updated_at=now,
            deployed_at=now,
        )
        session.add(row)
        session.flush()
        _record(session, row, CodeLocationStatus.PENDING, "created")
    else:
        revived = row.removed
        row.spec = spec_json
        row.generation += 1
        row.removed = False
        row.updated_at = now
        row.deployed_at = now
        if revived:
            row.error = None
            _record(session, row, CodeLocationStatus.PENDING, "deployed again after removal")
    _enqueue_sync(session, dep, row)
    return row, True


def redeploy(session: Session, dep: DeploymentRow, name: str) -> CodeLocationRow:
    row = find(session, dep, name)
    row.generation += 1
    row.updated_at = row.deployed_at = utcnow()
    _enqueue_sync(session, dep, row)
    return row


def new_generation(
    session: Session, dep: DeploymentRow, name: str, reason: str, follows: int | None = None
) -> tuple[CodeLocationRow, bool]:
    """A redeploy the agent was asked for directly (a Temporal signal or update): a new
    generation, visible like any other, but no SYNC request, since the location's workflow is
    already deploying it.

    Idempotent with ``follows`` (the generation the agent's workflow knows): the generation
    goes up only from that one. A retry whose first answer was lost, or a call that a deploy
    overtook, finds another generation and gets the location as it is. An agent of an earlier
    version sends no ``follows``: each of its calls records one, as before. The flag: whether
    this call recorded one."""
    row = find(session, dep, name)
    if follows is not None and row.generation != follows:
        return row, False
    row.generation += 1
    row.deployed_at = utcnow()
    _record(session, row, row.status, reason)
    return row, True


def remove(session: Session, dep: DeploymentRow, name: str) -> CodeLocationRow:
    """Enqueue the removal; idempotent for a location already being removed."""
    row = find(session, dep, name, include_removed=True)
    if not row.removed:
        row.removed = True
        row.updated_at = utcnow()
    schedules.SCHEDULES.forget_location(session, dep, name)
    sensors.SENSORS.forget_location(session, dep, name)
    requests.supersede(session, dep.id, _sync_key(name), "superseded by removal")
    requests.enqueue(
        session,
        dep.id,
        RemoveCodeLocationPayload(code_location=name, generation=row.generation),
        _remove_key(name),
        queue=queue_of(row),
    )
    return row


def report(
    session: Session, dep: DeploymentRow, name: str, report: CodeLocationStatusReport
) -> CodeLocationRow:
    """Apply an agent's status report. Reports about an older generation are ignored, so a
    slow report from a replaced server never overwrites the new one's state."""
    row = find(session, dep, name, include_removed=True)
    if report.generation is not None and report.generation < row.generation:
        return row
    # What the location's log settings let the control plane keep (see services/logs.py).
    settings = logs.location_settings(dep, row)
    report = report.model_copy(
        update={
            "message": logs.enforce_location_message(settings, report.message),
            "log_tail": logs.enforce_tail(settings, report.log_tail),
        }
    )
    if report.status == CodeLocationStatus.ERROR:
        row.error = CodeLocationError(
            message=report.message or "the code server failed", log_tail=report.log_tail
        ).model_dump()
    elif report.status in (CodeLocationStatus.RUNNING, CodeLocationStatus.STOPPED):
        row.error = None
    if report.snapshot is not None:
        row.snapshot = report.snapshot.model_dump(mode="json")
        row.snapshot_updated_at = utcnow()
        if not row.removed:
            schedules.sync(session, dep, name, report.snapshot)
            sensors.sync(session, dep, name, report.snapshot)
    last = session.scalar(
        select(CodeLocationStatusRow)
        .where(CodeLocationStatusRow.code_location_id == row.id)
        .order_by(CodeLocationStatusRow.id.desc())
        .limit(1)
    )
    if last is None or last.status != report.status or last.message != report.message:
        change = _record(session, row, report.status, report.message)
        if report.status == CodeLocationStatus.ERROR and (
            last is None or last.status != CodeLocationStatus.ERROR
        ):
            alerts.location_error(
                session, dep, name, _outage_start(session, row, change), report.message or ""
            )
    else:
        row.updated_at = utcnow()
    return row


# What ends a location's outage: serving again, or being removed.
_OUTAGE_ENDS = (CodeLocationStatus.RUNNING, CodeLocationStatus.STOPPED)


def _outage_start(session: Session, row: CodeLocationRow, change: CodeLocationStatusRow) -> int:
    """The first ERROR since the location last ran (or was removed): its outage, which a
    code server restarted with backoff goes through many times (ERROR, STARTING, LOADING,
    ERROR ...), alerts once."""
    ended = session.scalar(
        select(func.max(CodeLocationStatusRow.id)).where(
            CodeLocationStatusRow.code_location_id == row.id,
            CodeLocationStatusRow.status.in_(_OUTAGE_ENDS),
        )
    )
    first = session.scalar(
        select(func.min(CodeLocationStatusRow.id)).where(
            CodeLocationStatusRow.code_location_id == row.id,
            CodeLocationStatusRow.status == CodeLocationStatus.ERROR,
            CodeLocationStatusRow.id > (ended or 0),
        )
    )
    return first or change.id


def to_model(
    session: Session,
    dep: DeploymentRow,
    row: CodeLocationRow,
    with_history: bool = False,
    agent_timeout_seconds: float | None = None,
    live_agents: list[AgentRow] | None = None,
) -> CodeLocation:
    """The API view; with ``agent_timeout_seconds``, a warning when no live agent serves the
    location's agent queue."""
    history = None
    if with_history:
        changes = session.scalars(
            select(CodeLocationStatusRow)
            .where(CodeLocationStatusRow.code_location_id == row.id)
            .order_by(CodeLocationStatusRow.id.desc())
            .limit(HISTORY_IN_VIEW)
        )
        history = [StatusChange(status=c.status, message=c.message, at=c.at) for c in changes]
    return CodeLocation(
        name=row.name,
        deployment=dep.name,
        spec=CodeLocationSpec.model_validate(row.spec),
        status=row.status,
        generation=row.generation,
        error=CodeLocationError.model_validate(row.error) if row.error else None,
        snapshot=DefinitionsSnapshot.model_validate(row.snapshot) if row.snapshot else None,
        snapshot_updated_at=row.snapshot_updated_at,
        deployed_at=row.deployed_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        removed=row.removed,
        status_history=history,
        warning=None
        if agent_timeout_seconds is None or row.removed
        else agents.queue_warning(session, dep, queue_of(row), agent_timeout_seconds, live_agents),
        log_settings=logs.location_settings(dep, row),
    )


def list_all(
    session: Session,
    dep: DeploymentRow,
    include_removed: bool,
    agent_timeout_seconds: float | None = None,
) -> list[CodeLocation]:
    query = select(CodeLocationRow).where(CodeLocationRow.deployment_id == dep.id)
    if not include_removed:
        query = query.where(CodeLocationRow.removed.is_(False))
    rows = session.scalars(query.order_by(CodeLocationRow.name))
    live = (
        None
        if agent_timeout_seconds is None
        else agents.live_rows(session, dep, agent_timeout_seconds)
    )
    return [to_model(session, dep, r, False, agent_timeout_seconds, live) for r in rows]


# Parsed snapshots, by (database, location row, when its snapshot was reported): a run's
# creation, a retry, a schedule's tick and a backfill's launch each read the job they run,
# and parsing a location's whole snapshot per run was most of a backfilled run's CPU here.
_PARSED_MAX = 64
_parsed: "OrderedDict[tuple[str, int, datetime], DefinitionsSnapshot]" = OrderedDict()
_parsed_lock = threading.Lock()


def snapshot_of(session: Session, row: CodeLocationRow) -> DefinitionsSnapshot | None:
    """The location's last snapshot, parsed once per report (None: it reported none yet).
    Shared between callers: read it, never change it."""
    if row.snapshot is None:
        return None
    if row.snapshot_updated_at is None:
        return DefinitionsSnapshot.model_validate(row.snapshot)
    key = (str(session.get_bind().engine.url), row.id, row.snapshot_updated_at)
    with _parsed_lock:
        found = _parsed.get(key)
        if found is not None:
            _parsed.move_to_end(key)
            return found
    parsed = DefinitionsSnapshot.model_validate(row.snapshot)
    with _parsed_lock:
        _parsed[key] = parsed
        while len(_parsed) > _PARSED_MAX:
            _parsed.popitem(last=False)
    return parsed
