"""The Docker launcher on a real engine: code servers and run workers in containers from the
location's image, found again by their labels, reported with their exit codes and output.

Each test has its own organization and agent (host networking, so every address is a
loopback one); the fixture removes every container of that organization at the end."""

import io
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.agent_support import (
    TemporalDevServer,
    agent_metrics,
    events,
    location,
    wait_for_location,
    wait_for_run,
)
from tests.docker.conftest import DockerAgent, Images, containers_of, remove_containers
from tests.support import Tenant, free_port, wait_until

pytestmark = pytest.mark.docker

ETL = {"source": "s3://bucket/orders.csv"}


def deploy(tenant: Tenant, image: str, name: str = "example", **spec: Any) -> dict[str, Any]:
    tenant.deploy(name, image=image, module="quickstart", **spec)
    return wait_for_location(tenant, name, timeout=90)


def server_container(client: Any, tenant: Tenant, name: str = "example") -> Any:
    found = [
        c
        for c in containers_of(client, tenant.org, location=name, kind="code-server")
        if c.status == "running"
    ]
    assert len(found) == 1, [c.name for c in found]
    return found[0]


def run_containers(client: Any, tenant: Tenant, run_id: str) -> list[Any]:
    return containers_of(client, tenant.org, run_id=run_id)


def test_deploy_from_an_image_and_run_in_a_container(
    e2e_tenant: Tenant, docker_agent: DockerAgent, docker_client: Any, images: Images
) -> None:
    loc = deploy(e2e_tenant, images.example)
    assert loc["status"] == "RUNNING", loc
    assert {j["name"] for j in loc["snapshot"]["jobs"]} >= {"etl", "refresh_sales"}
    server = server_container(docker_client, e2e_tenant)
    workflow_id = f"code-location:{e2e_tenant.org}:{e2e_tenant.deployment}:example"
    assert server.labels["tether.workflow-id"] == workflow_id
    assert server.labels["tether.label"] == f"{workflow_id}#1"
    assert server.labels["tether.deployment"] == e2e_tenant.deployment
    assert server.labels["tether.location"] == "example"
    assert server.labels["tether.generation"] == str(loc["generation"])
    assert server.labels["tether.agent"] == docker_agent.name
    assert server.attrs["Config"]["Image"] == images.example
    # Its log is bounded (the engine's default json-file driver would keep it all).
    log_config = server.attrs["HostConfig"]["LogConfig"]
    assert log_config == {"Type": "json-file", "Config": {"max-size": "51200k", "max-file": "2"}}

    run = e2e_tenant.launch("example", "etl", run_config=ETL)
    done = wait_for_run(e2e_tenant, run["id"], timeout=90)
    assert done["status"] == "SUCCESS", done
    seen = events(e2e_tenant, run["id"])
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
    messages = [e["message"] for e in seen]
    assert "extracting 10 rows from s3://bucket/orders.csv" in messages
    assert "extract: read 10 rows" in messages  # the step's print(), from the container
    # The run worker ran in a container of its own, removed once its outcome was recorded.
    wait_until(lambda: not run_containers(docker_client, e2e_tenant, run["id"]), timeout=30)
    # No secret reached the container's labels or the control plane's record of the run.
    assert "tether_run_" not in str(server.labels)


def test_a_missing_image_is_an_error_naming_it_without_a_retry_storm(
    e2e_tenant: Tenant, docker_agent: DockerAgent
) -> None:
    missing = f"tether-missing-{uuid.uuid4().hex[:6]}:nope"
    e2e_tenant.deploy("ghost", image=missing, module="quickstart")
    loc = wait_for_location(e2e_tenant, "ghost", ("ERROR",), timeout=60)
    message = loc["error"]["message"]
    assert missing in message and "could not be pulled" in message, message
    time.sleep(6)  # restarts back off (1 s, 2 s, 4 s with this agent's settings)
    errors = [h for h in location(e2e_tenant, "ghost")["status_history"] if h["status"] == "ERROR"]
    assert 1 <= len(errors) <= 4, errors


