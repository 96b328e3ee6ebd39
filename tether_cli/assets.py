"""``tether assets``: the deployment's asset catalog (list, show, history, partitions) and
launching a materialization."""

from typing import Annotated, Any
from urllib.parse import quote

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from tether_api.assets import (
    AssetDetail,
    AssetEventPage,
    AssetList,
    AssetMaterializationCreate,
    AssetPartitionPage,
    AssetPartitionStatus,
    AssetStatus,
    AssetSummary,
)
from tether_api.enums import EventType
from tether_api.user_api import Run
from tether_cli.client import TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.paging import collect
from tether_cli.render import (
    JsonOption,
    UsageProblem,
    errors,
    local_time,
    note,
    parse_pairs,
    print_field,
    print_json,
    print_table,
    styled_status,
    validation_message,
)
from tether_cli.runs import TagOption

app = typer.Typer(
    help="The deployment's assets: their materializations, partitions and lineage; "
    "launch a materialization.",
    no_args_is_help=True,
)

KeyArgument = Annotated[str, typer.Argument(help="Asset key, e.g. raw/orders.", show_default=False)]
# One page of the list, as the API pages it (the CLI follows next_cursor for more).
LIST_PAGE = 1000
STATUS_STYLES: dict[str, str] = {
    AssetStatus.MATERIALIZED: "green",
    AssetStatus.FAILED: "red",
    AssetStatus.NEVER: "dim",
    AssetPartitionStatus.MISSING: "yellow",
}


def _status(status: str) -> str:
    style = STATUS_STYLES.get(status)
    return f"[{style}]{escape(status)}[/]" if style else styled_status(status)


def _get(client: TetherClient, model: type[Any], path: str, **params: Any) -> Any:
    kept = {k: v for k, v in params.items() if v is not None}
    # The client's own transport (retries, errors said plainly); the asset routes are ours.
    return client.call(model, "GET", path, params=kept)


def _asset_path(key: str) -> str:
    # A key's "/" stays: the route takes the key as a path ({key:path}).
    return "/assets/" + quote(key, safe="/")


def _connect(url: str | None, token: str | None, deployment: str | None) -> TetherClient:
    return TetherClient(Connection.resolve(url, token, deployment))


@app.command("list")
def list_assets(
    group: Annotated[str | None, typer.Option("--group", help="Only this group's assets.")] = None,
    location: Annotated[
        str | None, typer.Option("--location", help="Only this code location's assets.")
    ] = None,
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="Only keys starting with it.")
    ] = None,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """List the deployment's assets with their last materialization and status."""
    with errors(), _connect(url, token, deployment) as client:

        def fetch(after: str | None, size: int) -> tuple[list[AssetSummary], str | None]:
            page: AssetList = _get(
                client,
                AssetList,
                "/assets",
                group=group,
                code_location=location,
                prefix=prefix,
                after=after,
                limit=size,
            )
            return page.assets, page.next_cursor

        found = collect(fetch, None, LIST_PAGE)
        if json_output:
            print_json(found)
            return
        if not found:
            note("no assets match")
            return
        table = Table("key", "location", "group", "status", "last materialized", "partition", "run")
        for a in found:
            last = a.last_materialization
            table.add_row(
                escape(a.key) + ("" if a.declared else " [dim](undeclared)[/]"),
                escape(a.code_location or "-"),
                escape(a.group or "-"),
                _status(a.status),
                local_time(last.at if last else None),
                escape(last.partition or "-") if last else "-",
                last.run_id if last else "-",
            )
        print_table(table)


