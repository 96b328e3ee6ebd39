"""What ``tether schedules`` and ``tether sensors`` share: the options that find one
(``NAME`` and ``--location``), turning it on and off, and the tracebacks printed after a tick
table. Each kind's module adds its own ``list`` and ``ticks`` tables."""

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Protocol

import typer
from rich.markup import escape

from tether_api.enums import AutomationStatus, TickStatus
from tether_cli.client import AutomationApi, TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.declared import pick
from tether_cli.render import counted, errors, first_line, local_time, note, out, styled_status

LimitOption = Annotated[int, typer.Option("--limit", min=1, max=200, help="How many.")]
StatusOption = Annotated[
    TickStatus | None, typer.Option("--status", help="Only the ticks with this outcome.")
]
TracebackOption = Annotated[
    bool,
    typer.Option(
        "--traceback", help="Print each failed tick's whole error and traceback after the table."
    ),
]


class Automation(Protocol):
    """What the shared commands read of a schedule or a sensor."""

    code_location: str
    name: str
    status: AutomationStatus
    next_tick_at: datetime | None


def location_option(kind: AutomationApi[Any, Any]) -> Any:
    """``--location``, for a name that two code locations declare (the metadata of an
    ``Annotated[str | None, ...]``)."""
    return typer.Option(
        "--location",
        envvar=f"TETHER_{kind.noun.upper()}_LOCATION",
        help="Its code location; needed only when two locations declare the same name.",
    )


def name_argument(kind: AutomationApi[Any, Any]) -> Any:
    """The ``NAME`` argument (the metadata of an ``Annotated[str, ...]``)."""
    return typer.Argument(help=f"The {kind.noun}'s name.")


def find(
    client: TetherClient, kind: AutomationApi[Any, Any], name: str, location: str | None
) -> Any:
    """The one of that name (and location, when two declare it), else a clear error."""
    return pick(client.list_automations(kind), name, location, kind.noun)


def add_switches(app: typer.Typer, kind: AutomationApi[Any, Any], turned_on: str) -> None:
    """``on`` and ``off``. ``turned_on``: what turning one on does, for ``on``'s help."""

    def switch(name: str, location: str | None, on: bool, connection: Connection) -> None:
        with errors(), TetherClient(connection) as client:
            found: Automation = find(client, kind, name, location)
            changed: Automation = client.set_automation(kind, found.code_location, found.name, on)
        nxt = f"; next tick {local_time(changed.next_tick_at)}" if changed.next_tick_at else ""
        out.print(f"{kind.noun} {escape(changed.name)} {styled_status(changed.status)}{nxt}")

    def turn_on(
        name: Annotated[str, name_argument(kind)],
        location: Annotated[str | None, location_option(kind)] = None,
        url: UrlOption = None,
        token: TokenOption = None,
        deployment: DeploymentOption = None,
    ) -> None:
        switch(name, location, True, Connection.resolve(url, token, deployment))

    def turn_off(
        name: Annotated[str, name_argument(kind)],
        location: Annotated[str | None, location_option(kind)] = None,
        url: UrlOption = None,
        token: TokenOption = None,
        deployment: DeploymentOption = None,
    ) -> None:
        switch(name, location, False, Connection.resolve(url, token, deployment))

    turn_on.__doc__ = f"Turn a {kind.noun} on: {turned_on} (redeploys keep it on)."
    turn_off.__doc__ = f"Turn a {kind.noun} off (redeploys keep it off)."
    app.command("on")(turn_on)
    app.command("off")(turn_off)


def _cut(error: str | None, traceback: str | None) -> bool:
    """Whether a tick table, which shows an error's first line, leaves some of it out."""
    return bool(traceback and traceback.strip()) or first_line(error) != (error or "").strip()


def print_tracebacks(
    failed: Sequence[tuple[datetime, str | None, str | None]],
    show: bool,
) -> None:
    """After a tick table: each failed tick's whole error and traceback (``show``), or a
    hint that --traceback prints them. ``failed``: (tick time, error, traceback) of each."""
    cut = [f for f in failed if _cut(f[1], f[2])]
    if not show:
        if cut:
            what = counted(len(cut), "failed tick")
            note(f"add --traceback for the whole error and traceback of {what}")
        return
    for tick_time, error, traceback in cut:
        out.print()
        out.print(f"[red bold]tick {local_time(tick_time)}:[/] {escape((error or '').strip())}")
        if traceback and traceback.strip():
            out.print(escape(traceback.rstrip()), style="dim")
