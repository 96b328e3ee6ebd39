"""Code locations: idempotent PUT, redeploy, removal, agent status reports."""

import json
from typing import Any

from tests.support import Tenant

SNAPSHOT = {
    "jobs": [
        {"name": "etl", "steps": [{"name": "extract"}, {"name": "load", "deps": ["extract"]}]}
    ],
    "assets": [],
    "schedules": [],
}


def _report(tenant: Tenant, name: str, **body: Any) -> dict[str, Any]:
    with tenant.agent() as c:
        r = c.post(f"/api/v1/agent/code-locations/{name}/status", json=body)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def test_put_is_idempotent(tenant: Tenant) -> None:
    first = tenant.deploy("loc", module="pkg.defs", env={"A": "1"})
    with tenant.user() as c:
        again = c.put(
            f"{tenant.dep_path}/code-locations/loc", json={"module": "pkg.defs", "env": {"A": "1"}}
        )
    assert first["changed"] is True and again.json()["changed"] is False
    assert again.json()["code_location"]["generation"] == 1
    requests = tenant.poll()
    assert [r["type"] for r in requests] == ["SYNC_CODE_LOCATION"]
    assert requests[0]["payload"] == {"code_location": "loc", "generation": 1}
    # A changed spec is a new generation and one more sync.
    changed = tenant.deploy("loc", module="pkg.defs", env={"A": "2"})
    assert changed["changed"] is True and changed["code_location"]["generation"] == 2
    assert [r["payload"]["generation"] for r in tenant.poll()] == [2]


def test_unclaimed_syncs_coalesce(tenant: Tenant) -> None:
    tenant.deploy("loc", module="m1")
    tenant.deploy("loc", module="m2")
    with tenant.user() as c:
        assert c.post(f"{tenant.dep_path}/code-locations/loc/redeploy").status_code == 202
    # Three intents, one request, carrying the newest generation.
    assert [r["payload"] for r in tenant.poll()] == [{"code_location": "loc", "generation": 3}]


def test_spec_needs_exactly_one_target(tenant: Tenant) -> None:
    with tenant.user() as c:
        r = c.put(
            f"{tenant.dep_path}/code-locations/loc", json={"module": "a", "python_file": "b.py"}
        )
        assert r.status_code == 422
        assert "exactly one of 'module'" in r.json()["detail"]
        r = c.put(f"{tenant.dep_path}/code-locations/bad:name", json={"module": "a"})
        assert r.status_code == 422


def test_status_reports_snapshot_error_and_history(tenant: Tenant) -> None:
    tenant.deploy("loc")
    tenant.poll()
    _report(tenant, "loc", status="STARTING", generation=1)
    _report(
        tenant,
        "loc",
        status="ERROR",
        message="ImportError: no module named x",
        log_tail=["Traceback (most recent call last):", "ImportError: no module named x"],
        generation=1,
    )
    with tenant.user() as c:
        loc = c.get(f"{tenant.dep_path}/code-locations/loc").json()
    assert loc["status"] == "ERROR"
    assert loc["error"]["log_tail"][-1] == "ImportError: no module named x"
    _report(tenant, "loc", status="RUNNING", snapshot=SNAPSHOT, generation=1)
    _report(tenant, "loc", status="RUNNING", snapshot=SNAPSHOT, generation=1)  # retried report
    with tenant.user() as c:
        loc = c.get(f"{tenant.dep_path}/code-locations/loc").json()
    assert loc["status"] == "RUNNING" and loc["error"] is None
    assert [j["name"] for j in loc["snapshot"]["jobs"]] == ["etl"]
    assert [h["status"] for h in loc["status_history"]] == [
        "RUNNING",
        "ERROR",
        "STARTING",
        "PENDING",
    ]


def test_stale_generation_reports_are_ignored(tenant: Tenant) -> None:
    tenant.deploy("loc", module="m1")
    tenant.deploy("loc", module="m2")
    _report(tenant, "loc", status="RUNNING", generation=2)
    after = _report(tenant, "loc", status="ERROR", message="old server died", generation=1)
    assert after["status"] == "RUNNING"


