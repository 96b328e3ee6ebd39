"""Building run events, and the in-memory recorder used for local execution.

Events are plain dicts until they are sent: building a pydantic model per log line would
cost more than everything else on the hot path (see EventSink).
"""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tether_api.enums import FINAL_EVENT_STATUS, EventType
from tether_api.run_worker_api import RunEvent
from tether_api.wire import MAX_MESSAGE_CHARS
from tether_sdk.run_worker.interrupt import critical

TRUNCATION_MARK = "... [truncated {} chars]"

Event = dict[str, Any]


class EventEmitter:
    """Numbers a run's events 1, 2, 3... and hands each to ``_store``; base of the HTTP
    EventSink and of MemoryEvents (local runs).

    The run's record closes with its final event (RUN_SUCCESS/FAILURE/CANCELED): a stray user
    thread that still logs afterwards is counted in ``dropped_after_final``, not recorded.
    ``emit`` may be called from any thread, a step's own included, so it runs in a critical
    section (see ``interrupt.py``).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._seq = 0
        self._final_emitted = False
        self.dropped_after_final = 0
        # The run's log settings (run_worker/policy.py): what may leave, masked and redacted.
        # Applied before numbering, so that a dropped event leaves no gap in the seqs.
        self.policy: Callable[[Event], Event | None] | None = None

    @property
    def last_seq(self) -> int:
        return self._seq

    def emit(
        self,
        type: EventType,
        *,
        step: str | None = None,
        level: str | None = None,
        message: str = "",
        data: dict[str, Any] | None = None,
    ) -> None:
        # With a policy, the message is cut after it is masked (policy.py), never before: a
        # cut through a secret would leave its start unmasked.
        event = new_event(type, step, level, message, data, cut=self.policy is None)
        if self.policy is not None:
            with critical():
                filtered = self.policy(event)
            if filtered is None:
                return
            event = filtered
        with critical(), self._cond:
            if self._final_emitted:
                self.dropped_after_final += 1
                return
            self._final_emitted = type in FINAL_EVENT_STATUS
            self._seq += 1
            event["seq"] = self._seq
            self._store(event)

    def _store(self, event: Event) -> None:
        """Keep a numbered event; called with ``self._cond`` held."""
        raise NotImplementedError


def truncate(
    message: str, limit: int = MAX_MESSAGE_CHARS, edge: Callable[[str], str] | None = None
) -> str:
    """Cut ``message`` to at most ``limit`` chars, saying how much was dropped; ``edge``
    rewrites the part kept (a masker, for a secret the cut went through)."""
    if len(message) <= limit:
        return message
    # Drop a little more so that the mark itself fits within the limit; the mark names the
    # count dropped, whose digits change its own length, hence the second pass.
    dropped = len(message) - limit
    for _ in range(2):
        dropped = len(message) - limit + len(TRUNCATION_MARK.format(dropped))
    kept = message[: len(message) - dropped]
    if edge is not None:
        kept = edge(kept)[: len(kept)]
    return kept + TRUNCATION_MARK.format(dropped)


def new_event(
    type: EventType,
    step: str | None,
    level: str | None,
    message: str,
    data: dict[str, Any] | None,
    cut: bool = True,
) -> Event:
    """A not-yet-numbered event; ``timestamp`` is epoch seconds, formatted when sent."""
    if cut and len(message) > MAX_MESSAGE_CHARS:
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


class MemoryEvents(EventEmitter):
    """Keeps numbered events in a list (for ``execute_job`` and tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []

    def _store(self, event: Event) -> None:
        self.events.append(event)

    def run_events(self) -> list[RunEvent]:
        return [to_run_event(e) for e in self.events]
