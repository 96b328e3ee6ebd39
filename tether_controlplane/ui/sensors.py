"""Sensors: their status with on/off, and each one's ticks."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from tether_api.enums import TickStatus
from tether_controlplane.ui.api import ApiProblem
from tether_controlplane.ui.common import api_path, deployment, temporal_link
from tether_controlplane.ui.render import page
from tether_controlplane.ui.session import require, require_post, safe_next, settings_of

router = APIRouter()

# A sensor ticks every few seconds or minutes: its page shows the latest ones (the status
# filter finds older failures).
TICKS_SHOWN = 100
TICK_STATUSES = [s.value for s in TickStatus]


@router.get("/d/{dep}/sensors")
async def sensors_page(request: Request, dep: str) -> Response:
    signed = require(request)
    found, sensors = await asyncio.gather(
        deployment(signed, dep), signed.api.get(api_path("deployments", dep, "sensors"))
    )
    return page(request, "sensors.html", signed, dep=found, sensors=sensors, section="sensors")


@router.get("/d/{dep}/sensors/{location}/{name}")
async def sensor_page(
    request: Request,
    dep: str,
    location: str,
    name: str,
    status: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    signed = require(request)
    path = ("deployments", dep, "sensors", location, name)
    # An unknown status (a hand-edited URL) shows every tick rather than an error.
    shown = status if status in TICK_STATUSES else ""
    params: dict[str, str | int] = {"limit": TICKS_SHOWN}
    if shown:
        params["status"] = shown
    found, sensor, ticks = await asyncio.gather(
        deployment(signed, dep),
        signed.api.get(api_path(*path)),
        signed.api.get(api_path(*path, "ticks"), params),
    )
    settings = settings_of(request)
    temporal_urls = {
        t["id"]: temporal_link(
            settings.temporal_ui_url, settings.temporal_namespace, t["workflow_id"]
        )
        for t in ticks
        if t.get("workflow_id")
    }
    return page(
        request,
        "sensor.html",
        signed,
        dep=found,
        sensor=sensor,
        ticks=ticks,
        temporal_urls=temporal_urls,
        status_filter=shown,
        statuses=TICK_STATUSES,
        section="sensors",
    )


@router.post("/d/{dep}/sensors/{location}/{name}/{action}")
async def switch(request: Request, dep: str, location: str, name: str, action: str) -> Response:
    """Turn on (start) or off (stop), then back to the page the button was on."""
    signed = await require_post(request)
    if action not in ("start", "stop"):
        raise ApiProblem(status=404, detail=f"no such action: {action} (start or stop)")
    await signed.api.post(api_path("deployments", dep, "sensors", location, name, action))
    back = (await request.form()).get("return_to")
    return RedirectResponse(safe_next(back if isinstance(back, str) else None), status_code=303)
