"""The per-deployment request queue for agents: enqueue, lease-based claim, ack, fail."""

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from tether_api.agent_requests import RequestPayload, request_type
from tether_api.enums import RequestStatus
from tether_api.names import DEFAULT_AGENT_QUEUE
from tether_controlplane.db import wake_after_commit
from tether_controlplane.errors import Conflict, NotFound
from tether_controlplane.tables import RequestRow, utcnow
from tether_controlplane.wakeups import requests_key

ID_RE = re.compile(r"[0-9]{1,18}")
# A request claimed this many times without an ack is a poison message: fail it.
MAX_ATTEMPTS = 20


def agent_queue(agent_name: str) -> str:
    """The queue only the agent of that name claims from (agent queues are names, which
    cannot start with '@'). Cut to the column's 63 characters: two agents whose names share
    their first 62 would share it, and the one without the output passes a request on."""
    return f"@{agent_name}"[:63]


def enqueue(
    session: Session,
    deployment_id: int,
    request: RequestPayload,
    dedupe_key: str | None = None,
    queue: str = DEFAULT_AGENT_QUEUE,
) -> RequestRow:
    """Add a request, of the type its payload's model says. An unclaimed request with the
    same ``dedupe_key`` absorbs this one, so repeated intents (two redeploys in a row) reach
    the agent once, with the newest payload."""
    payload = request.model_dump(mode="json")
    if dedupe_key is not None:
        existing = session.scalar(
            select(RequestRow).where(
                RequestRow.deployment_id == deployment_id,
                RequestRow.dedupe_key == dedupe_key,
                RequestRow.status == RequestStatus.PENDING,
            )
        )
        if existing is not None:
            existing.payload = payload
            existing.queue = queue
            wake_after_commit(session, requests_key(deployment_id))
            return existing
    row = RequestRow(
        deployment_id=deployment_id,
        type=request_type(request),
        payload=payload,
        dedupe_key=dedupe_key,
        queue=queue,
        status=RequestStatus.PENDING,
        attempt=0,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    wake_after_commit(session, requests_key(deployment_id))
    return row


def _claimable(deployment_id: int, now: datetime, queues: list[str] | None = None) -> Any:
    return and_(
        RequestRow.deployment_id == deployment_id,
        # Said as a range of (deployment_id, status, id) first: behind the OR alone, SQLite
        # reads every request the deployment still keeps (days of finished ones).
        RequestRow.status.in_([RequestStatus.PENDING, RequestStatus.CLAIMED]),
        RequestRow.queue.in_(queues or [DEFAULT_AGENT_QUEUE]),
        or_(RequestRow.status == RequestStatus.PENDING, RequestRow.lease_expires_at < now),
    )


def claim(
    session: Session,
    deployment_id: int,
    agent_name: str,
    limit: int,
    lease_seconds: float,
    queues: list[str] | None = None,
) -> list[RequestRow]:
    """Lease up to ``limit`` visible requests of the agent ``queues`` (default: the default
    queue), oldest first. Safe against concurrent claimers: the UPDATE re-checks visibility,
    and PostgreSQL skips rows another claimer has locked."""
    now = utcnow()
    candidates = (
        select(RequestRow.id)
        .where(_claimable(deployment_id, now, queues))
        .order_by(RequestRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(candidates))
    if not ids:
        return []
    claimed = list(
        session.scalars(
            update(RequestRow)
            .where(RequestRow.id.in_(ids), _claimable(deployment_id, now, queues))
            .values(
                status=RequestStatus.CLAIMED,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempt=RequestRow.attempt + 1,
                claimed_by=agent_name,
            )
            .returning(RequestRow),
            execution_options={"synchronize_session": False},
        )
    )
    live = []
    for row in sorted(claimed, key=lambda r: r.id):
        if row.attempt > MAX_ATTEMPTS:
            row.status = RequestStatus.FAILED
            row.finished_at = now
            row.error = f"claimed {MAX_ATTEMPTS} times without an acknowledgement; gave up"
        else:
            live.append(row)
    return live


def next_lease_expiry(
    session: Session, deployment_id: int, queues: list[str] | None = None
) -> datetime | None:
    return session.scalar(
        select(func.min(RequestRow.lease_expires_at)).where(
            RequestRow.deployment_id == deployment_id,
            RequestRow.queue.in_(queues or [DEFAULT_AGENT_QUEUE]),
            RequestRow.status == RequestStatus.CLAIMED,
        )
    )


def get(session: Session, deployment_id: int, request_id: str) -> RequestRow:
    row = None
    if parse_id(request_id) is not None:
        row = session.scalar(
            select(RequestRow).where(RequestRow.id == int(request_id)).with_for_update()
        )
    if row is None or row.deployment_id != deployment_id:
        raise NotFound(f"request {request_id!r} not found in this agent's deployment")
    return row


def parse_id(value: str) -> int | None:
    """A database ID from a URL or cursor; None for anything else (no int() surprises)."""
    return int(value) if ID_RE.fullmatch(value) else None


def _check_lease(row: RequestRow, attempt: int | None) -> None:
    # A late ack or fail from an agent whose lease expired must not touch the newer claim.
    if attempt is not None and row.status == RequestStatus.CLAIMED and attempt != row.attempt:
        raise Conflict(
            f"request {row.id} was claimed again (attempt {row.attempt}) after the lease of "
            f"attempt {attempt} expired; another agent owns it now"
        )


def ack(
    session: Session, deployment_id: int, request_id: str, attempt: int | None = None
) -> RequestRow:
    """Mark handled. Idempotent: acking a finished request changes nothing."""
    row = get(session, deployment_id, request_id)
    _check_lease(row, attempt)
    if row.status in (RequestStatus.PENDING, RequestStatus.CLAIMED):
        row.status = RequestStatus.DONE
        row.finished_at = utcnow()
        row.lease_expires_at = None
    return row


def fail(
    session: Session,
    deployment_id: int,
    request_id: str,
    error: str,
    retry: bool,
    attempt: int | None = None,
) -> RequestRow:
    row = get(session, deployment_id, request_id)
    _check_lease(row, attempt)
    if row.status in (RequestStatus.DONE, RequestStatus.FAILED):
        return row
    row.error = error
    if retry:
        row.status = RequestStatus.PENDING
        row.lease_expires_at = None
        wake_after_commit(session, requests_key(deployment_id))
    else:
        row.status = RequestStatus.FAILED
        row.finished_at = utcnow()
    return row


def refuse(row: RequestRow, error: str) -> None:
    """Fail a claimed request that cannot be handed out at all (its stored payload does not
    fit its type): for good, since no agent could read it."""
    row.status = RequestStatus.FAILED
    row.error = error[:60_000]
    row.finished_at = utcnow()


def supersede(session: Session, deployment_id: int, dedupe_key: str, reason: str) -> None:
    """Drop an unclaimed request whose intent a newer request replaces."""
    session.execute(
        update(RequestRow)
        .where(
            RequestRow.deployment_id == deployment_id,
            RequestRow.dedupe_key == dedupe_key,
            RequestRow.status == RequestStatus.PENDING,
        )
        .values(status=RequestStatus.DONE, finished_at=utcnow(), error=reason)
    )
