"""Deploy, run, fail, reject, terminate, redeploy: the hybrid flow end to end on a real
Temporal dev server, control plane and agent, with real code servers and run workers."""

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.launchers.process import ProcessLauncher
from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    agent_metrics,
    events,
    location,
    stop_launched,
    wait_for_location,
    wait_for_run,
    worker_starts,
)
from tests.support import Tenant, command_pid, free_port, wait_until

ETL_CONFIG = {"source": "s3://bucket/orders.csv"}


def test_deploy_to_running_with_snapshot_then_run_to_success(
    e2e_tenant: Tenant, agent: AgentProcess
) -> None:
    e2e_tenant.deploy("quick", module="tether_sdk.examples.quickstart")
    loc = wait_for_location(e2e_tenant, "quick")
    assert loc["status"] == "RUNNING", loc
    assert {j["name"] for j in loc["snapshot"]["jobs"]} >= {"etl", "refresh_sales"}
    history = [h["status"] for h in reversed(loc["status_history"])]
    assert history[:4] == ["PENDING", "STARTING", "LOADING", "RUNNING"], history

    run = e2e_tenant.launch("quick", "etl", run_config=ETL_CONFIG)
    done = wait_for_run(e2e_tenant, run["id"])
    assert done["status"] == "SUCCESS", done
    seen = events(e2e_tenant, run["id"])
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
    assert seen[0]["type"] == "RUN_START" and seen[-1]["type"] == "RUN_SUCCESS"
    steps = [e["step"] for e in seen if e["type"] == "STEP_SUCCESS"]
    assert steps == ["extract", "transform", "load", "report"]


OPS = Path(__file__).parent / "locations" / "ops.py"


def deploy_ops(tenant: Tenant, name: str = "ops") -> dict[str, Any]:
    tenant.deploy(name, python_file=str(OPS))
    loc = wait_for_location(tenant, name)
    assert loc["status"] == "RUNNING", loc
    return loc


def test_failing_step_ends_failure_with_the_error(e2e_tenant: Tenant, agent: AgentProcess) -> None:
    deploy_ops(e2e_tenant)
    run = e2e_tenant.launch("ops", "fails")
    done = wait_for_run(e2e_tenant, run["id"])
    assert done["status"] == "FAILURE", done
    failure = [e for e in events(e2e_tenant, run["id"]) if e["type"] == "STEP_FAILURE"]
    assert len(failure) == 1 and "bad row 7 in orders.csv" in failure[0]["message"]


def test_invalid_config_is_rejected_before_any_process_starts(
    e2e_tenant: Tenant, agent: AgentProcess
) -> None:
    deploy_ops(e2e_tenant)
    # The control plane checks the config against the job's schema from the snapshot: no
    # run is created, so no agent starts anything for it.
    body = {"code_location": "ops", "job": "slow", "run_config": {"seconds": "soon"}}
    with e2e_tenant.user() as c:
        r = c.post(f"{e2e_tenant.dep_path}/runs", json=body)
        assert r.status_code == 422, r.text
        assert [e["loc"] for e in r.json()["errors"]] == [["body", "run_config", "seconds"]]
        assert c.get(f"{e2e_tenant.dep_path}/runs").json()["runs"] == []
    assert not [label for label in ProcessLauncher(agent.state_dir).labels() if "run:" in label]


def test_import_error_is_reported_then_fixed_by_a_redeploy(
    e2e_tenant: Tenant, agent: AgentProcess, tmp_path: Path
) -> None:
    code = tmp_path / "user_code.py"
    code.write_text("import definitely_not_installed_pkg\n")
    e2e_tenant.deploy("mine", python_file=str(code))
    loc = wait_for_location(e2e_tenant, "mine")
    assert loc["status"] == "ERROR", loc
    assert "definitely_not_installed_pkg" in loc["error"]["message"]
    assert "Traceback" in loc["error"]["message"]
    assert any("definitely_not_installed_pkg" in line for line in loc["error"]["log_tail"])

    code.write_text(OPS.read_text())
    with e2e_tenant.user() as c:
        r = c.post(f"{e2e_tenant.dep_path}/code-locations/mine/redeploy")
        assert r.status_code in (200, 202), r.text
    loc = wait_for_location(e2e_tenant, "mine", ("RUNNING",), timeout=60)
    assert loc["error"] is None
    assert {j["name"] for j in loc["snapshot"]["jobs"]} == {"quick", "fails", "slow"}


