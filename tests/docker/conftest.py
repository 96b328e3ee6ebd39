"""Docker fixtures: a real engine and the test images, built once per session, and an agent
with the Docker launcher per test (its own organization). Nothing a test starts outlives it:
every container of the test's organization is removed at the end."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.agent_support import AgentProcess, TemporalDevServer
from tests.support import REPO, Tenant


@dataclass(frozen=True)
class Images:
    tether: str
    example: str
    dagster_example: str


def _engine_or_skip() -> Any:
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
        return client
    except Exception as exc:
        if os.environ.get("CI") == "true" or os.environ.get("TETHER_TEST_DOCKER"):
            pytest.fail(f"no Docker engine, and this run needs one: {exc}")
        pytest.skip(f"no Docker engine ({exc}); scripts/test.sh starts one")


@pytest.fixture(scope="session")
def docker_client() -> Any:
    return _engine_or_skip()


@pytest.fixture(scope="session")
def images(docker_client: Any) -> Images:
    """The images scripts/test.sh built, or built here once for the session."""
    tether = os.environ.get("TETHER_TEST_IMAGE")
    example = os.environ.get("TETHER_TEST_EXAMPLE_IMAGE")
    dagster_example = os.environ.get("TETHER_TEST_DAGSTER_EXAMPLE_IMAGE")
    if not (tether and example and dagster_example):
        subprocess.run([str(REPO / "scripts" / "build-images.sh"), "--tag", "test"], check=True)
        tether, example = "tether:test", "tether-example:test"
        dagster_example = "tether-dagster-example:test"
    return Images(tether=tether, example=example, dagster_example=dagster_example)


def containers_of(client: Any, organization: str, **labels: str) -> list[Any]:
    filters = [f"tether.organization={organization}"]
    filters += [f"tether.{key.replace('_', '-')}={value}" for key, value in labels.items()]
    from docker.errors import NotFound

    while True:
        try:
            found: list[Any] = client.containers.list(all=True, filters={"label": filters})
            return found
        except NotFound:
            continue  # one was removed (by the agent) between the list and its inspection


def remove_containers(client: Any, organization: str) -> None:
    from docker.errors import APIError, NotFound

    for container in containers_of(client, organization):
        try:
            container.remove(force=True)
        except NotFound:
            pass  # removed meanwhile, e.g. by the agent
        except APIError as exc:
            if exc.status_code != 409:  # 409: the agent is removing it right now
                raise


class DockerAgent(AgentProcess):
    """An agent with the Docker launcher, on host networking: every address is loopback."""

    def __init__(self, tenant: Tenant, temporal: TemporalDevServer, workdir: Path, **env: Any):
        settings = {
            "TETHER_LAUNCHER": "docker",
            "TETHER_DOCKER_NETWORK": "host",
            "TETHER_RUN_STOP_GRACE_SECONDS": "3",
            **env,
        }
        super().__init__(tenant, temporal, workdir, **settings)


@pytest.fixture
def docker_agent(
    e2e_tenant: Tenant, temporal_server: TemporalDevServer, tmp_path: Path, docker_client: Any
) -> Iterator[DockerAgent]:
    agent = DockerAgent(e2e_tenant, temporal_server, tmp_path).start()
    try:
        yield agent
    finally:
        agent.stop()
        remove_containers(docker_client, e2e_tenant.org)
