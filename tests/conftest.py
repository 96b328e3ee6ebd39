import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.agent_support import TemporalDevServer
from tests.support import ControlPlane, Tenant, drop_postgres_database, fresh_postgres_database

POSTGRES_URL = os.environ.get("TETHER_TEST_POSTGRES_URL")


# Files whose tests bind `tether dev`'s fixed default ports (3000, 7233, 8233): one worker
# runs them all, one after another.
FIXED_PORTS = ("tests/e2e/test_dev.py", "tests/e2e/test_search_attributes.py")


# The kinds of tests that need more than this machine's Python (pyproject.toml's markers):
# every test under these folders carries the folder's marker.
TESTS = Path(__file__).resolve().parent
MARKED_FOLDERS = {TESTS / "e2e": "e2e", TESTS / "docker": "docker"}


def kinds(item: pytest.Item) -> list[str]:
    """The markers of the kinds of test ``item`` is: ``e2e`` and ``docker`` by its folder,
    ``postgres`` when it runs on the PostgreSQL backend (a fixture parametrized ``sqlite`` /
    ``postgres``, such as ``controlplane`` below, took its ``postgres`` value)."""
    found = [name for folder, name in MARKED_FOLDERS.items() if item.path.is_relative_to(folder)]
    callspec = getattr(item, "callspec", None)
    if callspec is not None and any(
        isinstance(value, str) and value == "postgres" for value in callspec.params.values()
    ):
        found.append("postgres")
    return found


# First: `-m` deselects by marker in its own hook, which must see these.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its kinds (``pytest -m e2e`` runs one kind, ``-m "not e2e and not
    docker and not postgres"`` the rest), and group tests for pytest-xdist's ``--dist
    loadgroup`` (scripts/test.sh): a file's tests stay in one worker, so module fixtures (a
    browser, an agent, a stack) start once."""
    for item in items:
        for name in kinds(item):
            item.add_marker(name)
        path = item.nodeid.split("::", 1)[0]
        group = "fixed-ports" if path in FIXED_PORTS else path
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") == "true" and not POSTGRES_URL:
        raise pytest.UsageError(
            "CI=true but TETHER_TEST_POSTGRES_URL is unset: run the suite with scripts/test.sh, "
            "which starts PostgreSQL"
        )


@contextmanager
def running_controlplane(backend: str, workdir: Path, **settings: Any) -> Iterator[ControlPlane]:
    """A real control plane on SQLite or on a fresh PostgreSQL database."""
    url = None
    if backend == "postgres":
        if not POSTGRES_URL:
            pytest.skip(
                "PostgreSQL not configured: set TETHER_TEST_POSTGRES_URL (scripts/test.sh does)"
            )
        url = fresh_postgres_database(POSTGRES_URL)
    cp = ControlPlane(workdir, database_url=url, **settings).start()
    try:
        yield cp
    finally:
        cp.stop()
        if url and POSTGRES_URL:
            drop_postgres_database(POSTGRES_URL, url)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def controlplane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    """One real control plane per backend for the session; each test gets its own organization.

    Timeouts are long here so that nothing times out behind a test's back; the timeout tests
    start their own control plane with short ones. The re-read interval is long so that a
    quick long-poll answer proves the in-process wake-up."""
    with running_controlplane(
        request.param,
        tmp_path_factory.mktemp(f"cp-{request.param}"),
        run_start_timeout_seconds=3600,
        run_heartbeat_timeout_seconds=3600,
        recheck_interval_seconds=10,
    ) as cp:
        yield cp


@pytest.fixture
def tenant(controlplane: ControlPlane) -> Tenant:
    return controlplane.tenant()


# --- end to end: one Temporal dev server and one control plane for the session -----------

NEXUS_CALLER_NAMESPACE = "nexus-caller"


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalDevServer]:
    # A second namespace: Nexus callers' (tests/e2e/test_nexus.py).
    server = TemporalDevServer(
        tmp_path_factory.mktemp("temporal"), namespaces=(NEXUS_CALLER_NAMESPACE,)
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def e2e_controlplane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cp = ControlPlane(
        tmp_path_factory.mktemp("cp-e2e"),
        run_start_timeout_seconds=3600,
        run_heartbeat_timeout_seconds=3600,
        # The web UI's links to runs' workflows (tests/ui).
        temporal_ui_url="http://127.0.0.1:8233",
    ).start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def e2e_tenant(e2e_controlplane: ControlPlane) -> Tenant:
    return e2e_controlplane.tenant()
