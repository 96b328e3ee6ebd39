"""``tether tokens create --kind nexus`` and the runs a Temporal workflow started through
Tether's Nexus service, in ``tether runs list`` and ``tether runs show``, as subprocesses
against a real control plane."""

import json

from tests.cli.test_user_cli import Cli, cli  # noqa: F401 (the fixture)
from tests.support import Tenant, client

CALLER = {"namespace": "orders", "workflow_id": "order-4711", "run_id": "r-1"}


def test_a_nexus_token_and_the_runs_its_callers_started(cli: Cli, tenant: Tenant) -> None:  # noqa: F811
    r = cli("tokens", "create", "nexus-prod", "--kind", "nexus", "--deployment", "prod")
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret.startswith("tether_nexus_") and "\n" not in secret
    assert "created nexus token 'nexus-prod'" in r.stderr and "deployment prod" in r.stderr
    line = next(x for x in cli("tokens", "list").stdout.splitlines() if "nexus-prod" in x)
    assert "nexus" in line and "deployment prod" in line and "tether_" not in line

    r = cli("tokens", "create", "x", "--kind", "nexus", "--organization")
    assert r.returncode == 2
    assert "a nexus token serves one deployment: drop --organization" in r.stderr

    tenant.deploy("quick")
    body = {"code_location": "quick", "job": "etl", "run_config": {"source": "s3://x"}}
    with client(tenant.cp.url, secret) as nexus:
        called = nexus.post(f"{tenant.dep_path}/runs", json={**body, "caller": CALLER}).json()
    plain = tenant.launch("quick", "etl", run_config={"source": "s3://x"})

    r = cli("runs", "list", "--caller-workflow", "order-4711", "--json")
    assert r.returncode == 0, r.stderr
    assert [run["id"] for run in json.loads(r.stdout)] == [called["id"]]
    table = cli("runs", "list", "--caller-workflow", "order-4711").stdout
    assert called["id"] in table and plain["id"] not in table
    r = cli("runs", "list", "--caller-workflow", "nobody")
    assert r.returncode == 0 and "no runs match" in r.stderr

    shown = cli("runs", "show", called["id"]).stdout
    assert "started by  Temporal workflow order-4711 (namespace orders, run r-1)" in shown
    assert "started by" not in cli("runs", "show", plain["id"]).stdout
