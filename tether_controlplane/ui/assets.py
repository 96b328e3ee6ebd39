"""The asset catalog: the filtered, paged list of a deployment's assets; an asset's page with
its definition, status, materialization history, numeric metadata as small charts, its
partitions' statuses, latest check results and lineage; and the Materialize form.

Asset keys may hold "/" (Dagster's ``raw/orders``): an asset's page is
``/d/{dep}/assets/{key:path}``, and every page of partitions or history is read from the API
one page at a time (an asset with 10,000 partitions never has them all loaded)."""

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from markupsafe import Markup

from tether_api.assets import MAX_ASSET_KEY, MAX_PARTITION_KEY, AssetPartitionStatus
from tether_api.partitions import cadence
from tether_controlplane.ui.api import ApiProblem
from tether_controlplane.ui.common import api_path, deployment, query_of, refusal
from tether_controlplane.ui.graph import Node, render_svg
from tether_controlplane.ui.render import page, parse_time
from tether_controlplane.ui.session import Signed, require, require_post
from tether_controlplane.ui.sparkline import Point, chart_svg

router = APIRouter()
PAGE_SIZE = 50
HISTORY_PAGE = 20
# Partitions per page of an asset's status strip (a year of days, or two weeks of hours),
# and of its table.
PARTITION_PAGE = 366
PARTITION_TABLE_PAGE = 100
# Past this many assets, the lineage graph shows the asset's direct neighbours only: a
# drawing of hundreds of boxes says less than the lists beside it.
LINEAGE_MAX_NODES = 60
PARTITION_STATUSES = [s.value for s in AssetPartitionStatus]
FilterQuery = Annotated[str, Query(max_length=MAX_ASSET_KEY)]
# The class the lineage graph gives the asset whose page it is on (graph.py: status-*).
THIS_ASSET = "this asset"


def asset_href(dep: str, key: str) -> str:
    """An asset's page: its key's "/" stay path separators (the route takes a path)."""
    return f"/d/{quote(dep, safe='')}/assets/{quote(key, safe='/')}"


@dataclass(frozen=True)
class ListFilters:
    """The asset list's filters as the page's query holds them."""

    group: str = ""
    location: str = ""
    prefix: str = ""
    after: str = ""

    def api_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        for key, value in (
            ("group", self.group),
            ("code_location", self.location),
            ("prefix", self.prefix),
            ("after", self.after),
        ):
            if value.strip():
                params[key] = value.strip()
        return params

    def query(self, **changes: str) -> str:
        return query_of({**asdict(self), **changes})


@router.get("/d/{dep}/assets")
async def assets_page(
    request: Request,
    dep: str,
    group: FilterQuery = "",
    location: FilterQuery = "",
    prefix: FilterQuery = "",
    after: FilterQuery = "",
) -> Response:
    signed = require(request)
    filters = ListFilters(group, location, prefix, after)
    found, locations, listed = await asyncio.gather(
        deployment(signed, dep),
        signed.api.get(api_path("deployments", dep, "code-locations")),
        _list(signed, dep, filters),
    )
    return page(
        request,
        "assets.html",
        signed,
        dep=found,
        locations=locations,
        assets=listed["assets"],
        next_cursor=listed.get("next_cursor"),
        problem=listed.get("problem"),
        filters=filters,
        section="assets",
    )


async def _list(signed: Signed, dep: str, filters: ListFilters) -> dict[str, Any]:
    """A page of assets, or none and what is wrong with the filters (shown above the list,
    the filters kept as typed)."""
    try:
        listed: dict[str, Any] = await signed.api.get(
            api_path("deployments", dep, "assets"), filters.api_params()
        )
    except ApiProblem as problem:
        if problem.status != 422:
            raise
        return {"assets": [], "problem": problem.detail}
    return listed


