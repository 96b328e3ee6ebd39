"""A code location: its status and history, its error, its definitions and their graphs,
its schedules and sensors (each on or off, linked to its page)."""

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from markupsafe import Markup

from tether_api.configschema import fields
from tether_controlplane.ui.common import api_path, deployment
from tether_controlplane.ui.graph import Node, render_svg
from tether_controlplane.ui.render import page
from tether_controlplane.ui.session import require, require_post

router = APIRouter()


def step_graph(job: dict[str, Any]) -> Markup:
    nodes = [Node(id=s["name"], label=s["name"], deps=tuple(s["deps"])) for s in job["steps"]]
    return Markup(render_svg(nodes, f"Steps of job {job['name']}"))


def asset_graph(assets: list[dict[str, Any]]) -> Markup:
    nodes = [
        Node(id=a["key"], label=a["key"], deps=tuple(a["deps"]), group=a.get("group"))
        for a in assets
    ]
    return Markup(render_svg(nodes, "Asset lineage"))


@router.get("/d/{dep}/locations/{name}")
async def location_page(
    request: Request, dep: str, name: str, redeployed: bool = False
) -> Response:
    signed = require(request)
    found, location, schedules, sensors = await asyncio.gather(
        deployment(signed, dep),
        signed.api.get(api_path("deployments", dep, "code-locations", name)),
        signed.api.get(api_path("deployments", dep, "schedules")),
        signed.api.get(api_path("deployments", dep, "sensors")),
    )
    snapshot = location.get("snapshot") or {}
    jobs = [
        {**job, "graph": step_graph(job), "fields": fields(job.get("config_schema"))}
        for job in snapshot.get("jobs", [])
    ]
    assets = snapshot.get("assets", [])
    return page(
        request,
        "location.html",
        signed,
        dep=found,
        location=location,
        jobs=jobs,
        assets=assets,
        asset_graph=asset_graph(assets) if assets else None,
        # With their status (on or off) and their pages, as the schedules and sensors pages
        # list them: the snapshot alone has only their declarations.
        schedules=[a for a in schedules if a["code_location"] == name],
        sensors=[a for a in sensors if a["code_location"] == name],
        here=f"/d/{found['name']}/locations/{name}",
        redeployed=redeployed,
        section="overview",
    )


@router.post("/d/{dep}/locations/{name}/redeploy")
async def redeploy(request: Request, dep: str, name: str) -> Response:
    signed = await require_post(request)
    await signed.api.post(api_path("deployments", dep, "code-locations", name, "redeploy"))
    return RedirectResponse(f"/d/{dep}/locations/{name}?redeployed=1", status_code=303)
