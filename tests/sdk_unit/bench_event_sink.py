"""Throughput of the run worker's event path (not a test: run it by hand).

python -m tests.sdk_unit.bench_event_sink      # from the repository root
"""

import time

from tests.sdk_unit.standin_control_plane import StandInControlPlane
from tether_api.enums import EventType
from tether_api.run_worker_api import EventBatch
from tether_sdk.context import StepContext
from tether_sdk.run_worker.capture import OutputCapture
from tether_sdk.run_worker.client import ControlPlaneClient
from tether_sdk.run_worker.events import to_run_event
from tether_sdk.run_worker.sink import EventSink, encode_batches

N = 20_000


def _rate(label: str, seconds: float, extra: str = "") -> None:
    print(f"{label:<34}{seconds * 1000:8.1f} ms  {N / seconds:>10,.0f} events/s  {extra}")


def main() -> None:
    unstarted = ControlPlaneClient("http://127.0.0.1:9", "r", "t")
    sink = EventSink(unstarted)  # never started: measures emit() alone
    t = time.perf_counter()
    for i in range(N):
        sink.emit(EventType.LOG, step="s", level="INFO", message=f"line {i}", data={"a": 1})
    _rate("EventSink.emit", time.perf_counter() - t)
    events = list(sink._queue)

    t = time.perf_counter()
    size = sum(len(b) for i in range(0, N, 1000) for b in encode_batches(events[i : i + 1000]))
    _rate("encode_batches (1000/batch)", time.perf_counter() - t, f"{size / N:.0f} B/event")

    t = time.perf_counter()
    for i in range(0, N, 1000):
        EventBatch(events=[to_run_event(e) for e in events[i : i + 1000]]).model_dump_json()
    _rate("pydantic (comparison, unused)", time.perf_counter() - t)

    ctx = StepContext(run_id="r", job="j", step="s")
    t = time.perf_counter()
    with OutputCapture(EventSink(unstarted)).step("s"):
        for i in range(N):
            ctx.log.info("line %d", i)
    _rate("ctx.log.info -> emit", time.perf_counter() - t)

    with StandInControlPlane() as cp:
        live = EventSink(ControlPlaneClient(cp.url, cp.run_id, cp.token))
        live.start()
        t = time.perf_counter()
        with OutputCapture(live).step("s"):
            for i in range(N):
                ctx.log.info("line %d", i)
        assert live.close(timeout=60) and len(cp.events) == N
        _rate("ctx.log.info -> HTTP, flushed", time.perf_counter() - t, f"{cp.batches} batches")


if __name__ == "__main__":
    main()
