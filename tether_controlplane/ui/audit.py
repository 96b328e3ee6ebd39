"""The audit log: who did what, and when, in the organization, newest first; filtered by
actor, action, deployment and time, in pages that go by entry id (never an offset).

The API does the filtering and the paging; the page only turns its form into the query."""

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from tether_api.audit import AuditAction
from tether_controlplane.ui.common import api_path, deployment, query_of, utc_window
from tether_controlplane.ui.render import page
from tether_controlplane.ui.session import Signed, require

router = APIRouter()

PAGE_SIZE = 50
FilterQuery = Annotated[str, Query(max_length=200)]
ACTIONS = [a.value for a in AuditAction]


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    deployment: str = ""
    since: str = ""
    until: str = ""
    cursor: str = ""

    def window(self) -> tuple[datetime | None, datetime | None]:
        return utc_window("From", self.since, "Until", self.until)

    def query(self, **changes: str) -> str:
        return query_of({**asdict(self), **changes})


@dataclass
class Found:
    entries: list[dict[str, Any]]
    next_cursor: str | None


async def find(signed: Signed, filters: AuditFilters) -> Found:
    """A page of matching entries: the API filters and pages them."""
    since, until = filters.window()
    params: dict[str, Any] = {"limit": PAGE_SIZE}
    for name, value in (
        ("action", filters.action),
        ("deployment", filters.deployment),
        ("actor", filters.actor.strip()),
        ("cursor", filters.cursor.strip()),
    ):
        if value:
            params[name] = value
    if since is not None:
        params["since"] = since.isoformat()
    if until is not None:
        params["until"] = until.isoformat()
    listed = await signed.api.get(api_path("audit"), params)
    return Found(listed["entries"], listed["next_cursor"])


@router.get("/d/{dep}/audit")
async def audit_page(
    request: Request,
    dep: str,
    actor: FilterQuery = "",
    action: FilterQuery = "",
    deployment_: Annotated[str, Query(alias="deployment", max_length=63)] = "",
    since: FilterQuery = "",
    until: FilterQuery = "",
    cursor: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    signed = require(request)
    filters = AuditFilters(actor, action, deployment_, since, until, cursor)
    problem = None
    found = Found([], None)
    dep_found, deployments = await asyncio.gather(
        deployment(signed, dep), signed.api.get(api_path("deployments"))
    )
    try:
        found = await find(signed, filters)
    except ValueError as exc:
        problem = str(exc)
    return page(
        request,
        "audit.html",
        signed,
        dep=dep_found,
        deployments=deployments,
        filters=filters,
        actions=ACTIONS,
        found=found,
        problem=problem,
        section="audit",
    )
