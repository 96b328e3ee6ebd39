"""Finding runs in Temporal as a person would: by Tether's search attributes, with the
temporal CLI against the real dev server (its visibility store)."""

import json
from pathlib import Path

from tests.agent_support import AgentProcess, TemporalDevServer, wait_for_location, wait_for_run
from tests.support import Tenant, wait_until

OPS = Path(__file__).parent / "locations" / "ops.py"


def listed(temporal: TemporalDevServer, query: str) -> list[str]:
    found = temporal.cli("workflow", "list", "--query", query, "--output", "json")
    assert found.returncode == 0, found.stderr
    return [w["execution"]["workflowId"] for w in json.loads(found.stdout or "[]")]


def test_a_failed_run_is_found_by_status_and_job(
    e2e_tenant: Tenant, agent: AgentProcess, temporal_server: TemporalDevServer
) -> None:
    tenant = e2e_tenant
    tenant.deploy("ops", python_file=str(OPS))
    assert wait_for_location(tenant, "ops")["status"] == "RUNNING"
    failed = tenant.launch("ops", "fails")
    ok = tenant.launch("ops", "quick")
    assert wait_for_run(tenant, failed["id"])["status"] == "FAILURE"
    assert wait_for_run(tenant, ok["id"])["status"] == "SUCCESS"
    deployment = f"{tenant.org}/{tenant.deployment}"

    # The control plane learns a run's outcome from its worker before the run's workflow
    # upserts the status attribute, and visibility is eventually consistent: wait for each.
    def found(query: str, expected: list[str], what: str) -> None:
        wait_until(
            lambda: listed(temporal_server, query) == expected,
            timeout=30,
            what=what,
        )

    failures = f"TetherDeployment = '{deployment}' AND TetherRunStatus = 'FAILURE'"
    found(failures, [f"run:{failed['id']}"], "the failed run by status")
    by_job = f"TetherDeployment = '{deployment}' AND TetherJob = 'fails'"
    found(by_job, [f"run:{failed['id']}"], "the failed run by job")
    successes = f"TetherDeployment = '{deployment}' AND TetherRunStatus = 'SUCCESS'"
    found(successes, [f"run:{ok['id']}"], "the successful run by status")
    location = (
        f"TetherDeployment = '{deployment}' AND TetherCodeLocation = 'ops' "
        "AND WorkflowType = 'CodeLocationWorkflow'"
    )
    assert len(listed(temporal_server, location)) == 1