def test_a_bad_entrypoint_is_a_failure_that_shows_the_container_output(
    e2e_tenant: Tenant, docker_agent: DockerAgent, docker_client: Any, images: Images
) -> None:
    deploy(e2e_tenant, images.example)
    broken = f"tether-test-broken-entrypoint:{e2e_tenant.org}"
    dockerfile = (
        f"FROM {images.example}\n"
        'ENTRYPOINT ["sh", "-c", "echo entrypoint: cannot find /etc/app.conf >&2; exit 7", "--"]\n'
    )
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=broken, rm=True)
    try:
        run = e2e_tenant.launch("example", "etl", run_config=ETL, tags={"tether/image": broken})
        done = wait_for_run(e2e_tenant, run["id"], timeout=60)
        assert done["status"] == "FAILURE", done
        assert done["exit_code"] == 7
        assert "exited with code 7" in done["status_message"]
        assert "entrypoint: cannot find /etc/app.conf" in done["status_message"]
    finally:
        remove_containers(docker_client, e2e_tenant.org)
        docker_client.images.remove(broken, force=True)


def test_a_killed_code_server_container_is_an_error_then_runs_again(
    e2e_tenant: Tenant, docker_agent: DockerAgent, docker_client: Any, images: Images
) -> None:
    deploy(e2e_tenant, images.example)
    first = server_container(docker_client, e2e_tenant)
    first.kill()
    wait_until(
        lambda: any(
            h["status"] == "ERROR" for h in location(e2e_tenant, "example")["status_history"]
        ),
        timeout=30,
        what="ERROR",
    )
    errors = [
        h for h in location(e2e_tenant, "example")["status_history"] if h["status"] == "ERROR"
    ]
    assert "killed by signal 9" in errors[0]["message"], errors
    loc = wait_for_location(e2e_tenant, "example", ("RUNNING",), timeout=60)
    second = server_container(docker_client, e2e_tenant)
    assert second.id != first.id and second.labels["tether.label"].endswith("#2")
    assert loc["status"] == "RUNNING"


def test_a_killed_run_container_is_a_failure_with_its_exit_code(
    e2e_tenant: Tenant, docker_agent: DockerAgent, docker_client: Any, images: Images
) -> None:
    deploy(e2e_tenant, images.example)
    run = e2e_tenant.launch("example", "etl", run_config={**ETL, "sleep_seconds": 60})
    wait_for_run(e2e_tenant, run["id"], ("STARTED",), timeout=60)
    [container] = run_containers(docker_client, e2e_tenant, run["id"])
    container.kill()
    done = wait_for_run(e2e_tenant, run["id"], timeout=60)
    assert done["status"] == "FAILURE", done
    assert done["exit_code"] == 137
    assert "killed by signal 9 (exit code 137)" in done["status_message"]


def test_terminate_stops_the_run_container(
    e2e_tenant: Tenant, docker_agent: DockerAgent, docker_client: Any, images: Images
) -> None:
    deploy(e2e_tenant, images.example)
    run = e2e_tenant.launch("example", "etl", run_config={**ETL, "sleep_seconds": 60})
    wait_until(
        lambda: "sleeping 60.0s" in [e["message"] for e in events(e2e_tenant, run["id"])],
        timeout=60,
        what="the slow step under way",
    )
    assert run_containers(docker_client, e2e_tenant, run["id"])
    with e2e_tenant.user() as c:
        assert c.post(f"{e2e_tenant.dep_path}/runs/{run['id']}/terminate").status_code == 202
    done = wait_for_run(e2e_tenant, run["id"], timeout=60)
    assert done["status"] == "CANCELED", done
    types = [e["type"] for e in events(e2e_tenant, run["id"])]
    assert "RUN_CANCELED" in types  # the worker got SIGTERM and said so itself
    wait_until(lambda: not run_containers(docker_client, e2e_tenant, run["id"]), timeout=30)


