"""The run worker's heartbeat thread: tells the control plane the run is alive, and learns
from its answer whether the run is being canceled."""

import threading
from collections.abc import Callable

from tether_sdk.run_worker.client import ControlPlaneClient, ControlPlaneRejected


class Heartbeat:
    def __init__(
        self,
        client: ControlPlaneClient,
        interval: float,
        *,
        on_cancel: Callable[[], None],
        on_rejected: Callable[[ControlPlaneRejected], None],
        log: Callable[[str], None],
    ) -> None:
        self._client = client
        self._interval = interval
        self._on_cancel = on_cancel
        self._on_rejected = on_rejected
        self._log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tether-heartbeat", daemon=True)

    @property
    def thread_id(self) -> int | None:
        return self._thread.ident

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        failures = 0
        while not self._stop.wait(self._interval):
            try:
                result = self._client.heartbeat()
            except ControlPlaneRejected as exc:
                self._on_rejected(exc)
                return
            except Exception as exc:
                # Not fatal: the next beat is the retry, and events are buffered meanwhile.
                failures += 1
                if failures & (failures - 1) == 0:
                    self._log(f"tether run-worker: heartbeat failed ({failures}x): {exc}")
                continue
            failures = 0
            if result.cancel_requested:
                self._on_cancel()
                return
