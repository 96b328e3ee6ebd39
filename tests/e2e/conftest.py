"""End-to-end fixtures: each test gets its own organization (``e2e_tenant``, from the root
conftest, on the session's Temporal dev server and control plane) and its own agent."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_support import AgentProcess, TemporalDevServer, stop_launched
from tests.support import ControlPlane, Tenant


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


@pytest.fixture
def own_temporal(tmp_path: Path) -> Iterator[TemporalDevServer]:
    """A Temporal dev server of the test's own, not the session's: for a test that reads
    every history on it, or fills its namespace."""
    (tmp_path / "temporal").mkdir()
    server = TemporalDevServer(tmp_path / "temporal").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_controlplane(tmp_path: Path) -> Iterator[ControlPlane]:
    """A control plane of the test's own, not the session's: for a test that stops and
    starts it."""
    (tmp_path / "cp").mkdir()
    cp = ControlPlane(tmp_path / "cp").start()
    try:
        yield cp
    finally:
        cp.stop()
