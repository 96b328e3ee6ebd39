"""A rolling upgrade: an agent of the previous release is running code servers and runs when
an agent of this checkout starts beside it (same name, same host and state directory, as when
a service is restarted on a new version) and the old one is stopped. Nothing fails, nothing is
launched twice, and the code server is not restarted.

The old agent really is the previous release: its code comes from git (``UPGRADE_FROM``), so
this checkout's workflows replay histories that code recorded, while its runs are in flight.
Move ``UPGRADE_FROM`` forward to the last release when workflows change again."""

import subprocess
import tarfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    stop_launched,
    wait_for_location,
    wait_for_run,
    worker_starts,
)
from tests.support import REPO, Tenant
from workflows import names
from workflows.models import CodeLocationState

# The last commit before agents had queues of their own (host affinity, patched RunWorkflow).
UPGRADE_FROM = "7e5039a"
OPS = Path(__file__).parent / "locations" / "ops.py"


@pytest.fixture(scope="session")
def previous_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's source tree, from this repository's history."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", UPGRADE_FROM],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.fail(
            f"cannot read release {UPGRADE_FROM} from git ({archive.stderr.decode().strip()}): "
            "the upgrade test needs the repository's history (a full clone, not a shallow one)"
        )
    target = tmp_path_factory.mktemp("previous-release")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "state"
    try:
        yield path
    finally:
        stop_launched(path)


async def server_of(temporal: TemporalDevServer, tenant: Tenant) -> CodeLocationState:
    client = await Client.connect(temporal.address, data_converter=pydantic_data_converter)
    workflow_id = names.code_location_workflow_id(tenant.org, tenant.deployment, "ops")
    handle = client.get_workflow_handle(workflow_id)
    return await handle.query(names.QUERY_STATE, result_type=CodeLocationState)


@pytest.mark.parametrize("another_host", [False, True], ids=["same-host", "and-another-host"])
async def test_rolling_upgrade_with_runs_in_flight_fails_nothing(
    e2e_tenant: Tenant,
    temporal_server: TemporalDevServer,
    previous_release: Path,
    state_dir: Path,
    tmp_path: Path,
    another_host: bool,
) -> None:
    """``another_host``: a second new agent, on a host of its own, joins at the upgrade. The old
    release's handles name no host, so it may be handed their watches: not finding the
    processes must not fail them (the watch is retried until their own host's agent has it)."""
    tenant = e2e_tenant
    old = AgentProcess(
        tenant, temporal_server, tmp_path / "old", state_dir=state_dir, source=previous_release
    )
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old.start()
    new = AgentProcess(tenant, temporal_server, tmp_path / "new", state_dir=state_dir)
    other = AgentProcess(
        tenant, temporal_server, tmp_path / "new", "agent-2", state_dir=tmp_path / "state-2"
    )
    try:
        tenant.deploy("ops", python_file=str(OPS))
        assert wait_for_location(tenant, "ops")["status"] == "RUNNING"
        before = await server_of(temporal_server, tenant)
        assert before.server is not None and before.server.host_queue is None  # old release
        runs = [
            tenant.launch("ops", "slow", run_config={"seconds": 15, "tick": 0.1}) for _ in range(4)
        ]
        for run in runs:
            wait_for_run(tenant, run["id"], ("STARTED",), timeout=60)

        new.start()  # beside the old one, then the old one goes: a rolling upgrade
        if another_host:
            other.start()
        old.stop()

        for run in runs:
            done = wait_for_run(tenant, run["id"], timeout=120)
            assert done["status"] == "SUCCESS", done
            assert worker_starts(state_dir, run["id"]) == 1
        after = await server_of(temporal_server, tenant)
        # The same server, still serving: the upgrade restarted nothing.
        assert after.status.value == "RUNNING" and after.deploys == before.deploys
        assert after.server is not None and after.server.label == before.server.label
        assert after.server.pid == before.server.pid

        # New work runs on the new agents' own queues.
        again = tenant.launch("ops", "quick")
        done = wait_for_run(tenant, again["id"], timeout=60)
        assert done["status"] == "SUCCESS" and done["agent"] in (new.name, other.name), done
        # And the workflows the old release started completed under the new one.
        client = await Client.connect(
            temporal_server.address, data_converter=pydantic_data_converter
        )
        for run in runs:
            handle = client.get_workflow_handle(names.run_workflow_id(run["id"]))
            assert (await handle.result())["status"] == "SUCCESS"
    finally:
        other.stop()
        new.stop()
        old.stop()
        stop_launched(tmp_path / "state-2")
