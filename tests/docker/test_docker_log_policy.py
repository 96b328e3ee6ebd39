"""Log settings with the Docker launcher: a run in a container of the location's image keeps
its output in the user's environment ('local'), its error redacted and a passthrough secret
masked; the control plane stores none of it, and the agent serves the output (copied from
the container's log before the container is removed) to the deployment's users."""

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.agent_support import TemporalDevServer, events, wait_for_location, wait_for_run
from tests.docker.conftest import DockerAgent, Images, remove_containers
from tests.support import Tenant, database_text, wait_until

pytestmark = pytest.mark.docker


def test_a_container_run_keeps_its_output_at_home_redacted_and_masked(
    e2e_tenant: Tenant,
    temporal_server: TemporalDevServer,
    tmp_path: Path,
    docker_client: Any,
    images: Images,
) -> None:
    secret = f"s3://hush-{uuid.uuid4().hex[:12]}"
    agent = DockerAgent(e2e_tenant, temporal_server, tmp_path, EXAMPLE_SOURCE=secret).start()
    try:
        e2e_tenant.deploy(
            "example",
            image=images.example,
            module="quickstart",
            passthrough_env=["EXAMPLE_SOURCE"],
            logs={"forwarding": "local", "redact_errors": True},
        )
        assert wait_for_location(e2e_tenant, "example", timeout=90)["status"] == "RUNNING"
        # The config names the secret's value, so the step's log line prints it.
        run = e2e_tenant.launch("example", "etl", run_config={"source": secret, "fail": True})
        done = wait_for_run(e2e_tenant, run["id"], timeout=90)
        assert done["status"] == "FAILURE", done
        seen = events(e2e_tenant, run["id"])
        assert "LOG" not in {e["type"] for e in seen}
        [failure] = [e for e in seen if e["type"] == "STEP_FAILURE"]
        error_id = failure["data"]["error_id"]
        assert failure["data"]["error_class"] == "RuntimeError", failure
        assert "load failed as requested" not in str(failure)

        # The container is gone; its output is served by the agent that kept it.
        def fetched() -> dict[str, Any] | None:
            with e2e_tenant.user() as c:
                r = c.get(f"{e2e_tenant.dep_path}/runs/{run['id']}/logs", timeout=90)
            answer: dict[str, Any] = r.json()
            return answer if r.status_code == 200 and answer.get("text") else None

        answer = wait_until(fetched, timeout=30, what="the run's output from the agent")
        assert answer["source"] == "agent", answer
        text = answer["text"]
        assert "extract: read 10 rows" in text  # the step's print(), from the container
        assert "extracting 10 rows from <masked:EXAMPLE_SOURCE>" in text
        assert f"tether: error {error_id} (RuntimeError)" in text
        assert secret not in text

        # None of it reached the control plane's database.
        everything, own = database_text(e2e_tenant), database_text(e2e_tenant, run["id"])
        assert own, "the run's rows"
        for absent in ("extract: read 10 rows", "load failed as requested", "extracting 10"):
            assert absent not in own, absent
        for absent in (f"rows from {secret}", f"for {secret}", "<masked:EXAMPLE_SOURCE>"):
            assert absent not in everything, absent
    finally:
        agent.stop()
        remove_containers(docker_client, e2e_tenant.org)
