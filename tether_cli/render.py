"""Input and output of the user commands: errors and exit codes, consoles, formatting.

Results (ids, tables, event lines, JSON) go to stdout; progress and errors go to stderr, so
``RUN=$(tether runs launch ...)`` captures only what a script needs.
"""

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tether_api.durations import duration_text
from tether_api.enums import CodeLocationStatus, RunStatus
from tether_api.run_worker_api import RunEvent

# soft_wrap: Rich would otherwise hard-wrap at 80 columns when not on a terminal, splitting
# messages and log lines that CI logs and scripts read whole.
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3


class CliError(Exception):
    """Ends the command: ``error: <message>`` on stderr and the exit code."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageProblem(CliError):
    """Something wrong with what the user passed, found before any request."""

    exit_code = EXIT_USAGE


@contextmanager
def errors() -> Iterator[None]:
    """Turn a CliError raised inside into its message and exit code."""
    try:
        yield
    except CliError as exc:
        err.print(f"[red]error:[/] {escape(exc.message)}")
        raise typer.Exit(exc.exit_code) from exc


def parse_pairs(values: list[str], option: str) -> dict[str, str]:
    """``KEY=VALUE`` items into a dict (the value may hold ``=``; the last of a key wins)."""
    pairs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageProblem(f"{option} {item!r} is not KEY=VALUE")
        pairs[key] = value
    return pairs


def note(message: str, style: str = "dim") -> None:
    """A human line on stderr; ``message`` is plain text, never markup."""
    err.print(escape(message), style=style)


def print_json(value: BaseModel | Sequence[BaseModel]) -> None:
    data: Any = (
        value.model_dump(mode="json")
        if isinstance(value, BaseModel)
        else [v.model_dump(mode="json") for v in value]
    )
    typer.echo(json.dumps(data, indent=2))


def print_table(table: Table) -> None:
    if out.is_terminal:
        out.print(table)
        return
    # Off a terminal Rich assumes 80 columns and would truncate run IDs: take what it needs.
    Console(width=10_000, highlight=False).print(table)


STATUS_STYLES: dict[str, str] = {
    CodeLocationStatus.RUNNING: "green",
    CodeLocationStatus.ERROR: "red",
    CodeLocationStatus.STOPPED: "dim",
    RunStatus.SUCCESS: "green",
    RunStatus.FAILURE: "red",
    RunStatus.CANCELED: "yellow",
    RunStatus.CANCELING: "yellow",
}


def styled_status(status: str) -> str:
    style = STATUS_STYLES.get(status, "cyan")
    return f"[{style}]{escape(status)}[/]"


def local_time(at: datetime | None) -> str:
    if at is None:
        return "-"
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def duration(start: datetime | None, end: datetime | None) -> str:
    """As :func:`seconds_text`; runs still going count up to now."""
    if start is None:
        return "-"
    return seconds_text(((end or datetime.now(UTC)) - start).total_seconds())


def seconds_text(seconds: float | None) -> str:
    """A duration in seconds as ``350 ms``, ``4.2 s``, ``3 min 05 s`` or ``1 h 02 min``; ``-``
    for None (the web UI writes them the same way)."""
    return duration_text(seconds)


def counted(n: int, what: str, many: str | None = None) -> str:
    """``1 job``, ``2 jobs``, ``0 jobs``: a count with its noun (``many`` when the plural is
    not the noun and an ``s``)."""
    return f"{n} {what if n == 1 else many or what + 's'}"


def print_field(name: str, value: str, width: int = 12) -> None:
    """``name      value`` on stdout; ``value`` is markup (escape plain text), and its
    further lines are indented under its first."""
    out.print(f"[bold]{escape(name):<{width}}[/]{value}".replace("\n", "\n" + " " * width))


def first_line(text: str | None) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def event_line(event: RunEvent) -> str:
    """``HH:MM:SS.mmm TYPE [LEVEL] [step] message`` in local time, as plain text."""
    at = event.timestamp.astimezone()
    parts = [f"{at:%H:%M:%S}.{at.microsecond // 1000:03d}", event.type.value]
    if event.level:
        parts.append(event.level)
    if event.step:
        parts.append(f"[{event.step}]")
    if event.message:
        parts.append(event.message)
    text = " ".join(parts)
    # A failure's traceback comes in its data; print it unless the message already holds it.
    traceback = event.data.get("traceback")
    if isinstance(traceback, str) and traceback.strip() and traceback.strip() not in text:
        text += "\n" + traceback.rstrip()
    # Continuation lines (tracebacks) are indented past the time, to keep the columns.
    return text.replace("\n", "\n" + CONTINUATION)


# Indentation of an event line's continuation lines: the width of its time column.
CONTINUATION = " " * 13


JsonOption = Annotated[
    bool,
    typer.Option("--json", envvar="TETHER_JSON", help="Print JSON on stdout instead of text."),
]


def validation_message(exc: ValidationError) -> str:
    # The same "field: problem" form the API answers with.
    problems = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e["loc"])
        msg = str(e["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {msg}" if where else msg)
    return "; ".join(problems)
