"""The code location states an agent's heartbeat reports (``AgentActivities._location_states``),
against a stand-in Temporal client: listed through a visibility query narrowed to the
deployment (with fallbacks for a server that refuses it), only the locations whose serving
code server runs on this agent's host, and never held up by a workflow that does not answer.
The real server's answer to these queries: tests/e2e/test_heartbeat_locations.py."""

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities import agent
from activities.agent import AgentActivities, location_listings
from activities.context import AgentContext
from activities.controlplane import ControlPlaneClient
from activities.launchers.base import Handle, Launcher
from tether_api.enums import CodeLocationStatus
from workflows import names
from workflows.models import AgentHeartbeatInput, CodeLocationState

ORG, DEP, ME = "acme", "prod", "a-1"
RUNNING = "WorkflowType = 'CodeLocationWorkflow' AND ExecutionStatus = 'Running'"
BY_PREFIX = f"{RUNNING} AND WorkflowId STARTS_WITH 'code-location:acme:prod:'"
BY_ATTRIBUTE = f"{RUNNING} AND TetherDeployment = 'acme/prod'"


def server(agent: str | None, host_queue: str | None = None) -> Handle:
    return Handle(
        label="x#1",
        kind="code-server",
        launcher="process",
        pid=1,
        started_at=datetime(2030, 1, 1, tzinfo=UTC),
        agent=agent,
        host_queue=host_queue,
    )


def state(name: str, handle: Handle | None, status: str = "RUNNING") -> CodeLocationState:
    return CodeLocationState(
        name=name, status=CodeLocationStatus(status), generation=1, server=handle, message=name
    )


def wid(name: str, org: str = ORG, dep: str = DEP) -> str:
    return names.code_location_workflow_id(org, dep, name)


class FakeTemporal:
    """What visibility lists and what each workflow's state query answers. ``refused``:
    queries with these words are INVALID_ARGUMENT (an older server, a missing attribute)."""

    def __init__(self, states: dict[str, CodeLocationState | None], refused: tuple[str, ...] = ()):
        self.states = states  # None: the workflow never answers
        self.refused = refused
        self.queries: list[str] = []
        self.asked: list[str] = []
        self.list_error: RPCError | None = None

    async def list_workflows(self, query: str) -> AsyncIterator[Any]:
        self.queries.append(query)
        if self.list_error is not None:
            raise self.list_error
        if any(word in query for word in self.refused):
            raise RPCError("invalid query", RPCStatusCode.INVALID_ARGUMENT, b"")
        for workflow_id in self.states:
            # The real server filters by prefix or attribute; the namespace scan returns all.
            if query == RUNNING or workflow_id.startswith(wid("")):
                yield SimpleNamespace(id=workflow_id, status=WorkflowExecutionStatus.RUNNING)

    def get_workflow_handle(self, workflow_id: str) -> Any:
        temporal = self

        class FakeHandle:
            async def query(self, name: str, *, result_type: type, rpc_timeout: timedelta) -> Any:
                assert name == names.QUERY_STATE and result_type is CodeLocationState
                temporal.asked.append(workflow_id)
                answer = temporal.states[workflow_id]
                if answer is None:
                    await asyncio.sleep(3600)
                return answer

        return FakeHandle()


def activities(temporal: FakeTemporal, search_attributes: bool = True) -> AgentActivities:
    return AgentActivities(
        AgentContext(
            control_plane=cast(ControlPlaneClient, None),
            launcher=cast(Launcher, None),
            temporal=cast(Client, temporal),
            agent_name=ME,
            worker_control_plane_url="http://cp",
            host_queue=f"tether:{ORG}:{DEP}:host:{ME}",
            search_attributes=search_attributes,
        )
    )


async def report(acts: AgentActivities) -> list[tuple[str, str]]:
    states = await acts._location_states(
        AgentHeartbeatInput(organization=ORG, deployment=DEP, agent_name=ME)
    )
    return [(s.name, s.status.value) for s in states]


