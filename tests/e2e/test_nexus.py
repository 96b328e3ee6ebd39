"""Running Tether jobs from Temporal workflows through Nexus, end to end: a real dev server
with a caller namespace, a real control plane, a real agent hosting tether.v1.Runs with its
Nexus token, the endpoint made by `tether nexus endpoint create`, and caller workflows in the
other namespace written as a user writes them (tests/e2e/nexus_callers.py)."""

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError, CancelledError, NexusOperationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.nexus_runs import NexusRunActivities
from activities.runs_api import RunsApiClient
from tests.agent_support import (
    AgentProcess,
    TemporalDevServer,
    stop_launched,
    wait_for_location,
    wait_for_run,
)
from tests.conftest import NEXUS_CALLER_NAMESPACE
from tests.e2e.nexus_callers import (
    CallerInput,
    GetRunCallerInput,
    GetRunCallerWorkflow,
    RunJobCallerWorkflow,
)
from tests.support import ControlPlane, Tenant, cli, wait_until
from tether_api.nexus import RUN_FAILED_ERROR, RUN_REFUSED_ERROR, RunJobInput, RunJobResult
from workflows.nexus_models import AwaitNexusRunInput, NexusOutcomeDetail

JOBS = Path(__file__).parent / "locations" / "nexus_jobs.py"
# A tag the caller sends, which must reach the run and no history of Tether's.
TAG = "TICKET-7f3a9c"
# The caller's worker runs on the test's event loop: every wait here must let it run (blocking
# calls go to a thread).


