"""The Docker launcher's part of the launch benchmark (``bench_launch.py`` runs it beside the
process launcher, on the same Temporal server and control plane).

A second tenant gets an agent with the Docker launcher (host networking, so every address is
a loopback one) and deploys the same trivial job from the example image, the job's file
mounted read-only into the containers, twice: with a container started for each run, and from
a warm pool (``warm_pool``). Figures: sequential submit -> SUCCESS of both, a burst, and what a
container costs: create, start to exit of a no-op command, and removal, timed with the Docker
SDK on the same engine.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.launch_workload import LOCATION, POOL_LOCATION, ready_after_warm_up
from tests.agent_support import AgentProcess, TemporalDevServer
from tests.support import ControlPlane, Tenant


def engine_and_image(image: str) -> tuple[Any, str | None]:
    """The Docker client, or None and why it cannot run."""
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
        client.images.get(image)
        return client, None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


def start_docker_agent(
    cp: ControlPlane,
    temporal: TemporalDevServer,
    tmp: Path,
    image: str,
    location_file: Path,
    pool: int,
) -> tuple[Tenant, AgentProcess]:
    """A Docker agent serving the trivial job twice: a container started per run (LOCATION)
    and from a warm pool of ``pool`` containers (POOL_LOCATION)."""
    tenant = cp.tenant(concurrency=10)
    workdir = tmp / "docker-agent"
    workdir.mkdir()
    agent = AgentProcess(
        tenant,
        temporal,
        workdir,
        TETHER_LAUNCHER="docker",
        TETHER_DOCKER_NETWORK="host",
        TETHER_DOCKER_ALLOW_HOST_MOUNTS="true",
        TETHER_CODE_LOCATION_HEALTH_CHECK_INTERVAL_SECONDS=5,
    ).start()
    # A directory of its own, readable by the image's (unprivileged) user.
    shared = tmp / "docker-location"
    shared.mkdir()
    shared.chmod(0o755)
    (shared / location_file.name).write_text(location_file.read_text())
    (shared / location_file.name).chmod(0o644)
    mount = {"source": str(shared), "target": "/bench", "read_only": True}
    for name, size in ((LOCATION, 0), (POOL_LOCATION, pool)):
        tenant.deploy(
            name,
            image=image,
            python_file=f"/bench/{location_file.name}",
            container={"volumes": [mount], "warm_pool": size},
        )
    ready_after_warm_up(tenant, "docker")
    ready_after_warm_up(tenant, "docker (pool)", POOL_LOCATION)
    return tenant, agent


def container_costs(client: Any, image: str, samples: int = 10) -> dict[str, float]:
    """Medians, in ms, of what every run container pays on this engine: create, start until a
    no-op command has exited, and removal."""
    create: list[float] = []
    run: list[float] = []
    remove: list[float] = []
    for _ in range(samples):
        t0 = time.perf_counter()
        container = client.containers.create(image, ["true"], network_mode="host", init=True)
        t1 = time.perf_counter()
        container.start()
        container.wait()
        t2 = time.perf_counter()
        container.remove(force=True)
        t3 = time.perf_counter()
        create.append((t1 - t0) * 1000)
        run.append((t2 - t1) * 1000)
        remove.append((t3 - t2) * 1000)
    return {
        "create_ms": statistics.median(create),
        "start_to_exit_ms": statistics.median(run),
        "remove_ms": statistics.median(remove),
    }


def interpreter_cost(client: Any, image: str, samples: int = 5) -> float:
    """Median ms for a container that imports the run worker and exits, minus nothing: the
    whole cost of a Python start in a fresh container."""
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        client.containers.run(
            image,
            ["python", "-c", "import tether_sdk.run_worker"],
            network_mode="host",
            init=True,
            remove=True,
        )
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def remove_containers(client: Any, organization: str) -> None:
    for container in client.containers.list(
        all=True, filters={"label": [f"tether.organization={organization}"]}
    ):
        container.remove(force=True)
