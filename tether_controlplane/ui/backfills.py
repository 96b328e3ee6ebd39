"""Backfills: the paged list, the Launch backfill form, and a backfill's page with its counts,
its partitions' statuses (paged, filtered, each linked to its run), Cancel and Resume.

A backfill of 10,000 partitions is read a page of partitions at a time; its counts come with
the backfill itself, so no page ever loads them all."""

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from tether_api.backfills import (
    ACTIVE_BACKFILL_STATUSES,
    MAX_BACKFILL_PARTITIONS,
    BackfillPartitionStatus,
    BackfillStatus,
)
from tether_api.wire import MAX_RUN_CONFIG_BYTES
from tether_controlplane.ui.api import ApiProblem
from tether_controlplane.ui.common import api_path, deployment, query_of, refusal
from tether_controlplane.ui.launchpad import parse_config, parse_tags
from tether_controlplane.ui.render import page
from tether_controlplane.ui.session import Signed, require, require_post

router = APIRouter()
PAGE_SIZE = 25
PARTITION_PAGE = 100
STATUSES = [s.value for s in BackfillStatus]
PARTITION_STATUSES = [s.value for s in BackfillPartitionStatus]
ACTIVE = frozenset(s.value for s in ACTIVE_BACKFILL_STATUSES)
FilterQuery = Annotated[str, Query(max_length=100)]
# Partition modes of the launch form, and what "only" may keep of them.
MODES = ("range", "list", "all")
ONLY = ("", "missing", "failed")
# The form's job choice is "location/job": a location name holds no "/".
JOB_SEPARATOR = "/"


def backfill_href(dep: str, backfill_id: str) -> str:
    return f"/d/{quote(dep, safe='')}/backfills/{quote(backfill_id, safe='')}"


@router.get("/d/{dep}/backfills")
async def backfills_page(
    request: Request, dep: str, status: FilterQuery = "", cursor: FilterQuery = ""
) -> Response:
    signed = require(request)
    shown = status if status in STATUSES else ""
    params: dict[str, Any] = {"limit": PAGE_SIZE}
    if shown:
        params["status"] = shown
    if cursor.isdigit():
        params["cursor"] = cursor
    found, listed = await asyncio.gather(
        deployment(signed, dep), signed.api.get(api_path("deployments", dep, "backfills"), params)
    )
    return page(
        request,
        "backfills.html",
        signed,
        dep=found,
        backfills=listed["backfills"],
        next_cursor=listed.get("next_cursor"),
        status_filter=shown,
        cursor=cursor if cursor.isdigit() else "",
        query=lambda **changes: query_of({"status": shown, "cursor": cursor, **changes}),
        statuses=STATUSES,
        active=ACTIVE,
        section="backfills",
    )