def test_sigkilled_run_worker_ends_failure_with_the_reason(
    e2e_tenant: Tenant, agent: AgentProcess
) -> None:
    deploy_ops(e2e_tenant)
    run = e2e_tenant.launch("ops", "slow", run_config={"seconds": 60})
    wait_for_run(e2e_tenant, run["id"], ("STARTED",))
    wait_until(lambda: any(e["type"] == "LOG" for e in events(e2e_tenant, run["id"])))
    launcher = ProcessLauncher(agent.state_dir)
    handle = launcher.find(f"run:{run['id']}")
    assert handle is not None
    os.kill(command_pid(handle.pid), signal.SIGKILL)
    done = wait_for_run(e2e_tenant, run["id"])
    assert done["status"] == "FAILURE", done
    assert "killed by signal 9" in done["status_message"], done
    assert "without a final event" in done["status_message"]


def test_terminate_ends_canceled(e2e_tenant: Tenant, agent: AgentProcess) -> None:
    deploy_ops(e2e_tenant)
    run = e2e_tenant.launch("ops", "slow", run_config={"seconds": 60})
    wait_until(lambda: any(e["type"] == "LOG" for e in events(e2e_tenant, run["id"])))
    with e2e_tenant.user() as c:
        r = c.post(f"{e2e_tenant.dep_path}/runs/{run['id']}/terminate")
        assert r.status_code == 202, r.text
    done = wait_for_run(e2e_tenant, run["id"], timeout=30)
    assert done["status"] == "CANCELED", done
    types = [e["type"] for e in events(e2e_tenant, run["id"])]
    assert types[-1] == "RUN_CANCELED" and "STEP_CANCELED" in types
    launcher = ProcessLauncher(agent.state_dir)
    wait_until(lambda: launcher.find(f"run:{run['id']}") is None, what="the run worker gone")
    # Its workflow completed with nothing left pending: the canceled watch was waited for.
    described = asyncio.run(_described(agent, f"run:{run['id']}"))
    assert described.status == WorkflowExecutionStatus.COMPLETED
    assert list(described.raw_description.pending_activities) == []


def test_redeploy_by_temporal_signal_fails_no_run(
    e2e_tenant: Tenant, agent: AgentProcess, temporal_server: TemporalDevServer
) -> None:
    deploy_ops(e2e_tenant)
    launcher = ProcessLauncher(agent.state_dir)
    workflow_id = f"code-location:{e2e_tenant.org}:{e2e_tenant.deployment}:ops"
    first = launcher.find(f"{workflow_id}#1")
    assert first is not None
    runs = [e2e_tenant.launch("ops", "slow", run_config={"seconds": 3})]
    result = temporal_server.cli(
        *("workflow", "signal", "--workflow-id", workflow_id, "--name", "redeploy"),
        *("--identity", "ops-alice@laptop"),
    )
    assert result.returncode == 0, result.stderr

    def switched() -> dict[str, Any] | None:
        # A run submitted on every check: some validate on #1, some during UPDATING, some
        # on #2, until #1 is stopped and the location RUNNING again.
        runs.append(e2e_tenant.launch("ops", "quick"))
        loc = location(e2e_tenant, "ops")
        done = loc["status"] == "RUNNING" and launcher.find(f"{workflow_id}#1") is None
        return loc if done and launcher.find(f"{workflow_id}#2") else None

    loc = wait_until(switched, timeout=60, interval=0.2, what="RUNNING on #2 with #1 stopped")
    statuses = [h["status"] for h in loc["status_history"]]
    assert "UPDATING" in statuses and "ERROR" not in statuses, statuses
    # The control plane shows the redeploy as a new generation, as if it had been sent there.
    assert loc["generation"] == 2
    assert "redeploy requested through Temporal" in [h["message"] for h in loc["status_history"]]
    runs += [e2e_tenant.launch("ops", "quick") for _ in range(3)]
    for run in runs:
        assert wait_for_run(e2e_tenant, run["id"])["status"] == "SUCCESS"

    # The update too; both are in the audit log, reported by the agent, with the Temporal
    # identity that sent them.
    asyncio.run(_redeploy_by_update(agent, workflow_id, identity="ci-bot"))
    with e2e_tenant.user() as c:
        r = c.get("/api/v1/audit", params={"action": "location.redeploy"})
        assert r.status_code == 200, r.text
    entries = [e for e in r.json()["entries"] if e["target"] == "ops"]
    assert [(e["actor_kind"], e["details"]) for e in reversed(entries)] == [
        (
            "agent",
            {"generation": 2, "via": "temporal signal", "temporal_identity": "ops-alice@laptop"},
        ),
        ("agent", {"generation": 3, "via": "temporal update", "temporal_identity": "ci-bot"}),
    ]


