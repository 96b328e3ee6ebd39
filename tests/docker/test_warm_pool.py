"""The Docker launcher's warm pool on a real engine: a location with ``warm_pool: 2`` keeps two
started run containers with its code imported; a run takes one (its events the same as a cold
container's), another takes its place; terminate, adoption after an agent restart and a
redeploy (which drains the old generation's pool) behave as for any run container."""

from pathlib import Path
from typing import Any

import pytest

from activities.launchers.docker import container_name
from tests.agent_support import TemporalDevServer, events, wait_for_location, wait_for_run
from tests.docker.conftest import DockerAgent, Images, containers_of, remove_containers
from tests.support import Tenant, wait_until

pytestmark = pytest.mark.docker

ETL = {"source": "s3://bucket/orders.csv"}
POOL = 2


def deploy(tenant: Tenant, image: str, name: str = "pooled", pool: int = POOL) -> dict[str, Any]:
    tenant.deploy(name, image=image, module="quickstart", container={"warm_pool": pool})
    return wait_for_location(tenant, name, timeout=90)


def idle(client: Any, tenant: Tenant, generation: int | None = None) -> list[Any]:
    labels = {"kind": "run-worker-pool"}
    if generation is not None:
        labels["generation"] = str(generation)
    return [
        c
        for c in containers_of(client, tenant.org, **labels)
        if c.status == "running" and c.name.startswith("tether-pool-")
    ]


def wait_for_pool(client: Any, tenant: Tenant, generation: int, size: int = POOL) -> list[Any]:
    wait_until(
        lambda: len(idle(client, tenant, generation)) == size,
        timeout=90,
        what=f"{size} pooled containers of generation {generation}",
    )
    return idle(client, tenant, generation)


def run_container(client: Any, run_id: str) -> Any | None:
    from docker.errors import NotFound

    try:
        return client.containers.get(container_name(f"run:{run_id}"))
    except NotFound:
        return None


def launched_how(tenant: Tenant, run_id: str) -> str:
    start = next(e for e in events(tenant, run_id) if e["type"] == "RUN_START")
    return str((start.get("data") or {}).get("launch"))


def test_a_run_takes_a_pooled_container_and_the_pool_is_refilled(
    e2e_tenant: Tenant, docker_agent: DockerAgent, docker_client: Any, images: Images
) -> None:
    loc = deploy(e2e_tenant, images.example)
    assert loc["status"] == "RUNNING", loc
    pooled = {c.id for c in wait_for_pool(docker_client, e2e_tenant, loc["generation"])}
    # Waiting containers carry no run, and no token anywhere in their configuration; each
    # says so once its code is imported.
    for container in idle(docker_client, e2e_tenant):
        assert "TETHER_RUN_TOKEN" not in str(container.attrs["Config"]["Env"])
        wait_until(
            lambda c=container: "waiting for a run" in c.logs().decode(),
            timeout=60,
            what=f"{container.name} waiting for a run",
        )

    run = e2e_tenant.launch("pooled", "etl", run_config=ETL)
    wait_for_run(e2e_tenant, run["id"], ("STARTED", "SUCCESS"), timeout=60)
    taken = run_container(docker_client, run["id"])
    done = wait_for_run(e2e_tenant, run["id"], timeout=90)
    assert done["status"] == "SUCCESS", done
    assert launched_how(e2e_tenant, run["id"]) == "pool"
    if taken is not None:  # still there when looked for: one of the pool's
        assert taken.id in pooled and "TETHER_RUN_TOKEN" not in str(taken.attrs["Config"]["Env"])
    messages = [e["message"] for e in events(e2e_tenant, run["id"])]
    assert "extracting 10 rows from s3://bucket/orders.csv" in messages
    assert "extract: read 10 rows" in messages  # the step's print(), from the container
    # The same job in a container started for it (cold) reports the same events.
    cold_location = deploy(e2e_tenant, images.example, name="cold", pool=0)
    assert cold_location["status"] == "RUNNING"
    cold = e2e_tenant.launch("cold", "etl", run_config=ETL)
    assert wait_for_run(e2e_tenant, cold["id"], timeout=90)["status"] == "SUCCESS"
    assert launched_how(e2e_tenant, cold["id"]) == "cold"

    def shape(run_id: str) -> list[tuple[str, str | None]]:
        return [(e["type"], e.get("step")) for e in events(e2e_tenant, run_id)]

    assert shape(run["id"]) == shape(cold["id"])
    # Removed once its outcome was recorded, and the pool is full again without it.
    wait_until(lambda: run_container(docker_client, run["id"]) is None, timeout=30)
    refilled = wait_for_pool(docker_client, e2e_tenant, loc["generation"])
    assert len({c.id for c in refilled} - pooled) >= 1


