"""Each token kind reaches what it should and nothing else."""

import httpx

from tests.support import ControlPlane, Tenant, client, event


def test_healthz_needs_no_token(controlplane: ControlPlane) -> None:
    assert httpx.get(f"{controlplane.url}/healthz").json() == {"status": "ok"}


def test_missing_and_unknown_tokens_are_refused(tenant: Tenant) -> None:
    with client(tenant.cp.url) as anon:
        r = anon.get(f"{tenant.dep_path}/runs")
        assert r.status_code == 401
        assert "Authorization: Bearer" in r.json()["detail"]
        assert r.json()["reason"] == "token_missing"
        assert r.headers["www-authenticate"] == "Bearer"
    with client(tenant.cp.url, "tether_user_not-a-real-token") as bad:
        r = bad.get(f"{tenant.dep_path}/runs")
        assert r.status_code == 401
        assert r.json()["detail"].startswith("invalid token:")
        assert r.json()["reason"] == "token_unknown"
    with httpx.Client(base_url=tenant.cp.url, headers={"Authorization": "Basic abc"}) as basic:
        assert basic.get(f"{tenant.dep_path}/runs").status_code == 401


def test_user_token_reaches_its_organization_only(controlplane: ControlPlane) -> None:
    a, b = controlplane.tenant(), controlplane.tenant()
    a.deploy("loc")
    with a.user() as c:
        assert c.get(f"{a.dep_path}/code-locations/loc").status_code == 200
        assert [d["name"] for d in c.get("/api/v1/deployments").json()] == ["prod"]
    with b.user() as c:
        # Same deployment name, other organization: b sees its own empty deployment.
        assert c.get(f"{b.dep_path}/code-locations").json() == []
        assert c.get(f"{b.dep_path}/code-locations/loc").status_code == 404
        r = c.get("/api/v1/deployments/staging/runs")
        assert r.status_code == 404
        assert "deployment 'staging' not found" in r.json()["detail"]


def test_user_token_cannot_use_agent_or_worker_api(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch()
    with tenant.user() as c:
        r = c.post("/api/v1/agent/requests/poll", json={"agent_name": "x", "wait_seconds": 0})
        assert r.status_code == 403
        assert r.json()["detail"] == (
            "this endpoint needs an agent token, and a user token was sent"
        )
        assert (
            c.post(f"/api/v1/runs/{run['id']}/events", json={"events": [event(1)]}).status_code
            == 403
        )


def test_agent_token_reaches_its_deployment_only(controlplane: ControlPlane) -> None:
    a, b = controlplane.tenant(), controlplane.tenant()
    a.deploy("only-in-a")
    run = a.launch("only-in-a")
    # b's agent sees none of a's requests, locations or runs.
    assert b.poll() == []
    with b.agent() as c:
        assert c.get("/api/v1/agent/code-locations/only-in-a").status_code == 404
        assert c.get(f"/api/v1/agent/runs/{run['id']}").status_code == 404
        assert c.post(f"/api/v1/agent/runs/{run['id']}/token").status_code == 404
        # And it cannot use the user API at all.
        assert c.get(f"{b.dep_path}/runs").status_code == 403
    assert {r["type"] for r in a.poll()} == {"SYNC_CODE_LOCATION", "LAUNCH_RUN"}


def test_run_token_reaches_its_run_only(tenant: Tenant) -> None:
    tenant.deploy()
    run1, run2 = tenant.launch(), tenant.launch()
    token = tenant.run_token(run1["id"])
    with client(tenant.cp.url, token) as w:
        assert w.get(f"/api/v1/runs/{run1['id']}").json()["job"] == "etl"
        ok = w.post(f"/api/v1/runs/{run1['id']}/events", json={"events": [event(1)]})
        assert ok.status_code == 200
        # Another run: not found, exactly like a run that does not exist.
        other = w.post(f"/api/v1/runs/{run2['id']}/events", json={"events": [event(1)]})
        assert other.status_code == 404
        assert w.get(f"/api/v1/runs/{run2['id']}").status_code == 404
        assert w.get(f"{tenant.dep_path}/runs").status_code == 403
        assert w.post("/api/v1/agent/heartbeat", json={"agent_name": "x"}).status_code == 403


def test_new_run_token_revokes_the_previous_one(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch()
    first = tenant.run_token(run["id"])
    second = tenant.run_token(run["id"])
    assert first != second
    with client(tenant.cp.url, first) as old:
        assert old.post(f"/api/v1/runs/{run['id']}/heartbeat").status_code == 401
    with client(tenant.cp.url, second) as new:
        assert new.post(f"/api/v1/runs/{run['id']}/heartbeat").status_code == 200


def test_agent_tokens_minted_by_users_work_and_are_shown_once(tenant: Tenant) -> None:
    with tenant.user() as c:
        created = c.post(f"{tenant.dep_path}/agent-tokens", json={"description": "ci"}).json()
    assert created["kind"] == "agent" and created["token"].startswith("tether_agent_")
    with client(tenant.cp.url, created["token"]) as a:
        r = a.post("/api/v1/agent/heartbeat", json={"agent_name": "second"})
        assert r.status_code == 200
        assert r.json()["available"] is True
