"""EventSink over real HTTP, against a local stand-in for the control plane's run API."""

import json
import math
import threading
import time

from tether_api.enums import EventType
from tether_api.models import EventBatch
from tether_sdk.run_worker.client import ControlPlaneClient, ControlPlaneRejected
from tether_sdk.run_worker.events import new_event
from tether_sdk.run_worker.sink import EventSink, encode_batch

from .standin_control_plane import StandInControlPlane


def _sink(cp: StandInControlPlane, token: str | None = None, **kwargs: object) -> EventSink:
    client = ControlPlaneClient(cp.url, cp.run_id, token or cp.token, log=lambda line: None)
    sink = EventSink(client, **kwargs)  # type: ignore[arg-type]
    sink.start()
    return sink


def test_events_are_numbered_batched_and_delivered() -> None:
    with StandInControlPlane() as cp:
        sink = _sink(cp)

        def produce(thread: int) -> None:
            for i in range(1500):
                sink.emit(EventType.LOG, step="s", level="INFO", message=f"{thread}-{i}")

        threads = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sink.close(timeout=10)
        assert sorted(cp.events) == list(range(1, 6001))
        assert len({e["message"] for e in cp.events.values()}) == 6000
        assert cp.batches <= 12  # batched, not one request per event
        EventBatch.model_validate({"events": list(cp.events.values())[:1000]})


def test_retried_batches_keep_their_seq_and_nothing_is_lost() -> None:
    with StandInControlPlane() as cp:
        cp.fail_next = 3  # the first three deliveries get a 503
        sink = _sink(cp)
        for i in range(2500):
            sink.emit(EventType.LOG, message=str(i))
        assert sink.close(timeout=20)
        assert sorted(cp.events) == list(range(1, 2501))
        assert [cp.events[s]["message"] for s in (1, 1000, 2500)] == ["0", "999", "2499"]


def test_unreachable_control_plane_buffers_then_gives_up_at_the_flush_timeout() -> None:
    cp = StandInControlPlane()
    cp.server.server_close()  # the port is now closed: connection refused
    sink = _sink(cp)
    sink.emit(EventType.RUN_START)
    time.sleep(0.3)
    started = time.monotonic()
    assert not sink.close(timeout=1.0)
    assert time.monotonic() - started < 3
    assert "not delivered" in str(sink.error) or "ConnectError" in str(sink.error)


def test_4xx_is_final_and_reported() -> None:
    rejected: list[ControlPlaneRejected] = []
    with StandInControlPlane() as cp:
        sink = _sink(cp, token="revoked", on_rejected=rejected.append)
        sink.emit(EventType.RUN_START)
        assert not sink.close(timeout=5)
        assert isinstance(sink.error, ControlPlaneRejected) and sink.error.status == 401
        assert rejected == [sink.error]
        assert "invalid run token" in str(sink.error)
        assert cp.events == {}


def test_encode_batch_survives_odd_user_metadata() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd!"

    circular: dict[str, object] = {}
    circular["self"] = circular
    events = [
        new_event(EventType.STEP_SUCCESS, "a", None, "", {"metadata": {"obj": Odd()}}),
        new_event(EventType.STEP_SUCCESS, "b", None, "", {"metadata": {"nan": math.nan}}),
        new_event(EventType.STEP_SUCCESS, "c", None, "", {"metadata": circular}),
    ]
    for seq, e in enumerate(events, 1):
        e["seq"] = seq
    body = json.loads(encode_batch(events))
    batch = EventBatch.model_validate(body)
    assert batch.events[0].data == {"metadata": {"obj": "odd!"}}
    assert "unencodable_data" in batch.events[1].data
    assert "unencodable_data" in batch.events[2].data
