"""EventSink: numbers events and delivers them to the control plane in batches.

The hot path (``emit``) only builds a small dict and appends it to a deque under a lock;
JSON encoding and HTTP happen on a background thread, up to BATCH_SIZE events per request.
A batch is encoded once and resent byte-for-byte on retry, so its seq numbers never change
and the control plane (idempotent on (run_id, seq)) stores it once however often it arrives.
While the control plane is unreachable, events just accumulate in memory: none are dropped.
"""

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tether_api.enums import EventType
from tether_sdk.run_worker.client import ControlPlaneClient, ControlPlaneRejected, DeliveryTimeout
from tether_sdk.run_worker.events import Event, iso_timestamp, new_event

BATCH_SIZE = 1000
LINGER_SECONDS = 0.05


class EventSink:
    """Thread-safe event numbering and buffered, batched, retried delivery.

    ``client`` may point at any URL (tests use a local stand-in server). Call ``start()``
    once, ``emit()`` from any thread, and ``close(timeout)`` at the end.
    """

    def __init__(
        self,
        client: ControlPlaneClient,
        *,
        batch_size: int = BATCH_SIZE,
        linger: float = LINGER_SECONDS,
        on_rejected: Callable[[ControlPlaneRejected], None] | None = None,
    ) -> None:
        self._client = client
        self._batch_size = batch_size
        self._linger = linger
        self._on_rejected = on_rejected
        self._queue: deque[Event] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._seq = 0
        self._in_flight = 0  # events taken from the queue but not yet acknowledged
        self._closing = False
        self._deadline: float | None = None
        self.delivered = 0
        self.error: Exception | None = None  # why delivery stopped for good, if it did
        self._thread = threading.Thread(target=self._run, name="tether-event-sink", daemon=True)

    @property
    def thread_id(self) -> int | None:
        return self._thread.ident

    @property
    def last_seq(self) -> int:
        return self._seq

    def start(self) -> None:
        self._thread.start()

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
        with self._cond:
            self._seq += 1
            event["seq"] = self._seq
            self._queue.append(event)
            # Wake the sender only when it may be waiting for work: notify costs a syscall.
            if len(self._queue) == 1 or len(self._queue) == self._batch_size:
                self._cond.notify()

    def close(self, timeout: float) -> bool:
        """Deliver what is queued, retrying for at most ``timeout`` seconds.

        Returns True when every event was delivered; otherwise ``error`` says why not.
        """
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout + 1.0)
        if self._thread.is_alive() and self.error is None:
            self.error = DeliveryTimeout(f"event delivery still running after {timeout:.0f}s")
        with self._cond:
            pending = len(self._queue) + self._in_flight
        if pending and self.error is None:
            self.error = DeliveryTimeout(f"{pending} events were not delivered")
        return pending == 0 and self.error is None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return  # closing and drained
                if not self._closing and len(self._queue) < self._batch_size:
                    # Linger briefly so that a burst of events shares one request.
                    self._cond.wait_for(
                        lambda: self._closing or len(self._queue) >= self._batch_size,
                        timeout=self._linger,
                    )
                count = min(self._batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(count)]
                self._in_flight = count
            try:
                self._client.post_events(encode_batch(batch), deadline=lambda: self._deadline)
            except (ControlPlaneRejected, DeliveryTimeout) as exc:
                self.error = exc
                if isinstance(exc, ControlPlaneRejected) and self._on_rejected:
                    self._on_rejected(exc)
                return
            except Exception as exc:  # e.g. an unreadable answer: stop, but say why
                self.error = exc
                return
            with self._cond:
                self._in_flight = 0
                self.delivered += count


def encode_batch(events: list[Event]) -> bytes:
    """The JSON body of an EventBatch.

    User metadata may hold anything: non-JSON values become their str(); NaN/inf (invalid
    JSON, which the server would reject) and unencodable structures fall back per event.
    """
    items = [{**e, "timestamp": iso_timestamp(e["timestamp"])} for e in events]
    try:
        return _dumps({"events": items})
    except (ValueError, TypeError, RecursionError):
        parts = []
        for item in items:
            try:
                parts.append(_dumps(item))
            except (ValueError, TypeError, RecursionError) as exc:
                item["data"] = {"unencodable_data": repr(item["data"])[:10_000], "error": str(exc)}
                parts.append(_dumps(item))
        return b'{"events":[' + b",".join(parts) + b"]}"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, default=str, allow_nan=False, separators=(",", ":")).encode()
