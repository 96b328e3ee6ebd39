"""``tether schedules list|on|off|ticks``: the deployment's schedules and their ticks."""

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tether_api.enums import TickStatus
from tether_cli.automations import (
    LimitOption,
    StatusOption,
    TracebackOption,
    add_switches,
    find,
    location_option,
    name_argument,
    print_tracebacks,
)
from tether_cli.client import SCHEDULES, TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.declared import status_cell
from tether_cli.render import (
    JsonOption,
    errors,
    local_time,
    note,
    print_json,
    print_table,
    styled_status,
)

app = typer.Typer(help="Schedules declared by the code locations: list, turn on and off, ticks.")

NameArgument = Annotated[str, name_argument(SCHEDULES)]
LocationOption = Annotated[str | None, location_option(SCHEDULES)]


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
        found = client.list_automations(SCHEDULES)
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


# list, then on and off, then ticks: the order of `--help`.
add_switches(app, SCHEDULES, "its ticks from now on create runs")


@app.command("ticks")
def list_ticks(
    name: NameArgument,
    location: LocationOption = None,
    limit: LimitOption = 20,
    status: StatusOption = None,
    traceback: TracebackOption = False,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """A schedule's ticks, newest first: the run each created, or why it created none."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        found = find(client, SCHEDULES, name, location)
        ticks = client.automation_ticks(SCHEDULES, found.code_location, found.name, limit, status)
    if json_output:
        print_json(ticks)
        return
    if not ticks:
        note(f"schedule {found.name} has no ticks" + (f" {status.value}" if status else ""))
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
