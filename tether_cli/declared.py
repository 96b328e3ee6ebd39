"""What ``tether schedules`` and ``tether sensors`` share: things a code location declares
by name, with a status a user may set."""

from collections.abc import Sequence
from typing import Protocol, TypeVar

from rich.markup import escape

from tether_api.enums import AutomationStatus, RunStatus, SensorKind
from tether_cli.render import CliError, styled_status


class Declared(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def code_location(self) -> str: ...


D = TypeVar("D", bound=Declared)


def pick(found: Sequence[D], name: str, location: str | None, what: str) -> D:
    """The one ``what`` (schedule, sensor) called ``name`` (in ``location``), or an error
    that says how to find it or which --location to give."""
    matching = [
        d for d in found if d.name == name and (location is None or d.code_location == location)
    ]
    if not matching:
        raise CliError(
            f"no {what} {name!r}"
            + (f" in {location!r}" if location else "")
            + f"; list them with `tether {what}s list`"
        )
    if len(matching) > 1:
        where = ", ".join(d.code_location for d in matching)
        raise CliError(f"{what} {name!r} is declared by {where}: pick one with --location")
    return matching[0]


def sensor_kind(kind: SensorKind, status: RunStatus | None, jobs: list[str] | None) -> str:
    """``standard``, or what a run-status sensor watches: ``run_status (FAILURE of etl)``."""
    if kind != SensorKind.RUN_STATUS:
        return kind.value
    watched = status.value if status else "ended"
    return f"{kind.value} ({watched} of {', '.join(jobs) if jobs else 'any job'})"


def status_cell(
    status: AutomationStatus, set_by_user: bool, present: bool, error: str | None = None
) -> str:
    """A list's status column: the status, whether a user set it, and why it cannot run."""
    if not present:
        return "[dim]gone from the code[/]"
    cell = styled_status(status) + (" (set here)" if set_by_user else "")
    if error:
        cell += f" [red]{escape(error)}[/]"
    return cell