def test_a_new_generation_follows_the_one_named_once(tenant: Tenant) -> None:
    """A redeploy sent through Temporal: the agent names the generation it follows, and the
    generation goes up only from that one, so a retried call (its answer lost) records no
    second one. A deploy that overtook the call is answered as it is. Without ``follows``
    (an agent of an earlier version) every call records one, as before. No SYNC either way:
    the workflow is deploying it."""
    tenant.deploy("loc")
    tenant.poll()  # the deploy's sync

    def new_generation(**body: Any) -> dict[str, Any]:
        with tenant.agent() as c:
            r = c.post("/api/v1/agent/code-locations/loc/generations", json=body)
            assert r.status_code == 201, r.text
            answered: dict[str, Any] = r.json()
            return answered

    assert new_generation(follows=1)["generation"] == 2
    assert new_generation(follows=1)["generation"] == 2  # the retry: answered as it is
    assert new_generation(reason="earlier agent")["generation"] == 3
    assert new_generation(reason="earlier agent")["generation"] == 4
    tenant.deploy("loc", module="pkg.changed")  # generation 5, before the agent's call
    assert new_generation(follows=4)["generation"] == 5
    with tenant.user() as c:
        history = c.get(f"{tenant.dep_path}/code-locations/loc").json()["status_history"]
    messages = [change["message"] for change in history]
    assert messages.count("redeploy requested through Temporal") == 1
    assert messages.count("earlier agent") == 2
    assert [r["payload"]["generation"] for r in tenant.poll()] == [5]  # the deploy's only
    with tenant.agent() as c:
        for bad in (-1, "1", True, 1.5):
            r = c.post("/api/v1/agent/code-locations/loc/generations", json={"follows": bad})
            assert r.status_code == 422, (bad, r.text)


def test_remove_enqueues_and_hides(tenant: Tenant) -> None:
    tenant.deploy("loc")
    with tenant.user() as c:
        assert c.delete(f"{tenant.dep_path}/code-locations/loc").status_code == 202
        assert c.delete(f"{tenant.dep_path}/code-locations/loc").status_code == 202
        assert c.get(f"{tenant.dep_path}/code-locations").json() == []
        assert len(c.get(f"{tenant.dep_path}/code-locations?include_removed=true").json()) == 1
        assert c.get(f"{tenant.dep_path}/code-locations/loc").status_code == 404
        assert c.delete(f"{tenant.dep_path}/code-locations/nope").status_code == 404
    # The pending sync was superseded: the agent is only told to remove.
    assert [r["type"] for r in tenant.poll()] == ["REMOVE_CODE_LOCATION"]
    stopped = _report(tenant, "loc", status="STOPPED")
    assert stopped["removed"] is True and stopped["status"] == "STOPPED"
    # Deploying again revives it.
    again = tenant.deploy("loc")
    assert again["changed"] is True and again["code_location"]["status"] == "PENDING"


def test_runs_need_a_known_location_and_job(tenant: Tenant) -> None:
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/runs", json={"code_location": "ghost", "job": "etl"})
        assert r.status_code == 404 and "tether deploy ghost" in r.json()["detail"]
    tenant.deploy("loc")
    _report(tenant, "loc", status="RUNNING", snapshot=SNAPSHOT, generation=1)
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/runs", json={"code_location": "loc", "job": "nope"})
        assert r.status_code == 422
        assert (
            r.json()["detail"]
            == "job 'nope' is not defined in code location 'loc'; its jobs are: etl"
        )


