"""Run retries on a real control plane: a failed run of a job that declares retries (or a run
tagged for them) gets a new run linked to it, once per failure, until the limit."""

from typing import Any

from tests.support import Tenant, client, event
from tether_sdk.examples.quickstart import defs


def declare(tenant: Tenant, **retry: Any) -> None:
    snapshot = defs.snapshot()
    jobs = [
        j.model_validate({**j.model_dump(), **retry}) if j.name == "etl" else j
        for j in snapshot.jobs
    ]
    tenant.deploy("quick")
    with tenant.agent() as agent:
        r = agent.post(
            "/api/v1/agent/code-locations/quick/status",
            json={
                "status": "RUNNING",
                "snapshot": snapshot.model_copy(update={"jobs": jobs}).model_dump(mode="json"),
            },
        )
        assert r.status_code == 200, r.text


def launch(tenant: Tenant, **tags: str) -> dict[str, Any]:
    return tenant.launch("quick", "etl", run_config={"source": "s3://x"}, tags=tags)


def step_fails(tenant: Tenant, run_id: str) -> None:
    """The run worker reports the run FAILURE itself (a step failed)."""
    with client(tenant.cp.url, tenant.run_token(run_id)) as worker:
        batch = {"events": [event(1, "RUN_START"), event(2, "RUN_FAILURE", "steps failed: load")]}
        for _ in range(2):  # delivered twice: still one failure
            r = worker.post(f"/api/v1/runs/{run_id}/events", json=batch)
            assert r.status_code == 200, r.text


def worker_dies(tenant: Tenant, run_id: str) -> None:
    """The agent reports that the worker exited without a final event."""
    with tenant.agent() as agent:
        for status, extra in (("STARTED", {}), ("FAILURE", {"exit_code": -9})):
            r = agent.post(
                f"/api/v1/agent/runs/{run_id}/status",
                json={"status": status, "message": "killed by signal 9", **extra},
            )
            assert r.status_code == 200, r.text


def retries_of(tenant: Tenant, run_id: str) -> list[dict[str, Any]]:
    with tenant.user() as c:
        runs = c.get(f"{tenant.dep_path}/runs", params={"limit": 200}).json()["runs"]
    return [r for r in runs if r["parent_run_id"] == run_id]


def test_a_failed_run_is_retried_until_the_limit(tenant: Tenant) -> None:
    declare(tenant, max_retries=2)
    first = launch(tenant)
    step_fails(tenant, first["id"])
    [second] = retries_of(tenant, first["id"])
    assert second["attempt"] == 2 and second["root_run_id"] == first["id"]
    assert second["run_config"] == first["run_config"] and second["job"] == "etl"
    assert (
        f"retried as run {second['id']} (attempt 2 of 3)"
        in tenant.run(first["id"])["status_message"]
    )
    worker_dies(tenant, second["id"])
    [third] = retries_of(tenant, second["id"])
    assert third["attempt"] == 3 and third["root_run_id"] == first["id"]
    step_fails(tenant, third["id"])
    assert retries_of(tenant, third["id"]) == []  # 1 run + 2 retries: the limit


def test_retry_on_worker_died_leaves_step_failures_alone(tenant: Tenant) -> None:
    declare(tenant, max_retries=1, retry_on="worker_died")
    failed = launch(tenant)
    step_fails(tenant, failed["id"])
    assert retries_of(tenant, failed["id"]) == []
    died = launch(tenant)
    worker_dies(tenant, died["id"])
    [retry] = retries_of(tenant, died["id"])
    assert retry["attempt"] == 2


def test_a_runs_tags_ask_for_retries_its_job_does_not_declare(tenant: Tenant) -> None:
    declare(tenant)
    plain = launch(tenant)
    step_fails(tenant, plain["id"])
    assert retries_of(tenant, plain["id"]) == []
    tagged = launch(tenant, **{"tether/max_retries": "1"})
    step_fails(tenant, tagged["id"])
    [retry] = retries_of(tenant, tagged["id"])
    assert retry["tags"]["tether/max_retries"] == "1"
    step_fails(tenant, retry["id"])
    assert retries_of(tenant, retry["id"]) == []


def test_success_and_cancel_are_never_retried(tenant: Tenant) -> None:
    declare(tenant, max_retries=3)
    ok = launch(tenant)
    with client(tenant.cp.url, tenant.run_token(ok["id"])) as worker:
        r = worker.post(
            f"/api/v1/runs/{ok['id']}/events",
            json={"events": [event(1, "RUN_START"), event(2, "RUN_SUCCESS")]},
        )
        assert r.status_code == 200
    canceled = launch(tenant)
    with tenant.user() as c:
        c.post(f"{tenant.dep_path}/runs/{canceled['id']}/terminate")
    with tenant.agent() as agent:
        agent.post(f"/api/v1/agent/runs/{canceled['id']}/status", json={"status": "CANCELED"})
    assert retries_of(tenant, ok["id"]) == [] and retries_of(tenant, canceled["id"]) == []


def test_a_run_that_fails_while_canceling_is_not_retried(tenant: Tenant) -> None:
    declare(tenant, max_retries=3)
    run = launch(tenant)
    with tenant.agent() as agent:
        agent.post(f"/api/v1/agent/runs/{run['id']}/status", json={"status": "STARTED"})
    with tenant.user() as c:
        assert c.post(f"{tenant.dep_path}/runs/{run['id']}/terminate").status_code == 202
    step_fails(tenant, run["id"])  # its step dies of the termination
    assert tenant.run(run["id"])["status"] == "FAILURE"
    assert retries_of(tenant, run["id"]) == []
