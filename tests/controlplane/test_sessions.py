"""Web UI sessions through the API: made from a user token or a one-time link, with the user
token's rights in its organization only, ended by signing out or by revoking the user token."""

from datetime import timedelta

from sqlalchemy import update

from tests.support import Tenant, client
from tether_controlplane.db import Database
from tether_controlplane.tables import TokenRow, utcnow
from tether_controlplane.token_secrets import csrf_token, hash_token


def start_session(tenant: Tenant, credential: str) -> dict:
    with client(tenant.cp.url, credential) as c:
        r = c.post("/api/v1/sessions")
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]


def test_a_session_acts_as_its_user_in_its_organization_only(tenant: Tenant) -> None:
    other = tenant.cp.tenant()
    session = start_session(tenant, tenant.user_token)
    assert session["organization"] == tenant.org
    assert session["csrf_token"] == csrf_token(session["token"])
    with client(tenant.cp.url, session["token"]) as c:
        assert [d["name"] for d in c.get("/api/v1/deployments").json()] == ["prod"]
        assert c.get(f"{tenant.dep_path}/runs").status_code == 200
        # Same deployment name, other organization: not visible.
        with other.user() as o:
            o.put(f"{other.dep_path}/code-locations/theirs", json={"module": "x"})
        assert c.get(f"{tenant.dep_path}/code-locations/theirs").status_code == 404
        # A session cannot make another session, nor credentials that would outlive it,
        # and is no agent.
        assert c.post("/api/v1/sessions").status_code == 403
        assert c.post("/api/v1/sign-in-links", json={}).status_code == 403
        assert c.post(f"{tenant.dep_path}/agent-tokens", json={}).status_code == 403
        assert c.post("/api/v1/agent/requests/poll", json={"agent_name": "a"}).status_code == 403


def test_a_sign_in_link_makes_one_session(tenant: Tenant) -> None:
    with tenant.user() as c:
        r = c.post("/api/v1/sign-in-links", json={"ttl_seconds": 60})
    assert r.status_code == 201, r.text
    code = r.json()["path"].split("code=", 1)[1]
    start_session(tenant, code)
    with client(tenant.cp.url, code) as c:
        again = c.post("/api/v1/sessions")
        assert again.status_code == 401
        # Nor is a link a token for anything else.
        assert c.get("/api/v1/deployments").status_code == 401


def test_signing_out_and_revoking_the_user_token_end_sessions(tenant: Tenant) -> None:
    first = start_session(tenant, tenant.user_token)
    second = start_session(tenant, tenant.user_token)
    with client(tenant.cp.url, first["token"]) as c:
        assert c.delete("/api/v1/sessions/current").status_code == 204
        r = c.get("/api/v1/deployments")
        assert r.status_code == 401 and r.json()["reason"] == "token_revoked"
        assert r.json()["detail"].endswith("; sign in again (the web UI)"), r.json()
    with client(tenant.cp.url, second["token"]) as c:
        assert c.get("/api/v1/deployments").status_code == 200
    db = Database(tenant.cp.database_url)
    try:
        with db.write() as s:
            s.execute(
                update(TokenRow)
                .where(TokenRow.token_hash == hash_token(tenant.user_token))
                .values(revoked_at=utcnow())
            )
    finally:
        db.dispose()
    with client(tenant.cp.url, second["token"]) as c:
        r = c.get("/api/v1/deployments")
        assert r.status_code == 401 and r.json()["reason"] == "token_revoked"
        assert r.json()["detail"].startswith(
            "the user token this one came from ('bootstrap') was revoked on "
        )
        assert r.json()["detail"].endswith("; sign in again (the web UI)"), r.json()


def test_an_expired_session_is_refused(tenant: Tenant) -> None:
    session = start_session(tenant, tenant.user_token)
    db = Database(tenant.cp.database_url)
    try:
        with db.write() as s:
            s.execute(
                update(TokenRow)
                .where(TokenRow.token_hash == hash_token(session["token"]))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
    finally:
        db.dispose()
    with client(tenant.cp.url, session["token"]) as c:
        r = c.get("/api/v1/deployments")
        assert r.status_code == 401 and r.json()["reason"] == "token_expired"
        assert r.json()["detail"].endswith("; sign in again (the web UI)"), r.json()
