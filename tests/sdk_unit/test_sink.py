"""EventSink fault handling that the real control plane cannot be made to show: injected
503s (from a local stand-in server) and a port with nothing listening. Delivery and refusal
against the real control plane are in tests/sdk/test_delivery.py."""

import json
import math
import time

from tether_api.enums import EventType
from tether_api.run_worker_api import EventBatch
from tether_sdk.run_worker.client import ControlPlaneClient
from tether_sdk.run_worker.events import new_event
from tether_sdk.run_worker.sink import EventSink, encode_batches

from .standin_control_plane import StandInControlPlane


def _sink(cp: StandInControlPlane, token: str | None = None, **kwargs: object) -> EventSink:
    client = ControlPlaneClient(cp.url, cp.run_id, token or cp.token, log=lambda line: None)
    sink = EventSink(client, **kwargs)  # type: ignore[arg-type]
    sink.start()
    return sink


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


def test_encoding_survives_odd_user_metadata() -> None:
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
    [encoded] = encode_batches(events)
    body = json.loads(encoded)
    batch = EventBatch.model_validate(body)
    assert batch.events[0].data == {"metadata": {"obj": "odd!"}}
    assert "unencodable_data" in batch.events[1].data
    assert "unencodable_data" in batch.events[2].data
