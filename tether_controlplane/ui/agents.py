"""Agents: each agent of the deployment with its status, version, launcher, queues, last
heartbeat, the code locations it serves and the runs it has in flight."""

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response

from tether_api.enums import ACTIVE_RUN_STATUSES
from tether_controlplane.ui.common import api_path, deployment
from tether_controlplane.ui.render import page
from tether_controlplane.ui.session import Signed, require

router = APIRouter()

# Runs in flight are read a page of the API's at a time (by the status index); past this
# many the page says there are more rather than reading on.
IN_FLIGHT_PAGE = 200
IN_FLIGHT_PAGES = 5


async def runs_in_flight(signed: Signed, dep: str) -> tuple[list[dict[str, Any]], bool]:
    """The deployment's active runs (STARTING, STARTED, CANCELING), newest first, and
    whether there are more than were read."""
    params: dict[str, Any] = {
        "status": sorted(s.value for s in ACTIVE_RUN_STATUSES),
        "limit": IN_FLIGHT_PAGE,
    }
    found: list[dict[str, Any]] = []
    for _ in range(IN_FLIGHT_PAGES):
        listed = await signed.api.get(api_path("deployments", dep, "runs"), params)
        found += listed["runs"]
        if not listed["next_cursor"]:
            return found, False
        params["cursor"] = listed["next_cursor"]
    return found, True


@router.get("/d/{dep}/agents")
async def agents_page(request: Request, dep: str) -> Response:
    signed = require(request)
    found, agents, (active, more) = await asyncio.gather(
        deployment(signed, dep),
        signed.api.get(api_path("deployments", dep, "agents")),
        runs_in_flight(signed, dep),
    )
    by_agent: dict[str, list[dict[str, Any]]] = {}
    for run in active:
        by_agent.setdefault(run.get("agent") or "", []).append(run)
    return page(
        request,
        "agents.html",
        signed,
        dep=found,
        agents=agents,
        in_flight=by_agent,
        unassigned=by_agent.get("", []),
        more_in_flight=more,
        section="agents",
    )
