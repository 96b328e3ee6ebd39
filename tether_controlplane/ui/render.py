"""Templates and the small formatting filters the pages share."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from tether_api.durations import duration_text
from tether_api.enums import TERMINAL_RUN_STATUSES
from tether_api.names import DEFAULT_AGENT_QUEUE
from tether_controlplane.ui.session import Signed

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

FINAL_RUN = frozenset(s.value for s in TERMINAL_RUN_STATUSES)


def parse_time(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def clock(value: str | datetime | None) -> str:
    at = parse_time(value)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "—"


def ago(value: str | datetime | None) -> str:
    at = parse_time(value)
    if at is None:
        return "never"
    seconds = int((datetime.now(UTC) - at).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def seconds_text(seconds: float | None) -> str:
    return duration_text(seconds, missing="—")


def between(start: str | datetime | None, end: str | datetime | None) -> str:
    began, ended = parse_time(start), parse_time(end)
    if began is None:
        return "—"
    return seconds_text(((ended or datetime.now(UTC)) - began).total_seconds())


def event_traceback(event: dict[str, Any]) -> str | None:
    """A failure event's traceback, unless its message already shows it. ``data`` is the
    worker's to fill: anything but a string is not shown."""
    found = (event.get("data") or {}).get("traceback")
    if not isinstance(found, str) or not found.strip() or found in (event.get("message") or ""):
        return None
    return found


def first_line(text: str | None) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


templates.env.filters.update(
    clock=clock,
    ago=ago,
    between=between,
    seconds=seconds_text,
    first_line=first_line,
    event_traceback=event_traceback,
)
templates.env.globals.update(FINAL_RUN=FINAL_RUN, DEFAULT_AGENT_QUEUE=DEFAULT_AGENT_QUEUE)


def page(
    request: Request,
    template: str,
    signed: Signed | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    context.setdefault("dep", None)
    return templates.TemplateResponse(
        request,
        template,
        {"signed": signed, "csrf": signed.csrf if signed else "", **context},
        status_code=status_code,
    )
