"""``tether sensors list|on|off|ticks``: the deployment's sensors and their ticks."""

from collections.abc import Sequence
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tether_api.enums import TickStatus
from tether_api.sensors import SensorTick
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
from tether_cli.client import SENSORS, TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.declared import sensor_kind, status_cell
from tether_cli.render import (
    JsonOption,
    counted,
    errors,
    first_line,
    local_time,
    note,
    print_json,
    print_table,
    seconds_text,
    styled_status,
)

app = typer.Typer(help="Sensors declared by the code locations: list, turn on and off, ticks.")

# A tick may ask for up to 100 runs: the table names a few, --json has them all.
MOST_LISTED = 5

NameArgument = Annotated[str, name_argument(SENSORS)]
LocationOption = Annotated[str | None, location_option(SENSORS)]


def outcome(tick: SensorTick) -> str:
    """What a tick did, in one line of markup: runs created, keys already used, why not."""
    parts = []
    if tick.run_ids:
        parts.append(counted(len(tick.run_ids), "run"))
    if tick.run_keys_skipped:
        parts.append(counted(len(tick.run_keys_skipped), "run key") + " already used")
    if tick.skip_reason:
        parts.append(escape(first_line(tick.skip_reason)))
    if tick.error:
        parts.append(f"[red]{escape(first_line(tick.error))}[/]")
    return "; ".join(parts)


def _some(items: Sequence[str]) -> str:
    shown = "\n".join(escape(i) for i in items[:MOST_LISTED])
    more = len(items) - MOST_LISTED
    return shown + (f"\n[dim]and {more} more (--json lists all)[/]" if more > 0 else "")


@app.command("list")
def list_sensors(
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """List the sensors: kind, job, status (and whether a user set it), interval, next and
    last tick."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        found = client.list_automations(SENSORS)
    if json_output:
        print_json(found)
        return
    if not found:
        note("no sensors: a code location declares them with tether_sdk.sensor(...)")
        return
    table = Table("location", "name", "kind", "job", "status", "interval", "next tick", "last tick")
    for s in found:
        status = status_cell(s.status, s.status_set_by_user, s.present)
        last = "-"
        if s.last_tick:
            last = f"{local_time(s.last_tick.tick_time)} {styled_status(s.last_tick.status)}"
            if done := outcome(s.last_tick):
                last += f" {done}"
        table.add_row(
            escape(s.code_location),
            escape(s.name),
            escape(sensor_kind(s.kind, s.monitored_status, s.monitored_jobs)),
            escape(s.job or "-"),
            status,
            seconds_text(s.minimum_interval_seconds),
            local_time(s.next_tick_at) if s.next_tick_at else "-",
            last,
        )
    print_table(table)


# list, then on and off, then ticks: the order of `--help`.
add_switches(app, SENSORS, "it is evaluated at its interval from now on")


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
    """A sensor's ticks, newest first: the runs each created, the run keys that had made a
    run already, why it asked for none, or the error its function raised."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        found = find(client, SENSORS, name, location)
        ticks = client.automation_ticks(SENSORS, found.code_location, found.name, limit, status)
    if json_output:
        print_json(ticks)
        return
    if not ticks:
        note(f"sensor {found.name} has no ticks" + (f" {status.value}" if status else ""))
        return
    table = Table("tick", "status", "runs", "skipped run keys", "reason or error")
    for t in ticks:
        reason = f"[red]{escape(first_line(t.error))}[/]" if t.error else ""
        table.add_row(
            local_time(t.tick_time),
            styled_status(t.status),
            _some(t.run_ids) or "-",
            _some(t.run_keys_skipped) or "-",
            reason or escape(first_line(t.skip_reason)),
        )
    print_table(table)
    failed = [(t.tick_time, t.error, t.traceback) for t in ticks if t.status == TickStatus.FAILURE]
    print_tracebacks(failed, traceback)