@dataclass
class MaterializeForm:
    """The Materialize form as typed: what a failed launch shows again, with the API's
    answer."""

    assets: list[str] = field(default_factory=list)
    partition: str = ""
    first: str = ""
    last: str = ""
    problem: str | None = None
    errors: list[str] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        """The API's body; ValueError names what is wrong with the form before asking."""
        if not self.assets:
            raise ValueError("Select at least one asset to materialize.")
        body: dict[str, Any] = {"assets": self.assets}
        partition, first, last = self.partition.strip(), self.first.strip(), self.last.strip()
        if partition and (first or last):
            raise ValueError(
                "Give one partition or a range, not both: clear the partition or the range."
            )
        if bool(first) != bool(last):
            missing = "From" if not first else "To"
            raise ValueError(f"A range needs both ends: fill in {missing}, or clear the range.")
        if partition:
            body["partition"] = partition
        elif first:
            body["partition_range"] = [first, last]
        return body


@dataclass(frozen=True)
class AssetQuery:
    """What an asset page shows beyond the asset: a page of history and of partitions."""

    before: str = ""  # history: the next_cursor of the newer page
    status: str = ""  # partitions: only this status
    after: str = ""  # partitions: the next_cursor of the previous page
    view: str = ""  # partitions: "" a strip of cells, "table" a table with their runs

    def query(self, **changes: str) -> str:
        return query_of({**asdict(self), **changes})


def partitions_text(partitions: dict[str, Any] | None) -> str:
    """A partitions definition in words: "daily from 2024-01-01 (UTC)", "static: a, b, c"."""
    if not partitions:
        return "not partitioned"
    kind = partitions["kind"]
    if kind == "time_window":
        found = cadence(partitions.get("cron"))
        every = found.unit if found else f"cron {partitions.get('cron')}"
        zone = partitions.get("timezone") or "UTC"
        return f"{every} from {partitions.get('start')} ({zone})"
    if kind == "multi":
        dims = ", ".join(
            f"{d['name']} ({partitions_text(d).split(':')[0]})"
            for d in partitions.get("dimensions", [])
        )
        return f"multi: {dims}"
    keys = partitions.get("keys") or []
    shown = ", ".join(keys[:5]) + (", …" if len(keys) > 5 else "")
    return f"{kind}: {shown}" if shown else kind


def _time(value: str) -> datetime:
    at = parse_time(value)
    assert at is not None
    return at


