"""Building run events, and the in-memory recorder used for local execution.

Events are plain dicts until they are sent: building a pydantic model per log line would
cost more than everything else on the hot path (see EventSink).
"""

import threading
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from tether_api.enums import EventType
from tether_api.models import MAX_MESSAGE_CHARS, RunEvent

TRUNCATION_MARK = "... [truncated {} chars]"

Event = dict[str, Any]


class EventEmitter(Protocol):
    """Where the executor reports: the HTTP EventSink, or MemoryEvents for local runs."""

    def emit(
        self,
        type: EventType,
        *,
        step: str | None = None,
        level: str | None = None,
        message: str = "",
        data: dict[str, Any] | None = None,
    ) -> None: ...


def truncate(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Cut ``message`` to at most ``limit`` chars, saying how much was dropped."""
    if len(message) <= limit:
        return message
    mark = TRUNCATION_MARK.format(len(message) - limit)
    # Drop a little more so that the mark itself fits within the limit.
    dropped = len(message) - limit + len(mark)
    return message[: len(message) - dropped] + TRUNCATION_MARK.format(dropped)


def new_event(
    type: EventType,
    step: str | None,
    level: str | None,
    message: str,
    data: dict[str, Any] | None,
) -> Event:
    """A not-yet-numbered event; ``timestamp`` is epoch seconds, formatted when sent."""
    if len(message) > MAX_MESSAGE_CHARS:
        message = truncate(message)
    return {
        "seq": 0,
        "type": type,
        "timestamp": time.time(),
        "step": step,
        "level": level,
        "message": message,
        "data": data if data is not None else {},
    }


def iso_timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def to_run_event(event: Event) -> RunEvent:
    return RunEvent(**{**event, "timestamp": datetime.fromtimestamp(event["timestamp"], UTC)})


class MemoryEvents:
    """Keeps numbered events in a list (for ``execute_job`` and tests)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def emit(
        self,
        type: EventType,
        *,
        step: str | None = None,
        level: str | None = None,
        message: str = "",
        data: dict[str, Any] | None = None,
    ) -> None:
        event = new_event(type, step, level, message, data)
        with self._lock:
            event["seq"] = len(self.events) + 1
            self.events.append(event)

    def run_events(self) -> list[RunEvent]:
        return [to_run_event(e) for e in self.events]
