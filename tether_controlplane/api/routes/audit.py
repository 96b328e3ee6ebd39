"""User API: the organization's audit log (read only: it is append-only)."""

from typing import Annotated

from fastapi import APIRouter, Query

from tether_api.audit import AuditPage
from tether_api.names import NAME_PATTERN
from tether_api.wire import JsonDateTime
from tether_controlplane.api.deps import DbDep, UserPrincipal
from tether_controlplane.api.responses import error_responses
from tether_controlplane.services import audit

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", responses=error_responses(422))
def list_audit(
    p: UserPrincipal,
    db: DbDep,
    action: Annotated[
        list[str] | None,
        Query(
            max_length=20,
            description="Only these actions, e.g. run.submit (repeatable).",
        ),
    ] = None,
    since: Annotated[
        JsonDateTime | None,
        Query(description="Only entries from then on: an ISO 8601 date-time with a time zone."),
    ] = None,
    until: Annotated[
        JsonDateTime | None,
        Query(description="Only entries before then: an ISO 8601 date-time with a time zone."),
    ] = None,
    actor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="Only entries whose actor's name holds this text (any case).",
        ),
    ] = None,
    target: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Only entries about this target, whole: a run's ID, a location's name.",
        ),
    ] = None,
    deployment: Annotated[
        str | None,
        Query(pattern=NAME_PATTERN, max_length=63, description="Only this deployment's."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 100,
    cursor: Annotated[
        str | None,
        Query(pattern=audit.CURSOR_PATTERN, description="A previous page's next_cursor."),
    ] = None,
) -> AuditPage:
    """Who did what, and when, in your organization: newest first, in pages."""
    with db.read() as s:
        return audit.entries(
            s,
            p.organization_id,
            actions=action,
            since=since,
            until=until,
            actor=actor,
            target=target,
            deployment=deployment,
            limit=limit,
            cursor=cursor,
        )
