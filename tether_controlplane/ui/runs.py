"""Runs: the filtered, paged, live list; a run's page with its live event log and step
timeline; Terminate and Re-run."""

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from tether_api.enums import RunStatus
from tether_controlplane.ui.api import ApiProblem
from tether_controlplane.ui.common import api_path, deployment, temporal_link
from tether_controlplane.ui.render import FINAL_RUN, page, parse_time
from tether_controlplane.ui.session import Signed, require, require_post, settings_of
from tether_controlplane.ui.timeline import timeline

router = APIRouter()
PAGE_SIZE = 25
# Events per fetch: the first render shows this many; the log follows in pages this size.
EVENT_PAGE = 500
# A run ended by the agent or the monitor may still get its worker's last events (flushed
# late): its page keeps looking for them this long after it saw the run end.
LATE_EVENTS_SECONDS = 15.0
# Past this many lines, the next page waits for a click: a run that logs 100,000 lines must
# not fill the browser unasked.
AUTO_LOAD_EVENTS = 5000
RERUN_TAG = "tether/rerun_of"
FilterQuery = Annotated[str, Query(max_length=1000)]


@dataclass(frozen=True)
class Filters:
    status: str = ""
    location: str = ""
    job: str = ""
    tag: str = ""
    cursor: str = ""

    def api_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        for key, value in (
            ("status", self.status),
            ("code_location", self.location),
            ("job", self.job),
            ("tag", self.tag),
            ("cursor", self.cursor),
        ):
            if value.strip():
                params[key] = value.strip()
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


@dataclass(frozen=True)
class Poll:
    """Where the event log's next fetch starts; whether it waits a second first, or for a
    click."""

    query: str
    wait: bool
    click: bool = False


def next_poll(events: dict[str, Any], final_since: float | None) -> Poll | None:
    """None once the run has ended and its late events had time to arrive."""
    after = events["last_seq"]
    if len(events["events"]) >= EVENT_PAGE:  # more are stored: fetch them now
        return Poll(_poll_query(after, final_since), wait=False, click=after >= AUTO_LOAD_EVENTS)
    if events["run_status"] not in FINAL_RUN:
        return Poll(_poll_query(after, None), wait=True)
    since = final_since or time.time()
    if time.time() - since < LATE_EVENTS_SECONDS:
        return Poll(_poll_query(after, since), wait=True)
    return None


def _poll_query(after: int, final_since: float | None) -> str:
    return urlencode(
        {"after": after, **({"final_since": f"{final_since:.0f}"} if final_since else {})}
    )


def _ended_ago(run: dict[str, Any]) -> float | None:
    ended = parse_time(run.get("ended_at"))
    return None if ended is None else time.time() - ended.timestamp()


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
    runs_path = api_path("deployments", dep, "runs")
    if request.headers.get("hx-request"):  # the live refresh: the table only
        runs = await signed.api.get(runs_path, filters.api_params())
        context: dict[str, Any] = {"dep": {"name": dep}}
        template = "_runs_live.html"
    else:
        found, runs, locations = await asyncio.gather(
            deployment(signed, dep),
            signed.api.get(runs_path, filters.api_params()),
            signed.api.get(api_path("deployments", dep, "code-locations")),
        )
        context = {"dep": found, "locations": locations}
        template = "runs.html"
    return page(
        request,
        template,
        signed,
        runs=runs["runs"],
        next_cursor=runs["next_cursor"],
        filters=filters,
        statuses=[s.value for s in RunStatus],
        section="runs",
        **context,
    )


async def _run_context(request: Request, signed: Signed, dep: str, run_id: str) -> dict[str, Any]:
    run, steps = await asyncio.gather(
        signed.api.get(api_path("deployments", dep, "runs", run_id)),
        signed.api.get(api_path("deployments", dep, "runs", run_id, "steps")),
    )
    settings = settings_of(request)
    ended_ago = _ended_ago(run)
    return {
        "run": run,
        "steps": steps,
        "timeline": timeline(run, steps),
        # Keep refreshing a little after the end: a late step event may still come.
        "live": ended_ago is None or ended_ago < LATE_EVENTS_SECONDS,
        "temporal_url": temporal_link(
            settings.temporal_ui_url, settings.temporal_namespace, f"run:{run['id']}"
        ),
        "section": "runs",
    }


# How long the run page waits for an agent to send a run's output.
OUTPUT_WAIT_SECONDS = 15.0


@router.get("/d/{dep}/runs/{run_id}")
async def run_page(request: Request, dep: str, run_id: str) -> Response:
    signed = require(request)
    found, context, events = await asyncio.gather(
        deployment(signed, dep),
        _run_context(request, signed, dep, run_id),
        signed.api.get(
            api_path("deployments", dep, "runs", run_id, "events"), {"limit": EVENT_PAGE}
        ),
    )
    ended = parse_time(context["run"].get("ended_at"))
    poll = next_poll(events, ended.timestamp() if ended else None)
    return page(request, "run.html", signed, dep=found, events=events, poll=poll, **context)


@router.get("/d/{dep}/runs/{run_id}/summary")
async def run_summary(request: Request, dep: str, run_id: str) -> Response:
    signed = require(request)
    context = await _run_context(request, signed, dep, run_id)
    return page(request, "_run_summary.html", signed, dep={"name": dep}, **context)


@router.get("/d/{dep}/runs/{run_id}/events")
async def run_events(
    request: Request,
    dep: str,
    run_id: str,
    after: Annotated[int, Query(ge=0)] = 0,
    final_since: Annotated[float | None, Query(ge=0)] = None,
) -> Response:
    """The log's next lines and, while there may be more, the element that fetches them."""
    signed = require(request)
    events = await signed.api.get(
        api_path("deployments", dep, "runs", run_id, "events"),
        {"after": after, "limit": EVENT_PAGE},
    )
    return page(
        request,
        "_events.html",
        signed,
        dep={"name": dep},
        run={"id": run_id},
        events=events,
        poll=next_poll(events, final_since),
    )


@router.get("/d/{dep}/runs/{run_id}/output")
async def run_output(request: Request, dep: str, run_id: str) -> Response:
    """A run's output that its settings keep in the user's environment, fetched now from the
    agent that keeps it (log forwarding 'local'); shown, never stored."""
    signed = require(request)
    try:
        found = await signed.api.call(
            "GET",
            api_path("deployments", dep, "runs", run_id, "logs"),
            params={"wait_seconds": OUTPUT_WAIT_SECONDS},
            timeout=OUTPUT_WAIT_SECONDS + 10,
        )
        problem = None
    except ApiProblem as exc:  # shown where the output goes, not as a page htmx drops
        found, problem = None, exc.detail
    return page(
        request,
        "_run_output.html",
        signed,
        dep={"name": dep},
        run_id=run_id,
        output=found,
        problem=problem,
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
