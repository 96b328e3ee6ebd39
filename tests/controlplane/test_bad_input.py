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


def test_out_of_range_numbers_and_odd_ids_get_4xx(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch()["id"]
    huge = 2**63
    with client(tenant.cp.url, tenant.run_token(run)) as w:
        for bad in (
            event(huge),
            event(2**31),
            event(1, timestamp="2026-01-01T00:00:00"),
        ):
            r = w.post(f"/api/v1/runs/{run}/events", json={"events": [bad]})
            assert r.status_code == 422, (bad, r.text)
        # A valid date-time that UTC cannot hold is clamped, not refused: the event is kept.
        r = w.post(
            f"/api/v1/runs/{run}/events",
            json={"events": [event(1, timestamp="0001-01-01T00:00:00+01:00")]},
        )
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    with tenant.agent() as a:
        r = a.post(
            f"/api/v1/agent/runs/{run}/status", json={"status": "FAILURE", "exit_code": huge}
        )
        assert r.status_code == 422
        for rid in ("\u00b2", str(huge), "1" * 40):
            assert a.post(f"/api/v1/agent/requests/{rid}/ack").status_code == 404
    with tenant.user() as c:
        assert (
            c.get(f"{tenant.dep_path}/runs/{run}/events", params={"after": huge}).status_code == 422
        )
        for cursor in ("\u00b2", str(huge)):
            r = c.get(f"{tenant.dep_path}/runs", params={"cursor": cursor})
            assert r.status_code in (200, 422) and r.status_code != 500


def test_nul_bytes_in_log_lines_are_stored_not_refused(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch()["id"]
    with client(tenant.cp.url, tenant.run_token(run)) as w:
        r = w.post(f"/api/v1/runs/{run}/events", json={"events": [event(1, "LOG", "a\x00b")]})
        assert r.status_code == 200, r.text
    with tenant.user() as c:
        stored = c.get(f"{tenant.dep_path}/runs/{run}/events").json()["events"]
    assert stored[0]["message"] == "a\ufffdb"


def test_nul_bytes_in_any_stored_text_are_replaced(tenant: Tenant) -> None:
    """Every free-text field that lands in a text column (PostgreSQL refuses NUL there)."""
    tenant.deploy()
    with tenant.agent() as a:
        r = a.post(
            "/api/v1/agent/heartbeat",
            json={"agent_name": "a1", "version": "1\x00", "launcher": "p\x00"},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["version"], r.json()["launcher"]) == ("1\ufffd", "p\ufffd")
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/runs", json={"code_location": "quick", "job": "etl",
                                                   "tags": {"k\x00": "v\x00"}})  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["tags"] == {"k\ufffd": "v\ufffd"}
        # Filters read NUL the way it was stored, on every database.
        found = c.get(f"{tenant.dep_path}/runs", params={"tag": "k\x00=v\x00"})
        assert found.status_code == 200, found.text
        assert [run["id"] for run in found.json()["runs"]] == [r.json()["id"]]
        none = c.get(f"{tenant.dep_path}/runs", params={"code_location": "quick\x00"})
        assert none.status_code == 200 and none.json()["runs"] == []
        r = c.post(f"{tenant.dep_path}/agent-tokens", json={"description": "ci\x00"})
        assert r.status_code == 201, r.text


def test_size_caps_on_config_tags_and_event_data(tenant: Tenant) -> None:
    tenant.deploy()
    with tenant.user() as c:
        big = {"blob": "x" * 300_000}
        r = c.post(
            f"{tenant.dep_path}/runs",
            json={"code_location": "quick", "job": "etl", "run_config": big},
        )
        assert r.status_code == 422 and "run_config is 300011 bytes" in r.json()["detail"]
        assert "input" not in str(r.json()["errors"])  # the body is not echoed back
        tags = {f"k{i}": "v" for i in range(101)}
        r = c.post(
            f"{tenant.dep_path}/runs", json={"code_location": "quick", "job": "etl", "tags": tags}
        )
        assert r.status_code == 422
    run = tenant.launch()["id"]
    with client(tenant.cp.url, tenant.run_token(run)) as w:
        r = w.post(
            f"/api/v1/runs/{run}/events", json={"events": [event(1, data={"x": "y" * 300_000})]}
        )
        assert r.status_code == 422 and "event data is" in r.json()["detail"]


@pytest.mark.parametrize(
    ("spec", "field", "allowed"),
    [
        (
            {"module": "m", "working_directory": "../../.."},
            "working_directory",
            "must be an absolute path (e.g. /opt/project) with no '..' components; '../../..' "
            "is relative: relative directories would resolve against the agent's own directory",
        ),
        (
            {"module": "m", "working_directory": "project"},
            "working_directory",
            "must be an absolute path (e.g. /opt/project)",
        ),
        (
            {"module": "m", "working_directory": "/opt/project/../../etc"},
            "working_directory",
            "with no '..' components; '/opt/project/../../etc' has one",
        ),
        (
            {"module": "m", "working_directory": "/opt/\x00"},
            "working_directory",
            "must be an absolute path (e.g. /opt/project) with no '..' components; it holds a NUL",
        ),
        (
            {"module": "../../../etc/passwd"},
            "module",
            "must be a dotted Python module name such as 'my_project.definitions'",
        ),
        (
            {"module": "my_project/definitions.py"},
            "module",
            "must be a dotted Python module name such as 'my_project.definitions'",
        ),
        (
            {"python_file": "/etc/passwd", "working_directory": "/opt/project"},
            "python_file",
            "must be a path inside working_directory, e.g. 'definitions.py'; '/etc/passwd' is "
            "not relative to it",
        ),
        (
            # Absolute, even inside it: with a working directory the file is relative to it
            # (a rule the schema can state).
            {"python_file": "/opt/project/defs.py", "working_directory": "/opt/project"},
            "python_file",
            "must be a path inside working_directory, e.g. 'definitions.py'",
        ),
        (
            {"python_file": "../../etc/passwd", "working_directory": "/opt/project"},
            "python_file",
            "must be a path inside working_directory, e.g. 'definitions.py'; '../../etc/passwd' "
            "has a '..' component",
        ),
        (
            {"python_file": "lib/../../defs.py"},
            "python_file",
            "must be a path with no '..' components, e.g. 'definitions.py'",
        ),
    ],
)
def test_code_location_paths_and_module_are_checked(
    tenant: Tenant, spec: dict[str, str], field: str, allowed: str
) -> None:
    with tenant.user() as c:
        r = c.put(f"{tenant.dep_path}/code-locations/odd", json=spec)
        assert r.status_code == 422, r.text
        body = r.json()
        # The field, what is allowed, and why this value is not.
        assert body["detail"].startswith(f"{field}: {field} must be "), body["detail"]
        assert allowed in body["detail"], body["detail"]
        assert [e["loc"] for e in body["errors"]] == [["body", field]]
        assert c.get(f"{tenant.dep_path}/code-locations/odd").status_code == 404


def test_code_location_paths_that_stay_inside_are_accepted(tenant: Tenant) -> None:
    for spec in (
        {"module": "pkg.defs", "working_directory": "/opt/project"},
        {"python_file": "defs.py", "working_directory": "/opt/project/"},
        {"python_file": "./src/defs.py", "working_directory": "/opt/project"},
        {"python_file": "/srv/defs.py"},  # no working directory: any absolute file
        {"python_file": "defs.py"},
        {"python_file": "..hidden/defs.py", "working_directory": "/opt/...odd"},
    ):
        location = tenant.deploy("fine", **spec)["code_location"]
        assert {k: location["spec"][k] for k in spec} == spec
