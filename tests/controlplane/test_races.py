"""Concurrent writers: no deadlocks, no over-admission, and final states stay final."""

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.support import ControlPlane, Tenant, client, event


def test_concurrent_run_creation_respects_the_limit(controlplane: ControlPlane) -> None:
    """20 threads creating runs at once: every create succeeds (on PostgreSQL this used to
    deadlock), and no more than the limit are ever admitted."""
    tenant = controlplane.tenant(concurrency=5)
    tenant.deploy()
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda _: _create(tenant), range(100)))
    assert codes == [201] * 100
    with tenant.user() as c:
        starting = c.get(f"{tenant.dep_path}/runs", params={"status": "STARTING", "limit": 200})
        queued = c.get(f"{tenant.dep_path}/runs", params={"status": "QUEUED", "limit": 200})
    assert len(starting.json()["runs"]) == 5
    assert len(queued.json()["runs"]) == 95


def _create(tenant: Tenant) -> int:
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/runs", json={"code_location": "quick", "job": "etl"})
        return r.status_code


def test_final_event_and_failure_report_racing_never_mix(controlplane: ControlPlane) -> None:
    """A worker's RUN_SUCCESS and an agent's FAILURE arrive together: one wins, whole."""
    tenant = controlplane.tenant(concurrency=100)
    tenant.deploy()
    runs = [tenant.launch()["id"] for _ in range(30)]
    tokens = {r: tenant.run_token(r) for r in runs}
    for r in runs:
        with client(tenant.cp.url, tokens[r]) as w:
            w.post(f"/api/v1/runs/{r}/events", json={"events": [event(1, "RUN_START")]})

    def race(run: str) -> None:
        barrier = threading.Barrier(2)

        def success() -> None:
            with client(tenant.cp.url, tokens[run]) as w:
                barrier.wait()
                body = {"events": [event(2, "RUN_SUCCESS", "all steps succeeded")]}
                w.post(f"/api/v1/runs/{run}/events", json=body)

        def failure() -> None:
            with tenant.agent() as a:
                barrier.wait()
                a.post(
                    f"/api/v1/agent/runs/{run}/status",
                    json={"status": "FAILURE", "message": "boom"},
                )

        threads = [threading.Thread(target=success), threading.Thread(target=failure)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(race, runs))
    outcomes: set[tuple[Any, Any]] = {
        (r["status"], r["status_message"]) for r in (tenant.run(run) for run in runs)
    }
    assert outcomes <= {("SUCCESS", "all steps succeeded"), ("FAILURE", "boom")}


def test_canceling_a_queued_run_cancels_it_and_frees_nothing_it_held(
    controlplane: ControlPlane,
) -> None:
    tenant = controlplane.tenant(concurrency=1)
    tenant.deploy()
    active, queued = tenant.launch()["id"], tenant.launch()["id"]
    with tenant.agent() as a:
        r = a.post(f"/api/v1/agent/runs/{queued}/status", json={"status": "CANCELING"})
        assert r.json()["status"] == "CANCELED"
        # Reports cannot move a QUEUED run past the concurrency limit either.
        later = tenant.launch()["id"]
        r = a.post(f"/api/v1/agent/runs/{later}/status", json={"status": "STARTED"})
        assert r.json()["status"] == "QUEUED"
        a.post(f"/api/v1/agent/runs/{active}/status", json={"status": "SUCCESS"})
    assert tenant.run(later)["status"] == "STARTING"
