"""Error answers: one JSON shape everywhere, the right status, nothing parsed before the
token is checked."""

import httpx

from tests.support import Tenant, client


def test_a_report_the_state_machine_cannot_take_is_a_422_not_a_500(tenant: Tenant) -> None:
    tenant.deploy()
    run = tenant.launch()["id"]
    with tenant.agent() as c:
        r = c.post(f"/api/v1/agent/runs/{run}/status", json={"status": "QUEUED"})
        assert r.status_code == 422, r.text
        body = r.json()
        assert "QUEUED is set by the control plane only" in body["detail"]
        assert body["errors"][0]["loc"] == ["body", "status"]
        # The run is untouched, and a report it has moved past is ignored, not an error.
        assert tenant.run(run)["status"] == "STARTING"
        assert c.post(f"/api/v1/agent/runs/{run}/status", json={"status": "CANCELED"}).is_success
        r = c.post(f"/api/v1/agent/runs/{run}/status", json={"status": "STARTED"})
        assert r.status_code == 200 and r.json()["status"] == "CANCELED"


def test_every_error_has_detail_and_errors(tenant: Tenant) -> None:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/runs", params={"cursor": "x"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["query", "cursor"]
        r = c.get(f"{tenant.dep_path}/runs", params={"tag": "no-equals-sign"})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"][:2] == ["query", "tag"]
        for r in (
            c.get(f"{tenant.dep_path}/runs/nope"),  # 404 from a service
            c.get("/api/v1/no-such-endpoint"),  # 404 from routing
            c.post(f"{tenant.dep_path}/runs", json={}),  # 422 from validation
        ):
            assert set(r.json()) == {"detail", "errors"}, r.text
    with client(tenant.cp.url) as anonymous:
        r = anonymous.get(f"{tenant.dep_path}/runs")
        assert r.status_code == 401
        assert r.json() == {"detail": r.json()["detail"], "errors": [], "reason": "token_missing"}
        assert r.headers["www-authenticate"] == "Bearer"


def test_json_types_are_not_coerced(tenant: Tenant) -> None:
    with tenant.agent() as c:
        for body in (
            {"agent_name": "a", "max_requests": True},
            {"agent_name": "a", "max_requests": "5"},
            {"agent_name": "a", "wait_seconds": False},
        ):
            r = c.post("/api/v1/agent/requests/poll", json=body)
            assert r.status_code == 422, (body, r.text)
        # An integral number is an integer in JSON Schema, so 1.0 is accepted.
        r = c.post(
            "/api/v1/agent/requests/poll",
            json={"agent_name": "a", "max_requests": 1.0, "wait_seconds": 0},
        )
        assert r.status_code == 200, r.text
    # The user API too: a code location's container, an alert policy and its channel.
    with tenant.user() as c:
        location = f"{tenant.dep_path}/code-locations/strict"
        for container, field in (
            ({"warm_pool": False}, "warm_pool"),
            ({"warm_pool": "1"}, "warm_pool"),
            ({"cpus": True}, "cpus"),
        ):
            r = c.put(location, json={"module": "m", "container": container})
            assert r.status_code == 422, (container, r.text)
            assert r.json()["errors"][0]["loc"] == ["body", "container", field], r.text
        assert c.get(location).status_code == 404
        r = c.put(location, json={"module": "m", "container": {"warm_pool": 2.0}})
        assert (
            r.status_code == 200
            and r.json()["code_location"]["spec"]["container"]["warm_pool"] == 2
        ), r.text
        email = {"type": "email", "smtp_host": "h", "sender": "a@b", "recipients": ["c@d"]}
        for policy, loc in (
            ({"enabled": "true"}, ["enabled"]),
            ({"run_longer_than_minutes": "5"}, ["run_longer_than_minutes"]),
            ({"agent_unavailable_minutes": False}, ["agent_unavailable_minutes"]),
            ({"channel": {**email, "smtp_port": "587"}}, ["channel", "email", "smtp_port"]),
            ({"channel": {**email, "starttls": 1}}, ["channel", "email", "starttls"]),
        ):
            body = {"events": ["run_failure"], "channel": email, **policy}
            r = c.put(f"{tenant.dep_path}/alert-policies/strict", json=body)
            assert r.status_code == 422, (policy, r.text)
            assert r.json()["errors"][0]["loc"] == ["body", *loc], r.text


