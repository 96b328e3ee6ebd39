"""The control plane's side of Tether's Nexus service, on a real control plane (SQLite and
PostgreSQL): the nexus token and the few run endpoints it may call, idempotent creates (racing
ones too), the Temporal workflow recorded as a run's caller, the link from a failed run to its
retry, and a GET of a run that waits for its end."""

import threading
import time
from typing import Any

import httpx

from tests.controlplane.test_retries import declare, step_fails
from tests.support import Tenant, client, event

CALLER = {
    "namespace": "orders",
    "workflow_id": "order-4711",
    "run_id": "0b1c2d3e-run",
    "workflow_type": "OrderWorkflow",
    "service_endpoint": "tether-prod",
}
NEXUS_TERMINATES_ITS_OWN = (
    "a nexus token terminates only the runs started through Tether's Nexus service"
)


def nexus_token(tenant: Tenant, name: str = "nexus-prod", deployment: str = "prod") -> str:
    with tenant.user() as c:
        r = c.post("/api/v1/tokens", json={"name": name, "kind": "nexus", "deployment": deployment})
        assert r.status_code == 201, r.text
        return r.json()["token"]  # type: ignore[no-any-return]


def create(c: httpx.Client, tenant: Tenant, **body: Any) -> httpx.Response:
    payload = {"code_location": "quick", "job": "etl", "run_config": {"source": "s3://x"}}
    return c.post(f"{tenant.dep_path}/runs", json={**payload, **body})


def submits(tenant: Tenant, run_id: str) -> list[dict[str, Any]]:
    with tenant.user() as c:
        r = c.get("/api/v1/audit", params={"action": "run.submit", "target": run_id})
        assert r.status_code == 200, r.text
        return r.json()["entries"]  # type: ignore[no-any-return]


def listed(tenant: Tenant, **params: Any) -> dict[str, Any]:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/runs", params=params)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def test_a_nexus_token_is_created_listed_and_revoked(tenant: Tenant) -> None:
    with tenant.user() as c:
        r = c.post("/api/v1/tokens", json={"name": "nx", "kind": "nexus", "deployment": "prod"})
        assert r.status_code == 201, r.text
        secret, info = r.json()["token"], r.json()["info"]
        assert secret.startswith("tether_nexus_")
        assert (info["kind"], info["scope"], info["deployment"]) == ("nexus", "deployment", "prod")
        assert [t["kind"] for t in c.get("/api/v1/tokens").json()] == ["user", "agent", "nexus"]
        assert secret not in c.get("/api/v1/tokens").text
        # A web session cannot mint one, as it cannot mint an agent token.
        session = c.post("/api/v1/sessions").json()["token"]
    with client(tenant.cp.url, session) as web:
        r = web.post("/api/v1/tokens", json={"name": "x", "kind": "nexus", "deployment": "prod"})
        assert r.status_code == 403 and "needs a user token" in r.json()["detail"]
    with client(tenant.cp.url, secret) as nexus:
        assert nexus.get(f"{tenant.dep_path}/runs/nope").status_code == 404  # it works
    with tenant.user() as c:
        assert c.post(f"/api/v1/tokens/{info['id']}/revoke").status_code == 200
    with client(tenant.cp.url, secret) as nexus:
        r = nexus.get(f"{tenant.dep_path}/runs/nope")
    assert r.status_code == 401 and r.json()["reason"] == "token_revoked"
    assert r.json()["detail"].endswith(
        "; create a new one with `tether tokens create NAME --kind nexus --deployment DEP` and "
        "restart the agent with it (TETHER_NEXUS_TOKEN)"
    ), r.json()


