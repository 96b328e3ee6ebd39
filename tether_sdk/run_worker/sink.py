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

from tether_api.wire import MAX_EVENT_DATA_BYTES
from tether_sdk.run_worker.client import ControlPlaneClient, ControlPlaneRejected, DeliveryTimeout
from tether_sdk.run_worker.events import Event, EventEmitter, iso_timestamp

BATCH_SIZE = 1000
LINGER_SECONDS = 0.05
# Well under the control plane's default max_request_bytes (16 MiB).
MAX_BATCH_BYTES = 4 * 1024 * 1024
# A batch encoding to no more than this cannot hold an event over the server's data limit.
SMALL_BATCH_BYTES = MAX_EVENT_DATA_BYTES


class EventSink(EventEmitter):
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
        super().__init__()
        self._queue: deque[Event] = deque()
        self._in_flight = 0  # events taken from the queue but not yet acknowledged
        self._closing = False
        self._deadline: float | None = None
        self.delivered = 0
        self.error: Exception | None = None  # why delivery stopped for good, if it did
        self._thread = threading.Thread(target=self._run, name="tether-event-sink", daemon=True)

    @property
    def thread_id(self) -> int | None:
        return self._thread.ident

    def start(self) -> None:
        self._thread.start()

    def _store(self, event: Event) -> None:
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
                for body in encode_batches(batch):
                    self._client.post_events(body, deadline=lambda: self._deadline)
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


def encode_batches(events: list[Event]) -> list[bytes]:
    """JSON bodies of EventBatch requests for ``events``, in order: one, unless they are too
    large for one request (the control plane refuses large bodies with a final 413)."""
    items = [{**e, "timestamp": iso_timestamp(e["timestamp"])} for e in events]
    try:
        body = _dumps({"events": items})
        if len(body) <= SMALL_BATCH_BYTES:
            return [body]  # the common case: every event is small, nothing to check
    except Exception:
        pass  # encode item by item below, each with its own fallback
    bodies: list[bytes] = []
    parts: list[bytes] = []
    size = 0
    for item in items:
        part = _encode_item(item)
        if parts and size + len(part) > MAX_BATCH_BYTES:
            bodies.append(_join(parts))
            parts, size = [], 0
        parts.append(part)
        size += len(part) + 1
    if parts:
        bodies.append(_join(parts))
    return bodies


def _encode_item(item: Event) -> bytes:
    # User metadata may hold anything: non-JSON values become their str(); NaN/inf (invalid
    # JSON), cycles, and objects whose str() itself fails fall back to a description that
    # cannot fail; data over the server's limit is cut, not refused.
    try:
        part = _dumps(item)
    except Exception as exc:
        item["data"] = {"unencodable_data": _describe(item["data"]), "error": _describe(exc)}
        part = _dumps(item)
    if len(part) > MAX_EVENT_DATA_BYTES and item["data"]:
        data = _dumps(item["data"])
        if len(data) > MAX_EVENT_DATA_BYTES:
            item["data"] = {
                "truncated_data": data[: MAX_EVENT_DATA_BYTES // 2].decode("utf-8", "ignore"),
                "original_bytes": len(data),
            }
            part = _dumps(item)
    return part


def _describe(value: object) -> str:
    try:
        return repr(value)[:10_000]
    except Exception:
        return f"<{type(value).__name__} that cannot be shown>"


def _join(parts: list[bytes]) -> bytes:
    return b'{"events":[' + b",".join(parts) + b"]}"


def _dumps(value: Any) -> bytes:
    # UTF-8 rather than \u escapes: non-ASCII text is half the size or less. A lone surrogate
    # (undecodable bytes from a captured stream) becomes '?' rather than failing the batch.
    text = json.dumps(
        value, default=str, allow_nan=False, ensure_ascii=False, separators=(",", ":")
    )
    return text.encode("utf-8", "replace")
