"""Tokens people manage: listed without secrets, created with a name and an expiry, revoked;
why a revoked or expired token is refused (told only to its holder); agent tokens for one
deployment or a whole organization."""

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from tests.support import Tenant, client, wait_until
from tether_controlplane.db import Database
from tether_controlplane.services import tenancy
from tether_controlplane.services.tenancy import INVALID_TOKEN
from tether_controlplane.tables import Organization
from tether_controlplane.token_secrets import TokenKind

DEPLOYMENT = "X-Tether-Deployment"


def create(tenant: Tenant, **body: Any) -> dict[str, Any]:
    with tenant.user() as c:
        r = c.post("/api/v1/tokens", json=body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]


def listed(tenant: Tenant) -> list[dict[str, Any]]:
    with tenant.user() as c:
        r = c.get("/api/v1/tokens")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def revoke(tenant: Tenant, token_id: int) -> httpx.Response:
    with tenant.user() as c:
        return c.post(f"/api/v1/tokens/{token_id}/revoke")


def deployments_with(token: str, url: str) -> httpx.Response:
    with client(url, token) as c:
        return c.get("/api/v1/deployments")


def heartbeat(url: str, token: str, deployment: str | None = None) -> httpx.Response:
    headers = {DEPLOYMENT: deployment} if deployment else {}
    with client(url, token) as c:
        return c.post("/api/v1/agent/heartbeat", json={"agent_name": "a1"}, headers=headers)


def test_create_list_and_revoke_a_user_token(tenant: Tenant) -> None:
    expiry = datetime.now(UTC) + timedelta(days=30)
    created = create(tenant, name="ci", kind="user", expires_at=expiry.isoformat())
    secret, info = created["token"], created["info"]
    assert secret.startswith("tether_user_")
    assert info["name"] == "ci" and info["kind"] == "user" and info["scope"] == "organization"
    assert info["active"] is True and info["revoked_at"] is None
    assert datetime.fromisoformat(info["expires_at"]) == expiry.replace(microsecond=0) or abs(
        datetime.fromisoformat(info["expires_at"]) - expiry
    ) < timedelta(seconds=1)
    assert deployments_with(secret, tenant.cp.url).status_code == 200

    tokens = listed(tenant)
    # The bootstrap's user and agent tokens, and the new one; never a secret.
    assert [(t["name"], t["kind"]) for t in tokens] == [
        ("bootstrap", "user"),
        ("bootstrap", "agent"),
        ("ci", "user"),
    ]
    assert tokens[1]["scope"] == "deployment" and tokens[1]["deployment"] == "prod"
    with tenant.user() as c:
        raw = c.get("/api/v1/tokens").text
    assert secret not in raw and tenant.user_token not in raw and "tether_" not in raw

    r = revoke(tenant, info["id"])
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False and r.json()["revoked_at"] is not None
    # Revoking again changes nothing.
    assert revoke(tenant, info["id"]).json()["revoked_at"] == r.json()["revoked_at"]
    assert [t["active"] for t in listed(tenant) if t["id"] == info["id"]] == [False]

    refused = deployments_with(secret, tenant.cp.url)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    day = r.json()["revoked_at"][:10]
    assert refused.json()["detail"].startswith(f"this token ('ci') was revoked on {day} "), (
        refused.json()
    )
    # A user token's holder is told to make a user token (not an agent's), by reason.
    assert refused.json()["detail"].endswith("; create a new one with `tether tokens create NAME`")
    assert refused.json()["reason"] == "token_revoked"


def test_only_the_full_secret_learns_why_it_is_refused(tenant: Tenant) -> None:
    created = create(tenant, name="gone", kind="user")
    secret = created["token"]
    revoke(tenant, created["info"]["id"])
    assert "was revoked on" in deployments_with(secret, tenant.cp.url).json()["detail"]
    # The same secret with a character changed, cut short, or one never issued: the generic
    # answer, word for word, whatever was revoked.
    for other in (secret[:-1] + ("A" if secret[-1] != "A" else "B"), secret[:-4], "tether_user_x"):
        r = deployments_with(other, tenant.cp.url)
        assert r.status_code == 401
        assert r.json() == {"detail": INVALID_TOKEN, "errors": [], "reason": "token_unknown"}
    # Not knowing the kind, the generic answer names the fix for both.
    assert "`tether tokens create NAME` for a user" in INVALID_TOKEN
    assert "`tether tokens create NAME --kind agent` for an agent" in INVALID_TOKEN


