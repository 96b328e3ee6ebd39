"""``tether tokens`` and ``tether audit`` as subprocesses against a real control plane."""

import json

from tests.cli.test_user_cli import Cli, cli  # noqa: F401 (the fixture)
from tests.support import Tenant, client


def test_tokens_create_list_revoke(cli: Cli, tenant: Tenant) -> None:  # noqa: F811
    r = cli("tokens", "create", "ci", "--expires-in", "30d")
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret.startswith("tether_user_") and "\n" not in secret
    assert "created user token 'ci'" in r.stderr and "shown once" in r.stderr
    with client(tenant.cp.url, secret) as c:
        assert c.get("/api/v1/deployments").status_code == 200

    r = cli("tokens", "create", "eu", "--kind", "agent", "--json")
    assert r.returncode == 0, r.stderr
    agent = json.loads(r.stdout)
    assert agent["info"]["scope"] == "deployment" and agent["info"]["deployment"] == "prod"
    r = cli("tokens", "create", "fleet", "--kind", "agent", "--organization", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["info"]["scope"] == "organization"

    r = cli("tokens", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    ci_line = next(line for line in lines if " ci " in line)
    assert "user" in ci_line and "organization" in ci_line and "active until" in ci_line
    assert any(" eu " in line and "deployment prod" in line for line in lines)
    assert "tether_" not in r.stdout  # never a secret
    listed = json.loads(cli("tokens", "list", "--json").stdout)
    ci_id = next(t["id"] for t in listed if t["name"] == "ci")

    r = cli("tokens", "revoke", str(ci_id))
    assert r.returncode == 0, r.stderr
    assert f"revoked user token 'ci' (id {ci_id})" in r.stdout
    r = cli("tokens", "list")
    assert "revoked" in next(line for line in r.stdout.splitlines() if " ci " in line)
    # The revoked token's holder is told why.
    r = cli("tokens", "list", TETHER_TOKEN=secret)
    assert r.returncode == 1
    assert "this token ('ci') was revoked on" in r.stderr

    r = cli("tokens", "revoke", "999999")
    assert r.returncode == 1 and "token 999999 not found" in r.stderr


def test_tokens_create_checks_its_input(cli: Cli) -> None:  # noqa: F811
    r = cli("tokens", "create", "x", "--organization")
    assert r.returncode == 2 and "--kind agent" in r.stderr
    r = cli("tokens", "create", "x", "--expires-in", "soon")
    assert r.returncode == 2 and "is not a duration" in r.stderr
    r = cli("tokens", "create", "x", "--expires-in", "1d", "--expires-at", "2030-01-01")
    assert r.returncode == 2 and "not both" in r.stderr
    r = cli("tokens", "create", "x", "--expires-at", "2001-01-01")
    assert r.returncode == 1 and "expires_at is in the past" in r.stderr


def test_audit(cli: Cli, tenant: Tenant) -> None:  # noqa: F811
    assert cli("tokens", "create", "ci").returncode == 0
    tenant.deploy("quick")
    tenant.launch()
    r = cli("audit")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if "bootstrap (user)" in line]
    assert [
        a for line in lines for a in ("run.submit", "location.deploy", "token.create") if a in line
    ] == ["run.submit", "location.deploy", "token.create"]
    r = cli("audit", "--action", "token.create", "--json")
    entry, *minted = json.loads(r.stdout)
    assert entry["target"].startswith("user token 'ci'") and entry["actor_name"] == "bootstrap"
    # Before it, the tokens `tether controlplane bootstrap` minted, by no token.
    assert [(e["actor_kind"], e["actor_token_id"]) for e in minted] == [("system", None)] * 2
    r = cli("audit", "--since", "1h", "--limit", "2", "--json")
    assert [e["action"] for e in json.loads(r.stdout)] == ["run.submit", "location.deploy"]
    # The bootstrap's own tokens were minted by the system actor "bootstrap" too; by a
    # part of the name, and before an hour from now: the same entries.
    r = cli("audit", "--actor", "BOOTSTR", "--until", "2100-01-01T00:00:00+00:00", "--json")
    assert {e["actor_name"] for e in json.loads(r.stdout)} == {"bootstrap"}
    r = cli("audit", "--actor", "nobody-like-this")
    assert r.returncode == 0 and "no audit entries match" in r.stderr
    r = cli("audit", "--only-deployment", "staging")
    assert r.returncode == 0 and "no audit entries match" in r.stderr
    r = cli("audit", "--since", "yesterday")
    assert r.returncode == 2 and "--since" in r.stderr