def test_what_a_nexus_token_may_and_may_not_do(tenant: Tenant) -> None:
    tenant.deploy("quick")
    token = nexus_token(tenant)
    mine = tenant.launch("quick", "etl", run_config={"source": "s3://x"})
    with client(tenant.cp.url, token) as nexus:
        # Create, read, read the steps, and terminate the runs it started.
        started = create(nexus, tenant, caller=CALLER)
        assert started.status_code == 201, started.text
        run_id = started.json()["id"]
        assert nexus.get(f"{tenant.dep_path}/runs/{run_id}").json()["caller"] == CALLER
        assert nexus.get(f"{tenant.dep_path}/runs/{run_id}/steps").status_code == 200
        # Its events too (a run's materializations are the operation's outcome).
        assert nexus.get(f"{tenant.dep_path}/runs/{run_id}/events").status_code == 200
        r = nexus.post(f"{tenant.dep_path}/runs/{run_id}/terminate")
        assert r.status_code == 202, r.text
        assert "terminated through Tether's Nexus service" in r.json()["status_message"]
        assert "order-4711" in r.json()["status_message"]
        # It may read a user's run, never terminate it, nor one it started without a caller.
        assert nexus.get(f"{tenant.dep_path}/runs/{mine['id']}").status_code == 200
        uncalled = create(nexus, tenant).json()["id"]
        for other in (mine["id"], uncalled):
            r = nexus.post(f"{tenant.dep_path}/runs/{other}/terminate")
            assert r.status_code == 403 and r.json()["detail"] == NEXUS_TERMINATES_ITS_OWN
        assert tenant.run(mine["id"])["status"] != "CANCELED"

        # Everything else: refused, naming the token it needs.
        user_only = [
            ("GET", f"{tenant.dep_path}/runs"),
            ("POST", f"{tenant.dep_path}/runs/validate"),
            ("GET", f"{tenant.dep_path}/runs/{run_id}/events/stream"),
            ("GET", f"{tenant.dep_path}/runs/{run_id}/logs"),
            ("GET", f"{tenant.dep_path}/code-locations"),
            ("PUT", f"{tenant.dep_path}/code-locations/quick"),
            ("GET", "/api/v1/deployments"),
            ("GET", "/api/v1/tokens"),
            ("GET", "/api/v1/audit"),
        ]
        for method, path in user_only:
            r = nexus.request(method, path, json={})
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["detail"] == (
                "this endpoint needs a user token, and a nexus token was sent"
            ), (method, path)
        r = nexus.post("/api/v1/tokens", json={"name": "x", "kind": "user"})
        assert r.json()["detail"] == "this endpoint needs a user token, and a nexus token was sent"
        r = nexus.post("/api/v1/agent/heartbeat", json={"agent_name": "a1"})
        assert r.status_code == 403
        assert (
            r.json()["detail"] == "this endpoint needs an agent token, and a nexus token was sent"
        )

        # Another deployment of its organization: as unknown as one that does not exist.
        with tenant.user() as c:
            assert c.post("/api/v1/deployments/staging").status_code == 201
        for dep in ("staging", "nope"):
            for method, path in (
                ("POST", f"/api/v1/deployments/{dep}/runs"),
                ("GET", f"/api/v1/deployments/{dep}/runs/{run_id}"),
                ("GET", f"/api/v1/deployments/{dep}/runs/{run_id}/steps"),
                ("POST", f"/api/v1/deployments/{dep}/runs/{run_id}/terminate"),
            ):
                body = {"code_location": "quick", "job": "etl"} if method == "POST" else None
                r = nexus.request(method, path, json=body)
                assert r.status_code == 404, (dep, path, r.text)
                assert r.json()["detail"] == (
                    f"deployment {dep!r} not found in your organization; list them with GET "
                    "/api/v1/deployments"
                )
    # The routes it shares with users still refuse agents, naming both kinds.
    with tenant.agent() as agent:
        r = create(agent, tenant)
    assert r.status_code == 403
    assert r.json()["detail"] == (
        "this endpoint needs a user or nexus token, and an agent token was sent"
    )


def test_the_same_idempotency_key_answers_the_first_run(tenant: Tenant) -> None:
    tenant.deploy("quick")
    with tenant.user() as c:
        first = create(c, tenant, idempotency_key="nightly-2026-12-01")
        assert first.status_code == 201, first.text
        again = create(c, tenant, idempotency_key="nightly-2026-12-01", tags={"x": "y"})
        assert again.status_code == 200, again.text
        run = first.json()
        assert again.json()["id"] == run["id"] and again.json()["tags"] == {}
        assert run["idempotency_key"] == "nightly-2026-12-01"
        assert len(submits(tenant, run["id"])) == 1
        assert submits(tenant, run["id"])[0]["details"]["idempotency_key"] == "nightly-2026-12-01"
        # Another job or location under the same key: refused, naming the key and the run.
        for other in ({"job": "refresh_sales"}, {"code_location": "other"}):
            r = create(c, tenant, idempotency_key="nightly-2026-12-01", **other)
            assert r.status_code == 409, r.text
            assert "idempotency_key 'nightly-2026-12-01' was already used" in r.json()["detail"]
            assert f"for run {run['id']} of job 'etl'" in r.json()["detail"]
        # Without a key, every create is a run; a key is one run per deployment.
        assert create(c, tenant).json()["id"] != create(c, tenant).json()["id"]
        assert c.post("/api/v1/deployments/staging").status_code == 201
        r = c.put(
            "/api/v1/deployments/staging/code-locations/quick",
            json={"module": "tether_sdk.examples.quickstart"},
        )
        assert r.status_code == 200
        r = c.post(
            "/api/v1/deployments/staging/runs",
            json={"code_location": "quick", "job": "etl", "idempotency_key": "nightly-2026-12-01"},
        )
        assert r.status_code == 201 and r.json()["id"] != run["id"]
        for bad in ("", "k" * 201):
            r = create(c, tenant, idempotency_key=bad)
            assert r.status_code == 422 and r.json()["errors"][0]["loc"] == [
                "body",
                "idempotency_key",
            ]
    assert len(listed(tenant, limit=200)["runs"]) == 3