@dataclass
class LaunchForm:
    """The Launch backfill form as typed: what a refused launch shows again, with the
    API's answer."""

    target: str = "job"  # "job" or "assets"
    job: str = ""  # "location/job"
    assets: str = ""  # asset keys, one a line
    mode: str = "range"  # see MODES
    first: str = ""
    last: str = ""
    keys: str = ""  # partition keys, one a line
    only: str = ""  # see ONLY
    max_in_flight: str = ""
    runs_per_minute: str = ""
    config: str = ""
    tags: str = ""
    problem: str | None = None
    errors: list[str] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        """The API's body; ValueError names the field that is wrong and how to fix it."""
        body: dict[str, Any] = {}
        if self.target == "assets":
            assets = _lines(self.assets)
            if not assets:
                raise ValueError("Assets: name at least one asset key, one a line.")
            body["assets"] = assets
        else:
            location, sep, job = self.job.partition(JOB_SEPARATOR)
            if not sep or not location or not job:
                raise ValueError("Job: choose a partitioned job, or backfill assets instead.")
            body["code_location"], body["job"] = location, job
        if self.mode == "range":
            first, last = self.first.strip(), self.last.strip()
            if first or last or not self.only:
                if not first or not last:
                    raise ValueError(
                        "Range: fill in both From and To (the first and last partition keys)."
                    )
                body["partition_range"] = [first, last]
        elif self.mode == "list":
            keys = _lines(self.keys)
            if not keys:
                raise ValueError("Partitions: list at least one partition key, one a line.")
            if len(keys) > MAX_BACKFILL_PARTITIONS:
                raise ValueError(
                    f"Partitions: {len(keys)} keys are more than one backfill launches "
                    f"({MAX_BACKFILL_PARTITIONS}): split them"
                )
            body["partitions"] = keys
        else:
            body["all_partitions"] = True
        if self.only:
            body["only"] = self.only
        if self.max_in_flight.strip():
            body["max_in_flight"] = _number("Max in flight", self.max_in_flight, int)
        if self.runs_per_minute.strip():
            body["runs_per_minute"] = _number("Runs per minute", self.runs_per_minute, float)
        try:
            body["run_config"] = parse_config(self.config, "yaml")
        except ValueError as exc:
            raise ValueError(f"Run config: {exc}") from None
        try:
            body["tags"] = parse_tags(self.tags)
        except ValueError as exc:
            raise ValueError(f"Tags: {exc}") from None
        return body


def _lines(text: str) -> list[str]:
    """One item a line (commas also separate them), blank ones left out."""
    return [item.strip() for line in text.splitlines() for item in line.split(",") if item.strip()]


def _number(label: str, text: str, kind: type[int] | type[float]) -> int | float:
    try:
        value = kind(text.strip())
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(
            f"{label}: {text.strip()!r} is not {what}; clear it for the default"
        ) from None
    return value


async def _jobs(signed: Signed, dep: str) -> list[dict[str, Any]]:
    """The partitioned jobs the form offers, by location."""
    locations = await signed.api.get(api_path("deployments", dep, "code-locations"))
    return [
        {
            "value": f"{loc['name']}{JOB_SEPARATOR}{job['name']}",
            "location": loc["name"],
            "job": job["name"],
        }
        for loc in locations
        for job in (loc.get("snapshot") or {}).get("jobs", [])
        if job.get("partitions")
    ]


async def _launch_page(
    request: Request, signed: Signed, dep: str, form: LaunchForm, status_code: int = 200
) -> Response:
    found, jobs = await asyncio.gather(deployment(signed, dep), _jobs(signed, dep))
    return page(
        request,
        "backfill_new.html",
        signed,
        status_code=status_code,
        dep=found,
        jobs=jobs,
        form=form,
        section="backfills",
    )


@router.get("/d/{dep}/backfills/new")
async def launch_form(
    request: Request,
    dep: str,
    location: FilterQuery = "",
    job: FilterQuery = "",
    assets: Annotated[str, Query(max_length=4000)] = "",
) -> Response:
    """The form, filled in from the page that links to it (an asset's, a location's)."""
    signed = require(request)
    form = LaunchForm()
    if assets:
        form.target, form.assets = "assets", assets
    elif location and job:
        form.job = f"{location}{JOB_SEPARATOR}{job}"
    return await _launch_page(request, signed, dep, form)


# Room for a run config at its size limit, written out with indentation and comments.
Text = Annotated[str, Form(max_length=4 * MAX_RUN_CONFIG_BYTES)]
Short = Annotated[str, Form(max_length=1000)]