def test_an_expired_token_says_when_it_expired(tenant: Tenant) -> None:
    expiry = datetime.now(UTC) + timedelta(seconds=2)
    created = create(tenant, name="short", kind="user", expires_at=expiry.isoformat())
    assert deployments_with(created["token"], tenant.cp.url).status_code == 200
    time.sleep(max((expiry - datetime.now(UTC)).total_seconds(), 0) + 0.2)
    r = deployments_with(created["token"], tenant.cp.url)
    assert r.status_code == 401
    assert r.json()["detail"].startswith(
        f"this token ('short') expired on {expiry.strftime('%Y-%m-%d %H:%M:%S')} UTC; "
        "create a new one with `tether tokens create NAME`"
    )
    assert r.json()["reason"] == "token_expired"
    assert [t["active"] for t in listed(tenant) if t["name"] == "short"] == [False]


def test_bad_token_requests_are_refused_by_name(tenant: Tenant) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    cases = [
        ({"name": "u", "kind": "user", "deployment": "prod"}, "user token acts for the whole"),
        ({"name": "a", "kind": "agent"}, "needs a deployment, or scope 'organization'"),
        (
            {"name": "a", "kind": "agent", "scope": "organization", "deployment": "prod"},
            "names no deployment",
        ),
        # A nexus token serves exactly one deployment.
        ({"name": "n", "kind": "nexus"}, "a nexus token serves one deployment: name it"),
        (
            {"name": "n", "kind": "nexus", "scope": "organization"},
            "never the whole organization: drop scope 'organization'",
        ),
        (
            {"name": "n", "kind": "nexus", "scope": "organization", "deployment": "prod"},
            "never the whole organization: drop scope 'organization'",
        ),
        ({"name": "old", "kind": "user", "expires_at": past}, "expires_at is in the past"),
        ({"name": "", "kind": "user"}, "name"),
        # The kind picks the request's schema: missing or unknown, it is named like a field.
        ({"name": "x"}, "kind: Field required"),
        ({"name": "x", "kind": "run"}, "kind: Input should be 'user', 'agent' or 'nexus'"),
    ]
    with tenant.user() as c:
        for body, message in cases:
            r = c.post("/api/v1/tokens", json=body)
            assert r.status_code == 422, (body, r.text)
            assert message in r.json()["detail"], (body, r.json())
        # One request schema per kind, told apart by `kind`.
        spec = c.get("/openapi.json").json()
        body = spec["paths"]["/api/v1/tokens"]["post"]["requestBody"]["content"]
        assert body["application/json"]["schema"]["discriminator"]["mapping"] == {
            "user": "#/components/schemas/NewUserToken",
            "agent": "#/components/schemas/NewAgentToken",
            "nexus": "#/components/schemas/NewNexusToken",
        }
        for kind in ("agent", "nexus"):
            r = c.post("/api/v1/tokens", json={"name": "a", "kind": kind, "deployment": "nope"})
            assert r.status_code == 404 and "deployment 'nope' not found" in r.json()["detail"]
        assert c.post("/api/v1/tokens/999999/revoke").status_code == 404


def test_internal_tokens_are_not_listed_nor_revocable_and_sessions_mint_none(
    tenant: Tenant,
) -> None:
    with tenant.user() as c:
        session = c.post("/api/v1/sessions").json()["token"]
    ids = {t["id"] for t in listed(tenant)}
    assert len(ids) == 2  # the bootstrap's two: no session
    with client(tenant.cp.url, session) as web:
        assert web.get("/api/v1/tokens").status_code == 200
        r = web.post("/api/v1/tokens", json={"name": "x", "kind": "user"})
        assert r.status_code == 403 and "needs a user token" in r.json()["detail"]
        assert web.post(f"/api/v1/tokens/{min(ids)}/revoke").status_code == 403
    # The session's own id is not a token a person manages.
    session_id = max(ids) + 1
    assert revoke(tenant, session_id).status_code == 404
    # Revoking the user token still ends its sessions, naming why.
    user_id = next(t["id"] for t in listed(tenant) if t["kind"] == "user")
    assert revoke(tenant, user_id).status_code == 200
    r = deployments_with(session, tenant.cp.url)
    assert r.status_code == 401
    assert "the user token this one came from ('bootstrap') was revoked" in r.json()["detail"]


def test_another_organization_cannot_see_or_revoke_tokens(tenant: Tenant) -> None:
    other = tenant.cp.tenant()
    theirs = {t["id"] for t in listed(other)}
    assert not theirs & {t["id"] for t in listed(tenant)}
    assert revoke(tenant, min(theirs)).status_code == 404


