"""``tether backfill``: launch, list, show, cancel and resume backfills."""

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from tether_api.backfills import (
    Backfill,
    BackfillCancel,
    BackfillCreate,
    BackfillPage,
    BackfillPartitionPage,
    BackfillPartitionStatus,
    BackfillStatus,
    PartitionFilter,
)
from tether_cli.assets import parse_range
from tether_cli.client import TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.paging import collect
from tether_cli.render import (
    JsonOption,
    UsageProblem,
    errors,
    local_time,
    note,
    out,
    parse_pairs,
    print_field,
    print_json,
    print_table,
    styled_status,
    validation_message,
)
from tether_cli.runs import load_config_file

app = typer.Typer(
    help="Launch a job's partitions as runs (a backfill), follow, cancel and resume them.",
    no_args_is_help=True,
)

BackfillIdArgument = Annotated[str, typer.Argument(help="Backfill ID.", show_default=False)]
MAX_PAGE_BACKFILLS = 200
MAX_PAGE_PARTITIONS = 1000


class BackfillApi:
    """The backfill calls, on a TetherClient's connection (its transport, retries and error
    messages)."""

    def __init__(self, client: TetherClient) -> None:
        self.client = client

    def _path(self, backfill_id: str = "", tail: str = "") -> str:
        return "/backfills" + (f"/{quote(backfill_id, safe='')}" if backfill_id else "") + tail

    def create(self, body: BackfillCreate) -> Backfill:
        payload = body.model_dump(mode="json", exclude_defaults=True)
        return self.client.call(Backfill, "POST", self._path(), json=payload)

    def get(self, backfill_id: str) -> Backfill:
        return self.client.call(Backfill, "GET", self._path(backfill_id))

    def list_all(self, statuses: list[BackfillStatus], limit: int) -> list[Backfill]:
        def fetch(cursor: str | None, size: int) -> tuple[list[Backfill], str | None]:
            params: dict[str, Any] = {"status": statuses, "limit": size}
            if cursor is not None:
                params["cursor"] = cursor
            page = self.client.call(BackfillPage, "GET", self._path(), params=params)
            return page.backfills, page.next_cursor

        return collect(fetch, limit, MAX_PAGE_BACKFILLS)

    def partitions(
        self, backfill_id: str, statuses: list[BackfillPartitionStatus], limit: int
    ) -> BackfillPartitionPage:
        params = {"status": statuses, "limit": min(limit, MAX_PAGE_PARTITIONS)}
        path = self._path(backfill_id, "/partitions")
        return self.client.call(BackfillPartitionPage, "GET", path, params=params)

    def cancel(self, backfill_id: str, terminate: bool) -> Backfill:
        body = BackfillCancel(terminate=terminate).model_dump(mode="json")
        return self.client.call(Backfill, "POST", self._path(backfill_id, "/cancel"), json=body)

    def resume(self, backfill_id: str) -> Backfill:
        return self.client.call(Backfill, "POST", self._path(backfill_id, "/resume"))


def _counts(bf: Backfill) -> str:
    c = bf.counts
    parts = [f"{c.success} succeeded", f"{c.failure} failed", f"{c.launched} running"]
    parts += [f"{c.pending} pending"] + ([f"{c.canceled} canceled"] if c.canceled else [])
    return ", ".join(parts)


