"""Malformed, wrong and oversized requests get a 4xx that says what is wrong, never a 500."""

import random

import httpx
import pytest

from tests.support import ControlPlane, Tenant, client, event


def test_malformed_json_names_the_problem(tenant: Tenant) -> None:
    with tenant.user() as c:
        r = c.post(
            f"{tenant.dep_path}/runs",
            content=b'{"code_location": ',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422 and "JSON" in r.json()["detail"]
        r = c.post(f"{tenant.dep_path}/runs", json={"code_location": "x"})
        assert r.status_code == 422 and r.json()["detail"] == "job: Field required"
        r = c.post(
            f"{tenant.dep_path}/runs", json={"code_location": "x", "job": "j", "run_config": [1]}
        )
        assert r.status_code == 422 and r.json()["detail"].startswith("run_config:")
        r = c.post(
            f"{tenant.dep_path}/runs",
            content=b"\xff\xfe\x00garbage",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422


def test_oversized_bodies_are_refused_before_parsing(tenant: Tenant) -> None:
    big = b"x" * (17 * 1024 * 1024)
    with tenant.user() as c:
        r = c.post(
            f"{tenant.dep_path}/runs", content=big, headers={"content-type": "application/json"}
        )
        assert r.status_code == 413 and "max_request_bytes" in r.json()["detail"]

        def chunks():  # no Content-Length: the limit is counted as the body arrives
            for _ in range(17):
                yield b"x" * (1024 * 1024)

        r = c.post(
            f"{tenant.dep_path}/runs",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413


def test_too_many_events_in_a_batch(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch()["id"]
    with client(tenant.cp.url, tenant.run_token(run)) as w:
        r = w.post(
            f"/api/v1/runs/{run}/events", json={"events": [event(i) for i in range(1, 5002)]}
        )
        assert r.status_code == 422 and "at most 5000" in r.json()["detail"]
        r = w.post(f"/api/v1/runs/{run}/events", json={"events": [event(0)]})
        assert r.status_code == 422 and "events.0.seq" in r.json()["detail"]
        r = w.post(f"/api/v1/runs/{run}/events", json={"events": [event(1, "NOT_A_TYPE")]})
        assert r.status_code == 422


@pytest.mark.timeout(120)
def test_no_endpoint_answers_500_to_garbage(controlplane: ControlPlane) -> None:
    """Send junk to every operation of the OpenAPI spec with each kind of token."""
    tenant = controlplane.tenant()
    tenant.deploy()
    run = tenant.launch()["id"]
    tokens = [tenant.user_token, tenant.agent_token, tenant.run_token(run), None]
    spec = httpx.get(f"{controlplane.url}/openapi.json").json()
    rng = random.Random(7)
    junk = [
        b"",
        b"null",
        b"[]",
        b"{}",
        b'{"a":',
        b"\x00\xff",
        b'{"events": [{}]}',
        b'{"status": "NOPE"}',
        b'{"agent_name": "' + b"x" * 5000 + b'"}',
        b"1e999999",
    ]
    values = ["prod", run, "1", "../etc", "a" * 300, "%00", "x:y"]
    seen = 0
    for path, ops in spec["paths"].items():
        for method in ops:
            for token in tokens:
                for body in rng.sample(junk, 4):
                    concrete = path
                    for name in ("dep", "name", "run_id", "request_id"):
                        concrete = concrete.replace("{" + name + "}", rng.choice(values))
                    with client(controlplane.url, token) as c:
                        r = c.request(
                            method.upper(),
                            concrete,
                            content=body,
                            headers={"content-type": "application/json"},
                            timeout=30,
                        )
                    seen += 1
                    assert r.status_code < 500, (method, concrete, body, r.status_code, r.text)
    assert seen > 200
