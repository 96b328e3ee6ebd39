"""A real agent whose token is revoked says so and exits with EXIT_TOKEN_REJECTED; restarted
with a new (here organization-wide) token, it carries on: the same AgentWorkflow, the code
location it served, and new runs."""

import dataclasses
import json
import signal
from pathlib import Path

from tests.agent_support import AgentProcess, TemporalDevServer, stop_launched, wait_for_run
from tests.e2e.test_lifecycle import deploy_ops, workflow_status
from tests.support import Tenant, wait_until
from worker.main import EXIT_TOKEN_REJECTED


def workflow_run_id(temporal: TemporalDevServer, workflow_id: str) -> str:
    described = temporal.cli("workflow", "describe", "--workflow-id", workflow_id, "-o", "json")
    assert described.returncode == 0, described.stderr
    run_id: str = json.loads(described.stdout)["workflowExecutionInfo"]["execution"]["runId"]
    return run_id


def test_a_revoked_agent_token_stops_the_agent_and_a_new_one_resumes_it(
    e2e_tenant: Tenant, temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    first = AgentProcess(e2e_tenant, temporal_server, tmp_path).start()
    second: AgentProcess | None = None
    try:
        deploy_ops(e2e_tenant)
        before = wait_for_run(e2e_tenant, e2e_tenant.launch("ops", "quick")["id"])
        assert before["status"] == "SUCCESS"
        agent_workflow = workflow_run_id(temporal_server, first.workflow_id)

        with e2e_tenant.user() as c:
            tokens = c.get("/api/v1/tokens").json()
            [agent_token] = [t for t in tokens if t["kind"] == "agent"]
            assert c.post(f"/api/v1/tokens/{agent_token['id']}/revoke").status_code == 200

        assert first.proc is not None
        # Its next poll or heartbeat (polls are 5 s here) is refused: it stops at once.
        assert first.proc.wait(60) == EXIT_TOKEN_REJECTED, first.log()[-3000:]
        log = first.log()
        lines = [line for line in log.splitlines() if "agent token rejected" in line]
        assert len(lines) == 1, log[-3000:]
        assert (
            "agent token rejected by the control plane: this token ('bootstrap') was revoked on "
        ) in lines[0]
        assert "`tether tokens create NAME --kind agent`" in lines[0]
        assert f"exiting with code {EXIT_TOKEN_REJECTED}" in lines[0]
        assert "shutting down" in log
        first.proc = None

        # The workflow was not failed by it: it waits for an agent with a valid token.
        assert workflow_status(temporal_server, first.workflow_id) == "RUNNING"

        with e2e_tenant.user() as c:
            r = c.post(
                "/api/v1/tokens",
                json={"name": "fleet", "kind": "agent", "scope": "organization"},
            )
            assert r.status_code == 201, r.text
            new_token = r.json()["token"]
        renewed = dataclasses.replace(e2e_tenant, agent_token=new_token)
        second = AgentProcess(
            renewed, temporal_server, tmp_path, TETHER_DEPLOYMENT=e2e_tenant.deployment
        ).start()
        assert workflow_run_id(temporal_server, second.workflow_id) == agent_workflow
        after = wait_for_run(e2e_tenant, e2e_tenant.launch("ops", "quick")["id"])
        assert after["status"] == "SUCCESS", after
        assert after["agent"] == second.name
        assert second.proc is not None and second.proc.poll() is None
        assert wait_until(lambda: "serving" in second.log(), timeout=5)
        # A stop asked for (SIGTERM) is still a clean exit.
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(30) == 0, second.log()[-3000:]
        second.proc = None
    finally:
        first.stop()
        if second is not None:
            second.stop()
        stop_launched(first.state_dir)


def test_an_organization_token_without_a_deployment_is_refused_naming_the_fix(
    e2e_tenant: Tenant, temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    with e2e_tenant.user() as c:
        r = c.post(
            "/api/v1/tokens", json={"name": "fleet", "kind": "agent", "scope": "organization"}
        )
        assert r.status_code == 201, r.text
    renewed = dataclasses.replace(e2e_tenant, agent_token=r.json()["token"])
    agent = AgentProcess(renewed, temporal_server, tmp_path)
    try:
        agent.start()
    except RuntimeError as exc:  # it exited instead of serving
        assert "X-Tether-Deployment" in str(exc) and "--deployment" in str(exc)
    else:
        raise AssertionError("an organization token without --deployment was accepted")
    finally:
        agent.stop()
