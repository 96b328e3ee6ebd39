"""End-to-end fixtures: each test gets its own organization (``e2e_tenant``, from the root
conftest, on the session's Temporal dev server and control plane) and its own agent."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_support import AgentProcess, TemporalDevServer, stop_launched
from tests.support import Tenant


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
