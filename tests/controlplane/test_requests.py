"""The agent request queue: long-poll wake-up, leases, ack and fail."""

import threading
import time

import httpx
import pytest

from tests.support import Tenant


def test_long_poll_wakes_on_a_new_request(tenant: Tenant) -> None:
    """The session's control plane re-reads only every 10 s, so a quick answer proves the
    in-process wake-up, not the fallback re-read."""
    result: dict[str, float | list] = {}

    def poll() -> None:
        result["requests"] = tenant.poll(wait=15)
        result["returned"] = time.monotonic()

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)  # let the poll start holding
    enqueued = time.monotonic()
    tenant.deploy("loc")
    poller.join(20)
    assert [r["type"] for r in result["requests"]] == ["SYNC_CODE_LOCATION"]  # type: ignore[union-attr]
    assert float(result["returned"]) - enqueued < 1.0  # type: ignore[arg-type]


def test_a_poll_whose_agent_hung_up_claims_nothing(tenant: Tenant) -> None:
    """An agent killed mid-poll: the request enqueued after it is not leased to the dead
    connection but handed to the next poll at once."""
    with tenant.agent() as c, pytest.raises(httpx.ReadTimeout):
        c.post(
            "/api/v1/agent/requests/poll",
            json={"agent_name": "agent-1", "wait_seconds": 15},
            timeout=0.5,  # the client gives up and closes its connection
        )
    time.sleep(0.2)
    tenant.deploy("loc")  # wakes the abandoned poll, which must not claim it
    time.sleep(0.5)
    assert [r["type"] for r in tenant.poll(wait=0)] == ["SYNC_CODE_LOCATION"]


def test_a_poll_acknowledges_what_the_last_one_handed_out(tenant: Tenant) -> None:
    """The agent acks the requests it dispatched with its next poll: they are done, and a
    stale ack (the request was claimed again since) changes nothing."""
    tenant.deploy("acked")
    tenant.deploy("stale")
    [acked, stale] = tenant.poll(lease_seconds=1)
    assert tenant.poll(acks=[{"id": acked["id"], "attempt": acked["attempt"]}]) == []
    time.sleep(1.3)  # both leases expire: only the unacknowledged request comes back
    [again] = tenant.poll(lease_seconds=1)
    assert again["id"] == stale["id"] and again["attempt"] == stale["attempt"] + 1
    # The first claim's ack is stale now: the poll answers as usual and the newer claim stands.
    late = {"id": stale["id"], "attempt": stale["attempt"]}
    assert tenant.poll(acks=[late, {"id": "999999", "attempt": 1}]) == []
    time.sleep(1.3)
    assert [r["id"] for r in tenant.poll()] == [stale["id"]]


def test_long_poll_holds_then_answers_empty(tenant: Tenant) -> None:
    started = time.monotonic()
    assert tenant.poll(wait=1.0) == []
    assert 0.9 <= time.monotonic() - started < 5


def test_expired_lease_makes_a_request_visible_again(tenant: Tenant) -> None:
    tenant.deploy("loc")
    first = tenant.poll(lease_seconds=1)
    assert len(first) == 1 and first[0]["attempt"] == 1
    assert tenant.poll(agent_name="agent-2") == []  # leased: invisible to others
    # A waiting poll is answered when the lease runs out, not only at the next re-read.
    again = tenant.poll(wait=10, agent_name="agent-2")
    assert [r["id"] for r in again] == [first[0]["id"]] and again[0]["attempt"] == 2
    with tenant.agent() as c:
        assert c.post(f"/api/v1/agent/requests/{again[0]['id']}/ack").json()["status"] == "DONE"
        assert c.post(f"/api/v1/agent/requests/{again[0]['id']}/ack").json()["status"] == "DONE"
    time.sleep(1.2)
    assert tenant.poll() == []


def test_fail_with_retry_requeues_and_without_retry_ends(tenant: Tenant) -> None:
    tenant.deploy("a")
    tenant.deploy("b")
    a, b = tenant.poll()
    with tenant.agent() as c:
        r = c.post(
            f"/api/v1/agent/requests/{a['id']}/fail", json={"error": "docker down", "retry": True}
        )
        assert r.json()["status"] == "PENDING"
        r = c.post(f"/api/v1/agent/requests/{b['id']}/fail", json={"error": "bad spec"})
        assert r.json()["status"] == "FAILED"
        assert c.post("/api/v1/agent/requests/999999/ack").status_code == 404
        assert c.post("/api/v1/agent/requests/abc/ack").status_code == 404
    assert [r["id"] for r in tenant.poll()] == [a["id"]]


def test_concurrent_pollers_never_share_a_request(tenant: Tenant) -> None:
    for i in range(20):
        tenant.deploy(f"loc{i}")
    seen: list[str] = []
    lock = threading.Lock()

    def drain(name: str) -> None:
        for _ in range(10):
            got = tenant.poll(agent_name=name, max_requests=3)
            with lock:
                seen.extend(r["id"] for r in got)

    threads = [threading.Thread(target=drain, args=(f"agent-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 20 and len(set(seen)) == 20


def test_a_stale_claim_cannot_ack_or_requeue_a_newer_one(tenant: Tenant) -> None:
    tenant.deploy("loc")
    first = tenant.poll(lease_seconds=1)[0]
    second = tenant.poll(wait=10, agent_name="agent-2")[0]  # after the lease expired
    assert second["attempt"] == 2
    with tenant.agent() as c:
        late = c.post(
            f"/api/v1/agent/requests/{first['id']}/fail",
            json={"error": "gave up", "retry": True, "attempt": 1},
        )
        assert late.status_code == 409 and "claimed again (attempt 2)" in late.json()["detail"]
        assert (
            c.post(f"/api/v1/agent/requests/{first['id']}/ack", json={"attempt": 1}).status_code
            == 409
        )
        assert tenant.poll(agent_name="agent-3") == []  # still agent-2's
        ok = c.post(f"/api/v1/agent/requests/{first['id']}/ack", json={"attempt": 2})
        assert ok.json()["status"] == "DONE"
        # Once done, a repeated ack of any attempt is a no-op, not an error.
        assert (
            c.post(f"/api/v1/agent/requests/{first['id']}/ack", json={"attempt": 1}).status_code
            == 200
        )