def test_a_union_field_missing_or_unknown_is_named(tenant: Tenant) -> None:
    # An alert channel says its kind: without `type` (the schema requires it, with no
    # default) or with an unknown one, the 422 names channel.type like any other field.
    with tenant.user() as c:
        path = f"{tenant.dep_path}/alert-policies/untyped"
        for channel, msg, kind in (
            ({"url": "https://hooks.example.com/x"}, "Field required", "missing"),
            (
                {"type": "sms", "url": "https://hooks.example.com/x"},
                "Input should be 'webhook' or 'email'",
                "literal_error",
            ),
        ):
            r = c.put(path, json={"events": ["run_failure"], "channel": channel})
            assert r.status_code == 422, r.text
            assert r.json()["detail"] == f"channel.type: {msg}", r.text
            assert r.json()["errors"] == [
                {"loc": ["body", "channel", "type"], "msg": msg, "type": kind}
            ]
    spec = httpx.get(f"{tenant.cp.url}/openapi.json").json()["components"]["schemas"]
    for name in ("WebhookChannel", "EmailChannel"):
        assert (
            "type" in spec[name]["required"] and "default" not in spec[name]["properties"]["type"]
        )


def test_no_body_is_parsed_without_a_valid_token(tenant: Tenant) -> None:
    malformed = {"content": b'{"code_location": ', "headers": {"content-type": "application/json"}}
    with client(tenant.cp.url) as anonymous:
        r = anonymous.post(f"{tenant.dep_path}/runs", **malformed)  # type: ignore[arg-type]
        assert r.status_code == 401 and "missing token" in r.json()["detail"]
    with client(tenant.cp.url, "tether_user_not-a-real-token") as forged:
        r = forged.post(f"{tenant.dep_path}/runs", **malformed)  # type: ignore[arg-type]
        assert r.status_code == 401 and r.json()["detail"].startswith("invalid token:")
        # Not even a body over the limit is read: the token is refused first.
        r = forged.post(f"{tenant.dep_path}/runs", content=b"x" * (17 * 1024 * 1024))
        assert r.status_code == 401
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/runs", **malformed)  # type: ignore[arg-type]
        assert r.status_code == 422 and "JSON" in r.json()["detail"]


def test_405_names_every_allowed_method(tenant: Tenant) -> None:
    with tenant.user() as c:
        r = c.delete(tenant.dep_path)
        assert r.status_code == 405
        assert r.headers["allow"] == "GET, PATCH, POST"
        assert "use GET, PATCH, POST" in r.json()["detail"]
        r = c.request("OPTIONS", f"{tenant.dep_path}/code-locations/quick")
        assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, PUT"


def test_the_document_declares_errors_auth_and_the_event_stream(tenant: Tenant) -> None:
    spec = httpx.get(f"{tenant.cp.url}/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            if path == "/healthz":
                assert "security" not in operation
                continue
            assert operation["security"] == [{"bearerToken": []}], (method, path)
            assert {"401", "403", "413"} <= set(responses), (method, path)
            for code, response in responses.items():
                if code[0] == "4":
                    assert response["content"] == {"application/json": {"schema": error_ref}}
    stream = spec["paths"]["/api/v1/deployments/{dep}/runs/{run_id}/events/stream"]["get"]
    assert list(stream["responses"]["200"]["content"]) == ["text/event-stream"]
    assert (
        "409"
        in spec["paths"]["/api/v1/deployments/{dep}/runs/{run_id}/terminate"]["post"]["responses"]
    )
    # Exactly one of module and python_file (or, for a Dagster project, neither with a
    # working directory), said with if/then/else: the object keeps both as plain optional
    # properties, which generated clients type (a oneOf beside them made clients see only
    # one of the two).
    for name in ("CodeLocationSpec", "CodeLocationDeploy"):
        spec_schema = spec["components"]["schemas"][name]
        assert "oneOf" not in spec_schema and "anyOf" not in spec_schema, name
        assert {"module", "python_file"} <= set(spec_schema["properties"]), name
        assert spec_schema["if"]["required"] == ["module"], name
        file_given, dagster_project = spec_schema["else"]["anyOf"]
        assert file_given["required"] == ["python_file"], name
        assert dagster_project["properties"]["kind"] == {"const": "dagster"}, name
    # The live stream is text; its frames are described in words.
    frames = stream["responses"]["200"]
    assert frames["content"]["text/event-stream"]["schema"] == {"type": "string"}
    assert "event: end" in frames["description"]
    # Operation IDs are names to call, each once.
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) and {"create_run", "deploy_code_location"} <= set(ids)
