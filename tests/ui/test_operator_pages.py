"""The operator's pages in a real Chromium against a real control plane, agent and Temporal
server: agents, tokens, the audit log; the run list's filters and pages; why a run failed,
who terminated it and the confirmation before Terminate; text shown as written; every page
at a phone's width (390 px)."""

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import update

from tests.agent_support import wait_for_run
from tests.support import Tenant, wait_until
from tests.ui.conftest import Stack, screenshot, sign_in
from tether_api.durations import duration_text
from tether_controlplane.db import Database
from tether_controlplane.tables import RunRow
from tether_sdk.examples.quickstart import defs

# Written in a run config, a field's default and a schedule's config: shown as written.
AWKWARD = "<b>bold</b> & 'quoted' > \"less\""
QUIET_RUNS = 30  # more than a page of the run list (25)


def user_token_name(tenant: Tenant) -> str:
    with tenant.user() as c:
        listed = c.get("/api/v1/tokens").json()
    return next(t["name"] for t in listed if t["kind"] == "user")


def utc_field(at: datetime) -> str:
    """A datetime-local field's value for a UTC time, as the pages read it (as Chrome writes
    it: no seconds when they are 0)."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S" if at.second else "%Y-%m-%dT%H:%M")


@pytest.fixture(scope="module")
def quiet(stack: Stack) -> Tenant:
    """A second organization with no agent: its definitions reported as an agent would (the
    quickstart's, with awkward text in a default and a schedule's config) and runs that stay
    where admission put them, created an hour apart on a known day."""
    tenant = stack.cp.tenant()
    snapshot = defs.snapshot().model_dump(mode="json")
    etl = next(j for j in snapshot["jobs"] if j["name"] == "etl")
    etl["config_schema"]["properties"]["note"] = {"type": "string", "default": AWKWARD}
    snapshot["schedules"][0]["run_config"] = {"source": "s3://x", "note": AWKWARD}
    for name in ("quick", "other"):
        tenant.deploy(name)
        with tenant.agent() as agent:
            r = agent.post(
                f"/api/v1/agent/code-locations/{name}/status",
                json={"status": "RUNNING", "snapshot": snapshot, "generation": 1},
            )
            assert r.status_code == 200, r.text
    for i in range(QUIET_RUNS):
        tenant.launch("quick", "etl", run_config={"source": f"s{i}"}, tags={"team": "data"})
    tenant.launch("other", "etl", run_config={"source": "elsewhere"}, tags={"team": "ops"})
    with tenant.user() as c:
        runs = c.get(f"{tenant.dep_path}/runs", params={"limit": 200}).json()["runs"]
    db = Database(tenant.cp.database_url)
    try:
        with db.write() as s:
            for i, run in enumerate(reversed(runs)):  # oldest first
                at = QUIET_DAY + timedelta(hours=i)
                s.execute(update(RunRow).where(RunRow.id == run["id"]).values(created_at=at))
    finally:
        db.dispose()
    return tenant


QUIET_DAY = datetime(2030, 3, 1, tzinfo=UTC)


@pytest.fixture
def quiet_page(browser: Browser, stack: Stack, quiet: Tenant) -> Iterator[Page]:
    context = browser.new_context(base_url=stack.cp.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    sign_in(opened, stack.sign_in_path(quiet))
    try:
        yield opened
    finally:
        context.close()


def quiet_runs(quiet: Tenant) -> list[dict[str, Any]]:
    with quiet.user() as c:
        return c.get(f"{quiet.dep_path}/runs", params={"limit": 200}).json()["runs"]  # type: ignore[no-any-return]


def test_the_agents_page_shows_each_agent_and_its_runs_in_flight(page: Page, stack: Stack) -> None:
    run = stack.tenant.launch("ops", "slow", run_config={"seconds": 60})
    try:
        assert wait_until(
            lambda: stack.tenant.run(run["id"])["status"] == "STARTED", timeout=60, what="start"
        )
        page.goto(f"/d/{stack.tenant.deployment}")
        page.get_by_role("navigation", name="Deployment").get_by_role("link", name="Agents").click()
        expect(page.get_by_role("heading", name="Agents")).to_be_visible()
        row = page.get_by_role("table", name="Agents").get_by_role(
            "row", name=re.compile(stack.agent.name)
        )
        expect(row).to_contain_text("AVAILABLE")
        expect(row).to_contain_text("process")  # the launcher
        expect(row).to_contain_text("default")  # the queue it serves
        expect(row).to_contain_text(re.compile(r"(just now|\d.* ago)"))  # last heartbeat
        with stack.api() as c:
            agent = next(
                a
                for a in c.get(f"{stack.tenant.dep_path}/agents").json()
                if a["name"] == stack.agent.name
            )
        expect(row).to_contain_text(agent["version"])
        in_flight = row.locator("td.in-flight")
        expect(in_flight.get_by_role("link", name=run["id"][:8])).to_be_visible()
        expect(in_flight).to_contain_text("STARTED")
        screenshot(page, "agents")
    finally:
        with stack.api() as c:
            c.post(f"{stack.tenant.dep_path}/runs/{run['id']}/terminate")


def test_terminate_asks_first_and_the_run_says_who_terminated_it(page: Page, stack: Stack) -> None:
    run = stack.tenant.launch("ops", "slow", run_config={"seconds": 120})
    page.goto(f"/d/{stack.tenant.deployment}/runs/{run['id']}")
    expect(page.locator("#run-status")).to_have_text("STARTED", timeout=60_000)
    # One click only asks: the run goes on until the question is answered.
    page.get_by_role("link", name="Terminate…").click()
    expect(page.get_by_role("heading", name=re.compile("Terminate run"))).to_be_visible()
    expect(page.locator("main")).to_contain_text("slow")
    screenshot(page, "terminate-confirm")
    assert stack.tenant.run(run["id"])["status"] == "STARTED"
    page.get_by_role("link", name="Keep it running").click()
    expect(page.locator("#run-status")).to_have_text("STARTED")
    # A POST that did not come from the question (an old page's button) only asks too.
    cookie = next(c for c in page.context.cookies() if c["name"] == "tether_session")
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    unasked = httpx.post(
        f"{stack.cp.url}/d/{stack.tenant.deployment}/runs/{run['id']}/terminate",
        data={"csrf_token": csrf},
        cookies={"tether_session": cookie["value"]},
        headers={"Origin": stack.cp.url},
    )
    assert unasked.status_code == 303 and unasked.headers["location"].endswith("/terminate")
    assert stack.tenant.run(run["id"])["status"] == "STARTED"

    page.get_by_role("link", name="Terminate…").click()
    page.get_by_role("button", name="Terminate the run").click()
    expect(page.get_by_role("status")).to_contain_text(f"Terminate requested: run {run['id']}")
    expect(page.locator("#run-status")).to_have_text("CANCELED", timeout=60_000)
    # Who, and the message `tether runs show` prints for it.
    ended = stack.tenant.run(run["id"])
    terminated = page.locator("#terminated")
    expect(terminated).to_contain_text(f"Terminated by {user_token_name(stack.tenant)} (web UI)")
    expect(terminated).to_contain_text(ended["status_message"])
    expect(page.locator("#run-message")).to_have_text(ended["status_message"])
    expect(page.get_by_role("link", name="Terminate…")).to_have_count(0)
    screenshot(page, "run-terminated")


def test_a_failed_run_says_which_step_failed_and_why(page: Page, stack: Stack) -> None:
    run = stack.tenant.launch("quick", "etl", run_config={"source": "web", "fail": True})
    page.goto(f"/d/{stack.tenant.deployment}/runs/{run['id']}")
    expect(page.locator("#run-status")).to_have_text("FAILURE", timeout=60_000)
    failure = page.get_by_role("group", name="Why it failed")
    expect(failure).to_contain_text(
        "Step load failed: RuntimeError: load failed as requested (fail=true) for web"
    )
    failure.get_by_text("Traceback of load").click()
    expect(failure.locator("pre.traceback")).to_contain_text("Traceback (most recent call last)")
    screenshot(page, "run-failed-why")


def test_tokens_are_created_with_the_secret_shown_once_and_revoked(
    page: Page, stack: Stack
) -> None:
    page.goto(f"/d/{stack.tenant.deployment}/tokens")
    table = page.get_by_role("table", name="Tokens")
    expect(table).to_contain_text(user_token_name(stack.tenant))
    form = page.locator("form", has=page.get_by_role("button", name="Create token"))

    # The session alone cannot make a credential (the API's rule): a wrong user token is
    # refused with the reason, and nothing is created.
    form.get_by_label("Name").fill("ci-web")
    form.get_by_label("For", exact=True).select_option(
        label=f"an agent of deployment {stack.tenant.deployment}"
    )
    form.get_by_label("Your user token").fill("tether_user_not-a-real-token")
    form.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("alert")).to_contain_text("That user token was not accepted")
    expect(table).not_to_contain_text("ci-web")
    # What was typed stays, except the user token.
    expect(form.get_by_label("Name")).to_have_value("ci-web")
    expect(form.get_by_label("Your user token")).to_have_value("")

    form.get_by_label("Your user token").fill(stack.tenant.user_token)
    form.get_by_role("button", name="Create token").click()
    created = page.get_by_role("region", name="Token ci-web created")
    expect(created).to_contain_text("shown only this once")
    secret = page.get_by_label("Secret of agent token ci-web").input_value()
    assert secret.startswith("tether_agent_")
    row = table.get_by_role("row", name=re.compile("ci-web"))
    expect(row).to_contain_text(f"deployment {stack.tenant.deployment}")
    expect(row).to_contain_text("ACTIVE")
    screenshot(page, "token-created")
    # It works, and no page shows it again.
    with httpx.Client(base_url=stack.cp.url) as c:
        r = c.get("/api/v1/agent/agents", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 200, r.text
    page.goto(f"/d/{stack.tenant.deployment}/tokens")
    assert secret not in page.content()

    row.get_by_role("link", name="Revoke ci-web").click()
    expect(page.get_by_role("heading", name="Revoke token ci-web?")).to_be_visible()
    page.get_by_label("Your user token").fill(stack.tenant.user_token)
    page.get_by_role("button", name="Revoke the token").click()
    expect(page.get_by_role("status")).to_contain_text("Token ci-web is revoked")
    expect(row).to_contain_text("REVOKED")
    expect(row.get_by_role("link", name="Revoke ci-web")).to_have_count(0)
    with httpx.Client(base_url=stack.cp.url) as c:
        r = c.get("/api/v1/agent/agents", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 401


def test_the_audit_log_filters_by_actor_action_and_time(page: Page, stack: Stack) -> None:
    earlier = stack.tenant.launch("ops", "quick")
    time.sleep(1.1)  # the page's times are to the second: what follows starts a new one
    mark = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    time.sleep(max((mark - datetime.now(UTC)).total_seconds(), 0) + 0.1)
    run = stack.tenant.launch("ops", "quick")
    dep = stack.tenant.deployment
    page.goto(f"/d/{dep}")
    page.get_by_role("navigation", name="Deployment").get_by_role("link", name="Audit log").click()
    entries = page.get_by_role("table", name="Audit entries, newest first")
    expect(entries).to_contain_text("run.submit")
    filters = page.get_by_role("search", name="Filter the audit log")

    # From the mark on: this test's run, not the locations the stack deployed before it.
    filters.get_by_label(re.compile("^From")).fill(utc_field(mark))
    filters.get_by_role("button", name="Filter").click()
    expect(entries.get_by_role("row", name=re.compile(run["id"]))).to_contain_text("run.submit")
    expect(entries).not_to_contain_text("location.deploy")
    # Until the mark: the runs submitted before it, not this one.
    filters.get_by_label(re.compile("^From")).fill("")
    filters.get_by_label(re.compile("^Until")).fill(utc_field(mark))
    filters.get_by_label("Action").select_option("run.submit")
    filters.get_by_role("button", name="Filter").click()
    expect(entries.get_by_role("row", name=re.compile(earlier["id"]))).to_contain_text("run.submit")
    expect(entries).not_to_contain_text(run["id"])
    # By actor: what another user token (alice) did, not what this user did.
    with stack.api() as c:
        r = c.post("/api/v1/tokens", json={"kind": "user", "name": "alice-auditor"})
        assert r.status_code == 201, r.text
        alice = r.json()["token"]
    with httpx.Client(base_url=stack.cp.url, headers={"Authorization": f"Bearer {alice}"}) as c:
        r = c.post(f"{stack.tenant.dep_path}/runs", json={"code_location": "ops", "job": "quick"})
        assert r.status_code == 201, r.text
        by_alice = r.json()["id"]
    filters.get_by_label(re.compile("^Until")).fill("")
    filters.get_by_label("Action").select_option("")
    filters.get_by_label("Actor").fill("alice")
    filters.get_by_role("button", name="Filter").click()
    expect(entries.get_by_role("row", name=re.compile(by_alice))).to_contain_text("run.submit")
    texts = entries.get_by_role("row").all_inner_texts()[1:]
    assert texts and all("alice-auditor (user)" in t for t in texts), texts
    # And by action: only that action's entries.
    filters.get_by_label("Actor").fill("")
    filters.get_by_label("Action").select_option("token.create")
    filters.get_by_role("button", name="Filter").click()
    expect(entries).to_contain_text("user token 'alice-auditor'")
    texts = entries.get_by_role("row").all_inner_texts()[1:]
    assert texts and all("token.create" in t for t in texts), texts
    screenshot(page, "audit")
    # A window that is none says so, beside the filters it kept.
    filters.get_by_label(re.compile("^From")).fill(utc_field(mark))
    filters.get_by_label(re.compile("^Until")).fill(utc_field(mark - timedelta(hours=1)))
    filters.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("alert")).to_contain_text("From must be earlier than Until")
    expect(filters.get_by_label("Action")).to_have_value("token.create")


def test_the_run_list_filters_by_status_job_location_tag_and_time_and_pages(
    quiet_page: Page, quiet: Tenant
) -> None:
    page = quiet_page
    runs = quiet_runs(quiet)
    by_hour = list(reversed(runs))  # the quiet fixture created run i at hour i
    page.goto(f"/d/{quiet.deployment}/runs")
    table = page.get_by_role("table", name="Runs, newest first")
    expect(table.get_by_role("row")).to_have_count(26)  # a header and a page of 25
    expect(table.get_by_role("link", name=by_hour[-1]["id"][:8])).to_be_visible()
    page.get_by_role("link", name="Older runs").click()
    expect(table.get_by_role("row")).to_have_count(1 + len(runs) - 25)
    expect(table.get_by_role("link", name=by_hour[0]["id"][:8])).to_be_visible()
    expect(page.get_by_role("link", name="Older runs")).to_have_count(0)
    page.get_by_role("link", name="Newest runs").click()
    expect(table.get_by_role("link", name=by_hour[-1]["id"][:8])).to_be_visible()

    filters = page.get_by_role("search", name="Filter runs")
    filters.get_by_label("Code location").select_option("other")
    filters.get_by_role("button", name="Filter").click()
    expect(table.get_by_role("row")).to_have_count(2)
    expect(table).to_contain_text("team=ops")

    filters.get_by_label("Code location").select_option("")
    filters.get_by_label("Tag (KEY=VALUE)").fill("team=data")
    filters.get_by_label("Job").fill("etl")
    filters.get_by_label("Created from (UTC)").fill(utc_field(QUIET_DAY + timedelta(hours=3)))
    filters.get_by_label("Created before (UTC)").fill(utc_field(QUIET_DAY + timedelta(hours=7)))
    filters.get_by_role("button", name="Filter").click()
    expected = [r["id"][:8] for r in reversed(by_hour[3:7])]
    expect(table.locator("a.mono")).to_have_text(expected)
    screenshot(page, "runs-filtered")
    # The filters stay in the address: the page can be shared, and Status narrows it more.
    assert "created_after=" in page.url and "tag=team%3Ddata" in page.url
    statuses = {r["status"] for r in by_hour[3:7]}
    status = sorted(statuses)[0]
    filters.get_by_label("Status").select_option(status)
    filters.get_by_role("button", name="Filter").click()
    expect(table.locator("a.mono")).to_have_text(
        [r["id"][:8] for r in reversed(by_hour[3:7]) if r["status"] == status]
    )
    # A window that is none, and a tag that is no KEY=VALUE: said above the list.
    filters.get_by_label("Created before (UTC)").fill(utc_field(QUIET_DAY))
    filters.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "Created from must be earlier than Created before"
    )
    page.goto(f"/d/{quiet.deployment}/runs?tag=team")
    expect(page.get_by_role("alert")).to_contain_text("Tag: 'team' is no KEY=VALUE")


def test_text_is_shown_as_written(quiet_page: Page, quiet: Tenant) -> None:
    page = quiet_page
    run = quiet.launch("quick", "etl", run_config={"source": AWKWARD})
    page.goto(f"/d/{quiet.deployment}/runs/{run['id']}")
    config = page.locator("#run-config")
    expect(config).to_contain_text(f'"source": "{AWKWARD.replace(chr(34), chr(92) + chr(34))}"')
    assert "\\u003c" not in config.inner_text() and "\\u0026" not in config.inner_text()
    expect(config.locator("b")).to_have_count(0)  # text, never markup

    page.goto(f"/d/{quiet.deployment}/locations/quick")
    note = page.locator("[id$='-note']").first
    expect(note).to_contain_text(AWKWARD.replace('"', '\\"'))
    expect(note.locator("b")).to_have_count(0)
    page.goto(f"/d/{quiet.deployment}/schedules/quick/nightly_etl")
    expect(page.get_by_label("Run config")).to_contain_text(AWKWARD.replace('"', '\\"'))
    page.goto(f"/d/{quiet.deployment}/launchpad?location=quick&job=etl")
    expect(page.get_by_label("Run config")).to_have_value(re.compile(re.escape("<b>bold</b>")))
    screenshot(page, "text-as-written")


def test_a_location_lists_its_schedules_and_sensors_on_or_off_with_links(
    quiet_page: Page, quiet: Tenant
) -> None:
    page = quiet_page
    page.goto(f"/d/{quiet.deployment}/locations/quick")
    schedules = page.get_by_role("table", name="Schedules")
    row = schedules.get_by_role("row", name=re.compile("nightly_etl"))
    expect(row).to_contain_text("off")
    row.get_by_role("button", name="Turn on nightly_etl").click()
    expect(page).to_have_url(re.compile("/locations/quick$"))
    expect(row).to_contain_text("on RUNNING")
    row.get_by_role("button", name="Turn off nightly_etl").click()
    expect(row).to_contain_text("off STOPPED")
    sensors = page.get_by_role("table", name="Sensors")
    sensor = sensors.get_by_role("row", name=re.compile("hourly_sales_refresh"))
    expect(sensor).to_contain_text("off")
    # One duration format: the sensor's interval as every page writes durations.
    expect(sensor).to_contain_text(duration_text(60))
    row.get_by_role("link", name="nightly_etl").click()
    expect(page.get_by_role("heading", name="Schedule nightly_etl")).to_be_visible()
    page.go_back()
    sensor.get_by_role("link", name="hourly_sales_refresh").click()
    expect(page.get_by_role("heading", name="Sensor hourly_sales_refresh")).to_be_visible()


# What the browser measures at 390 px: the document's width; each menu item's box, what is
# drawn at its centre, and its text colour against the background actually behind it.
NAV_CHECK = """() => {
  const rgba = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const opaque = (c) => c.length === 3 || c[3] > 0;
  const pageBackground = () => [document.body, document.documentElement]
    .map((e) => rgba(getComputedStyle(e).backgroundColor)).find(opaque) || [255, 255, 255];
  const behind = (el) => {
    const box = el.getBoundingClientRect();
    for (let p = el; p; p = p.parentElement) {
      const bg = rgba(getComputedStyle(p).backgroundColor);
      if (!opaque(bg)) continue;
      const pb = p.getBoundingClientRect();
      const inside = box.left >= pb.left - 0.5 && box.right <= pb.right + 0.5 &&
        box.top >= pb.top - 0.5 && box.bottom <= pb.bottom + 0.5;
      // Painted outside its ancestor's box: the page's own white is behind it.
      return (inside ? bg : pageBackground()).slice(0, 3);
    }
    return pageBackground().slice(0, 3);
  };
  return [...document.querySelectorAll("header.top a, header.top button")].map((el) => {
    const box = el.getBoundingClientRect();
    const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    return {
      text: el.textContent.trim(),
      left: box.left, right: box.right, width: box.width, height: box.height,
      onTop: hit === el || el.contains(hit),
      color: rgba(getComputedStyle(el).color).slice(0, 3),
      background: behind(el),
    };
  });
}"""
PHONE_WIDTH = 390
WIDTHS = "() => [document.documentElement.scrollWidth, window.innerWidth]"
SCROLL_BOXES = """() => [...document.querySelectorAll("main table")].map((t) => {
  const box = t.parentElement;
  return {
    wrapped: box.classList.contains("scroll"),
    overflow: getComputedStyle(box).overflowX,
    scrolls: box.scrollWidth > box.clientWidth,
    boxRight: box.getBoundingClientRect().right,
  };
})"""


def test_every_page_fits_a_phone(browser: Browser, stack: Stack, quiet: Tenant) -> None:
    failed = stack.tenant.launch("ops", "fails")
    queued = quiet_runs(quiet)[0]
    wait_for_run(stack.tenant, failed["id"])
    dep, quiet_dep = stack.tenant.deployment, quiet.deployment
    pages = {
        "overview": f"/d/{dep}",
        "runs": f"/d/{dep}/runs",
        "run": f"/d/{dep}/runs/{failed['id']}",
        "launchpad": f"/d/{dep}/launchpad?location=quick&job=etl",
        "location": f"/d/{dep}/locations/quick",
        "location-error": f"/d/{dep}/locations/broken",
        "dagster-location": f"/d/{dep}/locations/acme",
        "schedules": f"/d/{dep}/schedules",
        "schedule": f"/d/{dep}/schedules/quick/nightly_etl",
        "sensors": f"/d/{dep}/sensors",
        "sensor": f"/d/{dep}/sensors/quick/hourly_sales_refresh",
        "alerts": f"/d/{dep}/alerts",
        "agents": f"/d/{dep}/agents",
        "tokens": f"/d/{dep}/tokens",
        "audit": f"/d/{dep}/audit",
    }
    context = browser.new_context(
        base_url=stack.cp.url, viewport={"width": PHONE_WIDTH, "height": 844}, is_mobile=True
    )
    context.set_default_timeout(15_000)
    phone = context.new_page()
    try:
        sign_in(phone, stack.sign_in_path())
        checked = 0
        for name, path in pages.items():
            phone.goto(path)
            _fits(phone, name)
            checked += 1
        # The other organization's pages: a queued run, and Terminate's question.
        sign_in(phone, stack.sign_in_path(quiet))
        for name, path in {
            "queued-run": f"/d/{quiet_dep}/runs/{queued['id']}",
            "terminate": f"/d/{quiet_dep}/runs/{queued['id']}/terminate",
            "runs-filtered": f"/d/{quiet_dep}/runs?tag=team%3Ddata",
        }.items():
            phone.goto(path)
            _fits(phone, name)
            checked += 1
        assert checked == len(pages) + 3

        # A wide table scrolls inside its box, which fits the screen.
        phone.goto(f"/d/{quiet_dep}/runs")
        boxes = phone.evaluate(SCROLL_BOXES)
        assert boxes and all(b["wrapped"] and b["overflow"] == "auto" for b in boxes), boxes
        assert any(b["scrolls"] for b in boxes), boxes
        assert all(b["boxRight"] <= PHONE_WIDTH for b in boxes), boxes
        wrapper = phone.locator("main .scroll").first
        wrapper.evaluate("(box) => { box.scrollLeft = box.scrollWidth; }")
        assert wrapper.evaluate("(box) => box.scrollLeft") > 0
        expect(phone.get_by_role("columnheader", name="Duration")).to_be_in_viewport()
    finally:
        context.close()


def _fits(phone: Page, name: str) -> None:
    expect(phone.locator("main h1").first).to_be_visible()
    width, inner = phone.evaluate(WIDTHS)
    # A phone's browser widens its viewport to content that overflows: measure against
    # the screen itself.
    viewport = PHONE_WIDTH
    assert inner == viewport, f"{name}: the browser laid the page out {inner} px wide"
    if width > viewport:
        screenshot(phone, f"phone-{name}")
    assert width <= viewport, f"{name}: the page is {width} px wide on a {viewport} px screen"
    items = phone.evaluate(NAV_CHECK)
    assert len(items) >= 2, items
    for item in items:
        where = f"{name}: menu item {item['text']!r}"
        assert item["width"] > 0 and item["height"] > 0, where
        assert item["left"] >= 0 and item["right"] <= viewport, f"{where} is off screen: {item}"
        assert item["onTop"], f"{where} is covered: {item}"
        assert item["color"] != item["background"], f"{where} is unreadable: {item}"
    if name in ("overview", "run", "tokens", "terminate"):
        screenshot(phone, f"phone-{name}")
