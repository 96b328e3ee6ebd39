"""Runs: the filtered, paged, live list; a run's page with its live event log and step
timeline; Terminate and Re-run."""

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from tether_controlplane.settings import Settings
from tether_controlplane.ui.common import api_path, deployment, temporal_link
from tether_controlplane.ui.render import FINAL_RUN, page
from tether_controlplane.ui.session import Signed, require, require_post
from tether_controlplane.ui.timeline import timeline

router = APIRouter()
PAGE_SIZE = 25
# Events per fetch: the first render shows this many; the log follows in pages this size.
EVENT_PAGE = 500
RUN_STATUSES = ("QUEUED", "STARTING", "STARTED", "SUCCESS", "FAILURE", "CANCELING", "CANCELED")
RERUN_TAG = "tether/rerun_of"


class Filters:
    def __init__(
        self,
        status: str = "",
        location: str = "",
        job: str = "",
        tag: str = "",
        cursor: str = "",
    ) -> None:
        self.status, self.location, self.job, self.tag, self.cursor = (
            status.strip(),
            location.strip(),
            job.strip(),
            tag.strip(),
            cursor.strip(),
        )

    def api_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        for key, value in (
            ("status", self.status),
            ("code_location", self.location),
            ("job", self.job),
            ("tag", self.tag),
            ("cursor", self.cursor),
        ):
            if value:
                params[key] = value
        return params

    def query(self, **changes: str) -> str:
        values = {
            "status": self.status,
            "location": self.location,
            "job": self.job,
            "tag": self.tag,
            "cursor": self.cursor,
            **changes,
        }
        return urlencode({k: v for k, v in values.items() if v})


FilterQuery = Annotated[str, Query(max_length=1000)]


async def _runs_context(signed: Signed, dep: str, filters: Filters) -> dict[str, Any]:
    found = await deployment(signed, dep)
    runs = await signed.api.get(api_path("deployments", dep, "runs"), filters.api_params())
    return {
        "dep": found,
        "runs": runs["runs"],
        "next_cursor": runs["next_cursor"],
        "filters": filters,
        "section": "runs",
        "statuses": RUN_STATUSES,
    }


@router.get("/d/{dep}/runs")
async def runs_page(
    request: Request,
    dep: str,
    status: FilterQuery = "",
    location: FilterQuery = "",
    job: FilterQuery = "",
    tag: FilterQuery = "",
    cursor: FilterQuery = "",
) -> Response:
    signed = require(request)
    filters = Filters(status, location, job, tag, cursor)
    context = await _runs_context(signed, dep, filters)
    locations = await signed.api.get(api_path("deployments", dep, "code-locations"))
    template = "_runs_live.html" if request.headers.get("hx-request") else "runs.html"
    return page(request, template, signed, locations=locations, **context)


async def _run_context(request: Request, signed: Signed, dep: str, run_id: str) -> dict[str, Any]:
    found = await deployment(signed, dep)
    run = await signed.api.get(api_path("deployments", dep, "runs", run_id))
    steps = await signed.api.get(api_path("deployments", dep, "runs", run_id, "steps"))
    settings: Settings = request.app.state.settings
    return {
        "dep": found,
        "run": run,
        "steps": steps,
        "timeline": timeline(run, steps),
        "final": run["status"] in FINAL_RUN,
        "temporal_url": temporal_link(
            settings.temporal_ui_url, settings.temporal_namespace, f"run:{run['id']}"
        ),
        "section": "runs",
    }


@router.get("/d/{dep}/runs/{run_id}")
async def run_page(request: Request, dep: str, run_id: str) -> Response:
    signed = require(request)
    context = await _run_context(request, signed, dep, run_id)
    events = await signed.api.get(
        api_path("deployments", dep, "runs", run_id, "events"), {"limit": EVENT_PAGE}
    )
    return page(request, "run.html", signed, events=events, page_size=EVENT_PAGE, **context)


@router.get("/d/{dep}/runs/{run_id}/summary")
async def run_summary(request: Request, dep: str, run_id: str) -> Response:
    signed = require(request)
    context = await _run_context(request, signed, dep, run_id)
    return page(request, "_run_summary.html", signed, **context)


@router.get("/d/{dep}/runs/{run_id}/events")
async def run_events(
    request: Request, dep: str, run_id: str, after: Annotated[int, Query(ge=0)] = 0
) -> Response:
    """The log's next lines and, while there may be more, the element that fetches them."""
    signed = require(request)
    found = await deployment(signed, dep)
    events = await signed.api.get(
        api_path("deployments", dep, "runs", run_id, "events"),
        {"after": after, "limit": EVENT_PAGE},
    )
    run = {"id": run_id}
    return page(
        request, "_events.html", signed, dep=found, run=run, events=events, page_size=EVENT_PAGE
    )


@router.post("/d/{dep}/runs/{run_id}/terminate")
async def terminate(request: Request, dep: str, run_id: str) -> Response:
    signed = await require_post(request)
    await signed.api.post(api_path("deployments", dep, "runs", run_id, "terminate"))
    return RedirectResponse(f"/d/{dep}/runs/{run_id}", status_code=303)


@router.post("/d/{dep}/runs/{run_id}/rerun")
async def rerun(request: Request, dep: str, run_id: str) -> Response:
    """A new run of the same job with the same config and tags, tagged with its origin."""
    signed = await require_post(request)
    run = await signed.api.get(api_path("deployments", dep, "runs", run_id))
    created = await signed.api.post(
        api_path("deployments", dep, "runs"),
        {
            "code_location": run["code_location"],
            "job": run["job"],
            "run_config": run["run_config"],
            "tags": {**run["tags"], RERUN_TAG: run["id"]},
        },
    )
    return RedirectResponse(f"/d/{dep}/runs/{created['id']}", status_code=303)