def test_redeploy_to_a_new_image_tag_fails_no_run(
    e2e_tenant: Tenant, docker_agent: DockerAgent, docker_client: Any, images: Images
) -> None:
    deploy(e2e_tenant, images.example)
    first = server_container(docker_client, e2e_tenant)
    v2 = f"tether-test-example:v2-{e2e_tenant.org}"
    docker_client.images.get(images.example).tag(v2)
    try:
        e2e_tenant.deploy("example", image=v2, module="quickstart")
        runs = []

        def switched() -> bool:
            runs.append(e2e_tenant.launch("example", "etl", run_config=ETL))
            loc = location(e2e_tenant, "example")
            serving = [
                c
                for c in containers_of(docker_client, e2e_tenant.org, kind="code-server")
                if c.status == "running"
            ]
            return (
                loc["status"] == "RUNNING"
                and loc["generation"] == 2
                and [c.attrs["Config"]["Image"] for c in serving] == [v2]
            )

        wait_until(switched, timeout=90, interval=0.3, what="the new tag serving alone")
        # Stopped by now; removed a moment later, once its stop is recorded.
        wait_until(
            lambda: first.id not in [c.id for c in containers_of(docker_client, e2e_tenant.org)],
            timeout=30,
            what="the first code server's container removed",
        )
        runs += [e2e_tenant.launch("example", "etl", run_config=ETL) for _ in range(2)]
        outcomes = [wait_for_run(e2e_tenant, r["id"], timeout=120)["status"] for r in runs]
        assert outcomes == ["SUCCESS"] * len(runs)
        history = [h["status"] for h in location(e2e_tenant, "example")["status_history"]]
        assert "UPDATING" in history and "ERROR" not in history
    finally:
        remove_containers(docker_client, e2e_tenant.org)
        docker_client.images.remove(v2)


def test_a_restarted_agent_adopts_its_containers_and_removes_only_orphans(
    e2e_tenant: Tenant,
    temporal_server: TemporalDevServer,
    tmp_path: Path,
    docker_client: Any,
    images: Images,
) -> None:
    other_org = f"other-{uuid.uuid4().hex[:6]}"
    first = DockerAgent(e2e_tenant, temporal_server, tmp_path).start()
    second: DockerAgent | None = None
    try:
        deploy(e2e_tenant, images.example)
        server = server_container(docker_client, e2e_tenant)
        run = e2e_tenant.launch("example", "etl", run_config={**ETL, "sleep_seconds": 10})
        wait_for_run(e2e_tenant, run["id"], ("STARTED",), timeout=60)
        [worker] = run_containers(docker_client, e2e_tenant, run["id"])

        first.kill()  # SIGKILL: no cleanup
        # Left behind meanwhile: a container of this deployment whose run no workflow owns
        # (an orphan), and one of another organization (not this agent's business).
        labels = {
            "tether.managed": "true",
            "tether.kind": "run-worker",
            "tether.deployment": e2e_tenant.deployment,
        }
        orphan = docker_client.containers.run(
            images.example,
            ["sleep", "300"],
            detach=True,
            labels={
                **labels,
                "tether.organization": e2e_tenant.org,
                "tether.workflow-id": "run:no-such-run",
                "tether.label": "run:no-such-run",
            },
        )
        stranger = docker_client.containers.run(
            images.example,
            ["sleep", "300"],
            detach=True,
            labels={
                **labels,
                "tether.organization": other_org,
                "tether.workflow-id": "run:not-mine",
                "tether.label": "run:not-mine",
            },
        )
        metrics = f"127.0.0.1:{free_port()}"
        second = DockerAgent(
            e2e_tenant,
            temporal_server,
            tmp_path,
            name=first.name,
            TETHER_AGENT_METRICS_ADDRESS=metrics,
        ).start()
        # Adopted, not relaunched: the one worker container goes on and finishes the run ...
        assert [c.id for c in run_containers(docker_client, e2e_tenant, run["id"])] == [worker.id]
        done = wait_for_run(e2e_tenant, run["id"], timeout=90)
        assert done["status"] == "SUCCESS", done
        finals = [e["type"] for e in events(e2e_tenant, run["id"]) if e["type"].startswith("RUN_")]
        assert finals == ["RUN_START", "RUN_SUCCESS"]
        # ... and the code server container still serves, never restarted.
        assert server_container(docker_client, e2e_tenant).id == server.id
        assert location(e2e_tenant, "example")["status"] == "RUNNING"
        # The orphan is gone; the other organization's container is untouched.
        wait_until(
            lambda: orphan.id not in [c.id for c in containers_of(docker_client, e2e_tenant.org)],
            timeout=30,
            what="the orphan removed",
        )
        assert docker_client.containers.get(stranger.id).status == "running"
        assert "removed 1 orphaned containers" in second.log()
        # The agent's metrics say so: one run adopted (once its watch, retried after the dead
        # agent's heartbeat timeout, has taken the worker over), one orphan removed, nothing
        # launched.
        wait_until(
            lambda: agent_metrics(metrics)["tether_agent_runs_adopted_total"] == 1.0,
            timeout=60,
            what="the adopted run counted",
        )
        served = agent_metrics(metrics)
        assert served["tether_agent_orphans_removed_total"] == 1.0
        assert served["tether_agent_launches_total"] == 0.0
    finally:
        for agent in (first, second):
            if agent is not None:
                agent.stop()
        remove_containers(docker_client, e2e_tenant.org)
        remove_containers(docker_client, other_org)