def test_racing_creates_with_one_key_make_one_run(tenant: Tenant) -> None:
    tenant.deploy("quick")
    token = nexus_token(tenant)
    racers = 8
    start = threading.Barrier(racers)
    answers: list[httpx.Response] = []

    def race() -> None:
        with client(tenant.cp.url, token) as nexus:
            start.wait()
            answers.append(create(nexus, tenant, idempotency_key="race", caller=CALLER))

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.status_code for r in answers) == [200] * (racers - 1) + [201], [
        r.text for r in answers
    ]
    assert len({r.json()["id"] for r in answers}) == 1
    assert len(listed(tenant, limit=200)["runs"]) == 1
    assert len(submits(tenant, answers[0].json()["id"])) == 1


def test_the_caller_is_recorded_returned_filtered_and_audited(tenant: Tenant) -> None:
    tenant.deploy("quick")
    token = nexus_token(tenant, name="nexus-orders")
    other_caller = {"namespace": "billing", "workflow_id": "invoice-1"}
    with client(tenant.cp.url, token) as nexus:
        ids = [create(nexus, tenant, caller=CALLER).json()["id"] for _ in range(3)]
        other = create(nexus, tenant, caller=other_caller).json()
        assert other["caller"] == {**other_caller, "run_id": None, "workflow_type": None} | {
            "service_endpoint": None
        }
        unknown = create(nexus, tenant)
        assert unknown.status_code == 201 and unknown.json()["caller"] is None
    plain = tenant.launch("quick", "etl", run_config={"source": "s3://x"})
    assert plain["caller"] is None and plain["idempotency_key"] is None

    # Found by the workflow's ID (or namespace), newest first, with the other filters, by page.
    page = listed(tenant, caller_workflow_id="order-4711", limit=2)
    assert [r["id"] for r in page["runs"]] == ids[::-1][:2]
    assert all(r["caller"] == CALLER for r in page["runs"])
    rest = listed(tenant, caller_workflow_id="order-4711", limit=2, cursor=page["next_cursor"])
    assert [r["id"] for r in rest["runs"]] == ids[:1] and rest["next_cursor"] is None
    assert [r["id"] for r in listed(tenant, caller_namespace="billing")["runs"]] == [other["id"]]
    both = listed(tenant, caller_namespace="orders", caller_workflow_id="invoice-1")
    assert both["runs"] == []
    assert listed(tenant, caller_workflow_id="order-4711", job="refresh_sales")["runs"] == []
    assert len(listed(tenant, caller_workflow_id="order-4711", status="STARTING")["runs"]) == 3

    # Audited with the caller, by the token's name.
    [entry] = submits(tenant, ids[0])
    assert (entry["actor_name"], entry["actor_kind"]) == ("nexus-orders", "nexus")
    assert entry["details"]["caller"] == CALLER
    assert "caller" not in submits(tenant, plain["id"])[0]["details"]

    # Only the Nexus service records a caller.
    with tenant.user() as c:
        r = create(c, tenant, caller=CALLER)
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {
            "loc": ["body", "caller"],
            "msg": "only Tether's Nexus service records a caller: leave 'caller' out (a "
            "user's run has none)",
            "type": "value_error",
        }
    ]
    with client(tenant.cp.url, token) as nexus:
        r = create(nexus, tenant, caller={"namespace": "orders", "workflow_id": "w" * 1001})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == [
        "body",
        "caller",
        "workflow_id",
    ]


