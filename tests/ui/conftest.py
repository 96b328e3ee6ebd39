"""Web UI fixtures: one real Chromium for the module (Debian's, driven by Playwright), one
control plane, Temporal dev server, agent and deployed locations per module, and a signed-in
browser page per test. Screenshots go to $TETHER_TEST_ARTIFACTS (default test-artifacts/)."""

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.agent_support import AgentProcess, TemporalDevServer, stop_launched, wait_for_location
from tests.support import REPO, ControlPlane, Tenant

OPS = Path(__file__).parent.parent / "e2e" / "locations" / "ops.py"
DAGSTER_PROJECT = REPO / "examples" / "dagster_project"
ARTIFACTS = Path(os.environ.get("TETHER_TEST_ARTIFACTS", "test-artifacts")) / "ui"
# Playwright cannot download its own browsers here; these flags keep Chromium offline and
# quiet in a container running as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]


def chromium_path() -> str | None:
    found = os.environ.get("TETHER_TEST_CHROMIUM") or shutil.which("chromium")
    return found if found and os.access(found, os.X_OK) else None


# Module scope, not session: Playwright's sync API keeps an asyncio loop marked as running
# in this thread while it is open, and the async tests that come after (tests/workflows)
# cannot start theirs until it is closed. One module drives the browser, so it still
# starts once per run.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no Chromium: scripts/test.sh installs it (scripts/setup-browser.sh)")
        pytest.skip("no Chromium: run scripts/setup-browser.sh (root on Debian)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Stack:
    cp: ControlPlane
    tenant: Tenant
    agent: AgentProcess

    def sign_in_path(self, tenant: Tenant | None = None) -> str:
        with (tenant or self.tenant).user() as c:
            r = c.post("/api/v1/sign-in-links", json={"ttl_seconds": 300})
            assert r.status_code == 201, r.text
            return str(r.json()["path"])

    def api(self, tenant: Tenant | None = None) -> httpx.Client:
        return (tenant or self.tenant).user()


@pytest.fixture(scope="module")
def stack(
    e2e_controlplane: ControlPlane,
    temporal_server: TemporalDevServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A tenant with an agent, the bundled example as `quick`, the test jobs as `ops`, a
    location whose module fails to import as `broken`, and the example Dagster project as
    `acme`."""
    tenant = e2e_controlplane.tenant()
    agent = AgentProcess(tenant, temporal_server, tmp_path_factory.mktemp("ui-agent")).start()
    try:
        tenant.deploy("quick")
        tenant.deploy("ops", python_file=str(OPS))
        tenant.deploy("broken", module="tether_sdk.examples.broken")
        tenant.deploy("acme", kind="dagster", working_directory=str(DAGSTER_PROJECT))
        assert wait_for_location(tenant, "quick")["status"] == "RUNNING"
        assert wait_for_location(tenant, "acme")["status"] == "RUNNING"
        assert wait_for_location(tenant, "ops")["status"] == "RUNNING"
        assert wait_for_location(tenant, "broken")["status"] == "ERROR"
        yield Stack(e2e_controlplane, tenant, agent)
    finally:
        agent.stop()
        stop_launched(agent.state_dir)


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    """A fresh browser context (no cookies), signed in through a one-time link."""
    context = browser.new_context(base_url=stack.cp.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    sign_in(opened, stack.sign_in_path())
    try:
        yield opened
    finally:
        context.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, link_path: str) -> None:
    """Open a one-time sign-in link and press its button, as a person would."""
    page.goto(link_path)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/sign-in" not in url)
