"""Terminate of a run container, timed as a user would time it (the bounds and the location
are tests/e2e/test_terminate_timing.py's): the first SIGTERM reaches the step within a second
or so of the call, and a step that ignores it is killed the stop grace (3 s: the Docker agent's
TETHER_RUN_STOP_GRACE_SECONDS) after that first signal."""

import io
import tarfile
from typing import Any

import pytest
from docker.errors import NotFound

from tests.agent_support import wait_for_location
from tests.docker.conftest import DockerAgent, Images, containers_of, remove_containers
from tests.e2e.test_terminate_timing import (
    LOCATION,
    check_stubborn_timeline,
    gone_at,
    logged,
    terminate,
)
from tests.support import Tenant

pytestmark = pytest.mark.docker


def build_location_image(client: Any, base: str, tag: str) -> None:
    """``base`` with the location's module added as /app/terminating.py."""
    files = {
        "terminating.py": LOCATION.encode(),
        "Dockerfile": f"FROM {base}\nCOPY terminating.py /app/terminating.py\n".encode(),
    }
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)


def test_a_run_container_ignoring_sigterm_is_killed_the_grace_after_the_first_signal(
    e2e_tenant: Tenant, docker_agent: DockerAgent, docker_client: Any, images: Images
) -> None:
    tag = f"tether-test-terminating:{e2e_tenant.org}"
    build_location_image(docker_client, images.example, tag)
    try:
        e2e_tenant.deploy("terminating", image=tag, module="terminating")
        assert wait_for_location(e2e_tenant, "terminating", timeout=90)["status"] == "RUNNING"
        run = e2e_tenant.launch("terminating", "stubborn")
        logged(e2e_tenant, run["id"], "ignoring SIGTERM")
        [container] = containers_of(docker_client, e2e_tenant.org, run_id=run["id"])

        def running() -> bool:
            try:
                container.reload()
            except NotFound:
                return False  # stopped, and removed already
            return bool(container.status == "running")

        called = terminate(e2e_tenant, run["id"])
        gone = gone_at(running)
        check_stubborn_timeline(e2e_tenant, run["id"], called, gone, 137)
    finally:
        remove_containers(docker_client, e2e_tenant.org)
        docker_client.images.remove(tag, force=True)
