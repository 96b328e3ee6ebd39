"""Schedules: their status with on/off, and each one's ticks."""

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from tether_controlplane.ui.api import ApiProblem
from tether_controlplane.ui.common import api_path, deployment
from tether_controlplane.ui.render import page
from tether_controlplane.ui.session import require, require_post, safe_next

router = APIRouter()


@router.get("/d/{dep}/schedules")
async def schedules_page(request: Request, dep: str) -> Response:
    signed = require(request)
    found, schedules = await asyncio.gather(
        deployment(signed, dep), signed.api.get(api_path("deployments", dep, "schedules"))
    )
    return page(
        request, "schedules.html", signed, dep=found, schedules=schedules, section="schedules"
    )


@router.get("/d/{dep}/schedules/{location}/{name}")
async def schedule_page(request: Request, dep: str, location: str, name: str) -> Response:
    signed = require(request)
    path = ("deployments", dep, "schedules", location, name)
    found, schedule, ticks = await asyncio.gather(
        deployment(signed, dep),
        signed.api.get(api_path(*path)),
        signed.api.get(api_path(*path, "ticks"), {"limit": 100}),
    )
    return page(
        request,
        "schedule.html",
        signed,
        dep=found,
        schedule=schedule,
        ticks=ticks,
        section="schedules",
    )


@router.post("/d/{dep}/schedules/{location}/{name}/{action}")
async def switch(request: Request, dep: str, location: str, name: str, action: str) -> Response:
    """Turn on (start) or off (stop), then back to the page the button was on."""
    signed = await require_post(request)
    if action not in ("start", "stop"):
        raise ApiProblem(status=404, detail=f"no such action: {action} (start or stop)")
    await signed.api.post(api_path("deployments", dep, "schedules", location, name, action))
    back = (await request.form()).get("return_to")
    return RedirectResponse(safe_next(back if isinstance(back, str) else None), status_code=303)