def test_a_location_asking_for_a_host_mount_is_refused(
    e2e_tenant: Tenant, docker_agent: DockerAgent, docker_client: Any, images: Images
) -> None:
    e2e_tenant.deploy(
        "nosy",
        image=images.example,
        module="quickstart",
        container={"volumes": [{"source": "/etc", "target": "/host-etc", "read_only": True}]},
    )
    loc = wait_for_location(e2e_tenant, "nosy", ("ERROR",), timeout=60)
    message = loc["error"]["message"]
    assert "host path '/etc'" in message and "TETHER_DOCKER_ALLOW_HOST_MOUNTS" in message
    assert not containers_of(docker_client, e2e_tenant.org, location="nosy")


def test_an_oom_killed_run_container_says_so(
    e2e_tenant: Tenant, docker_agent: DockerAgent, images: Images
) -> None:
    loc = deploy(e2e_tenant, images.example, container={"memory": "96m"})
    assert loc["status"] == "RUNNING", loc  # the code server fits in 96 MiB ...
    # ... a run holding two lists of a million ints does not.
    run = e2e_tenant.launch("example", "etl", run_config={**ETL, "rows": 1_000_000})
    done = wait_for_run(e2e_tenant, run["id"], timeout=90)
    assert done["status"] == "FAILURE", done
    assert "killed for running out of memory (memory limit 96 MiB)" in done["status_message"]


def test_failed_run_containers_are_kept_when_the_agent_says_so(
    e2e_tenant: Tenant,
    temporal_server: TemporalDevServer,
    tmp_path: Path,
    docker_client: Any,
    images: Images,
) -> None:
    agent = DockerAgent(
        e2e_tenant, temporal_server, tmp_path, TETHER_DOCKER_KEEP_FAILED_RUNS="true"
    ).start()
    try:
        deploy(e2e_tenant, images.example)
        failed = e2e_tenant.launch("example", "etl", run_config={**ETL, "fail": True})
        succeeded = e2e_tenant.launch("example", "etl", run_config=ETL)
        assert wait_for_run(e2e_tenant, failed["id"], timeout=60)["status"] == "FAILURE"
        assert wait_for_run(e2e_tenant, succeeded["id"], timeout=60)["status"] == "SUCCESS"
        wait_until(
            lambda: not run_containers(docker_client, e2e_tenant, succeeded["id"]),
            timeout=30,
            what="the successful run's container removed",
        )
        [kept] = run_containers(docker_client, e2e_tenant, failed["id"])
        assert kept.status == "exited"
        assert "extract: read 10 rows" in kept.logs().decode()  # its output, for debugging
    finally:
        agent.stop()
        remove_containers(docker_client, e2e_tenant.org)
