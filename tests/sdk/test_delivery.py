"""The run worker's EventSink against the real control plane: large and odd payloads."""

import threading

from tests.sdk.test_run_worker import events
from tests.support import Tenant
from tether_api.enums import EventType
from tether_api.run_worker_api import EventBatchResult
from tether_sdk.run_worker.client import ControlPlaneClient, ControlPlaneRejected
from tether_sdk.run_worker.sink import EventSink


class CountingClient(ControlPlaneClient):
    """The real client, counting the requests it makes."""

    posts = 0

    def post_events(self, body: bytes, **kwargs: object) -> EventBatchResult:
        self.posts += 1
        return super().post_events(body, **kwargs)  # type: ignore[arg-type]


def test_events_from_many_threads_are_numbered_batched_andevents(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch()["id"]
    client = CountingClient(tenant.cp.url, run, tenant.run_token(run), log=lambda _: None)
    sink = EventSink(client)
    sink.start()

    def produce(thread: int) -> None:
        for i in range(1500):
            sink.emit(EventType.LOG, step="s", level="INFO", message=f"{thread}-{i}")

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sink.close(timeout=30), sink.error
    stored = events(tenant, run)
    assert [e["seq"] for e in stored] == list(range(1, 6001))
    assert len({e["message"] for e in stored}) == 6000
    assert client.posts <= 12  # batched, not one request per event


def test_a_refused_token_stops_delivery_at_once(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch()["id"]
    rejected: list[ControlPlaneRejected] = []
    client = ControlPlaneClient(tenant.cp.url, run, "tether_run_revoked", log=lambda _: None)
    sink = EventSink(client, on_rejected=rejected.append)
    sink.start()
    sink.emit(EventType.RUN_START)
    assert not sink.close(timeout=10)
    assert isinstance(sink.error, ControlPlaneRejected) and sink.error.status == 401
    assert rejected == [sink.error]
    assert "invalid token" in str(sink.error)
    assert events(tenant, run) == []


def test_huge_non_ascii_log_lines_are_all_delivered(tenant: Tenant) -> None:
    """300 lines of 60,000 CJK characters (about 54 MB as UTF-8) exceed any single request:
    the sink splits them by size instead of having a whole batch refused."""
    tenant.deploy()
    run = tenant.launch()["id"]
    client = ControlPlaneClient(tenant.cp.url, run, tenant.run_token(run), log=lambda _: None)
    sink = EventSink(client)
    sink.start()
    line = "数据" * 30_000
    for i in range(300):
        sink.emit(EventType.LOG, step="s", level="INFO", message=f"{i} {line}")
    sink.emit(EventType.LOG, message="with a \x00 inside", data={"big": "x" * 400_000})
    assert sink.close(timeout=120), sink.error
    stored = events(tenant, run)
    seqs = [e["seq"] for e in stored]
    last = stored[-1]
    assert seqs == list(range(1, 302))
    assert last["message"] == "with a \ufffd inside"
    assert last["data"]["original_bytes"] > 400_000  # cut to the limit, not refused