@router.post("/d/{dep}/backfills")
async def launch(
    request: Request,
    dep: str,
    target: Short = "job",
    job: Short = "",
    assets: Text = "",
    mode: Short = "range",
    first: Short = "",
    last: Short = "",
    keys: Text = "",
    only: Short = "",
    max_in_flight: Short = "",
    runs_per_minute: Short = "",
    config: Text = "",
    tags: Text = "",
) -> Response:
    signed = await require_post(request)
    form = LaunchForm(
        target="assets" if target == "assets" else "job",
        job=job,
        assets=assets,
        mode=mode if mode in MODES else "range",
        first=first,
        last=last,
        keys=keys,
        only=only if only in ONLY else "",
        max_in_flight=max_in_flight,
        runs_per_minute=runs_per_minute,
        config=config,
        tags=tags,
    )
    try:
        created = await signed.api.post(api_path("deployments", dep, "backfills"), form.body())
    except ValueError as exc:
        form.problem = str(exc)
    except ApiProblem as problem:
        form.problem, form.errors = refusal(problem)
    else:
        return RedirectResponse(backfill_href(dep, created["id"]), status_code=303)
    return await _launch_page(request, signed, dep, form, status_code=422)


@dataclass(frozen=True)
class PartitionQuery:
    status: str = ""
    after: str = ""

    def query(self, **changes: str) -> str:
        return query_of({**asdict(self), **changes})


async def _backfill_context(
    signed: Signed, dep: str, backfill_id: str, shown: PartitionQuery
) -> dict[str, Any]:
    path = ("deployments", dep, "backfills", backfill_id)
    params: dict[str, Any] = {"limit": PARTITION_PAGE}
    if shown.status:
        params["status"] = shown.status
    if shown.after:
        params["after"] = shown.after
    found, backfill, partitions = await asyncio.gather(
        deployment(signed, dep),
        signed.api.get(api_path(*path)),
        signed.api.get(api_path(*path, "partitions"), params),
    )
    return {
        "dep": found,
        "backfill": backfill,
        "partitions": partitions,
        "shown": shown,
        "statuses": PARTITION_STATUSES,
        "live": backfill["status"] in ACTIVE,
        "runs_query": query_of({"tag": f"tether/backfill={backfill['id']}"}),
        "here": backfill_href(found["name"], backfill["id"]),
        "section": "backfills",
    }


@router.get("/d/{dep}/backfills/{backfill_id}")
async def backfill_page(
    request: Request,
    dep: str,
    backfill_id: str,
    status: FilterQuery = "",
    after: FilterQuery = "",
    done: FilterQuery = "",
) -> Response:
    signed = require(request)
    shown = PartitionQuery(
        status if status in PARTITION_STATUSES else "", after if after.isdigit() else ""
    )
    context = await _backfill_context(signed, dep, backfill_id, shown)
    if request.headers.get("hx-request") and not context["live"]:
        # A live refresh that finds the backfill ended: reload the whole page once, so its
        # buttons (Cancel, Resume) follow the new status.
        return Response(status_code=200, headers={"HX-Refresh": "true"})
    # What the last button did, as `tether backfill cancel|resume` says it.
    notices = {"canceled": "Cancel requested", "resumed": "Resumed"}
    return page(request, "backfill.html", signed, notice=notices.get(done), problem=None, **context)


@router.post("/d/{dep}/backfills/{backfill_id}/{action}")
async def backfill_action(request: Request, dep: str, backfill_id: str, action: str) -> Response:
    """Cancel (``terminate``: its running runs too) or Resume, then back to its page; a
    refusal (it has completed, nothing to resume) is said on the page."""
    signed = await require_post(request)
    path = ("deployments", dep, "backfills", backfill_id)
    if action == "cancel":
        terminate = (await request.form()).get("terminate") == "yes"
        call = signed.api.post(api_path(*path, "cancel"), {"terminate": terminate})
        done = "canceled"
    elif action == "resume":
        call = signed.api.post(api_path(*path, "resume"))
        done = "resumed"
    else:
        raise ApiProblem(status=404, detail=f"no such action: {action} (cancel or resume)")
    try:
        await call
    except ApiProblem as problem:
        if problem.status not in (409, 422):
            raise
        context = await _backfill_context(signed, dep, backfill_id, PartitionQuery())
        return page(
            request,
            "backfill.html",
            signed,
            status_code=problem.status,
            notice=None,
            problem=problem.detail,
            **context,
        )
    return RedirectResponse(f"{backfill_href(dep, backfill_id)}?done={done}", status_code=303)
