"""End-to-end fixtures: one real Temporal dev server and one real control plane (SQLite) for
the session; each test gets its own organization and its own agent process."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_support import AgentProcess, TemporalDevServer, stop_launched
from tests.support import ControlPlane, Tenant


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalDevServer]:
    server = TemporalDevServer(tmp_path_factory.mktemp("temporal")).start()
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
    ).start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def e2e_tenant(e2e_controlplane: ControlPlane) -> Tenant:
    return e2e_controlplane.tenant()


@pytest.fixture
def agent(
    e2e_tenant: Tenant, temporal_server: TemporalDevServer, tmp_path: Path
) -> Iterator[AgentProcess]:
    """A running agent for the test's tenant. Everything it launched is stopped at the end."""
    process = AgentProcess(e2e_tenant, temporal_server, tmp_path).start()
    try:
        yield process
    finally:
        process.stop()
        stop_launched(process.state_dir)