def test_a_run_is_checked_against_the_newest_snapshot(tenant: Tenant) -> None:
    """Snapshots are parsed once per report and kept: a new report (a redeploy's) replaces
    what runs are checked against at once."""
    tenant.deploy("loc")
    _report(tenant, "loc", status="RUNNING", snapshot=SNAPSHOT, generation=1)
    renamed = {**SNAPSHOT, "jobs": [{**SNAPSHOT["jobs"][0], "name": "etl_v2"}]}  # type: ignore[dict-item]
    with tenant.user() as c:
        body = {"code_location": "loc", "job": "etl"}
        assert c.post(f"{tenant.dep_path}/runs/validate", json=body).json()["valid"]
        _report(tenant, "loc", status="RUNNING", snapshot=renamed, generation=1)
        r = c.post(f"{tenant.dep_path}/runs", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["detail"].endswith("its jobs are: etl_v2")
        r = c.post(f"{tenant.dep_path}/runs", json={**body, "job": "etl_v2"})
        assert r.status_code == 201, r.text


def test_a_spec_stored_before_the_path_rules_still_reads(tenant: Tenant) -> None:
    """A relative working directory was accepted before deploys checked paths: such a stored
    location still lists and reads (the rules apply to deploys, not to what is stored)."""
    import sqlalchemy as sa

    tenant.deploy("legacy", python_file="defs.py", working_directory="/opt/p")
    engine = sa.create_engine(tenant.cp.database_url)
    try:
        with engine.begin() as db:
            spec = {"python_file": "../defs.py", "working_directory": "src", "env": {}}
            db.execute(
                sa.text("UPDATE code_locations SET spec = :spec WHERE name = 'legacy'"),
                {"spec": json.dumps(spec)},
            )
    finally:
        engine.dispose()
    with tenant.user() as c:
        one = c.get(f"{tenant.dep_path}/code-locations/legacy")
        assert one.status_code == 200, one.text
        assert one.json()["spec"]["working_directory"] == "src"
        listed = c.get(f"{tenant.dep_path}/code-locations")
        assert listed.status_code == 200 and [x["name"] for x in listed.json()] == ["legacy"]
        # Deployed again as it is, it gets the rule's explanation.
        again = c.put(f"{tenant.dep_path}/code-locations/legacy", json=one.json()["spec"])
        assert again.status_code == 422
        assert "working_directory must be an absolute path" in again.text


def test_a_deployed_location_does_not_change_agent_queue(tenant: Tenant) -> None:
    tenant.deploy("trainer", module="m", agent_queue="gpu")
    with tenant.user() as c:
        path = f"{tenant.dep_path}/code-locations/trainer"
        moved = c.put(path, json={"module": "m"})
        assert moved.status_code == 409, moved.text
        detail = moved.json()["detail"]
        assert (
            "served by agent queue 'gpu'" in detail and "tether locations remove trainer" in detail
        )
        assert c.put(path, json={"module": "m2", "agent_queue": "gpu"}).status_code == 200
        assert c.delete(path).status_code == 202
        again = c.put(path, json={"module": "m"})
        assert again.status_code == 200, again.text
        assert again.json()["code_location"]["spec"]["agent_queue"] is None


def test_a_run_into_a_location_in_error_is_refused_with_its_error_and_the_fix(
    tenant: Tenant,
) -> None:
    tenant.deploy("loc")
    _report(tenant, "loc", status="RUNNING", snapshot=SNAPSHOT, generation=1)
    error = (
        "could not load the definitions: ModuleNotFoundError: No module named 'warehouse'; "
        "fix the code and run `tether redeploy loc`\nTraceback (most recent call last):\n..."
    )
    _report(tenant, "loc", status="ERROR", message=error, generation=1)
    body = {"code_location": "loc", "job": "etl"}
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/runs", json=body)
        assert r.status_code == 409, r.text
        assert r.json()["detail"] == (
            "code location 'loc' is in ERROR, so no run of job 'etl' can start there: could "
            "not load the definitions: ModuleNotFoundError: No module named 'warehouse'; fix "
            "the code and run `tether redeploy loc`. Launch it again once the location is "
            "RUNNING (`tether locations show loc` has the error and the code server's last log "
            "lines)"
        )
        assert c.get(f"{tenant.dep_path}/runs").json()["runs"] == []
    assert [r["type"] for r in tenant.poll()] == ["SYNC_CODE_LOCATION"]  # no LAUNCH_RUN

    _report(tenant, "loc", status="RUNNING", snapshot=SNAPSHOT, generation=1)
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/runs", json=body)
        assert r.status_code == 201, r.text
