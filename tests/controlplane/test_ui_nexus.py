"""The web UI's view of runs a Temporal workflow started through Tether's Nexus service, over
plain HTTP against a real control plane that links to a Temporal UI (the session's e2e one):
who started a run, with a link to that workflow; the run list filtered by it; a Nexus token
made from the tokens page."""

import html
import re

from tests.controlplane.test_ui_security import signed_in
from tests.support import Tenant, client

CALLER = {"namespace": "orders", "workflow_id": "order 4711/a", "run_id": "r-1"}


def text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def test_a_run_page_says_which_workflow_started_it(e2e_tenant: Tenant) -> None:
    tenant = e2e_tenant
    tenant.deploy("quick")
    with signed_in(tenant) as web:
        tokens_page = web.get("/d/prod/tokens").text
        assert "the Nexus service of deployment prod" in tokens_page
        csrf = tokens_page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        r = web.post(
            "/d/prod/tokens",
            headers={"Origin": tenant.cp.url},
            data={
                "csrf_token": csrf,
                "name": "nexus-web",
                "for": "nexus:prod",
                "user_token": tenant.user_token,
            },
        )
        assert r.status_code == 201, r.text
        secret = r.text.split('id="secret" class="secret mono" type="text" readonly value="')[1]
        secret = secret.split('"', 1)[0]
        assert secret.startswith("tether_nexus_")
        assert "Secret of nexus token nexus-web" in r.text

        body = {"code_location": "quick", "job": "etl", "run_config": {"source": "s3://x"}}
        with client(tenant.cp.url, secret) as nexus:
            r = nexus.post(f"{tenant.dep_path}/runs", json={**body, "caller": CALLER})
            assert r.status_code == 201, r.text
            called = r.json()
        plain = tenant.launch("quick", "etl", run_config={"source": "s3://x"})

        page = web.get(f"/d/prod/runs/{called['id']}").text
        caller = page.split('<dd id="run-caller">', 1)[1].split("</dd>", 1)[0]
        assert text_of(f"Started by {caller}") == (
            "Started by Temporal workflow order 4711/a (namespace orders, run r-1) · its runs"
        )
        # The workflow's page in the Temporal UI, in the caller's namespace and execution.
        assert (
            'href="http://127.0.0.1:8233/namespaces/orders/workflows/order%204711%2Fa/r-1"'
            in caller
        )
        assert 'id="run-caller"' not in web.get(f"/d/prod/runs/{plain['id']}").text

        # "its runs": the run list filtered by the workflow.
        its_runs = html.unescape(re.search(r'<a href="([^"]+)">its runs</a>', caller)[1])  # type: ignore[index]
        listed = web.get(its_runs).text
        assert f"/d/prod/runs/{called['id']}" in listed
        assert f"/d/prod/runs/{plain['id']}" not in listed
        assert 'value="order 4711/a"' in listed  # the filter, as given