@app.command()
def show(
    key: KeyArgument,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """One asset: definition, status, lineage, checks, partition counts."""
    with errors(), _connect(url, token, deployment) as client:
        asset: AssetDetail = _get(client, AssetDetail, _asset_path(key))
    if json_output:
        print_json(asset)
        return
    print_field("key", escape(asset.key) + ("" if asset.declared else " (no longer declared)"))
    print_field("location", escape(asset.code_location or "-"))
    print_field("group", escape(asset.group or "-"))
    if asset.description:
        print_field("description", escape(asset.description))
    print_field("status", _status(asset.status))
    for label, outcome in (
        ("materialized", asset.last_materialization),
        ("failed", asset.last_failure),
    ):
        if outcome is not None:
            where = f" partition {outcome.partition}" if outcome.partition else ""
            print_field(label, escape(f"{local_time(outcome.at)}{where} by run {outcome.run_id}"))
    print_field(
        "counts",
        f"{asset.materializations} materializations, {asset.observations} observations, "
        f"{asset.failures} failures",
    )
    print_field("jobs", escape(", ".join(asset.jobs) or "-"))
    print_field("upstream", escape(", ".join(asset.deps) or "-"))
    print_field("downstream", escape(", ".join(asset.downstream) or "-"))
    if asset.partition_counts is not None:
        c = asset.partition_counts
        print_field(
            "partitions",
            f"{c.total} ({c.materialized} materialized, {c.failed} failed, {c.missing} missing)",
        )
    for check in asset.checks:
        state = (
            "not evaluated" if check.passed is None else ("passed" if check.passed else "failed")
        )
        print_field("check", escape(f"{check.name}: {state}"))
    for name, points in sorted(asset.metadata_series.items()):
        print_field(
            "metadata", escape(f"{name}: " + ", ".join(f"{p.value:g}" for p in points[-10:]))
        )


@app.command()
def history(
    key: KeyArgument,
    type_: Annotated[
        list[EventType],
        typer.Option(
            "--type",
            case_sensitive=False,
            metavar="TYPE",
            help="Only events of this type (ASSET_MATERIALIZATION, ASSET_OBSERVATION, "
            "ASSET_CHECK_EVALUATION); repeatable.",
        ),
    ] = [],  # noqa: B006 - Typer copies defaults
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="At most N events.")] = 20,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """The asset's materializations, observations and check results, newest first."""
    with errors(), _connect(url, token, deployment) as client:
        params: dict[str, Any] = {"key": key, "limit": limit}
        if type_:
            params["type"] = [t.value for t in type_]
        page: AssetEventPage = _get(client, AssetEventPage, "/asset-events", **params)
    if json_output:
        print_json(page.events)
        return
    if not page.events:
        note(f"asset {key} has no events yet")
        return
    table = Table("time", "type", "partition", "run", "metadata")
    for e in page.events:
        kind = e.type.value.removeprefix("ASSET_").lower()
        if e.check is not None:
            kind += f" {e.check} " + ("passed" if e.passed else "failed")
        table.add_row(
            local_time(e.timestamp),
            escape(kind),
            escape(e.partition or "-"),
            e.run_id,
            escape(", ".join(f"{k}={v}" for k, v in e.metadata.items())),
        )
    print_table(table)


@app.command()
def partitions(
    key: KeyArgument,
    status: Annotated[
        AssetPartitionStatus | None,
        typer.Option("--status", case_sensitive=False, help="Only partitions in this status."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="At most N partitions.")
    ] = 100,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """The asset's partitions with their status (MATERIALIZED, FAILED, MISSING)."""
    with errors(), _connect(url, token, deployment) as client:
        page: AssetPartitionPage = _get(
            client,
            AssetPartitionPage,
            "/asset-partitions",
            key=key,
            status=status.value if status else None,
            limit=limit,
        )
    if json_output:
        print_json(page)
        return
    c = page.counts
    note(
        f"{c.total} partitions: {c.materialized} materialized, {c.failed} failed, "
        f"{c.missing} missing"
    )
    if not page.partitions:
        note("no partitions match")
        return
    table = Table("partition", "status", "at", "run")
    for p in page.partitions:
        table.add_row(escape(p.key), _status(p.status), local_time(p.at), p.run_id or "-")
    print_table(table)
    if page.next_cursor is not None:
        note(f"more after {page.next_cursor} (--limit to see more)")


def parse_range(text: str) -> tuple[str, str]:
    """FIRST..LAST of a --range option (here and `tether backfill launch`)."""
    first, sep, last = text.partition("..")
    if not sep or not first or not last:
        raise UsageProblem(f"--range {text!r} is not FIRST..LAST (e.g. 2026-01-01..2026-01-31)")
    return first, last


@app.command()
def materialize(
    keys: Annotated[
        list[str], typer.Argument(help="The asset keys to materialize.", show_default=False)
    ],
    partition: Annotated[
        str | None, typer.Option("--partition", help="The partition key to materialize.")
    ] = None,
    key_range: Annotated[
        str | None,
        typer.Option("--range", help="FIRST..LAST: every partition between them, in one run."),
    ] = None,
    tag: TagOption = [],  # noqa: B006 - Typer copies defaults
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Launch a run materializing the assets and print its ID (alone on stdout) and URL."""
    with errors():
        if partition is not None and key_range is not None:
            raise UsageProblem("give --partition or --range, not both")
        try:
            body = AssetMaterializationCreate(
                assets=keys,
                partition=partition,
                partition_range=parse_range(key_range) if key_range is not None else None,
                tags=parse_pairs(tag, "--tag"),
            )
        except ValidationError as exc:
            raise UsageProblem(validation_message(exc)) from exc
        connection = Connection.resolve(url, token, deployment)
        with TetherClient(connection) as client:
            run = client.call(
                Run, "POST", "/asset-materializations", json=body.model_dump(mode="json")
            )
        typer.echo(run.id)
        note(f"run {run.id}: {run.code_location}/{run.job} {run.status.value}")
        dep = quote(connection.deployment, safe="")
        note(f"{connection.url.rstrip('/')}/d/{dep}/runs/{run.id}")
