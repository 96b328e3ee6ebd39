"""Runs: the filtered, paged, live list; a run's page with its live event log and step
timeline; Terminate and Re-run."""

import asyncio
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from tether_api.enums import RunStatus
from tether_controlplane.ui.api import ApiProblem
from tether_controlplane.ui.common import (
    api_path,
    deployment,
    query_of,
    temporal_link,
    utc_window,
)
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
    """The run list's filters as the page's query holds them (times as typed, in UTC)."""

    status: str = ""
    location: str = ""
    job: str = ""
    tag: str = ""
    created_after: str = ""
    created_before: str = ""
    # The ID of the Temporal workflow that started the runs through the Nexus service.
    caller: str = ""
    cursor: str = ""

    def window(self) -> tuple[datetime | None, datetime | None]:
        """The creation window; ValueError names a field that is no date and time, or a
        window that holds no time (the API would answer it with no runs)."""
        return utc_window("Created from", self.created_after, "Created before", self.created_before)

    def api_params(self) -> dict[str, Any]:
        if self.tag.strip() and "=" not in self.tag:
            raise ValueError(f"Tag: {self.tag.strip()!r} is no KEY=VALUE; write it as team=data")
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        for key, value in (
            ("status", self.status),
            ("code_location", self.location),
            ("job", self.job),
            ("tag", self.tag),
            ("caller_workflow_id", self.caller),
            ("cursor", self.cursor),
        ):
            if value.strip():
                params[key] = value.strip()
        after, before = self.window()
        if after is not None:
            params["created_after"] = after.isoformat()
        if before is not None:
            params["created_before"] = before.isoformat()
        return params

    def query(self, **changes: str) -> str:
        return query_of({**asdict(self), **changes})


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
    created_after: FilterQuery = "",
    created_before: FilterQuery = "",
    cursor: FilterQuery = "",
    caller: FilterQuery = "",
) -> Response:
    signed = require(request)
    filters = Filters(status, location, job, tag, created_after, created_before, caller, cursor)
    runs_path = api_path("deployments", dep, "runs")
    live = bool(request.headers.get("hx-request"))  # the live refresh: the table only
    listed, context = await asyncio.gather(
        _list(signed, runs_path, filters),
        _list_context(signed, dep) if not live else _fragment_context(dep),
    )
    return page(
        request,
        "_runs_live.html" if live else "runs.html",
        signed,
        runs=listed["runs"],
        next_cursor=listed["next_cursor"],
        problem=listed.get("problem"),
        filters=filters,
        statuses=[s.value for s in RunStatus],
        section="runs",
        **context,
    )


async def _list(signed: Signed, runs_path: str, filters: Filters) -> dict[str, Any]:
    """A page of runs, or none and what is wrong with the filters (shown above the list,
    the filters kept as typed)."""
    try:
        listed: dict[str, Any] = await signed.api.get(runs_path, filters.api_params())
    except ValueError as exc:
        return {"runs": [], "next_cursor": None, "problem": str(exc)}
    except ApiProblem as problem:
        if problem.status != 422:
            raise
        return {"runs": [], "next_cursor": None, "problem": _filter_problem(problem)}
    return listed


def _filter_problem(problem: ApiProblem) -> str:
    fields = {
        "code_location": "Code location",
        "tag": "Tag",
        "created_after": "Created from",
        "caller_workflow_id": "Temporal workflow",
    }
    for error in problem.errors:
        loc = [str(p) for p in error.get("loc", [])]
        name = next((fields[p] for p in loc if p in fields), None)
        if name:
            return f"{name}: {error.get('msg', problem.detail)}"
    return problem.detail


async def _list_context(signed: Signed, dep: str) -> dict[str, Any]:
    found, locations = await asyncio.gather(
        deployment(signed, dep), signed.api.get(api_path("deployments", dep, "code-locations"))
    )
    return {"dep": found, "locations": locations}


async def _fragment_context(dep: str) -> dict[str, Any]:
    return {"dep": {"name": dep}}


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
        # Why it failed: each failed step's exception (the run's own message only names them).
        "failed_steps": [s for s in steps if s["status"] == "FAILURE"],
        "terminated": await terminated_by(signed, dep, run),
        # Keep refreshing a little after the end: a late step event may still come.
        "live": ended_ago is None or ended_ago < LATE_EVENTS_SECONDS,
        "temporal_url": temporal_link(
            settings.temporal_ui_url, settings.temporal_namespace, f"run:{run['id']}"
        ),
        "caller_url": caller_link(settings.temporal_ui_url, run.get("caller")),
        "section": "runs",
    }


def caller_link(temporal_ui_url: str | None, caller: dict[str, Any] | None) -> str | None:
    """The Temporal UI's page of the workflow that started a run through the Nexus service
    (in its own namespace, and its own execution when known); None without a Temporal UI."""
    if caller is None:
        return None
    link = temporal_link(temporal_ui_url, caller["namespace"], caller["workflow_id"])
    if link is None or not caller.get("run_id"):
        return link
    return f"{link}/{quote(caller['run_id'], safe='')}"


async def terminated_by(signed: Signed, dep: str, run: dict[str, Any]) -> dict[str, Any] | None:
    """The audit entry of whoever terminated the run (the run.terminate the API records),
    or None when nobody did."""
    if run["status"] not in ("CANCELING", "CANCELED"):
        return None
    params = {"action": "run.terminate", "deployment": dep, "target": run["id"], "limit": 20}
    entries: list[dict[str, Any]] = (await signed.api.get(api_path("audit"), params))["entries"]
    # Newest first: the last is the first to terminate it (later ones changed nothing).
    return entries[-1] if entries else None


# How long the run page waits for an agent to send a run's output.
OUTPUT_WAIT_SECONDS = 15.0


@router.get("/d/{dep}/runs/{run_id}")
async def run_page(request: Request, dep: str, run_id: str, terminated: bool = False) -> Response:
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
    return page(
        request,
        "run.html",
        signed,
        dep=found,
        events=events,
        poll=poll,
        just_terminated=terminated,
        **context,
    )


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


@router.get("/d/{dep}/runs/{run_id}/terminate")
async def terminate_confirm(request: Request, dep: str, run_id: str) -> Response:
    """Terminate asks first: a page that says what stops, with the button that does it. It
    works without scripts, and no single click on the run page stops a run."""
    signed = require(request)
    found, run = await asyncio.gather(
        deployment(signed, dep), signed.api.get(api_path("deployments", dep, "runs", run_id))
    )
    if run["status"] in FINAL_RUN:
        return RedirectResponse(f"/d/{dep}/runs/{run_id}", status_code=303)
    return page(request, "terminate.html", signed, dep=found, run=run, section="runs")


@router.post("/d/{dep}/runs/{run_id}/terminate")
async def terminate(request: Request, dep: str, run_id: str) -> Response:
    signed = await require_post(request)
    if (await request.form()).get("confirmed") != "yes":
        # Not from the confirmation page (an old page's button, a hand-made form): ask.
        return RedirectResponse(f"/d/{dep}/runs/{run_id}/terminate", status_code=303)
    await signed.api.post(api_path("deployments", dep, "runs", run_id, "terminate"))
    return RedirectResponse(f"/d/{dep}/runs/{run_id}?terminated=1", status_code=303)


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