def test_a_retry_keeps_the_caller_and_its_failed_run_links_to_it(tenant: Tenant) -> None:
    declare(tenant, max_retries=1)
    token = nexus_token(tenant)
    with client(tenant.cp.url, token) as nexus:
        first = create(nexus, tenant, caller=CALLER, idempotency_key="op-1").json()
        assert first["retry_run_id"] is None
        step_fails(tenant, first["id"])
        failed = nexus.get(f"{tenant.dep_path}/runs/{first['id']}").json()
        retry_id = failed["retry_run_id"]
        assert retry_id is not None and failed["status"] == "FAILURE"
        retry = nexus.get(f"{tenant.dep_path}/runs/{retry_id}").json()
        assert retry["parent_run_id"] == first["id"] and retry["caller"] == CALLER
        assert retry["idempotency_key"] is None and retry["retry_run_id"] is None
        # The same key again answers the failed run, which says where its retry is.
        again = create(nexus, tenant, caller=CALLER, idempotency_key="op-1")
        assert again.status_code == 200 and again.json()["retry_run_id"] == retry_id
        # The retry is the workflow's too: found by it, and its operation may terminate it.
        found = listed(tenant, caller_workflow_id="order-4711")["runs"]
        assert [(r["id"], r["retry_run_id"]) for r in found] == [
            (retry_id, None),
            (first["id"], retry_id),
        ]
        assert nexus.post(f"{tenant.dep_path}/runs/{retry_id}/terminate").status_code == 202


def finish(tenant: Tenant, run_id: str, worker_token: str) -> None:
    with client(tenant.cp.url, worker_token) as worker:
        batch = {"events": [event(1, "RUN_START"), event(2, "RUN_SUCCESS")]}
        r = worker.post(f"/api/v1/runs/{run_id}/events", json=batch)
        assert r.status_code == 200, r.text


def test_a_get_waits_for_the_run_to_end_or_for_wait_seconds(tenant: Tenant) -> None:
    """The session's control plane re-reads waiting requests only every 10 s: an answer
    within a second of the end comes from the wake-up of the commit that ended the run."""
    tenant.deploy("quick")
    run = tenant.launch("quick", "etl", run_config={"source": "s3://x"})
    worker_token = tenant.run_token(run["id"])
    token = nexus_token(tenant)
    path = f"{tenant.dep_path}/runs/{run['id']}"

    with client(tenant.cp.url, token) as nexus:
        began = time.monotonic()
        r = nexus.get(path, params={"wait_seconds": 1.5})
        waited = time.monotonic() - began
    assert r.status_code == 200 and r.json()["status"] == "STARTING"
    assert 1.5 <= waited < 3, waited

    answer: dict[str, Any] = {}

    def wait() -> None:
        with client(tenant.cp.url, token) as nexus:
            answer["response"] = nexus.get(path, params={"wait_seconds": 30}, timeout=60)
            answer["at"] = time.monotonic()

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(1.0)
    assert waiter.is_alive()
    finish(tenant, run["id"], worker_token)
    ended = time.monotonic()
    waiter.join(40)
    assert answer["response"].status_code == 200
    assert answer["response"].json()["status"] == "SUCCESS"
    assert answer["at"] - ended < 1.0, answer["at"] - ended

    with tenant.user() as c:
        began = time.monotonic()
        r = c.get(path, params={"wait_seconds": 60})  # already final: at once
        assert r.json()["status"] == "SUCCESS" and time.monotonic() - began < 1
        for bad in (-1, 60.5, "soon"):
            r = c.get(path, params={"wait_seconds": bad})
            assert r.status_code == 422 and r.json()["errors"][0]["loc"] == [
                "query",
                "wait_seconds",
            ]


def test_events_are_read_by_type(tenant: Tenant) -> None:
    tenant.deploy("quick")
    run = tenant.launch("quick", "etl", run_config={"source": "s3://x"})
    finish(tenant, run["id"], tenant.run_token(run["id"]))
    path = f"{tenant.dep_path}/runs/{run['id']}/events"
    with client(tenant.cp.url, nexus_token(tenant)) as nexus:
        every = nexus.get(path).json()["events"]
        only = nexus.get(path, params={"type": ["RUN_SUCCESS"]}).json()
        both = nexus.get(path, params={"type": ["RUN_SUCCESS", "RUN_START"]}).json()
        wrong = nexus.get(path, params={"type": ["NOPE"]})
    assert [e["type"] for e in every] == ["RUN_START", "RUN_SUCCESS"]
    assert [(e["seq"], e["type"]) for e in only["events"]] == [(2, "RUN_SUCCESS")]
    assert only["last_seq"] == 2
    assert [e["type"] for e in both["events"]] == ["RUN_START", "RUN_SUCCESS"]
    assert wrong.status_code == 422 and "type" in wrong.text
