"""The asset catalog and backfill pages in a real Chromium, against a real control plane,
Temporal server and agent running the partitioned example (daily orders assets): what a data
engineer does with them, checked as they would check it."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.agent_support import AgentProcess, TemporalDevServer, stop_launched, wait_for_location
from tests.support import ControlPlane
from tests.ui.conftest import Stack, screenshot, sign_in
from tether_api.snapshot import (
    AssetSnapshot,
    DefinitionsSnapshot,
    JobSnapshot,
    PartitionsSnapshot,
    StepSnapshot,
)

LOCATION = "orders"
# Runs of a Tether SDK location take a few seconds (a worker process each).
RUN_TIMEOUT = 60_000


@pytest.fixture(scope="module")
def stack(
    e2e_controlplane: ControlPlane,
    temporal_server: TemporalDevServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """This module's own tenant and agent, with the partitioned example deployed as
    `orders` (overrides tests/ui/conftest.py's stack, which deploys other locations)."""
    tenant = e2e_controlplane.tenant()
    agent = AgentProcess(tenant, temporal_server, tmp_path_factory.mktemp("assets-agent")).start()
    try:
        tenant.deploy(LOCATION, module="tether_sdk.examples.partitioned")
        assert wait_for_location(tenant, LOCATION)["status"] == "RUNNING"
        yield Stack(e2e_controlplane, tenant, agent)
    finally:
        agent.stop()
        stop_launched(agent.state_dir)


def asset_row(page: Page, key: str) -> Locator:
    return page.locator(f'tr[data-asset="{key}"]')


def test_materialize_a_partition_from_the_asset_page(page: Page, stack: Stack) -> None:
    dep = stack.tenant.deployment
    page.goto(f"/d/{dep}")
    page.get_by_role("link", name="Assets", exact=True).click()
    expect(page.get_by_role("heading", name="Assets")).to_be_visible()
    row = asset_row(page, "raw_orders")
    expect(row).to_contain_text("orders")  # its group
    expect(row).to_contain_text(LOCATION)
    expect(row).to_contain_text("NEVER")
    # Filters: a key prefix keeps only the matching assets.
    page.get_by_label("Key starts with").fill("regional")
    page.get_by_role("button", name="Filter").click()
    expect(asset_row(page, "regional_customers")).to_be_visible()
    expect(asset_row(page, "raw_orders")).to_have_count(0)
    page.get_by_role("link", name="Clear").click()

    asset_row(page, "raw_orders").get_by_role("link", name="raw_orders").click()
    expect(page.get_by_role("heading", name="Asset raw_orders")).to_be_visible()
    expect(page.locator("#asset-description")).to_contain_text("The day's orders")
    expect(page.locator("#asset-partitions-def")).to_have_text("daily from 2024-01-01 (UTC)")
    expect(page.locator("#partition-counts")).to_contain_text("0 materialized")
    # The lineage: what depends on it, drawn and listed.
    lineage = page.locator("#lineage svg")
    expect(lineage.locator('[data-id="daily_revenue"]')).to_be_visible()
    expect(lineage.locator('[data-id="orders_audit"]')).to_be_visible()
    expect(page.locator("#downstream")).to_contain_text("daily_revenue")

    # A partition the definition does not have: the API's answer, the form as typed.
    form = page.locator("#materialize-form")
    form.get_by_label("One partition").fill("1999-01-01")
    form.get_by_role("button", name="Materialize").click()
    expect(page.locator("#materialize-problem")).to_contain_text("1999-01-01")
    expect(form.get_by_label("One partition")).to_have_value("1999-01-01")
    screenshot(page, "asset-materialize-refused")

    # The strip's cell of a partition without a run fills in the form.
    page.locator('#partition-strip [data-partition="2024-01-02"]').click()
    expect(form.get_by_label("One partition")).to_have_value("2024-01-02")
    form.get_by_label("daily_revenue").check()
    form.get_by_role("button", name="Materialize").click()
    expect(page).to_have_url(re.compile(f"/d/{dep}/runs/"))
    expect(page.locator("#run-status")).to_have_text("SUCCESS", timeout=RUN_TIMEOUT)
    run_id = page.url.rsplit("/", 1)[1]
    tags = page.locator("main dl.facts").first
    expect(tags).to_contain_text("tether/partition=2024-01-02")

    page.get_by_role("link", name="Assets", exact=True).click()
    row = asset_row(page, "raw_orders")
    expect(row).to_contain_text("MATERIALIZED")
    expect(row).to_contain_text("2024-01-02")
    expect(row.get_by_role("link", name=run_id[:8])).to_be_visible()
    expect(asset_row(page, "daily_revenue")).to_contain_text("MATERIALIZED")
    expect(asset_row(page, "orders_audit")).to_contain_text("NEVER")  # not selected
    screenshot(page, "assets")

    row.get_by_role("link", name="raw_orders").click()
    expect(page.locator("#asset-status")).to_have_text("MATERIALIZED")
    history = page.locator("#history tbody tr").first
    expect(history).to_contain_text("materialization")
    expect(history).to_contain_text("2024-01-02")
    expect(history).to_contain_text(re.compile(r"rows=\d+"))
    expect(history.get_by_role("link", name=run_id[:8])).to_be_visible()
    expect(page.locator('.chart[data-metadata="rows"] svg desc')).to_contain_text("1 value")
    expect(page.locator('#partition-strip [data-partition="2024-01-02"]')).to_have_class(
        re.compile("cell-MATERIALIZED")
    )
    expect(page.locator('#partition-strip [data-partition="2024-01-03"]')).to_have_class(
        re.compile("cell-MISSING")
    )
    expect(page.locator("#partition-counts")).to_contain_text("1 materialized")
    screenshot(page, "asset")

    # Only the materialized partitions, as a table with their runs.
    page.locator("#pstatus-MATERIALIZED").click()
    page.locator("#view-table").click()
    table = page.locator("#partition-table tbody tr")
    expect(table).to_have_count(1)
    expect(table).to_contain_text("2024-01-02")
    expect(table.get_by_role("link", name=run_id[:8])).to_be_visible()


def test_launch_a_backfill_see_it_complete_and_cancel_another(page: Page, stack: Stack) -> None:
    dep = stack.tenant.deployment
    page.goto(f"/d/{dep}/backfills")
    page.get_by_role("link", name="Launch backfill…").click()
    form = page.locator("#backfill-form")
    form.get_by_label("Partitioned job").select_option(label=f"daily_orders ({LOCATION})")
    form.get_by_label("From").fill("2024-02-03")
    form.get_by_label("To (included)").fill("2024-02-01")
    form.get_by_label("Max in flight").fill("3")
    page.get_by_text("Run config and tags of every run").click()
    # raw_orders fails for one day, on request: the backfill completes with a failure.
    form.get_by_label("Run config (JSON or YAML)").fill('{"fail_on": ["2024-02-03"]}')
    form.get_by_role("button", name="Launch backfill").click()
    # A range backwards: the API's answer, nothing lost.
    expect(page.locator("#backfill-problem")).to_contain_text("after")
    expect(form.get_by_label("From")).to_have_value("2024-02-03")
    expect(form.get_by_label("Run config (JSON or YAML)")).to_have_value(
        '{"fail_on": ["2024-02-03"]}'
    )
    form.get_by_label("From").fill("2024-02-01")
    form.get_by_label("To (included)").fill("2024-02-03")
    form.get_by_role("button", name="Launch backfill").click()

    expect(page.get_by_role("heading", name=re.compile("^Backfill "))).to_be_visible()
    expect(page.locator("#backfill-status")).to_have_text(
        "COMPLETED_WITH_FAILURES", timeout=RUN_TIMEOUT
    )
    expect(page.locator("main")).to_contain_text("2 succeeded, 1 failed of 3")
    rows = page.locator("#partition-table tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator('tr[data-partition="2024-02-01"]')).to_contain_text("SUCCESS")
    expect(page.locator('tr[data-partition="2024-02-03"]')).to_contain_text("FAILURE")
    expect(page.locator("#resume-backfill")).to_contain_text("relaunch 1")
    screenshot(page, "backfill-completed")
    backfill_url = page.url

    # Its run links to it back.
    page.locator('tr[data-partition="2024-02-02"]').get_by_role("link").click()
    expect(page.locator("#run-backfill")).to_be_visible()
    page.locator("#run-backfill").click()
    expect(page).to_have_url(backfill_url)

    # The asset catalog saw the backfill's runs: the failed day, the chart's new points.
    page.goto(f"/d/{dep}/assets/raw_orders?status=FAILED&view=table")
    expect(page.locator("#partition-table tbody tr")).to_contain_text("2024-02-03")
    expect(page.locator('.chart[data-metadata="rows"] svg desc')).to_contain_text(
        re.compile(r"[2-9] values")
    )

    # A second backfill, one run at a time, canceled with its running run terminated.
    page.goto(f"/d/{dep}/backfills/new")
    form = page.locator("#backfill-form")
    form.get_by_label("Assets", exact=True).check()
    form.get_by_label("Asset keys, one a line").fill("raw_orders")
    form.get_by_label("All of them").check()
    form.get_by_label("Max in flight").fill("1")
    form.get_by_role("button", name="Launch backfill").click()
    # Once its first run is going, so that Cancel has a run to terminate.
    expect(page.locator("#pstatus-LAUNCHED")).to_have_text("launched (1)", timeout=RUN_TIMEOUT)
    page.get_by_label("also terminate its running runs").check()
    page.get_by_role("button", name="Cancel backfill").click()
    expect(page.locator("#backfill-notice")).to_contain_text("Cancel requested")
    expect(page.locator("#backfill-status")).to_have_text("CANCELED", timeout=RUN_TIMEOUT)
    expect(page.locator("#pstatus-CANCELED")).not_to_have_text("canceled (0)")
    expect(page.locator("#resume-backfill")).to_be_visible()
    first = page.locator("#partition-table tbody tr").first
    expect(first).to_contain_text("2024-01-01")
    expect(first.get_by_role("link")).to_be_visible()  # the run it launched
    screenshot(page, "backfill-canceled")

    page.get_by_role("link", name="Backfills", exact=True).click()
    listed = page.locator("tr[data-backfill]")
    expect(listed).to_have_count(2)
    expect(listed.first).to_contain_text("CANCELED")
    expect(listed.first).to_contain_text("all")
    expect(listed.nth(1)).to_contain_text("COMPLETED_WITH_FAILURES")
    expect(listed.nth(1)).to_contain_text("range 2024-02-01..2024-02-03")
    screenshot(page, "backfills")


MANY = 10_000
HOUR_KEY = "%Y-%m-%d-%H:%M"


def _hourly_snapshot(start: datetime) -> dict[str, Any]:
    hourly = PartitionsSnapshot(
        kind="time_window",
        cron="0 * * * *",
        timezone="UTC",
        start=start.strftime(HOUR_KEY),
        fmt=HOUR_KEY,
        location_kind="tether",
    )
    step = StepSnapshot(name="events", asset_key="events", asset_keys=["events"])
    defs = DefinitionsSnapshot(
        assets=[AssetSnapshot(key="events", partitions=hourly)],
        jobs=[JobSnapshot(name="hourly_events", steps=[step], partitions=hourly)],
    )
    return defs.model_dump(mode="json")


def test_pages_of_ten_thousand_partitions_show_one_page_of_them(
    browser: Browser, stack: Stack
) -> None:
    """An hourly asset with more than 10,000 partitions and a backfill of 10,000 of them:
    each page shows one page of partitions, with the counts of all (how fast they answer is
    measured by bench/bench_backfill.py and bench/bench_assets.py, p50 and p99)."""
    tenant = stack.cp.tenant()  # no agent: the location is reported as its agent would
    # Hourly partitions that started MANY hours ago: MANY of them have ended.
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=MANY)
    tenant.report_running("lake", _hourly_snapshot(start))
    with tenant.user() as c:
        r = c.post(
            f"{tenant.dep_path}/backfills",
            json={
                "code_location": "lake",
                "job": "hourly_events",
                "all_partitions": True,
                "max_in_flight": 1,
            },
        )
        assert r.status_code == 201, r.text
        backfill = r.json()
    assert backfill["partition_count"] >= MANY
    context = browser.new_context(base_url=stack.cp.url)
    try:
        page = context.new_page()
        sign_in(page, stack.sign_in_path(tenant))
        dep = tenant.deployment
        middle = (start + timedelta(hours=MANY // 2)).strftime(HOUR_KEY)
        paths = [
            f"/d/{dep}/assets",
            f"/d/{dep}/assets/events",
            f"/d/{dep}/assets/events?status=MISSING&after={middle}&view=table",
            f"/d/{dep}/backfills",
            f"/d/{dep}/backfills/{backfill['id']}",
            f"/d/{dep}/backfills/{backfill['id']}?status=PENDING&after=9000",
        ]
        for path in paths:
            answer = page.request.get(path)
            assert answer.status == 200, (path, answer.text()[:500])
        page.goto(f"/d/{dep}/assets/events")
        expect(page.locator("#partition-counts")).to_contain_text(re.compile(r"\d{5} partitions"))
        expect(page.locator("#partition-strip .cell")).to_have_count(366)
        page.goto(f"/d/{dep}/backfills/{backfill['id']}")
        expect(page.locator("main")).to_contain_text(f"of {backfill['partition_count']}")
        expect(page.locator("#partition-table tbody tr")).to_have_count(100)
        screenshot(page, "backfill-10000")
    finally:
        context.close()