@dataclass
class NexusStack:
    tenant: Tenant
    agent: AgentProcess
    temporal: TemporalDevServer
    endpoint: str
    token_name: str
    token: str

    async def started_run(self, workflow_id: str) -> str:
        """The ID of the run the caller's operation made, once it is STARTED."""

        def started() -> str | None:
            runs = self.runs_of(workflow_id)
            return runs[0]["id"] if runs and runs[0]["status"] == "STARTED" else None

        found: str = await asyncio.to_thread(
            wait_until, started, timeout=60, what="the run started"
        )
        return found

    def runs_of(self, workflow_id: str) -> list[dict[str, Any]]:
        with self.tenant.user() as c:
            r = c.get(f"{self.tenant.dep_path}/runs", params={"caller_workflow_id": workflow_id})
            assert r.status_code == 200, r.text
            return r.json()["runs"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def nexus_stack(
    e2e_controlplane: ControlPlane,
    temporal_server: TemporalDevServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NexusStack]:
    tenant = e2e_controlplane.tenant()
    nexus_token = tenant.nexus_token("nexus-agent")
    tenant.deploy("nexus_jobs", python_file=str(JOBS))
    workdir = tmp_path_factory.mktemp("nexus")
    agent = AgentProcess(
        tenant,
        temporal_server,
        workdir,
        TETHER_NEXUS_TOKEN=nexus_token,
        TETHER_NEXUS_CALLERS=NEXUS_CALLER_NAMESPACE,
    ).start()
    try:
        assert wait_for_location(tenant, "nexus_jobs")["status"] == "RUNNING"
        endpoint = f"tether-{tenant.org}"
        made = cli(
            tenant,
            "nexus",
            "endpoint",
            "create",
            endpoint,
            "--task-queue",
            agent.task_queue,
            "--temporal-address",
            temporal_server.address,
        )
        assert made.returncode == 0, made.stderr
        assert f"Nexus endpoint {endpoint} created" in made.stdout
        yield NexusStack(tenant, agent, temporal_server, endpoint, "nexus-agent", nexus_token)
    finally:
        agent.stop()
        stop_launched(agent.state_dir)


@pytest_asyncio.fixture
async def caller(temporal_server: TemporalDevServer) -> AsyncIterator[Client]:
    """A client of the caller's namespace, with a worker running the caller workflows."""
    client = await Client.connect(
        temporal_server.address,
        namespace=NEXUS_CALLER_NAMESPACE,
        data_converter=pydantic_data_converter,
    )
    async with Worker(
        client,
        task_queue="nexus-callers",
        workflows=[RunJobCallerWorkflow, GetRunCallerWorkflow],
    ):
        yield client


async def start_caller(
    client: Client, stack: NexusStack, job: str, tags: dict[str, str] | None = None, **config: Any
) -> WorkflowHandle[Any, RunJobResult]:
    return await client.start_workflow(
        RunJobCallerWorkflow.run,
        CallerInput(
            endpoint=stack.endpoint,
            job=RunJobInput(
                code_location="nexus_jobs", job=job, run_config=config, tags=tags or {}
            ),
        ),
        id=f"caller-{uuid.uuid4().hex[:8]}",
        task_queue="nexus-callers",
    )


def event_links(history: Any, event_type: int) -> list[Any]:
    return [link for e in history.events if e.event_type == event_type for link in e.links]


async def test_a_workflow_runs_a_job_and_gets_its_outcome(
    nexus_stack: NexusStack, caller: Client
) -> None:
    handle = await start_caller(caller, nexus_stack, "load_orders", tags={"ticket": TAG})
    result = await handle.result()

    assert result.status == "SUCCESS"
    assert [(s.name, s.status) for s in result.steps] == [("orders", "SUCCESS")]
    assert [(m.asset_key, m.metadata) for m in result.materializations] == [
        ("orders", {"rows": 42, "path": "/data/orders.parquet"})
    ]
    assert result.error is None and result.attempts == 1
    assert result.url == f"{nexus_stack.tenant.cp.url}/d/prod/runs/{result.run_id}"

    # The control plane records the caller on the run, finds it by the caller, audits it.
    run = nexus_stack.tenant.run(result.run_id)
    caller_run_id = (await handle.describe()).run_id
    assert run["caller"]["namespace"] == NEXUS_CALLER_NAMESPACE
    assert run["caller"]["workflow_id"] == handle.id
    assert run["caller"]["run_id"] == caller_run_id
    assert [r["id"] for r in nexus_stack.runs_of(handle.id)] == [result.run_id]
    with nexus_stack.tenant.user() as c:
        audit = c.get("/api/v1/audit", params={"target": result.run_id}).json()
    submitted = [e for e in audit["entries"] if e["action"] == "run.submit"]
    assert len(submitted) == 1
    assert (submitted[0]["actor_name"], submitted[0]["actor_kind"]) == (
        nexus_stack.token_name,
        "nexus",
    )
    assert submitted[0]["details"]["caller"]["workflow_id"] == handle.id

    # Links both ways: the caller's history to the operation's workflow, and back.
    history = await handle.fetch_history()
    (link,) = event_links(history, EventType.EVENT_TYPE_NEXUS_OPERATION_STARTED)
    assert link.workflow_event.workflow_id == f"nexus-run:{result.run_id}"
    agent_side = Client(
        caller.service_client, namespace="default", data_converter=pydantic_data_converter
    )
    backing = agent_side.get_workflow_handle(f"nexus-run:{result.run_id}")
    # Back: on the start event's completion callback (what the Temporal UI shows as the link).
    first = (await backing.fetch_history()).events[0]
    callbacks = first.workflow_execution_started_event_attributes.completion_callbacks
    (back,) = [link for callback in callbacks for link in callback.links]
    assert (back.workflow_event.namespace, back.workflow_event.workflow_id) == (
        NEXUS_CALLER_NAMESPACE,
        handle.id,
    )

    # The run's own RunWorkflow names the caller and the operation (no Nexus link reaches it).
    described = await agent_side.get_workflow_handle(f"run:{result.run_id}").describe()
    details = await described.static_details() or ""
    assert handle.id in details and f"nexus-run:{result.run_id}" in details

    # What the caller sent stays out of Tether's histories: the start handler gave the
    # control plane the run, the workflows got IDs.
    assert nexus_stack.tenant.run(result.run_id)["tags"] == {"ticket": TAG}
    for workflow_id in (f"nexus-run:{result.run_id}", f"run:{result.run_id}"):
        history = await agent_side.get_workflow_handle(workflow_id).fetch_history()
        assert TAG not in history.to_json(), workflow_id

    # get_run, the synchronous operation.
    info = await caller.execute_workflow(
        GetRunCallerWorkflow.run,
        GetRunCallerInput(endpoint=nexus_stack.endpoint, run_id=result.run_id),
        id=f"get-{uuid.uuid4().hex[:8]}",
        task_queue="nexus-callers",
    )
    assert (info.run_id, info.status, info.job) == (result.run_id, "SUCCESS", "load_orders")


async def test_a_failed_step_fails_the_operation_with_its_error(
    nexus_stack: NexusStack, caller: Client
) -> None:
    handle = await start_caller(caller, nexus_stack, "fails")
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    operation = failed.value.cause
    assert isinstance(operation, NexusOperationError)
    error = operation.cause
    assert isinstance(error, ApplicationError)
    assert error.type == RUN_FAILED_ERROR
    assert "step bad_row failed" in error.message
    assert "bad row 7 in orders.csv" in error.message
    outcome = RunJobResult.model_validate(error.details[0])
    assert outcome.status == "FAILURE"
    assert nexus_stack.tenant.run(outcome.run_id)["status"] == "FAILURE"
    # The error is the operation's outcome, not the run's own workflow's business.
    agent_side = Client(caller.service_client, namespace="default")
    run_history = await agent_side.get_workflow_handle(f"run:{outcome.run_id}").fetch_history()
    assert "bad row 7" not in run_history.to_json()


async def test_with_outcome_ids_no_text_of_the_run_leaves_the_agent(
    nexus_stack: NexusStack, caller: Client
) -> None:
    """TETHER_NEXUS_OUTCOME=ids: the await activity (what becomes the operation's result and
    failure) returns statuses, names and IDs; not the step's error or the metadata."""
    failed = await start_caller(caller, nexus_stack, "fails")
    loaded = await start_caller(caller, nexus_stack, "load_orders")
    with pytest.raises(WorkflowFailureError):
        await failed.result()
    await loaded.result()
    runs = RunsApiClient(nexus_stack.tenant.cp.url, nexus_stack.token, "prod")
    activities = NexusRunActivities(runs)
    try:
        for handle in (failed, loaded):
            (run,) = nexus_stack.runs_of(handle.id)
            outcome = await ActivityEnvironment().run(
                activities.await_nexus_run,
                AwaitNexusRunInput(run_id=run["id"], detail=NexusOutcomeDetail.IDS),
            )
            assert outcome.result is not None and outcome.result.status == run["status"]
            text = outcome.model_dump_json()
            assert "bad row 7" not in text and "orders.parquet" not in text
            assert '"rows"' not in text
    finally:
        await activities.aclose()


async def test_a_run_the_control_plane_refuses_fails_the_operation_at_once(
    nexus_stack: NexusStack, caller: Client
) -> None:
    handle = await start_caller(caller, nexus_stack, "no_such_job")
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    operation = failed.value.cause
    assert isinstance(operation, NexusOperationError)
    causes = []
    cause: BaseException | None = operation
    while cause is not None:
        causes.append(cause)
        cause = getattr(cause, "cause", None)
    refused = [c for c in causes if isinstance(c, ApplicationError) and c.type == RUN_REFUSED_ERROR]
    assert refused, causes
    assert "no_such_job" in refused[0].message
    assert nexus_stack.runs_of(handle.id) == []


async def test_cancelling_the_caller_terminates_the_run(
    nexus_stack: NexusStack, caller: Client
) -> None:
    handle = await start_caller(caller, nexus_stack, "nap", seconds=60)

    run_id = await nexus_stack.started_run(handle.id)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert isinstance(failed.value.cause, CancelledError)
    ended = await asyncio.to_thread(wait_for_run, nexus_stack.tenant, run_id, timeout=30)
    assert ended["status"] == "CANCELED"
    # Terminated by the agent's Nexus token, for the caller: the audit log says so.
    with nexus_stack.tenant.user() as c:
        audit = c.get("/api/v1/audit", params={"target": run_id}).json()["entries"]
    (terminated,) = [e for e in audit if e["action"] == "run.terminate"]
    assert (terminated["actor_name"], terminated["actor_kind"]) == ("nexus-agent", "nexus")


async def test_a_retried_start_with_the_same_request_id_makes_one_run(
    nexus_stack: NexusStack,
) -> None:
    """A caller's start delivered twice (Temporal retries it with the same request ID): sent
    through the dev server's Nexus HTTP API, as Temporal forwards it to the handler."""
    temporal = nexus_stack.temporal
    got = temporal.cli(
        "operator", "nexus", "endpoint", "get", "--name", nexus_stack.endpoint, "-o", "json"
    )
    assert got.returncode == 0, got.stderr
    endpoint_id = json.loads(got.stdout)["id"]
    url = (
        f"http://127.0.0.1:{temporal.http_port}/nexus/endpoints/{endpoint_id}/services/"
        "tether.v1.Runs/run_job"
    )
    workflow_id = f"http-caller-{uuid.uuid4().hex[:8]}"
    link = (
        f"<temporal:///namespaces/{NEXUS_CALLER_NAMESPACE}/workflows/{workflow_id}/run-1/"
        "history?referenceType=EventReference&eventID=5&eventType=NexusOperationScheduled>; "
        'type="temporal.api.common.v1.Link.WorkflowEvent"'
    )
    headers = {"Nexus-Request-Id": str(uuid.uuid4()), "Nexus-Link": link}
    body = {"code_location": "nexus_jobs", "job": "load_orders"}
    async with httpx.AsyncClient(timeout=30) as http:
        answers = [await http.post(url, json=body, headers=headers) for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    tokens = [a.json()["token"] for a in answers]
    assert tokens[0] == tokens[1]
    runs = nexus_stack.runs_of(workflow_id)
    assert len(runs) == 1
    ended = await asyncio.to_thread(wait_for_run, nexus_stack.tenant, runs[0]["id"])
    assert ended["status"] == "SUCCESS"


async def test_a_caller_from_a_namespace_not_allowed_is_refused(
    nexus_stack: NexusStack, temporal_server: TemporalDevServer
) -> None:
    outsider = await Client.connect(
        temporal_server.address, namespace="default", data_converter=pydantic_data_converter
    )
    queue = f"outsider-{uuid.uuid4().hex[:6]}"
    async with Worker(outsider, task_queue=queue, workflows=[RunJobCallerWorkflow]):
        handle = await outsider.start_workflow(
            RunJobCallerWorkflow.run,
            CallerInput(
                endpoint=nexus_stack.endpoint,
                job=RunJobInput(code_location="nexus_jobs", job="load_orders"),
            ),
            id=f"outsider-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    text = str(failed.value.cause.cause)  # NexusOperationError <- the handler's error
    assert "namespace 'default' may not call" in text
    assert "TETHER_NEXUS_CALLERS" in text
    assert nexus_stack.runs_of(handle.id) == []


async def test_an_operation_survives_its_agent_being_killed(
    nexus_stack: NexusStack, caller: Client
) -> None:
    handle = await start_caller(caller, nexus_stack, "nap", seconds=4)

    run_id = await nexus_stack.started_run(handle.id)
    nexus_stack.agent.kill()
    await asyncio.to_thread(nexus_stack.agent.start)
    result = await handle.result()
    assert (result.run_id, result.status) == (run_id, "SUCCESS")
    assert len(nexus_stack.runs_of(handle.id)) == 1


def test_the_endpoint_command_is_idempotent_and_refuses_another_target(
    nexus_stack: NexusStack,
) -> None:
    def create(*extra: str) -> subprocess.CompletedProcess[str]:
        return cli(
            nexus_stack.tenant,
            *("nexus", "endpoint", "create", nexus_stack.endpoint),
            *("--temporal-address", nexus_stack.temporal.address),
            *extra,
        )

    again = create("--task-queue", nexus_stack.agent.task_queue)
    assert again.returncode == 0 and "already exists, as wanted" in again.stdout
    other = create("--task-queue", "elsewhere")
    assert other.returncode == 1
    assert "already exists with target namespace 'default'" in other.stderr
    assert f"temporal operator nexus endpoint delete --name {nexus_stack.endpoint}" in other.stderr
    printed = create("--print")
    assert printed.returncode == 0
    assert printed.stdout.strip() == (
        f"temporal operator nexus endpoint create --name {nexus_stack.endpoint} "
        "--target-namespace default --target-task-queue "
        f"tether:{nexus_stack.tenant.org}:prod:nexus:runs "
        f"--address {nexus_stack.temporal.address}"
    )
