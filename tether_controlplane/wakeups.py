"""In-process wake-ups for long-polls and event streams.

Writers call ``notify(key)`` (from any thread) after they commit; waiters ``register`` a key,
re-read the database, then ``wait``. Registering before the re-read means a commit that lands
between the two still wakes the waiter. Other replicas are covered by the waiters' periodic
re-read (``recheck_interval_seconds``).
"""

import asyncio
import threading
from collections import defaultdict


class Waiter:
    def __init__(self, notifier: "Notifier", key: str, future: asyncio.Future[None]) -> None:
        self._notifier = notifier
        self._key = key
        self._future = future

    async def wait(self, timeout: float) -> bool:
        """True if woken, False on timeout. A waiter is used once."""
        try:
            await asyncio.wait_for(asyncio.shield(self._future), timeout=max(timeout, 0))
            return True
        except TimeoutError:
            return False
        finally:
            self.close()

    def close(self) -> None:
        self._notifier._discard(self._key, self._future)


class Notifier:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def register(self, key: str) -> Waiter:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiters[key].add(future)
        return Waiter(self, key, future)

    def notify(self, *keys: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._lock:
            futures = [f for key in keys for f in self._waiters.pop(key, ())]
        if futures:
            loop.call_soon_threadsafe(_wake, futures)

    def _discard(self, key: str, future: asyncio.Future[None]) -> None:
        with self._lock:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(future)
                if not waiters:
                    del self._waiters[key]


def _wake(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


def requests_key(deployment_id: int) -> str:
    return f"requests:{deployment_id}"


def run_events_key(run_pk: int) -> str:
    return f"run:{run_pk}"
