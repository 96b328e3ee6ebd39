"""Templates and the small formatting filters the pages share."""

import json
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
    """How long ago, written as every duration is (tether_api.durations), to the second;
    past a day, the date (whose exact time is in the element's title)."""
    at = parse_time(value)
    if at is None:
        return "never"
    seconds = (datetime.now(UTC) - at).total_seconds()
    if seconds >= 86400:
        return f"on {at.astimezone(UTC):%Y-%m-%d}"
    if seconds < 1:
        return "just now"
    return f"{duration_text(float(int(seconds)))} ago"


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


def json_text(value: Any, indent: int | None = 2) -> str:
    """A JSON value written for reading: ``< > & '`` and every other character as they are
    (Jinja's ``tojson`` writes them as ``\\u003c``... for embedding in a script, which no
    page does). A plain string, so the template escapes it for HTML like any other text."""
    return json.dumps(value, indent=indent, ensure_ascii=False)


def first_line(text: str | None) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


templates.env.filters.update(
    clock=clock,
    ago=ago,
    between=between,
    seconds=seconds_text,
    first_line=first_line,
    json_text=json_text,
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
