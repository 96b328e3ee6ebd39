"""The launchpad with a run config holding a key its job does not take: the message names the key
and the keys allowed as it is typed, launching is refused and creates no run. A real browser
and control plane; the location's snapshot is what the SDK makes of these definitions (no agent
is needed to check a config)."""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support import ControlPlane, Tenant
from tests.ui.conftest import screenshot, sign_in
from tests.weather import SNAPSHOT


@pytest.fixture(scope="module")
def skies(e2e_controlplane: ControlPlane) -> Tenant:
    """A tenant whose location ``skies`` has reported the weather job."""
    tenant = e2e_controlplane.tenant()
    tenant.report_running("skies", SNAPSHOT.model_dump(mode="json"))
    return tenant


@pytest.fixture
def page(browser: Browser, skies: Tenant) -> Iterator[Page]:
    context = browser.new_context(base_url=skies.cp.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    with skies.user() as c:
        link = c.post("/api/v1/sign-in-links", json={"ttl_seconds": 300})
        assert link.status_code == 201, link.text
    sign_in(opened, link.json()["path"])
    try:
        yield opened
    finally:
        context.close()


def test_the_launchpad_names_an_unknown_key_and_the_keys_allowed(page: Page, skies: Tenant) -> None:
    page.goto(f"/d/{skies.deployment}/launchpad?location=skies&job=weather")
    summary = page.locator("#validation-summary")
    page.get_by_label("Run config").fill('{"city": "Oslo", "fail_lod": true}')
    # Checked as it is typed.
    expect(summary).to_have_text(
        "fail_lod: unknown key; this job's config takes city, fail_load, stations"
    )
    screenshot(page, "launchpad-unknown-key")
    page.get_by_role("button", name="Launch run").click()
    expect(page).to_have_url(re.compile("/launchpad$"))
    expect(summary).to_have_text(
        "fail_lod: unknown key; this job's config takes city, fail_load, stations"
    )
    # A nested one, written in YAML, at its full path.
    page.get_by_label("YAML").check()
    page.get_by_label("Run config").fill("city: Oslo\nstations:\n  - id: a\n    hight: 3\n")
    expect(summary).to_have_text("stations.0.hight: unknown key; stations.0 takes height_m, id")
    with skies.user() as c:
        assert c.get(f"{skies.dep_path}/runs").json()["runs"] == []  # nothing was created

    page.get_by_label("Run config").fill("city: Oslo\nfail_load: true\n")
    expect(summary).to_contain_text("valid for this job")
