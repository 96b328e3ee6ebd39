"""A Dagster code location on the Docker launcher, on a real engine: the example Dagster
project's image (tether-dagster-example, built by scripts/build-images.sh), found by its
pyproject.toml in the image; a run in a container of its own, and one from the location's
warm pool; what an asset run writes is read by a later run in another container (the
location's storage volume); terminate stops a run through Dagster's cancellation."""

from collections.abc import Iterator
from contextlib import suppress
from typing import Any

import pytest

from activities.launchers.docker_settings import dagster_volume
from tests.agent_support import events, wait_for_location, wait_for_run
from tests.docker.conftest import DockerAgent, Images, containers_of
from tests.support import Tenant, wait_until

pytestmark = pytest.mark.docker

ETL = {"ops": {"extract": {"config": {"source": "s3://orders", "rows": 2}}}}
DAY = "2026-01-03"


@pytest.fixture
def volumes(e2e_tenant: Tenant, docker_client: Any) -> Iterator[None]:
    """Requested before the agent: the test's Dagster storage volumes are removed after its
    containers are."""
    yield
    for name in ("acme", "acme-pooled"):
        with suppress(Exception):
            docker_client.volumes.get(
                dagster_volume(e2e_tenant.org, e2e_tenant.deployment, name)
            ).remove(force=True)


def deploy(tenant: Tenant, image: str, name: str, **container: Any) -> dict[str, Any]:
    tenant.deploy(
        name,
        kind="dagster",
        image=image,
        working_directory="/app",  # its pyproject.toml names the module
        container=container or None,
    )
    return wait_for_location(tenant, name, timeout=120)


def test_a_dagster_location_runs_in_containers_cold_and_pooled(
    volumes: None,
    e2e_tenant: Tenant,
    docker_agent: DockerAgent,
    docker_client: Any,
    images: Images,
) -> None:
    tenant = e2e_tenant
    loc = deploy(tenant, images.dagster_example, "acme")
    assert loc["status"] == "RUNNING", loc
    assert loc["snapshot"]["kind"] == "dagster"
    run = tenant.launch("acme", "etl", run_config=ETL)
    done = wait_for_run(tenant, run["id"], timeout=120)
    assert done["status"] == "SUCCESS", done
    steps = [e["step"] for e in events(tenant, run["id"]) if e["type"] == "STEP_SUCCESS"]
    assert steps == ["extract", "transform", "load"]

    pooled = deploy(tenant, images.dagster_example, "acme-pooled", warm_pool=1)
    assert pooled["status"] == "RUNNING", pooled
    wait_until(
        lambda: any(
            c.status == "running"
            for c in containers_of(docker_client, tenant.org, kind="run-worker-pool")
        ),
        timeout=120,
        what="a pooled container",
    )
    run = tenant.launch("acme-pooled", "fanout")
    done = wait_for_run(tenant, run["id"], timeout=120)
    assert done["status"] == "SUCCESS", done
    start = next(e for e in events(tenant, run["id"]) if e["type"] == "RUN_START")
    assert start["data"]["launch"] == "pool"
    mapped = {e["step"] for e in events(tenant, run["id"]) if e["type"] == "STEP_SUCCESS"}
    assert {"square[n1]", "square[n2]", "square[n3]", "outer.inner.double"} <= mapped


def test_assets_written_by_one_run_are_read_by_the_next_and_terminate_cancels(
    volumes: None,
    e2e_tenant: Tenant,
    docker_agent: DockerAgent,
    docker_client: Any,
    images: Images,
) -> None:
    tenant = e2e_tenant
    assert deploy(tenant, images.dagster_example, "acme")["status"] == "RUNNING"
    upstream = tenant.launch(
        "acme",
        "daily_assets",
        tags={"dagster/partition": DAY, "tether/asset_selection": '["daily_events"]'},
    )
    assert wait_for_run(tenant, upstream["id"], timeout=120)["status"] == "SUCCESS"
    downstream = tenant.launch(
        "acme",
        "daily_assets",
        tags={"dagster/partition": DAY, "tether/asset_selection": '["daily_event_counts"]'},
    )
    done = wait_for_run(tenant, downstream["id"], timeout=120)
    assert done["status"] == "SUCCESS", done
    [materialized] = [
        e for e in events(tenant, downstream["id"]) if e["type"] == "ASSET_MATERIALIZATION"
    ]
    assert materialized["data"]["partition"] == DAY
    # The storage is the location's named volume, kept by the engine between containers,
    # with the labels a teardown finds it by (scripts/compose-down.sh).
    volume = dagster_volume(tenant.org, tenant.deployment, "acme")
    labels = docker_client.volumes.get(volume).attrs["Labels"]
    assert labels == {
        "tether.managed": "true",
        "tether.organization": tenant.org,
        "tether.deployment": tenant.deployment,
        "tether.location": "acme",
    }, labels

    slow = tenant.launch("acme", "slow")
    wait_until(
        lambda: any("still napping" in e["message"] for e in events(tenant, slow["id"])),
        timeout=120,
        what="the nap under way",
    )
    with tenant.user() as c:
        assert c.post(f"{tenant.dep_path}/runs/{slow['id']}/terminate").status_code == 202
    done = wait_for_run(tenant, slow["id"], timeout=60)
    assert done["status"] == "CANCELED", done
    run_events = events(tenant, slow["id"])
    assert [e["step"] for e in run_events if e["type"] == "STEP_CANCELED"] == ["nap"]
    assert any("teardown_marker: torn down" in e["message"] for e in run_events)