def metadata_charts(dep: str, series: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One small chart per numeric metadata entry, each point linking to its run."""
    charts = []
    for name, points in sorted(series.items()):
        drawn = [
            Point(
                at=_time(p["at"]),
                value=float(p["value"]),
                note=f"partition {p['partition']}" if p.get("partition") else "",
                href=f"/d/{quote(dep, safe='')}/runs/{quote(p['run_id'], safe='')}",
            )
            for p in points
        ]
        charts.append(
            {
                "name": name,
                "svg": Markup(chart_svg(drawn, f"{name} over time")),
                "count": len(drawn),
            }
        )
    return charts


def lineage_graph(dep: str, asset: dict[str, Any]) -> tuple[Markup, bool]:
    """The asset's lineage as a graph, and whether it was cut down to its direct neighbours
    (a large lineage)."""
    key = asset["key"]
    lineage = asset["lineage"]
    nodes = {n["key"]: n for n in lineage["nodes"]}
    edges = [(e["upstream"], e["downstream"]) for e in lineage["edges"]]
    cut = len(nodes) > LINEAGE_MAX_NODES
    if cut:
        keep = {key, *asset["deps"], *asset["downstream"]}
        nodes = {k: n for k, n in nodes.items() if k in keep}
        edges = [(u, d) for u, d in edges if u in nodes and d in nodes and key in (u, d)]
    deps: dict[str, list[str]] = {k: [] for k in nodes}
    for up, down in edges:
        deps.setdefault(down, []).append(up)
    drawn = [
        Node(
            id=k,
            label=k,
            deps=tuple(deps.get(k, ())),
            group=n.get("group"),
            status=THIS_ASSET if k == key else None,
            href=None if k == key or not n.get("declared", True) else asset_href(dep, k),
        )
        for k, n in nodes.items()
    ]
    return Markup(render_svg(drawn, f"Lineage of asset {key}")), cut


def neighbours(asset: dict[str, Any]) -> list[dict[str, str]]:
    """The assets the Materialize form offers besides this one: its declared upstream and
    downstream neighbours."""
    declared = {n["key"] for n in asset["lineage"]["nodes"] if n.get("declared", True)}
    found = [{"key": k, "side": "upstream"} for k in asset["deps"] if k in declared]
    found += [{"key": k, "side": "downstream"} for k in asset["downstream"] if k in declared]
    return found


async def _asset_context(signed: Signed, dep: str, key: str, shown: AssetQuery) -> dict[str, Any]:
    history_params: dict[str, Any] = {"key": key, "limit": HISTORY_PAGE}
    if shown.before.isdigit():
        history_params["before"] = shown.before
    found, asset, history = await asyncio.gather(
        deployment(signed, dep),
        signed.api.get(api_path("deployments", dep, "assets", key)),
        signed.api.get(api_path("deployments", dep, "asset-events"), history_params),
    )
    partitions: dict[str, Any] | None = None
    partitions_problem: str | None = None
    status = shown.status if shown.status in PARTITION_STATUSES else ""
    if asset.get("partitions") or asset.get("partitioned"):
        size = PARTITION_TABLE_PAGE if shown.view == "table" else PARTITION_PAGE
        params: dict[str, Any] = {"key": key, "limit": size}
        if status:
            params["status"] = status
        if shown.after:
            params["after"] = shown.after
        try:
            partitions = await signed.api.get(
                api_path("deployments", dep, "asset-partitions"), params
            )
        except ApiProblem as problem:
            # A stale cursor (the definition changed): say so where the partitions go.
            if problem.status != 422:
                raise
            partitions_problem = problem.detail
    graph, cut = lineage_graph(found["name"], asset)
    return {
        "dep": found,
        "asset": asset,
        "history": history,
        "partitions": partitions,
        "partitions_problem": partitions_problem,
        "partitions_text": partitions_text(asset.get("partitions")),
        "charts": metadata_charts(found["name"], asset.get("metadata_series") or {}),
        "lineage_svg": graph,
        "lineage_cut": cut,
        "neighbours": neighbours(asset) if asset.get("declared") else [],
        "shown": AssetQuery(
            shown.before, status, shown.after, "table" if shown.view == "table" else ""
        ),
        "statuses": PARTITION_STATUSES,
        "here": asset_href(found["name"], key),
        "section": "assets",
    }


@router.get("/d/{dep}/assets/{key:path}")
async def asset_page(
    request: Request,
    dep: str,
    key: str,
    before: FilterQuery = "",
    status: FilterQuery = "",
    after: Annotated[str, Query(max_length=MAX_PARTITION_KEY)] = "",
    partition: Annotated[str, Query(max_length=MAX_PARTITION_KEY)] = "",
    view: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    signed = require(request)
    if not key or len(key) > MAX_ASSET_KEY:
        raise ApiProblem(status=404, detail="no such asset")
    context = await _asset_context(signed, dep, key, AssetQuery(before, status, after, view))
    # A partition chosen on the page (a strip's cell) fills in the form.
    form = MaterializeForm(assets=[key], partition=partition)
    return page(request, "asset.html", signed, form=form, **context)


FormText = Annotated[str, Form(max_length=MAX_PARTITION_KEY)]


@router.post("/d/{dep}/asset-materializations")
async def materialize(
    request: Request,
    dep: str,
    key: Annotated[str, Form(max_length=MAX_ASSET_KEY)],
    assets: Annotated[list[str], Form(max_length=1000)] = [],  # noqa: B006 - FastAPI copies it
    partition: FormText = "",
    first: FormText = "",
    last: FormText = "",
) -> Response:
    """Launch a run of the selected assets (and partition or range), then show it; a refused
    launch shows the asset's page again with the API's answer and the form as it was."""
    signed = await require_post(request)
    form = MaterializeForm(
        assets=[a for a in assets if a], partition=partition, first=first, last=last
    )
    try:
        created = await signed.api.post(
            api_path("deployments", dep, "asset-materializations"), form.body()
        )
    except ValueError as exc:
        form.problem = str(exc)
    except ApiProblem as problem:
        form.problem, form.errors = refusal(problem)
    else:
        return RedirectResponse(f"/d/{dep}/runs/{quote(created['id'], safe='')}", status_code=303)
    context = await _asset_context(signed, dep, key, AssetQuery())
    return page(request, "asset.html", signed, status_code=422, form=form, **context)
