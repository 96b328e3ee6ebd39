"""Redaction of user-code errors: the control plane gets an error ID and the exception's
class; the message and traceback go to the worker's own output (the agent's logs) under
that ID, between two marker lines the agent recognizes (it never forwards what is between
them, even in a log tail)."""

import re
import uuid
from collections.abc import Callable
from typing import Any

from tether_api.enums import EventType

# The marker lines around a redacted error's text in the output (see ``redacted_lines``).
BEGIN = "tether: error {id} ({error_class}): full text follows, kept here only"
END = "tether: end of error {id}"
_BEGIN_RE = re.compile(r"tether: error (err-[0-9a-f]+) \(.*\): full text follows")
_END_RE = re.compile(r"tether: end of error (err-[0-9a-f]+)")
_CLASS_RE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")

# A Dagster step's retry carries the error that made it retry.
REDACTED_TYPES = (EventType.STEP_FAILURE, EventType.RUN_FAILURE, EventType.STEP_UP_FOR_RETRY)
# The data keys that hold an error's text (Dagster failures: its causes, and a Failure's
# description): what redaction keeps back.
ERROR_TEXT_KEYS = ("error", "traceback", "errors", "causes", "description")


def new_error_id() -> str:
    return f"err-{uuid.uuid4().hex[:16]}"


def error_class(exc: BaseException) -> str:
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def class_of(data: dict[str, Any]) -> str:
    """The class a failure event names, or the one its one-line error starts with."""
    named = data.get("error_class")
    if isinstance(named, str) and named:
        return named
    match = _CLASS_RE.match(str(data.get("error", "")))
    return match.group(1) if match else "Error"


def needs_redaction(type_: EventType, data: dict[str, Any]) -> bool:
    return type_ in REDACTED_TYPES and ("traceback" in data or "error" in data)


def redact(
    type_: EventType, message: str, data: dict[str, Any], write: Callable[[str], None]
) -> tuple[str, dict[str, Any]]:
    """The event's redacted message and data; the full text is written with ``write``."""
    error_id = new_error_id()
    cls = class_of(data)
    full = [message]
    for cause in data.get("causes") or []:
        full.append(f"caused by {cause}")
    if data.get("description"):
        full.append(str(data["description"]))
    if data.get("traceback"):
        full.append(str(data["traceback"]).rstrip("\n"))
    write("\n".join([BEGIN.format(id=error_id, error_class=cls), *full, END.format(id=error_id)]))
    subject = message.split(": ", 1)[0] if ": " in message else "failed"
    redacted_message = (
        f"{subject}: {cls} (error ID {error_id}; the message and traceback are in the run's "
        "output in your environment, under this ID)"
    )
    kept = {k: v for k, v in data.items() if k not in ERROR_TEXT_KEYS}
    return redacted_message, {**kept, "error_id": error_id, "error_class": cls, "redacted": True}


def without_redacted(lines: list[str]) -> list[str]:
    """Log lines with the text of redacted errors removed (the marker lines stay: they name
    the error ID). A block cut by the start of a tail is removed from that start."""
    kept: list[str] = []
    inside: str | None = None
    started: set[str] = set()
    for line in lines:
        begin = _BEGIN_RE.search(line)
        if begin:
            inside = begin.group(1)
            started.add(inside)
            kept.append(line)
            continue
        end = _END_RE.search(line)
        if end:
            if end.group(1) in started:
                kept.append(line)
            else:
                kept = [k for k in kept if _BEGIN_RE.search(k) or _END_RE.search(k)]
                kept.append(line)
            inside = None
            continue
        if inside is None:
            kept.append(line)
    return kept
