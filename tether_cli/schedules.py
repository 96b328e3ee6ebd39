"""``tether schedules list|on|off|ticks``: the deployment's schedules and their ticks."""

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tether_api.enums import TickStatus
from tether_api.schedules import Schedule
from tether_cli.client import TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.declared import pick, status_cell
from tether_cli.render import (
    JsonOption,
    errors,
    local_time,
    note,
    out,
    print_json,
    print_table,
    styled_status,
)
from tether_cli.sensors import TracebackOption, print_tracebacks

app = typer.Typer(help="Schedules declared by the code locations: list, turn on and off, ticks.")

NameArgument = Annotated[str, typer.Argument(help="The schedule's name.")]
LocationOption = Annotated[
    str | None,
    typer.Option(
        "--location",
        envvar="TETHER_SCHEDULE_LOCATION",
        help="Its code location; needed only when two locations declare the same name.",
    ),
]


def _find(client: TetherClient, name: str, location: str | None) -> Schedule:
    return pick(client.list_schedules(), name, location, "schedule")


@app.command("list")
def list_schedules(
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """List the schedules: status (and whether a user set it), cron and time zone, job, next
    and last tick."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        found = client.list_schedules()
    if json_output:
        print_json(found)
        return
    if not found:
        note("no schedules: a code location declares them with tether_sdk.schedule(...)")
        return
    table = Table("location", "name", "status", "cron", "job", "next tick", "last tick")
    for s in found:
        status = status_cell(s.status, s.status_set_by_user, s.present, s.error)
        last = (
            f"{local_time(s.last_tick.tick_time)} {styled_status(s.last_tick.status)}"
            if s.last_tick
            else "-"
        )
        table.add_row(
            escape(s.code_location),
            escape(s.name),
            status,
            escape(f"{s.cron} ({s.timezone})"),
            escape(s.job),
            local_time(s.next_tick_at) if s.next_tick_at else "-",
            last,
        )
    print_table(table)


def _switch(
    name: str,
    location: str | None,
    on: bool,
    url: str | None,
    token: str | None,
    deployment: str | None,
) -> None:
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        found = _find(client, name, location)
        changed = client.set_schedule(found.code_location, found.name, on)
    nxt = f"; next tick {local_time(changed.next_tick_at)}" if changed.next_tick_at else ""
    out.print(f"schedule {escape(changed.name)} {styled_status(changed.status)}{nxt}")


@app.command("on")
def turn_on(
    name: NameArgument,
    location: LocationOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Turn a schedule on: its ticks from now on create runs (redeploys keep it on)."""
    _switch(name, location, True, url, token, deployment)


@app.command("off")
def turn_off(
    name: NameArgument,
    location: LocationOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Turn a schedule off (redeploys keep it off)."""
    _switch(name, location, False, url, token, deployment)


@app.command("ticks")
def list_ticks(
    name: NameArgument,
    location: LocationOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200, help="How many.")] = 20,
    traceback: TracebackOption = False,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """A schedule's ticks, newest first: the run each created, or why it created none."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        found = _find(client, name, location)
        ticks = client.schedule_ticks(found.code_location, found.name, limit)
    if json_output:
        print_json(ticks)
        return
    table = Table("tick", "outcome", "run", "error")
    for t in ticks:
        table.add_row(
            local_time(t.tick_time),
            styled_status(t.status),
            escape(t.run_id or "-"),
            escape(t.error or ""),
        )
    print_table(table)
    # A schedule whose run config is code fails with its function's traceback.
    failed = [(t.tick_time, t.error, t.traceback) for t in ticks if t.status == TickStatus.FAILURE]
    print_tracebacks(failed, traceback)
