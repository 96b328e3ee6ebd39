"""An agent's heartbeat reports the code locations whose code server runs on its host, listed
through a visibility query narrowed to its deployment: a namespace crowded with 600 other
deployments' running CodeLocationWorkflows (more than the 500 the heartbeat once listed of
the whole namespace, newest first) neither cuts this deployment's location off nor costs a
state query each, and a second agent of the deployment does not report it again.

Real Temporal (a dev server of the test's own: the 600 stay out of the other tests' lists),
the session's control plane, real agent processes and a real code server. The 600 are
started on a task queue no worker polls, so they stay Running without any agent."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.agent_support import AgentProcess, TemporalDevServer, stop_launched, wait_for_location
from tests.support import Tenant, wait_until
from workflows import names
from workflows import search_attributes as attrs
from workflows.models import CodeLocationState

pytestmark = pytest.mark.e2e

OTHERS = 600
NOBODY = "tq:nobody-polls"
RUNNING = "WorkflowType = 'CodeLocationWorkflow' AND ExecutionStatus = 'Running'"
AGENT_ENV = {"TETHER_AGENT_HEARTBEAT_INTERVAL": 1}
FAILURES = ("ERROR", "Traceback", "could not list", "refused", "failed its state query")


@pytest.fixture
def crowded(own_temporal: TemporalDevServer) -> TemporalDevServer:
    """Its own server: the 600 workflows it starts stay out of the other tests' namespace."""
    return own_temporal


def other_locations(tenant: Tenant) -> list[tuple[str, str, str]]:
    """(organization, deployment, location) of 600 other deployments' locations: other
    organizations' (one named as this test's), and this organization's other deployments,
    whose names start with this one's."""
    found = []
    for i in range(OTHERS):
        if i % 4 == 0:  # "production"
            found.append((tenant.org, f"{tenant.deployment}uction", f"loc-{i}"))
        elif i % 4 == 1:
            found.append((tenant.org, f"{tenant.deployment}-{i % 5}", f"loc-{i}"))
        else:
            found.append((f"other-{i % 40}", tenant.deployment, "quick" if i < 4 else f"loc-{i}"))
    return found


async def start_others(address: str, locations: list[tuple[str, str, str]]) -> list[str]:
    """Start them (100 at a time), with the search attributes agents set; their IDs."""
    client = await Client.connect(address)

    async def start(org: str, dep: str, name: str) -> str:
        workflow_id = names.code_location_workflow_id(org, dep, name)
        await client.start_workflow(
            "CodeLocationWorkflow",
            {"organization": org, "deployment": dep, "name": name, "generation": 1},
            id=workflow_id,
            task_queue=NOBODY,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(attrs.DEPLOYMENT, attrs.deployment_value(org, dep)),
                    SearchAttributePair(attrs.CODE_LOCATION, name),
                ]
            ),
        )
        return workflow_id

    started: list[str] = []
    for i in range(0, len(locations), 100):
        started += await asyncio.gather(*(start(*loc) for loc in locations[i : i + 100]))
    return started


async def newest_running(address: str, limit: int) -> list[str]:
    """What the heartbeat used to list: the namespace's running location workflows."""
    client = await Client.connect(address)
    return [e.id async for e in client.list_workflows(RUNNING, limit=limit)]


async def terminate(address: str, workflow_ids: list[str]) -> None:
    client = await Client.connect(address)
    for i in range(0, len(workflow_ids), 100):
        await asyncio.gather(
            *(
                client.get_workflow_handle(w).terminate("test over")
                for w in workflow_ids[i : i + 100]
            ),
            return_exceptions=True,
        )


def agents(tenant: Tenant) -> dict[str, dict[str, Any]]:
    """The agents as the control plane shows them: what their heartbeats delivered."""
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/agents")
        assert r.status_code == 200, r.text
        return {a["name"]: a for a in r.json()}


def after_two_heartbeats(tenant: Tenant, agent_names: list[str]) -> dict[str, dict[str, Any]]:
    """The agents once each sent two heartbeats more: the second one listed and queried
    after this call began."""
    first = {n: agents(tenant)[n]["last_heartbeat_at"] for n in agent_names}
    seen: dict[str, set[str]] = {n: {first[n]} for n in agent_names}

    def two_more() -> dict[str, dict[str, Any]] | None:
        now = agents(tenant)
        for n in agent_names:
            seen[n].add(now[n]["last_heartbeat_at"])
        return now if all(len(s) >= 3 for s in seen.values()) else None

    result: dict[str, dict[str, Any]] = wait_until(
        two_more, timeout=60, interval=0.2, what="two more heartbeats"
    )
    return result


async def hosting_agent(address: str, workflow_id: str) -> str | None:
    """The agent whose host runs the location's serving code server, as its workflow says."""
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    state = await client.get_workflow_handle(workflow_id).query(
        names.QUERY_STATE, result_type=CodeLocationState
    )
    return state.server.agent if state.server else None


def test_a_crowded_namespace_cuts_off_nothing(
    e2e_tenant: Tenant, crowded: TemporalDevServer, tmp_path: Path
) -> None:
    tenant = e2e_tenant
    ours = names.code_location_workflow_id(tenant.org, tenant.deployment, "quick")
    hosts = {
        name: AgentProcess(
            tenant, crowded, tmp_path, name, state_dir=tmp_path / f"state-{name}", **AGENT_ENV
        )
        for name in ("host-a", "host-b")
    }
    others: list[str] = []
    with ThreadPoolExecutor() as pool:
        try:
            list(pool.map(AgentProcess.start, hosts.values()))
            tenant.deploy("quick")
            wait_for_location(tenant, "quick", ("RUNNING",))
            here = asyncio.run(hosting_agent(crowded.address, ours))
            assert here in hosts, here

            # Started after ours: a list of the newest 500 would not reach it.
            began = time.monotonic()
            others = asyncio.run(start_others(crowded.address, other_locations(tenant)))
            took = time.monotonic() - began
            assert len(set(others)) == OTHERS and ours not in others
            newest = asyncio.run(newest_running(crowded.address, 500))
            assert len(newest) == 500 and ours not in newest
            assert ours in asyncio.run(newest_running(crowded.address, OTHERS + 1))

            # Reported by the agent whose host runs its server, and by no other.
            seen = after_two_heartbeats(tenant, list(hosts))
            reported = {
                n: [(c["name"], c["status"]) for c in a["code_locations"]] for n, a in seen.items()
            }
            expected = {n: [("quick", "RUNNING")] if n == here else [] for n in hosts}
            assert reported == expected, reported
            assert "jobs; code server #1 at http" in seen[here]["code_locations"][0]["detail"]
            for agent in hosts.values():
                text = agent.log()
                assert not [word for word in FAILURES if word in text], text[-3000:]
            print(f"started {OTHERS} other location workflows in {took:.1f} s")
        finally:
            # SIGTERM waits for a poll in flight: both at once, while the others end.
            stopped = [pool.submit(stop, agent) for agent in hosts.values()]
            if others:
                asyncio.run(terminate(crowded.address, others))
            for future in stopped:
                future.result()


def stop(agent: AgentProcess) -> None:
    agent.stop()
    stop_launched(agent.state_dir)
