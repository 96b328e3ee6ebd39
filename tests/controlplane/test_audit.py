"""The audit log over the real API: an entry for each action, by whom and when, filtered and
paged; and append-only in the database itself (SQLite and PostgreSQL triggers)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from tests.controlplane.test_scheduler import daily
from tests.controlplane.test_sensors import report_snapshot, watcher
from tests.support import Tenant, client
from tether_controlplane.db import Database


def audit(tenant: Tenant, token: str | None = None, **params: Any) -> dict[str, Any]:
    with client(tenant.cp.url, token or tenant.user_token) as c:
        r = c.get("/api/v1/audit", params=params)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json() if r.content else {}  # type: ignore[no-any-return]


def test_each_action_is_recorded_with_who_and_when(tenant: Tenant) -> None:
    started = datetime.now(UTC)
    dep = tenant.dep_path
    with tenant.user() as c:
        made = ok(c.post("/api/v1/tokens", json={"name": "ci", "kind": "user"}), 201)
        ok(c.post("/api/v1/deployments/staging"), 201)
        ok(c.patch(dep, json={"run_concurrency_limit": 3}))
        settings = {"forwarding": "structured", "redact_errors": True}
        ok(c.patch(dep, json={"log_settings": settings}))
    tenant.deploy("quick")
    # The agent reports the location's schedules and sensors (not audited: not a person).
    report_snapshot(tenant, sensors=[watcher()], schedules=[daily()])
    with client(tenant.cp.url, made["token"]) as ci:  # the rest as the 'ci' token
        ok(ci.post(f"{dep}/code-locations/quick/redeploy"), 202)
        run = ok(
            ci.post(
                f"{dep}/runs",
                json={
                    "code_location": "quick",
                    "job": "etl",
                    "run_config": {"source": "s3cr3t://bucket"},
                },
            ),
            201,
        )
        ok(ci.post(f"{dep}/runs/{run['id']}/terminate"), 202)
        policy = {
            "events": ["run_failure"],
            "channel": {
                "type": "webhook",
                "url": "http://127.0.0.1:9/x",
                "secret": "hush-hush-very-secret",
            },
        }
        ok(ci.put(f"{dep}/alert-policies/pager", json=policy))
        ok(ci.delete(f"{dep}/alert-policies/pager"), 204)
        ok(ci.post(f"{dep}/schedules/quick/daily/start"))
        ok(ci.post(f"{dep}/schedules/quick/daily/stop"))
        ok(ci.post(f"{dep}/sensors/quick/watch/stop"))
        ok(ci.post(f"{dep}/sensors/quick/watch/start"))
        ok(ci.delete(f"{dep}/code-locations/quick"), 202)
    with tenant.user() as c:
        ok(c.post(f"/api/v1/tokens/{made['info']['id']}/revoke"))

    page = audit(tenant, limit=100)
    entries = list(reversed(page["entries"]))  # oldest first
    assert page["next_cursor"] is None
    # First, the tenant's bootstrap minted its user and agent tokens: the system, no token.
    minted, entries = entries[:2], entries[2:]
    assert [
        (e["action"], e["actor_name"], e["actor_kind"], e["actor_token_id"]) for e in minted
    ] == [("token.create", "bootstrap", "system", None)] * 2
    assert [(e["deployment"], e["details"]["kind"]) for e in minted] == [
        (None, "user"),
        ("prod", "agent"),
    ]
    got = [(e["action"], e["actor_name"], e["deployment"], e["target"]) for e in entries]
    ci_token = f"user token 'ci' (id {made['info']['id']})"
    assert got == [
        ("token.create", "bootstrap", None, ci_token),
        ("deployment.create", "bootstrap", "staging", "staging"),
        ("deployment.update", "bootstrap", "prod", "prod"),
        ("deployment.update", "bootstrap", "prod", "prod"),
        ("location.deploy", "bootstrap", "prod", "quick"),
        ("location.redeploy", "ci", "prod", "quick"),
        ("run.submit", "ci", "prod", run["id"]),
        ("run.terminate", "ci", "prod", run["id"]),
        ("alert_policy.put", "ci", "prod", "pager"),
        ("alert_policy.delete", "ci", "prod", "pager"),
        ("schedule.start", "ci", "prod", "quick/daily"),
        ("schedule.stop", "ci", "prod", "quick/daily"),
        ("sensor.stop", "ci", "prod", "quick/watch"),
        ("sensor.start", "ci", "prod", "quick/watch"),
        ("location.remove", "ci", "prod", "quick"),
        ("token.revoke", "bootstrap", None, ci_token),
    ]
    assert all(e["actor_kind"] == "user" for e in entries)
    assert {e["actor_token_id"] for e in entries[5:-1]} == {made["info"]["id"]}
    assert all(started - timedelta(seconds=5) <= datetime.fromisoformat(e["at"]) for e in entries)
    assert entries[2]["details"] == {"run_concurrency_limit": {"from": 10, "to": 3}}
    assert entries[3]["details"]["log_settings"]["from"] is None
    assert entries[3]["details"]["log_settings"]["to"] == {
        "forwarding": "structured",
        "store_url": None,
        "redact_errors": True,
    }
    assert entries[6]["details"]["job"] == "etl"
    assert entries[6]["details"]["run_config_keys"] == ["source"]
    # The policy's webhook secret and URL path are recorded masked, like the API shows them.
    put = next(e for e in entries if e["action"] == "alert_policy.put")
    assert put["details"]["policy"]["channel"]["url"] == "http://127.0.0.1:9/" + "*" * 16
    # No secret reaches the log: not a token, not a config value, not a webhook secret.
    raw = str(page)
    for secret in (made["token"], tenant.user_token, "s3cr3t", "hush-hush-very-secret"):
        assert secret not in raw


def test_filters_and_pages(tenant: Tenant) -> None:
    with tenant.user() as c:
        for limit in range(1, 6):
            ok(c.patch(tenant.dep_path, json={"run_concurrency_limit": limit}))
        ok(c.post("/api/v1/tokens", json={"name": "x", "kind": "user"}), 201)
    # With the two tokens the tenant's bootstrap minted (one of them for prod's agent).
    assert [e["action"] for e in audit(tenant, action="token.create")["entries"]] == [
        "token.create"
    ] * 3
    both = audit(tenant, action=["token.create", "deployment.update"])["entries"]
    assert len(both) == 8
    first = audit(tenant, limit=5)
    assert len(first["entries"]) == 5 and first["next_cursor"]
    rest = audit(tenant, limit=5, cursor=first["next_cursor"])
    assert len(rest["entries"]) == 3 and rest["next_cursor"] is None
    ids = [e["id"] for e in first["entries"] + rest["entries"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 8
    assert audit(tenant, since=datetime.now(UTC) + timedelta(minutes=1))["entries"] == []
    assert len(audit(tenant, deployment="prod")["entries"]) == 6
    # By a part of the actor's name, in any case, as literal text; before a time (exclusive).
    names = {e["actor_name"] for e in audit(tenant)["entries"]}
    some = sorted(names)[0]
    by_actor = audit(tenant, actor=some[1:4].upper())["entries"]
    assert by_actor and all(some[1:4].lower() in e["actor_name"].lower() for e in by_actor)
    assert audit(tenant, actor="%")["entries"] == []  # no wildcard
    # By the whole target.
    everything = audit(tenant)["entries"]
    target = everything[-1]["target"]
    by_target = audit(tenant, target=target)["entries"]
    assert by_target == [e for e in everything if e["target"] == target]
    assert audit(tenant, target=target[:-1])["entries"] == []
    newest = first["entries"][0]
    older = audit(tenant, until=newest["at"])["entries"]
    assert newest["id"] not in {e["id"] for e in older} and len(older) < 8
    assert len(audit(tenant, until=datetime.now(UTC) + timedelta(minutes=1))["entries"]) == 8
    with tenant.user() as c:
        r = c.get(
            "/api/v1/audit",
            params={"since": newest["at"], "until": first["entries"][-1]["at"]},
        )
        assert r.status_code == 200 and r.json()["entries"] == [], r.text  # an empty window
    # Another organization sees none of it: only its own bootstrap's.
    other = audit(tenant.cp.tenant())["entries"]
    assert [e["actor_kind"] for e in other] == ["system", "system"]
    assert not {e["id"] for e in other} & set(ids)
    with tenant.user() as c:
        # Anything but a previous page's next_cursor is a 422 naming it, never a 500: not
        # digits, digits int() refuses ("²"), or more than a bigint holds.
        fullwidth = "\uff11\uff12"  # "12" in fullwidth digits: isdigit() too
        for cursor in ("abc", "²", "1²", fullwidth, "1" * 20, "-1", "1.5", " 1", ""):
            r = c.get("/api/v1/audit", params={"cursor": cursor})
            assert r.status_code == 422, (cursor, r.text)
            assert "cursor" in r.json()["detail"], r.json()
            assert r.json()["errors"][0]["loc"] == ["query", "cursor"]
        # The largest cursor that fits is fine: everything is older than it.
        r = c.get("/api/v1/audit", params={"cursor": "9" * 18})
        assert r.status_code == 200 and len(r.json()["entries"]) == 8
        # The schema says so: a client refuses what the server would.
        params = c.get("/openapi.json").json()["paths"]["/api/v1/audit"]["get"]["parameters"]
        [cursor_param] = [p for p in params if p["name"] == "cursor"]
        assert cursor_param["schema"]["anyOf"][0]["pattern"] == "^[0-9]{1,18}$"
        # Read only: there is nothing to change or delete entries with.
        assert c.delete("/api/v1/audit").status_code == 405
        assert c.patch("/api/v1/audit").status_code == 405


def test_a_failed_action_leaves_no_entry(tenant: Tenant) -> None:
    with tenant.user() as c:
        r = c.post(f"{tenant.dep_path}/runs/no-such-run/terminate")
        assert r.status_code == 404
        r = c.post("/api/v1/tokens", json={"name": "a", "kind": "agent", "deployment": "nope"})
        assert r.status_code == 404
    # Only what the tenant's bootstrap did.
    assert [e["actor_kind"] for e in audit(tenant)["entries"]] == ["system", "system"]


def test_the_database_refuses_to_change_or_delete_entries(tenant: Tenant) -> None:
    with tenant.user() as c:
        ok(c.patch(tenant.dep_path, json={"run_concurrency_limit": 4}))
    db = Database(tenant.cp.database_url)
    statements = ["UPDATE audit_log SET actor_name = 'someone else'", "DELETE FROM audit_log"]
    if not db.sqlite:
        statements.append("TRUNCATE audit_log")
    try:
        for statement in statements:
            refused = pytest.raises(DatabaseError, match="audit_log is append-only")
            with refused, db.write() as s:
                s.execute(text(statement))
    finally:
        db.dispose()
    assert [e["actor_name"] for e in audit(tenant)["entries"]] == ["bootstrap"] * 3


def test_a_web_session_is_named_by_its_user_token(tenant: Tenant) -> None:
    with tenant.user() as c:
        session = ok(c.post("/api/v1/sessions"), 201)["token"]
    with client(tenant.cp.url, session) as web:  # what the web UI's pages do, as the session
        ok(web.patch(tenant.dep_path, json={"run_concurrency_limit": 2}))
    [entry] = audit(tenant, action="deployment.update")["entries"]
    assert (entry["actor_kind"], entry["actor_name"]) == ("session", "bootstrap")


def test_sign_in_links_and_sessions_are_recorded(tenant: Tenant) -> None:
    with tenant.user() as c:
        link = ok(c.post("/api/v1/sign-in-links", json={"ttl_seconds": 300}), 201)
        direct = ok(c.post("/api/v1/sessions"), 201)
    code = link["path"].split("code=", 1)[1]
    with client(tenant.cp.url, code) as signing_in:
        via_link = ok(signing_in.post("/api/v1/sessions"), 201)
    for session in (direct, via_link):
        with client(tenant.cp.url, session["token"]) as web:
            ok(web.delete("/api/v1/sessions/current"), 204)
    actions = ["sign_in_link.create", "session.start", "session.end"]
    entries = list(reversed(audit(tenant, action=actions)["entries"]))
    got = [(e["action"], e["actor_kind"], e["actor_name"]) for e in entries]
    assert got == [
        ("sign_in_link.create", "user", "bootstrap"),
        ("session.start", "user", "bootstrap"),
        ("session.start", "signin", "bootstrap"),  # the link's user token, by name
        ("session.end", "session", "bootstrap"),
        ("session.end", "session", "bootstrap"),
    ]
    link_id = entries[0]["details"]["token_id"]
    assert entries[0]["target"] == f"sign-in link (id {link_id})"
    assert entries[2]["actor_token_id"] == link_id
    assert entries[1]["details"]["via"] == "user_token"
    assert entries[2]["details"]["via"] == "sign_in_link"
    # Each end names the session its start made.
    assert [e["target"] for e in entries[3:]] == [e["target"] for e in entries[1:3]]
    # No credential reaches the log.
    raw = str(entries)
    for secret in (code, direct["token"], via_link["token"], tenant.user_token):
        assert secret not in raw
    # Signing out twice ends one session once.
    with client(tenant.cp.url, direct["token"]) as web:
        assert web.delete("/api/v1/sessions/current").status_code == 401
    assert len(audit(tenant, action="session.end")["entries"]) == 2
