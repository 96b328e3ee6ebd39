"""Schedules and sensors: each kind's list with on/off, and one automation's page with its
ticks (filtered by outcome, each evaluated in the code server linked to its TickWorkflow in
the Temporal UI). One set of pages for both kinds; each has its own two templates."""

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

# Each kind, and the singular that names its detail page's template and object.
NOUN: dict[str, str] = {"schedules": "schedule", "sensors": "sensor"}

# A sensor ticks every few seconds or minutes: a page shows the latest ticks (the status
# filter finds older failures).
TICKS_SHOWN = 100
TICK_STATUSES = [s.value for s in TickStatus]


def _pages(kind: str) -> None:
    """The pages of one kind (``schedules`` or ``sensors``), at their own paths."""
    noun = NOUN[kind]

    async def list_page(request: Request, dep: str) -> Response:
        signed = require(request)
        found, automations = await asyncio.gather(
            deployment(signed, dep), signed.api.get(api_path("deployments", dep, kind))
        )
        return page(request, f"{kind}.html", signed, dep=found, **{kind: automations}, section=kind)

    async def automation_page(
        request: Request,
        dep: str,
        location: str,
        name: str,
        status: Annotated[str, Query(max_length=20)] = "",
    ) -> Response:
        signed = require(request)
        path = ("deployments", dep, kind, location, name)
        # An unknown status (a hand-edited URL) shows every tick rather than an error.
        shown = status if status in TICK_STATUSES else ""
        params: dict[str, str | int] = {"limit": TICKS_SHOWN}
        if shown:
            params["status"] = shown
        found, automation, ticks = await asyncio.gather(
            deployment(signed, dep),
            signed.api.get(api_path(*path)),
            signed.api.get(api_path(*path, "ticks"), params),
        )
        settings = settings_of(request)
        temporal_urls = {
            t["workflow_id"]: temporal_link(
                settings.temporal_ui_url, settings.temporal_namespace, t["workflow_id"]
            )
            for t in ticks
            if t.get("workflow_id")
        }
        return page(
            request,
            f"{noun}.html",
            signed,
            dep=found,
            **{noun: automation},
            ticks=ticks,
            temporal_urls=temporal_urls,
            status_filter=shown,
            statuses=TICK_STATUSES,
            here=f"/d/{found['name']}/{kind}/{location}/{name}",
            section=kind,
        )

    async def switch(request: Request, dep: str, location: str, name: str, action: str) -> Response:
        """Turn on (start) or off (stop), then back to the page the button was on."""
        signed = await require_post(request)
        if action not in ("start", "stop"):
            raise ApiProblem(status=404, detail=f"no such action: {action} (start or stop)")
        await signed.api.post(api_path("deployments", dep, kind, location, name, action))
        back = (await request.form()).get("return_to")
        return RedirectResponse(safe_next(back if isinstance(back, str) else None), status_code=303)

    one = f"/d/{{dep}}/{kind}/{{location}}/{{name}}"
    router.add_api_route(f"/d/{{dep}}/{kind}", list_page, methods=["GET"], name=f"{kind}_page")
    router.add_api_route(one, automation_page, methods=["GET"], name=f"{noun}_page")
    router.add_api_route(f"{one}/{{action}}", switch, methods=["POST"], name=f"switch_{noun}")


for _kind in NOUN:
    _pages(_kind)