async def _redeploy_by_update(agent: AgentProcess, workflow_id: str, identity: str) -> None:
    client = await Client.connect(
        agent.temporal.address, data_converter=pydantic_data_converter, identity=identity
    )
    handle = client.get_workflow_handle(workflow_id)
    await asyncio.wait_for(handle.execute_update("redeploy_and_wait"), timeout=60)


def workflow_status(temporal: TemporalDevServer, workflow_id: str) -> str:
    """COMPLETED, RUNNING, FAILED, ... as `temporal workflow describe` reports it."""
    described = temporal.cli("workflow", "describe", "--workflow-id", workflow_id, "-o", "json")
    assert described.returncode == 0, described.stderr
    status: str = json.loads(described.stdout)["workflowExecutionInfo"]["status"]
    return status.removeprefix("WORKFLOW_EXECUTION_STATUS_")


def test_agent_killed_mid_run_resumes_and_adopts(
    e2e_tenant: Tenant, temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    first = AgentProcess(e2e_tenant, temporal_server, tmp_path).start()
    second: AgentProcess | None = None
    try:
        loc = deploy_ops(e2e_tenant)
        launcher = ProcessLauncher(first.state_dir)
        server_label = f"code-location:{e2e_tenant.org}:{e2e_tenant.deployment}:ops#1"
        server = launcher.find(server_label)
        assert server is not None
        run = e2e_tenant.launch("ops", "slow", run_config={"seconds": 12})
        wait_for_run(e2e_tenant, run["id"], ("STARTED",))
        worker = launcher.find(f"run:{run['id']}")
        assert worker is not None

        first.kill()  # SIGKILL: no cleanup, no goodbye
        metrics = f"127.0.0.1:{free_port()}"
        second = AgentProcess(
            e2e_tenant,
            temporal_server,
            tmp_path,
            name=first.name,
            TETHER_AGENT_METRICS_ADDRESS=metrics,
        ).start()
        done = wait_for_run(e2e_tenant, run["id"], timeout=90)
        assert done["status"] == "SUCCESS", done
        finals = [e for e in events(e2e_tenant, run["id"]) if e["type"].startswith("RUN_")]
        assert [e["type"] for e in finals] == ["RUN_START", "RUN_SUCCESS"]
        # The same run worker finished (adopted, not relaunched) ...
        wait_until(lambda: launcher.find(f"run:{run['id']}") is None, what="the worker exits")
        finished = launcher.find(f"run:{run['id']}", include_exited=True)
        assert finished is not None and finished.pid == worker.pid
        assert worker_starts(first.state_dir, run["id"]) == 1
        # ... and the same code server still serves: adopted, never restarted.
        again = launcher.find(server_label)
        assert again is not None and again.pid == server.pid
        now = location(e2e_tenant, "ops")
        assert now["status"] == "RUNNING"
        assert len(now["status_history"]) == len(loc["status_history"]), now["status_history"]
        # The run's workflow, resumed by the second agent, completes (once its watch, retried
        # after the heartbeat timeout, sees the exit).
        wait_until(
            lambda: workflow_status(temporal_server, f"run:{run['id']}") == "COMPLETED",
            timeout=60,
            what="RunWorkflow COMPLETED",
        )
        # The second agent's metrics say so (its watch took the worker over): one run
        # adopted, nothing launched.
        served = agent_metrics(metrics)
        assert served["tether_agent_runs_adopted_total"] == 1.0
        assert served["tether_agent_launches_total"] == 0.0
    finally:
        for agent_process in (first, second):
            if agent_process is not None:
                agent_process.stop()
        stop_launched(first.state_dir)


async def _described(agent: AgentProcess, workflow_id: str) -> WorkflowExecutionDescription:
    client = await Client.connect(agent.temporal.address, data_converter=pydantic_data_converter)
    handle = client.get_workflow_handle(workflow_id)
    await asyncio.wait_for(handle.result(), timeout=30)
    return await handle.describe()