@app.command()
def launch(
    location: Annotated[
        str | None, typer.Argument(help="Code location (or use --asset).", show_default=False)
    ] = None,
    job: Annotated[
        str | None, typer.Argument(help="Partitioned job (or use --asset).", show_default=False)
    ] = None,
    asset: Annotated[
        list[str],
        typer.Option(
            "--asset",
            help="An asset to materialize (repeatable): the smallest job that makes them all "
            "runs them, selecting only these.",
        ),
    ] = [],  # noqa: B006 - Typer copies defaults
    partition: Annotated[
        list[str], typer.Option("--partition", help="A partition key (repeatable).")
    ] = [],  # noqa: B006
    key_range: Annotated[
        str | None,
        typer.Option("--range", help="Every partition from FIRST to LAST: FIRST..LAST."),
    ] = None,
    all_partitions: Annotated[
        bool, typer.Option("--all", help="Every partition the job has now.")
    ] = False,
    missing: Annotated[
        bool,
        typer.Option(
            "--missing", help="Only the partitions never made (of all, or of those named)."
        ),
    ] = False,
    failed: Annotated[
        bool,
        typer.Option(
            "--failed",
            help="Only the partitions whose latest attempt failed (of all, or of those named).",
        ),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Run config of every run: .json (or .yaml/.yml with PyYAML installed).",
            dir_okay=False,
        ),
    ] = None,
    config_json: Annotated[
        str | None,
        typer.Option("--config-json", help="Run config as JSON; overrides --config's keys."),
    ] = None,
    tag: Annotated[
        list[str], typer.Option("--tag", help="A tag of every run, KEY=VALUE; repeatable.")
    ] = [],  # noqa: B006
    max_in_flight: Annotated[
        int | None,
        typer.Option(
            "--max-in-flight",
            min=1,
            help="The most of its runs not ended at once (default: the deployment's run "
            "concurrency limit).",
        ),
    ] = None,
    runs_per_minute: Annotated[
        float | None,
        typer.Option("--runs-per-minute", min=0.01, help="Launch at most this many a minute."),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Launch a backfill and print its ID (alone on stdout: ID=$(tether backfill launch ...)).

    Name the job (LOCATION JOB) or the assets (--asset), and the partitions: --partition,
    --range, --all, or --missing / --failed (alone: among all of them)."""
    with errors():
        if missing and failed:
            raise UsageProblem("give --missing or --failed, not both")
        if (location is None) != (job is None):
            raise UsageProblem("name the job as LOCATION JOB (both), or the assets with --asset")
        if location is None and not asset:
            raise UsageProblem("name what to backfill: LOCATION JOB, or --asset KEY")
        run_config = load_config_file(config) if config is not None else {}
        if config_json is not None:
            try:
                loaded = json.loads(config_json)
            except json.JSONDecodeError as exc:
                raise UsageProblem(f"--config-json: invalid JSON: {exc.msg}") from exc
            if not isinstance(loaded, dict):
                raise UsageProblem("--config-json: the run config must be a JSON object")
            run_config.update(loaded)
        only = PartitionFilter.MISSING if missing else PartitionFilter.FAILED if failed else None
        try:
            body = BackfillCreate(
                code_location=location,
                job=job,
                assets=asset or None,
                partitions=partition or None,
                partition_range=parse_range(key_range) if key_range is not None else None,
                all_partitions=all_partitions,
                only=only,
                run_config=run_config,
                tags=parse_pairs(tag, "--tag"),
                max_in_flight=max_in_flight,
                runs_per_minute=runs_per_minute,
            )
        except ValidationError as exc:
            raise UsageProblem(validation_message(exc)) from exc
        with TetherClient(Connection.resolve(url, token, deployment)) as client:
            bf = BackfillApi(client).create(body)
        typer.echo(bf.id)
        note(
            f"backfill {bf.id}: {bf.partition_count} partition(s) of {bf.code_location}/{bf.job} "
            f"({bf.selection}) {bf.status.value}; follow it with `tether backfill show {bf.id}`"
        )


@app.command("list")
def list_backfills(
    status: Annotated[
        list[BackfillStatus],
        typer.Option(
            "--status",
            case_sensitive=False,
            metavar="STATUS",
            help="Only this status (requested, running, completed, completed_with_failures, "
            "canceling, canceled); repeatable.",
        ),
    ] = [],  # noqa: B006
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N backfills.")] = 20,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """List backfills, newest first."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        found = BackfillApi(client).list_all(status, limit)
    if json_output:
        print_json(found)
        return
    if not found:
        note("no backfills match")
        return
    table = Table("id", "job", "partitions", "status", "progress", "created")
    for bf in found:
        table.add_row(
            bf.id,
            escape(f"{bf.code_location}/{bf.job}"),
            escape(f"{bf.partition_count} ({bf.selection})"),
            styled_status(bf.status),
            escape(_counts(bf)),
            local_time(bf.created_at),
        )
    print_table(table)


@app.command()
def show(
    backfill_id: BackfillIdArgument,
    status: Annotated[
        list[BackfillPartitionStatus],
        typer.Option(
            "--status", case_sensitive=False, help="Only partitions in this status; repeatable."
        ),
    ] = [],  # noqa: B006
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_PAGE_PARTITIONS, help="At most N partitions.")
    ] = 50,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Show a backfill: its job, how its partitions were chosen, its progress, and its
    partitions with their status and run (the first --limit of them)."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        api = BackfillApi(client)
        bf = api.get(backfill_id)
        page = api.partitions(backfill_id, status, limit)
    if json_output:
        typer.echo(
            json.dumps(
                {
                    "backfill": bf.model_dump(mode="json"),
                    "partitions": [p.model_dump(mode="json") for p in page.partitions],
                },
                indent=2,
            )
        )
        return
    print_field("backfill", escape(bf.id))
    print_field("status", styled_status(bf.status))
    if bf.message:
        print_field("message", escape(bf.message))
    print_field("job", escape(f"{bf.code_location}/{bf.job}"))
    if bf.assets:
        print_field("assets", escape(", ".join(bf.assets)))
    print_field("partitions", escape(f"{bf.partition_count} ({bf.selection})"))
    print_field("progress", escape(_counts(bf)))
    pace = f", at most {bf.runs_per_minute:g} a minute" if bf.runs_per_minute else ""
    print_field("in flight", f"at most {bf.max_in_flight}{pace}")
    print_field("created", f"{local_time(bf.created_at)} by {escape(bf.created_by)}")
    print_field("ended", local_time(bf.ended_at))
    tags = ", ".join(f"{k}={v}" for k, v in sorted(bf.tags.items()))
    print_field("tags", escape(tags or "-"))
    out.print()
    if not page.partitions:
        note("no partition matches")
        return
    table = Table("#", "partition", "status", "attempt", "run", "error")
    for p in page.partitions:
        table.add_row(
            str(p.position),
            escape(p.key),
            styled_status(p.status),
            str(p.attempt),
            p.run_id or "-",
            escape(p.error or ""),
        )
    print_table(table)
    if page.next_cursor is not None:
        note(f"(the first {len(page.partitions)} shown: raise --limit, or filter with --status)")


@app.command()
def cancel(
    backfill_id: BackfillIdArgument,
    terminate: Annotated[
        bool,
        typer.Option("--terminate", help="Terminate its running runs too (else they finish)."),
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Launch no more of a backfill's runs; with --terminate, stop those running too."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        bf = BackfillApi(client).cancel(backfill_id, terminate)
    out.print(f"backfill {escape(bf.id)} {styled_status(bf.status)}: {escape(_counts(bf))}")


@app.command()
def resume(
    backfill_id: BackfillIdArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Launch a backfill's failed and canceled partitions again; nothing else."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        bf = BackfillApi(client).resume(backfill_id)
    out.print(f"backfill {escape(bf.id)} {styled_status(bf.status)}: {escape(_counts(bf))}")