def test_an_organization_agent_token_serves_each_deployment_it_names(tenant: Tenant) -> None:
    with tenant.user() as c:
        assert c.post("/api/v1/deployments/staging").status_code == 201
        r = c.put(
            "/api/v1/deployments/staging/code-locations/only-staging",
            json={"module": "tether_sdk.examples.quickstart"},
        )
        assert r.status_code == 200
    created = create(tenant, name="fleet", kind="agent", scope="organization")
    assert created["info"]["scope"] == "organization" and created["info"]["deployment"] is None
    token, url = created["token"], tenant.cp.url

    r = heartbeat(url, token)
    assert r.status_code == 400
    assert DEPLOYMENT in r.json()["detail"] and "--deployment" in r.json()["detail"]
    for dep in ("prod", "staging"):
        r = heartbeat(url, token, dep)
        assert r.status_code == 200, r.text
        assert r.json()["deployment"] == dep
    missing = heartbeat(url, token, "nope")
    assert missing.status_code == 404 and "deployment 'nope'" in missing.json()["detail"]

    def polled(dep: str) -> list[str]:
        with client(url, token) as c:
            r = c.post(
                "/api/v1/agent/requests/poll",
                json={"agent_name": "a1", "wait_seconds": 0},
                headers={DEPLOYMENT: dep},
            )
            assert r.status_code == 200, r.text
            return [q["payload"].get("code_location", "") for q in r.json()["requests"]]

    assert polled("staging") == ["only-staging"]
    assert polled("prod") == []
    # Another organization's deployment of the same name is not this token's.
    other = tenant.cp.tenant()
    other.deploy("theirs")
    assert "theirs" not in polled("prod")
    assert wait_until(lambda: other.poll() != [], timeout=5)


def test_a_deployment_token_is_refused_for_another_deployment(tenant: Tenant) -> None:
    with tenant.user() as c:
        assert c.post("/api/v1/deployments/staging").status_code == 201
    url = tenant.cp.url
    assert heartbeat(url, tenant.agent_token).status_code == 200
    assert heartbeat(url, tenant.agent_token, "prod").status_code == 200
    r = heartbeat(url, tenant.agent_token, "staging")
    assert r.status_code == 403
    assert r.json()["detail"].startswith(
        "this agent token serves deployment 'prod', and the request names 'staging'"
    )
    # A deployment-scoped token made through the API, and through the older alias.
    made = create(tenant, name="stg", kind="agent", deployment="staging")
    assert made["info"]["scope"] == "deployment" and made["info"]["deployment"] == "staging"
    assert heartbeat(url, made["token"]).json()["deployment"] == "staging"
    assert heartbeat(url, made["token"], "prod").status_code == 403
    with tenant.user() as c:
        alias = c.post("/api/v1/deployments/staging/agent-tokens", json={"description": "eu"})
    assert alias.status_code == 201 and alias.json()["deployment"] == "staging"
    assert [t["name"] for t in listed(tenant)][-1] == "eu"


def test_a_revoked_agent_token_is_told_so(tenant: Tenant) -> None:
    agent_id = next(t["id"] for t in listed(tenant) if t["kind"] == "agent")
    assert revoke(tenant, agent_id).status_code == 200
    r = heartbeat(tenant.cp.url, tenant.agent_token)
    assert r.status_code == 401
    assert r.json()["detail"].startswith("this token ('bootstrap') was revoked on ")


def test_a_refused_token_is_told_the_fix_for_its_kind(tenant: Tenant) -> None:
    agent = create(tenant, name="edge", kind="agent", deployment="prod")
    revoke(tenant, agent["info"]["id"])
    with client(tenant.cp.url, agent["token"]) as c:
        r = c.post("/api/v1/agent/heartbeat", json={"agent_name": "a", "version": "0"})
    assert r.status_code == 401 and r.json()["reason"] == "token_revoked"
    assert r.json()["detail"].endswith(
        "; create a new one with `tether tokens create NAME --kind agent` and restart the "
        "agent with it"
    ), r.json()

    # A run token (the agent mints one per run): nothing for its holder to do.
    db = Database(tenant.cp.database_url)
    try:
        with db.write() as s:
            org = s.scalar(select(Organization).where(Organization.name == tenant.org))
            assert org is not None
            secret, _ = tenancy.mint(s, TokenKind.RUN, org.id, run_id="r-1", description="run")
            tenancy.revoke_run_tokens(s, "r-1")
    finally:
        db.dispose()
    with client(tenant.cp.url, secret) as c:
        r = c.get("/api/v1/deployments")
    assert r.status_code == 401 and r.json()["reason"] == "token_revoked"
    assert r.json()["detail"].endswith("; nothing to do: the agent mints a new one for each run")