def test_a_pooled_run_is_adopted_by_a_restarted_agent_and_terminated_to_canceled(
    e2e_tenant: Tenant,
    temporal_server: TemporalDevServer,
    tmp_path: Path,
    docker_client: Any,
    images: Images,
) -> None:
    first = DockerAgent(e2e_tenant, temporal_server, tmp_path).start()
    second: DockerAgent | None = None
    try:
        loc = deploy(e2e_tenant, images.example)
        wait_for_pool(docker_client, e2e_tenant, loc["generation"])
        run = e2e_tenant.launch("pooled", "etl", run_config={**ETL, "sleep_seconds": 60})
        wait_until(
            lambda: "sleeping 60.0s" in [e["message"] for e in events(e2e_tenant, run["id"])],
            timeout=60,
            what="the slow step under way",
        )
        assert launched_how(e2e_tenant, run["id"]) == "pool"
        worker = run_container(docker_client, run["id"])
        assert worker is not None and worker.labels["tether.kind"] == "run-worker-pool"

        first.kill()  # SIGKILL; the next agent adopts the pooled container by its name
        second = DockerAgent(e2e_tenant, temporal_server, tmp_path, name=first.name).start()
        with e2e_tenant.user() as c:
            assert c.post(f"{e2e_tenant.dep_path}/runs/{run['id']}/terminate").status_code == 202
        done = wait_for_run(e2e_tenant, run["id"], timeout=60)
        assert done["status"] == "CANCELED", done
        types = [e["type"] for e in events(e2e_tenant, run["id"])]
        assert "RUN_CANCELED" in types and types.count("RUN_START") == 1
        wait_until(lambda: run_container(docker_client, run["id"]) is None, timeout=30)
        assert "orphaned containers" not in second.log()  # the pooled run's was kept
    finally:
        for agent in (first, second):
            if agent is not None:
                agent.stop()
        remove_containers(docker_client, e2e_tenant.org)


def test_a_redeploy_drains_the_old_generations_pool_and_a_removal_drains_it_all(
    e2e_tenant: Tenant, docker_agent: DockerAgent, docker_client: Any, images: Images
) -> None:
    old = deploy(e2e_tenant, images.example)
    old_pool = {c.id for c in wait_for_pool(docker_client, e2e_tenant, old["generation"])}
    with e2e_tenant.user() as c:
        r = c.post(f"{e2e_tenant.dep_path}/code-locations/pooled/redeploy")
        assert r.status_code in (200, 202), r.text
    wait_until(
        lambda: wait_for_location(e2e_tenant, "pooled")["generation"] > old["generation"],
        timeout=90,
        what="the new generation",
    )
    new = wait_for_location(e2e_tenant, "pooled", timeout=90)
    new_pool = wait_for_pool(docker_client, e2e_tenant, new["generation"])
    wait_until(
        lambda: not idle(docker_client, e2e_tenant, old["generation"]),
        timeout=60,
        what="the old generation's pool drained",
    )
    assert not old_pool & {c.id for c in new_pool}
    run = e2e_tenant.launch("pooled", "etl", run_config=ETL)
    assert wait_for_run(e2e_tenant, run["id"], timeout=90)["status"] == "SUCCESS"
    assert launched_how(e2e_tenant, run["id"]) == "pool"

    with e2e_tenant.user() as c:
        assert c.delete(f"{e2e_tenant.dep_path}/code-locations/pooled").status_code in (200, 202)
    wait_until(
        lambda: not containers_of(docker_client, e2e_tenant.org, kind="run-worker-pool"),
        timeout=60,
        what="no pooled container left",
    )
