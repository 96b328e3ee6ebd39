"""An agent with the Docker launcher on Docker's default bridge network whose run containers
would get a loopback control-plane URL (the agent's own, http://127.0.0.1:PORT): its code
servers work (the agent reaches them through a published port), but from a run container
127.0.0.1 is the container itself. The agent says so when it starts, and each run fails within
seconds (not after the control plane's heartbeat timeout), with the container's last lines
and the settings that fix it."""

import time
from typing import Any

import pytest

from tests.agent_support import AgentProcess, TemporalDevServer, wait_for_location, wait_for_run
from tests.docker.conftest import Images, containers_of, remove_containers
from tests.support import Tenant, wait_until

pytestmark = pytest.mark.docker

# From the launch to the run's FAILURE: the container's start, the worker's first failed call,
# its stop (2 s at most) and the watch. The old way took the control plane's heartbeat timeout.
FAILS_WITHIN = 30


def test_runs_that_cannot_reach_a_loopback_control_plane_fail_fast_saying_why(
    e2e_tenant: Tenant,
    temporal_server: TemporalDevServer,
    tmp_path: Any,
    docker_client: Any,
    images: Images,
) -> None:
    url = e2e_tenant.cp.url
    assert url.startswith("http://127.0.0.1:"), url
    # The Docker launcher with its defaults: Docker's bridge, the agent's own URL for runs.
    agent = AgentProcess(e2e_tenant, temporal_server, tmp_path, TETHER_LAUNCHER="docker").start()
    try:
        warning = f"run containers cannot reach the control plane at {url}"
        assert warning in agent.log(), agent.log()[-3000:]
        assert "TETHER_WORKER_CONTROL_PLANE_URL" in agent.log()

        e2e_tenant.deploy("example", image=images.example, module="quickstart")
        assert wait_for_location(e2e_tenant, "example", timeout=90)["status"] == "RUNNING"
        [server] = containers_of(docker_client, e2e_tenant.org, kind="code-server")
        assert server.attrs["HostConfig"]["NetworkMode"] in ("default", "bridge")

        launched = time.monotonic()
        run = e2e_tenant.launch("example", "etl", run_config={"source": "s3://b/o.csv"})
        done = wait_for_run(e2e_tenant, run["id"], timeout=FAILS_WITHIN)
        took = time.monotonic() - launched
        message = done["status_message"]
        assert done["status"] == "FAILURE", done
        assert took < FAILS_WITHIN, took
        # Why, and what to change.
        assert f"could not reach the control plane at {url} from its container" in message
        assert "loopback address: on Docker's default bridge network" in message, message
        assert "TETHER_WORKER_CONTROL_PLANE_URL (--worker-control-plane-url)" in message
        assert "TETHER_DOCKER_NETWORK=host" in message
        # The container's own last lines: the worker's failed call.
        tail = message.split("--- last log lines ---", 1)[1]
        assert f"tether run-worker: GET {url}/api/v1/runs/{run['id']} failed" in tail, tail
        assert "Connection refused" in tail, tail
        # Its container is gone with its outcome recorded, as a failed run's is.
        wait_until(
            lambda: not containers_of(docker_client, e2e_tenant.org, run_id=run["id"]),
            timeout=30,
            what="the run's container removed",
        )
    finally:
        agent.stop()
        remove_containers(docker_client, e2e_tenant.org)
