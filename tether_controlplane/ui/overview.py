"""The deployment overview: agents, code locations, recent runs; what is broken on top."""

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response

from tether_controlplane.ui.common import api_path, deployment
from tether_controlplane.ui.render import page
from tether_controlplane.ui.session import Signed, require

router = APIRouter()
RECENT_RUNS = 10


async def _context(signed: Signed, dep: str) -> dict[str, Any]:
    found, agents, locations, runs = await asyncio.gather(
        deployment(signed, dep),
        signed.api.get(api_path("deployments", dep, "agents")),
        signed.api.get(api_path("deployments", dep, "code-locations")),
        signed.api.get(api_path("deployments", dep, "runs"), {"limit": RECENT_RUNS}),
    )
    return {
        "dep": found,
        "agents": agents,
        "locations": locations,
        "runs": runs["runs"],
        "section": "overview",
    }


@router.get("/d/{dep}")
async def overview(request: Request, dep: str) -> Response:
    signed = require(request)
    return page(request, "overview.html", signed, **await _context(signed, dep))


@router.get("/d/{dep}/overview/live")
async def overview_live(request: Request, dep: str) -> Response:
    signed = require(request)
    return page(request, "_overview_live.html", signed, **await _context(signed, dep))