def crowded() -> dict[str, CodeLocationState | None]:
    """This deployment's locations on this and other hosts, and other deployments' (some
    whose IDs start with this deployment's name)."""
    return {
        wid("here"): state("here", server(ME, f"tether:{ORG}:{DEP}:host:{ME}")),
        wid("also-here"): state("also-here", server(ME), "UPDATING"),
        wid("there"): state("there", server("a-2")),
        wid("no-server"): state("no-server", None, "ERROR"),
        wid("legacy"): state("legacy", server(None)),  # a handle from before hosts
        wid("here", dep="prod-2"): state("here", server(ME)),
        wid("here", dep="production"): state("here", server(ME)),
        wid("here", org="acme2"): state("here", server(ME)),
        **{wid(f"loc-{i}", org=f"other-{i}"): state(f"loc-{i}", server("b")) for i in range(50)},
    }


EXPECTED = [("also-here", "UPDATING"), ("here", "RUNNING"), ("legacy", "RUNNING")]


def test_the_listings_best_first() -> None:
    assert location_listings(ORG, DEP, True) == [
        ("workflow ID prefix", BY_PREFIX),
        ("TetherDeployment", BY_ATTRIBUTE),
        ("workflow type (the whole namespace's)", RUNNING),
    ]
    assert [q for _, q in location_listings(ORG, DEP, False)] == [BY_PREFIX, RUNNING]


async def test_only_what_this_host_runs_listed_by_workflow_id_prefix() -> None:
    temporal = FakeTemporal(crowded())
    assert await report(activities(temporal)) == EXPECTED
    assert temporal.queries == [BY_PREFIX]
    # Only this deployment's workflows were asked.
    assert sorted(temporal.asked) == sorted(
        wid(n) for n in ("here", "also-here", "there", "no-server", "legacy")
    )


@pytest.mark.parametrize("search_attributes", [True, False])
async def test_a_server_without_starts_with(
    search_attributes: bool, caplog: pytest.LogCaptureFixture
) -> None:
    temporal = FakeTemporal(crowded(), refused=("STARTS_WITH",))
    acts = activities(temporal, search_attributes)
    assert await report(acts) == EXPECTED
    fallback = BY_ATTRIBUTE if search_attributes else RUNNING
    assert temporal.queries == [BY_PREFIX, fallback]
    assert "Temporal refused to list code location workflows by workflow ID prefix" in caplog.text
    # Remembered: the next heartbeat lists with the fallback at once, and says nothing.
    caplog.clear()
    assert await report(acts) == EXPECTED
    assert temporal.queries == [BY_PREFIX, fallback, fallback]
    assert "refused" not in caplog.text
    # Other deployments' workflows are never asked, even from the whole namespace's list.
    assert all(w.startswith(wid("")) for w in temporal.asked)


async def test_nothing_refused_to_the_last_listing() -> None:
    temporal = FakeTemporal(crowded(), refused=("STARTS_WITH", "TetherDeployment"))
    assert await report(activities(temporal)) == EXPECTED
    assert temporal.queries == [BY_PREFIX, BY_ATTRIBUTE, RUNNING]


async def test_a_listing_error_leaves_the_report_empty(caplog: pytest.LogCaptureFixture) -> None:
    temporal = FakeTemporal(crowded())
    temporal.list_error = RPCError("no", RPCStatusCode.PERMISSION_DENIED, b"")
    with caplog.at_level(logging.WARNING):
        assert await report(activities(temporal)) == []
    assert "could not list code location workflows: no" in caplog.text
    temporal.list_error = RPCError("down", RPCStatusCode.UNAVAILABLE, b"")
    caplog.clear()
    assert await report(activities(temporal)) == []
    assert caplog.text == ""  # Temporal unreachable: said elsewhere


async def test_workflows_that_do_not_answer_do_not_hold_up_the_heartbeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(agent, "LOCATION_STATES_SECONDS", 0.5)
    states = crowded()
    for i in range(40):  # more than the concurrency: queued ones count against the time
        states[wid(f"silent-{i}")] = None
    temporal = FakeTemporal(states)
    started = asyncio.get_running_loop().time()
    # The silent ones wait behind none of the answering ones: those were listed first.
    assert await report(activities(temporal)) == EXPECTED
    assert asyncio.get_running_loop().time() - started < 2
