"""The audit log: who did what, and when, per organization.

Call ``record`` inside the transaction that does the action (``db.write()``'s session):
the entry commits with the action or not at all. Entries are append-only; the database
refuses UPDATE and DELETE on the table (triggers made by migration 0008). Never put a
secret in ``details``."""

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tether_api.audit import AuditAction, AuditEntry, AuditPage
from tether_controlplane.errors import Invalid
from tether_controlplane.services.requests import parse_id
from tether_controlplane.services.tenancy import Principal
from tether_controlplane.tables import AuditRow, DeploymentRow, TokenRow, utcnow

MAX_PAGE = 500
# The actor_kind of an action no token did: the control plane's own (record_system).
SYSTEM_ACTOR_KIND = "system"


def record(
    session: Session,
    principal: Principal,
    action: AuditAction,
    target: str,
    details: dict[str, Any] | None = None,
    deployment: DeploymentRow | None = None,
) -> None:
    """Add an entry for ``principal`` doing ``action`` to ``target`` (in ``deployment``, if
    the action concerns one) to the session's transaction."""
    actor = session.get(TokenRow, principal.token_id)
    name = actor.name if actor is not None else f"token-{principal.token_id}"
    if actor is not None and actor.parent_id is not None:
        # A web UI session (or sign-in link) acts for its user token: name that one.
        parent = session.get(TokenRow, actor.parent_id)
        if parent is not None:
            name = parent.name
    _add(
        session,
        principal.organization_id,
        principal.token_id,
        name,
        principal.kind.value,
        action,
        target,
        details,
        deployment,
    )


def record_system(
    session: Session,
    organization_id: int,
    actor_name: str,
    action: AuditAction,
    target: str,
    details: dict[str, Any] | None = None,
    deployment: DeploymentRow | None = None,
) -> None:
    """Add an entry for something the control plane did itself, with no token acting (e.g.
    ``tether controlplane bootstrap`` minting tokens): no actor token, kind ``system``, and
    ``actor_name`` saying what acted."""
    _add(
        session,
        organization_id,
        None,
        actor_name,
        SYSTEM_ACTOR_KIND,
        action,
        target,
        details,
        deployment,
    )


def _add(
    session: Session,
    organization_id: int,
    actor_token_id: int | None,
    actor_name: str,
    actor_kind: str,
    action: AuditAction,
    target: str,
    details: dict[str, Any] | None,
    deployment: DeploymentRow | None,
) -> None:
    session.add(
        AuditRow(
            organization_id=organization_id,
            at=utcnow(),
            actor_token_id=actor_token_id,
            actor_name=actor_name[:100],
            actor_kind=actor_kind,
            action=action.value,
            deployment=deployment.name if deployment is not None else None,
            target=target[:200],
            details=details or {},
        )
    )


# A page's next_cursor: an entry's id, digits only and few enough for a bigint.
CURSOR_PATTERN = r"^[0-9]{1,18}$"


def entries(
    session: Session,
    organization_id: int,
    *,
    actions: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    target: str | None = None,
    deployment: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> AuditPage:
    """The organization's entries, newest first, filtered; ``cursor`` continues a page.
    ``since`` is inclusive, ``until`` exclusive; ``actor`` is a part of the actor's name,
    in any case; ``target`` the whole target (a run's ID, a location's name)."""
    if since is not None and until is not None and since >= until:
        return AuditPage(entries=[], next_cursor=None)  # an empty window
    query = select(AuditRow).where(AuditRow.organization_id == organization_id)
    if actions:
        query = query.where(AuditRow.action.in_(actions))
    if since is not None:
        query = query.where(AuditRow.at >= since)
    if until is not None:
        query = query.where(AuditRow.at < until)
    if actor:
        # Literal text: a % or _ in it is no wildcard.
        query = query.where(
            func.lower(AuditRow.actor_name).contains(actor.lower(), autoescape=True)
        )
    if target is not None:
        query = query.where(AuditRow.target == target)
    if deployment is not None:
        query = query.where(AuditRow.deployment == deployment)
    if cursor is not None:
        # Digits only, and few enough for a bigint ("²".isdigit() is true, int() refuses it).
        after = parse_id(cursor)
        if after is None:
            raise Invalid(
                "cursor must be the next_cursor of a previous page", loc=("query", "cursor")
            )
        query = query.where(AuditRow.id < after)
    rows = list(session.scalars(query.order_by(AuditRow.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(
        entries=[to_model(r) for r in rows],
        next_cursor=str(rows[-1].id) if more and rows else None,
    )


def to_model(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        action=row.action,
        actor_token_id=row.actor_token_id,
        actor_name=row.actor_name,
        actor_kind=row.actor_kind,
        deployment=row.deployment,
        target=row.target,
        details=row.details,
    )
