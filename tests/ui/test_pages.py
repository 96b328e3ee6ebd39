"""The web UI in a real Chromium against a real control plane, agent and Temporal server:
what a developer does with it, checked as they would check it."""

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.agent_support import wait_for_run
from tests.support import free_port, wait_until
from tests.ui.conftest import Stack, screenshot, sign_in
from tether_api.channels import CHANNEL_KINDS


def runs_of(stack: Stack, job: str) -> list[dict]:
    with stack.api() as c:
        r = c.get(f"{stack.tenant.dep_path}/runs", params={"job": job, "limit": 200})
        assert r.status_code == 200, r.text
        return r.json()["runs"]  # type: ignore[no-any-return]


def test_nothing_is_visible_without_signing_in_and_sign_out_works(
    browser: Browser, stack: Stack
) -> None:
    context = browser.new_context(base_url=stack.cp.url)
    page = context.new_page()
    try:
        page.goto(f"/d/{stack.tenant.deployment}/runs")
        expect(page).to_have_url(re.compile(r"/sign-in\?next="))
        expect(page.get_by_role("heading", name="Sign in to Tether")).to_be_visible()
        page.get_by_label("User token").fill("tether_user_not-a-real-token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("not accepted")
        screenshot(page, "sign-in")

        page.get_by_label("User token").fill(stack.tenant.user_token)
        page.get_by_role("button", name="Sign in").click()
        # Back where it was going, signed in.
        expect(page).to_have_url(re.compile(f"/d/{stack.tenant.deployment}/runs$"))
        cookie = next(c for c in context.cookies() if c["name"] == "tether_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("status")).to_contain_text("signed out")
        page.goto(f"/d/{stack.tenant.deployment}")
        expect(page).to_have_url(re.compile("/sign-in"))
        # The old session's secret no longer works, even through the API.
        with stack.api() as c:
            c.headers["Authorization"] = f"Bearer {cookie['value']}"
            assert c.get("/api/v1/deployments").status_code == 401
    finally:
        context.close()


def test_a_sign_in_link_works_once(browser: Browser, stack: Stack) -> None:
    path = stack.sign_in_path()
    first = browser.new_context(base_url=stack.cp.url)
    second = browser.new_context(base_url=stack.cp.url)
    try:
        page = first.new_page()
        # Opening the link (a scanner, a preview) uses nothing up; its button does.
        scanned = second.new_page()
        scanned.goto(path)
        scanned.close()
        sign_in(page, path)
        expect(
            page.get_by_role("heading", name=f"Deployment {stack.tenant.deployment}")
        ).to_be_visible()
        again = second.new_page()
        again.goto(path)
        again.get_by_role("button", name="Sign in").click()
        expect(again.get_by_role("alert")).to_contain_text("invalid, expired or used")
    finally:
        first.close()
        second.close()


def test_the_overview_shows_agents_locations_and_runs(page: Page, stack: Stack) -> None:
    page.goto(f"/d/{stack.tenant.deployment}")
    agents = page.get_by_role("table", name="Agents")
    expect(agents).to_contain_text(stack.agent.name)
    expect(agents).to_contain_text("process")
    locations = page.get_by_role("table", name="Code locations")
    expect(locations.get_by_role("row", name=re.compile("quick"))).to_contain_text("RUNNING")
    # What is broken comes first, and leads to its error and the server's last lines. While
    # the broken location is retried it shows STARTING for a moment: the live region shows
    # it again once the retry fails, so this waits longer than a retry.
    attention = page.get_by_role("region", name="Needs attention")
    expect(attention).to_contain_text("broken", timeout=30_000)
    attention.get_by_role("link", name="broken").click()
    expect(page.locator("#loc-status")).to_contain_text("ERROR")
    expect(page.locator("#loc-status .problem")).to_contain_text("The server's last log lines")
    screenshot(page, "location-error")


def test_the_example_location_is_running_with_its_graphs(page: Page, stack: Stack) -> None:
    page.goto(f"/d/{stack.tenant.deployment}/locations/quick")
    expect(page.locator("#loc-status")).to_contain_text("RUNNING")
    graph = page.get_by_role("img", name="Steps of job etl")
    expect(graph).to_be_visible()
    for step in ("extract", "transform", "load", "report"):
        expect(graph.locator("g.node", has_text=step)).to_have_count(1)
    # Left to right: each step is drawn right of the one it depends on.
    xs = [graph.locator("g.node", has_text=s).bounding_box()["x"] for s in ("extract", "transform")]
    assert xs[0] < xs[1]
    expect(page.get_by_role("img", name="Asset lineage")).to_be_visible()
    expect(page.get_by_role("table", name="Schedules")).to_contain_text("nightly_etl")
    screenshot(page, "location")


def test_a_dagster_location_shows_its_graphs_and_a_runs_mapped_steps(
    page: Page, stack: Stack
) -> None:
    page.goto(f"/d/{stack.tenant.deployment}/locations/acme")
    expect(page.locator("#loc-status")).to_contain_text("RUNNING")
    expect(page.locator("#loc-kind")).to_have_text("Dagster project")
    graph = page.get_by_role("img", name="Steps of job fanout")
    for step in ("split", "square", "sum_squares", "outer.inner.double", "combine"):
        expect(graph.locator("g.node", has_text=step).first).to_be_visible()
    expect(page.get_by_role("table", name=re.compile("Assets"))).to_contain_text("raw/orders")
    screenshot(page, "dagster-location")

    page.goto(f"/d/{stack.tenant.deployment}/launchpad?location=acme&job=fanout")
    page.get_by_role("button", name="Launch run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    expect(page.locator("#run-status")).to_have_text("SUCCESS", timeout=60_000)
    timeline = page.get_by_role("table", name="Step timeline")
    for step in ("square[n1]", "square[n2]", "square[n3]", "outer.inner.double", "combine"):
        expect(timeline.locator(f"tr[data-step='{step}']")).to_have_attribute(
            "data-status", "SUCCESS"
        )
    screenshot(page, "dagster-run")


def test_an_invalid_config_shows_the_field_error_and_creates_no_run(
    page: Page, stack: Stack
) -> None:
    before = len(runs_of(stack, "slow"))
    page.goto(f"/d/{stack.tenant.deployment}/launchpad?location=ops&job=slow")
    page.get_by_label("Run config").fill('{"seconds": "soon"}')
    # Checked as it is typed, the error beside its field.
    expect(page.locator("#field-seconds")).to_contain_text("not of type")
    screenshot(page, "launchpad")
    page.get_by_role("button", name="Launch run").click()
    expect(page.locator("#field-seconds")).to_contain_text("not of type")
    expect(page).to_have_url(re.compile("/launchpad$"))
    assert len(runs_of(stack, "slow")) == before


def test_a_valid_launch_fills_the_log_and_timeline_to_success(page: Page, stack: Stack) -> None:
    page.goto(f"/d/{stack.tenant.deployment}/launchpad?location=quick&job=etl")
    page.get_by_label("YAML").check()
    page.get_by_label("Run config").fill("source: web-ui\nrows: 3\n")
    expect(page.locator("#validation")).to_contain_text("valid for this job")
    page.get_by_role("button", name="Launch run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    expect(page.locator("#run-status")).to_have_text("SUCCESS", timeout=60_000)
    log = page.get_by_role("log")
    expect(log).to_contain_text("RUN_SUCCESS")
    expect(log).to_contain_text("extracting 3 rows from web-ui")
    timeline = page.get_by_role("table", name="Step timeline")
    for step in ("extract", "transform", "load", "report"):
        expect(timeline.locator(f"tr[data-step='{step}']")).to_have_attribute(
            "data-status", "SUCCESS"
        )
    screenshot(page, "run")


def test_a_failing_run_shows_its_traceback(page: Page, stack: Stack) -> None:
    run = stack.tenant.launch("ops", "fails")
    page.goto(f"/d/{stack.tenant.deployment}/runs/{run['id']}")
    expect(page.locator("#run-status")).to_have_text("FAILURE", timeout=60_000)
    traceback = page.locator("#log pre.traceback").first
    expect(traceback).to_contain_text("Traceback (most recent call last)")
    expect(traceback).to_contain_text("bad_row")
    screenshot(page, "run-failure")
    # Levels filter: hiding ERROR hides the failure's log lines, not the rest.
    page.get_by_label("ERROR").uncheck()
    expect(page.locator("#log .level-ERROR").first).to_be_hidden()
    expect(page.locator("#log .type-RUN_START")).to_be_visible()


def test_terminate_a_long_run_then_rerun_it(page: Page, stack: Stack) -> None:
    run = stack.tenant.launch("ops", "slow", run_config={"seconds": 120})
    page.goto(f"/d/{stack.tenant.deployment}/runs/{run['id']}")
    expect(page.locator("#run-status")).to_have_text("STARTED", timeout=60_000)
    page.get_by_role("link", name="Terminate…").click()
    page.get_by_role("button", name="Terminate the run").click()
    expect(page.locator("#run-status")).to_have_text("CANCELED", timeout=60_000)
    temporal = page.get_by_role("link", name="Workflow in the Temporal UI")
    expect(temporal).to_have_attribute("href", re.compile(f"/workflows/run%3A{run['id']}$"))

    page.get_by_role("button", name="Re-run").click()
    expect(page).not_to_have_url(re.compile(run["id"]))
    rerun_id = page.url.rsplit("/", 1)[1]
    rerun = stack.tenant.run(rerun_id)
    assert rerun["job"] == "slow" and rerun["run_config"] == {"seconds": 120}
    assert rerun["tags"]["tether/rerun_of"] == run["id"]
    page.get_by_role("link", name="Terminate…").click()
    page.get_by_role("button", name="Terminate the run").click()
    assert wait_for_run(stack.tenant, rerun_id)["status"] == "CANCELED"


def test_the_runs_list_filters_and_updates_live(page: Page, stack: Stack) -> None:
    page.goto(f"/d/{stack.tenant.deployment}/runs?location=ops&job=quick")
    table = page.get_by_role("table", name="Runs, newest first")
    run = stack.tenant.launch("ops", "quick")
    # Not reloaded: the list follows by itself.
    expect(table.get_by_role("link", name=run["id"][:8])).to_be_visible(timeout=15_000)
    expect(table.get_by_role("row", name=re.compile(run["id"][:8]))).to_contain_text(
        "SUCCESS", timeout=60_000
    )
    page.get_by_label("Status").select_option("FAILURE")
    page.get_by_role("button", name="Filter").click()
    expect(table.get_by_role("link", name=run["id"][:8])).to_have_count(0)
    screenshot(page, "runs")
    page.goto(f"/d/{stack.tenant.deployment}")
    expect(page.get_by_role("table", name="Recent runs")).to_contain_text(run["id"][:8])
    screenshot(page, "overview")


def test_redeploy_from_the_button(page: Page, stack: Stack) -> None:
    with stack.api() as c:
        generation = c.get(f"{stack.tenant.dep_path}/code-locations/ops").json()["generation"]
    page.goto(f"/d/{stack.tenant.deployment}/locations/ops")
    page.get_by_role("button", name="Redeploy").click()
    expect(page.locator("#loc-status")).to_contain_text(f"generation {generation + 1}")
    expect(page.locator("#loc-status")).to_contain_text("RUNNING", timeout=60_000)


def test_another_organization_sees_nothing_of_this_one(browser: Browser, stack: Stack) -> None:
    other = stack.cp.tenant()
    run = stack.tenant.launch("ops", "quick")
    context = browser.new_context(base_url=stack.cp.url)
    page = context.new_page()
    try:
        sign_in(page, stack.sign_in_path(other))
        expect(page.get_by_role("heading", name=f"Deployment {other.deployment}")).to_be_visible()
        expect(page.locator("main")).not_to_contain_text("quick")
        # Typing the first organization's URLs: its deployment has the same name, so these
        # are looked up in the second organization, and are not there.
        for path in (
            f"/d/{stack.tenant.deployment}/runs/{run['id']}",
            f"/d/{stack.tenant.deployment}/locations/quick",
        ):
            response = page.goto(path)
            assert response is not None and response.status == 404
            expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        page.goto(f"/d/{stack.tenant.deployment}/runs")
        expect(page.locator("main")).not_to_contain_text(run["id"][:8])
    finally:
        context.close()


@dataclass
class EvilSite:
    """A page on another origin (same host, another port: the same *site*, so the browser
    does send the SameSite=Lax cookie) whose form posts to the control plane on load."""

    url: str
    action: str = ""


@pytest.fixture
def evil_site() -> Iterator[EvilSite]:
    port = free_port()
    site = EvilSite(url=f"http://127.0.0.1:{port}/")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (
                f'<form id="f" method="post" action="{site.action}">'
                '<input name="csrf_token" value="guessed"></form>'
                "<script>document.getElementById('f').submit()</script>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


def test_a_forged_cross_site_post_is_refused(page: Page, stack: Stack, evil_site: EvilSite) -> None:
    run = stack.tenant.launch("ops", "slow", run_config={"seconds": 60})
    action = f"/d/{stack.tenant.deployment}/runs/{run['id']}/terminate"
    evil_site.action = stack.cp.url + action
    with page.expect_response(re.compile("/terminate$")) as answer:
        page.goto(evil_site.url)
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("did not come from a Tether page")

    # Without the Origin check, the CSRF token alone refuses it: the session cookie with a
    # wrong token from our own origin.
    cookie = next(c for c in page.context.cookies() if c["name"] == "tether_session")
    forged = httpx.post(
        stack.cp.url + action,
        data={"csrf_token": "guessed"},
        cookies={"tether_session": cookie["value"]},
        headers={"Origin": stack.cp.url},
    )
    assert forged.status_code == 403
    assert stack.tenant.run(run["id"])["status"] not in ("CANCELING", "CANCELED")
    with stack.api() as c:
        assert c.post(f"{stack.tenant.dep_path}/runs/{run['id']}/terminate").status_code == 202
    wait_until(
        lambda: stack.tenant.run(run["id"])["status"] == "CANCELED", timeout=60, what="cancel"
    )


def test_schedules_turn_on_and_off_and_show_their_ticks(page: Page, stack: Stack) -> None:
    page.goto(f"/d/{stack.tenant.deployment}/schedules")
    table = page.get_by_role("table", name="Schedules")
    row = table.get_by_role("row", name=re.compile("nightly_etl"))
    expect(row).to_contain_text("STOPPED")
    page.get_by_role("button", name="Turn on nightly_etl").click()
    expect(row).to_contain_text("RUNNING")
    expect(row).to_contain_text("(set here)")
    screenshot(page, "schedules")
    row.get_by_role("link", name="nightly_etl").click()
    expect(page.get_by_role("heading", name="Schedule nightly_etl")).to_be_visible()
    expect(page.get_by_role("table", name="Ticks")).to_contain_text("No ticks yet")
    page.get_by_role("button", name="Turn off").click()
    expect(page.get_by_role("heading", name="Schedule nightly_etl")).to_be_visible()
    expect(page.locator("main .actions")).to_contain_text("STOPPED")


def test_sensors_turn_on_and_off_and_show_their_ticks(page: Page, stack: Stack) -> None:
    page.goto(f"/d/{stack.tenant.deployment}/sensors")
    table = page.get_by_role("table", name="Sensors")
    row = table.get_by_role("row", name=re.compile("hourly_sales_refresh"))
    expect(row).to_contain_text("STOPPED")
    expect(row).to_contain_text("refresh_sales")
    page.get_by_role("button", name="Turn on hourly_sales_refresh").click()
    expect(row).to_contain_text("RUNNING")
    expect(row).to_contain_text("(set here)")
    screenshot(page, "sensors")
    row.get_by_role("link", name="hourly_sales_refresh").click()
    expect(page.get_by_role("heading", name="Sensor hourly_sales_refresh")).to_be_visible()
    # Turned on, it is evaluated at once: the agent's answer shows after a reload or two.
    ticks = page.get_by_role("table", name="Ticks")

    def evaluated() -> bool:
        page.reload()
        text = ticks.inner_text()
        return "No ticks yet" not in text and "EVALUATING" not in text

    wait_until(evaluated, timeout=60, interval=1, what="the first tick's outcome")
    # Its function asks for one run per hour (the hour is its run key).
    tick = ticks.get_by_role("row").nth(1)
    expect(tick).to_contain_text("SUCCESS")
    run_link = tick.locator(f'a[href^="/d/{stack.tenant.deployment}/runs/"]')
    expect(run_link).to_have_count(1)
    # The Temporal workflow that evaluated it, linked in the Temporal UI.
    expect(tick.locator('a[href^="http://127.0.0.1:8233/namespaces/"]')).to_have_count(1)
    screenshot(page, "sensor")
    page.get_by_role("button", name="Turn off").click()
    expect(page.get_by_role("heading", name="Sensor hourly_sales_refresh")).to_be_visible()
    expect(page.locator("main .actions")).to_contain_text("STOPPED")


def test_the_alerts_page_lists_policies_and_what_they_sent(page: Page, stack: Stack) -> None:
    mail = {
        "type": "email",
        "smtp_host": "127.0.0.1",  # refused at once, should anything fire it
        "smtp_port": 9,
        "password": "smtp-password",
        "sender": "tether@example.com",
        "recipients": ["ops@example.com", "data@example.com"],
    }
    channels = {
        "oncall": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "format": "slack"},
        "by-mail": mail,
    }
    assert {c["type"] for c in channels.values()} == set(CHANNEL_KINDS)  # one of each kind
    with stack.api() as c:
        for name, channel in channels.items():
            body = {"events": ["run_failure"], "channel": channel}
            r = c.put(f"{stack.tenant.dep_path}/alert-policies/{name}", json=body)
            assert r.status_code == 200, r.text
        assert c.post(f"{stack.tenant.dep_path}/alert-policies/oncall/test").status_code == 202
    page.goto(f"/d/{stack.tenant.deployment}/alerts")
    policies = page.get_by_role("table", name="Policies")
    expect(policies).to_contain_text("oncall")
    # Each channel as tether_api.channels summarises it (and `tether alerts list` shows it):
    # a webhook to its host only, nothing secret.
    expect(policies.get_by_role("row").filter(has_text="oncall")).to_contain_text(
        f"webhook to http://127.0.0.1:9/{'*' * 16} (Slack)"
    )
    expect(policies.get_by_role("row").filter(has_text="by-mail")).to_contain_text(
        "e-mail to ops@example.com, data@example.com"
    )
    expect(policies).not_to_contain_text("/hook")
    expect(policies).not_to_contain_text("smtp-password")
    sent = page.get_by_role("table", name="Sent")
    expect(sent).to_contain_text("test alert of policy oncall")
    screenshot(page, "alerts")
