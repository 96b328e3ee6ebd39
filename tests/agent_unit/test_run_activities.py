"""RunWorkflow's activities on their own, in Temporal's ``ActivityEnvironment``, with a real
``AgentContext``: the agent's control plane client against the session's control plane, the
process launcher in the test's own state directory, a real code server (``tether
code-server``) for validation, and a Temporal test server where a code location's workflow
answers its ``state`` query (a stand-in, started with the state each test needs).

The run workers are a small script standing in for ``tether run-worker``: it prints a line
holding a secret and exits as its location's environment says, without sending any event, as
a worker that crashed does. What the activities return goes into a workflow's history, so it
never holds the user's text; what they report goes to the control plane, masked, and with
output lines only where the deployment's log settings forward everything."""

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.context import AgentContext
from activities.launchers.base import Handle, Launcher
from activities.launchers.process import ProcessLauncher
from activities.runs import REFUSED, RunActivities
from tests.agent_unit.activity_support import (
    Heartbeats,
    RecordingControlPlane,
    location_workflows,
    start_location_workflow,
    temporal_test_server,
)
from tests.support import Tenant, client, code_server, event
from tether_api.enums import CodeLocationStatus, RunStatus
from workflows import names
from workflows.models import (
    CodeLocationState,
    FinishRunInput,
    LaunchRunWorkerInput,
    PrepareRunInput,
    PrepareRunOutput,
    RunOutcome,
    RunResult,
    RunSettings,
    ValidateRunInput,
    WatchInput,
    WatchRunWorkerOutput,
)

AGENT = "agent-1"
BASE = "tq:run-activities"
HOST_QUEUE = names.host_task_queue(BASE, AGENT)
OTHER_HOST_QUEUE = names.host_task_queue(BASE, "agent-2")
LOCATIONS_QUEUE = "location-stand-ins"
MAX_RUNTIME_TAG = RunSettings().max_runtime_tag
SECRET_NAME = "RUN_ACTIVITIES_SECRET"
SECRET = "s3cr3t-of-the-run-activities-4d2"
MARKER = "user-output-9b7e"
STARTED_AT = datetime(2030, 1, 1, tzinfo=UTC)
# A run worker's final events, and the status each ends its run with.
ENDINGS = [("RUN_SUCCESS", "SUCCESS"), ("RUN_FAILURE", "FAILURE")]

DEFINITIONS = """
from pydantic import BaseModel, field_validator

from tether_sdk import Definitions, StepContext, job, step


class Config(BaseModel):
    source: str

    @field_validator("source")
    @classmethod
    def readable(cls, value: str) -> str:
        if value.startswith("bad:"):
            raise ValueError(f"cannot read {value}")
        return value


@step
def extract(ctx: StepContext, config: Config) -> int:
    return 1


@step
def load(extract: int) -> int:
    return extract


defs = Definitions(jobs=[job("etl", steps=[extract, load], config=Config)])
"""

# Started as `WORKER -m tether_sdk.run_worker` (the location's python_executable): output
# with the secret in it, then the exit its location's env asks for; never an event.
WORKER = f"""#!/bin/sh
echo "{MARKER}: reading with ${SECRET_NAME}"
echo "{MARKER}: the last line"
if [ -n "$WORKER_SLEEP" ]; then exec sleep "$WORKER_SLEEP"; fi
exit "$WORKER_EXIT"
"""


@dataclass(frozen=True)
class Files:
    definitions: Path
    worker: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    directory = tmp_path_factory.mktemp("run-activities")
    definitions = directory / "definitions.py"
    definitions.write_text(DEFINITIONS)
    worker = directory / "worker.sh"
    worker.write_text(WORKER)
    worker.chmod(0o755)
    return Files(definitions, worker)


@pytest.fixture(scope="module")
def served(files: Files, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real code server of the definitions: the one prepare_run asks to validate."""
    command = [sys.executable, "-m", "tether_cli.main", "code-server"]
    command += ["--python-file", str(files.definitions)]
    with code_server(command, tmp_path_factory.mktemp("code-server")) as url:
        yield url


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[Client]:
    async with (
        temporal_test_server() as environment,
        location_workflows(environment.client, LOCATIONS_QUEUE),
    ):
        yield environment.client


@dataclass
class Agent:
    tenant: Tenant
    files: Files
    temporal: Client
    control_plane: RecordingControlPlane
    launcher: ProcessLauncher
    ctx: AgentContext
    runs: RunActivities

    def deploy(
        self, name: str = "loc", *, launch: str = "cold", exit_code: int = 1, sleep: float = 0
    ) -> None:
        """A location of the definitions whose run workers are the stand-in script."""
        env = {"WORKER_EXIT": str(exit_code)}
        if sleep:
            env["WORKER_SLEEP"] = str(sleep)
        self.tenant.deploy(
            name,
            python_file=str(self.files.definitions),
            python_executable=str(self.files.worker),
            passthrough_env=[SECRET_NAME],
            env=env,
            launch=launch,
        )

    async def serving(
        self,
        address: str | None,
        name: str = "loc",
        *,
        host_queue: str | None = HOST_QUEUE,
        status: CodeLocationStatus = CodeLocationStatus.RUNNING,
        generation: int = 1,
        deployed_generation: int | None = 1,
        message: str | None = None,
        server: bool = True,
    ) -> CodeLocationState:
        """The location's workflow, answering that its code server (on ``host_queue``'s
        host) serves at ``address``."""
        state = CodeLocationState(
            name=name,
            status=status,
            generation=generation,
            deployed_generation=deployed_generation,
            server=server_handle(self.tenant.org, name, host_queue) if server else None,
            address=address,
            message=message,
        )
        await start_location_workflow(
            self.temporal, LOCATIONS_QUEUE, self.tenant.org, self.tenant.deployment, state
        )
        return state

    def prepare_input(self, run_id: str, name: str = "loc") -> PrepareRunInput:
        return PrepareRunInput(
            organization=self.tenant.org,
            deployment=self.tenant.deployment,
            run_id=run_id,
            code_location=name,
            max_runtime_tag=MAX_RUNTIME_TAG,
        )

    def launch_input(self, run_id: str, name: str = "loc", **prepared: Any) -> LaunchRunWorkerInput:
        return LaunchRunWorkerInput(
            organization=self.tenant.org,
            deployment=self.tenant.deployment,
            run_id=run_id,
            code_location=name,
            label=names.run_workflow_id(run_id),
            **prepared,
        )

    async def prepare(self, run_id: str, name: str = "loc") -> PrepareRunOutput:
        result: PrepareRunOutput = await ActivityEnvironment().run(
            self.runs.prepare_run, self.prepare_input(run_id, name)
        )
        return result

    async def launch_worker(self, run_id: str, name: str = "loc", **prepared: Any) -> Handle:
        handle: Handle = await ActivityEnvironment().run(
            self.runs.launch_run_worker, self.launch_input(run_id, name, **prepared)
        )
        return handle

    async def exited(self, handle: Handle, timeout: float = 15) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while (await asyncio.to_thread(self.launcher.inspect, handle)).running:
            assert asyncio.get_running_loop().time() < deadline, f"{handle.label} still runs"
            await asyncio.sleep(0.02)

    async def finish(self, input: FinishRunInput) -> RunResult:
        result: RunResult = await ActivityEnvironment().run(self.runs.finish_run, input)
        return result


def server_handle(org: str, name: str, host_queue: str | None) -> Handle:
    """The location's code server, on ``host_queue``'s host (None: a handle recorded before
    handles named their host)."""
    workflow_id = names.code_location_workflow_id(org, "prod", name)
    return Handle(
        label=f"{workflow_id}#1",
        kind="code-server",
        launcher="process",
        pid=1,
        started_at=STARTED_AT,
        agent={HOST_QUEUE: AGENT, OTHER_HOST_QUEUE: "agent-2"}.get(host_queue or ""),
        host_queue=host_queue,
    )


def context(
    control_plane: Any, launcher: Launcher, temporal: Client, control_plane_url: str
) -> AgentContext:
    """As worker/main.py builds it (the run settings' stop grace short for the tests)."""
    return AgentContext(
        control_plane=control_plane,
        launcher=launcher,
        temporal=temporal,
        agent_name=AGENT,
        worker_control_plane_url=control_plane_url,
        run_settings=RunSettings(stop_grace_seconds=2),
        task_queue_base=BASE,
        host_queue=HOST_QUEUE,
    )


@pytest.fixture
async def agent(
    tenant: Tenant,
    files: Files,
    temporal: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Agent]:
    # The agent's own environment holds the location's secret (passthrough_env).
    monkeypatch.setenv(SECRET_NAME, SECRET)
    control_plane = RecordingControlPlane(tenant.cp.url, tenant.agent_token)
    launcher = ProcessLauncher(tmp_path / "agent-state")
    ctx = context(control_plane, launcher, temporal, tenant.cp.url)
    runs = RunActivities(ctx)
    try:
        yield Agent(tenant, files, temporal, control_plane, launcher, ctx, runs)
    finally:
        launcher.stop_all(grace_seconds=2)
        await runs.aclose()
        await control_plane.aclose()


def finish_events(tenant: Tenant, run_id: str, final: str, message: str) -> None:
    """The run's worker ends it itself, with the user's text in its final event."""
    with client(tenant.cp.url, tenant.run_token(run_id)) as worker:
        batch = {"events": [event(1, "RUN_START"), event(2, final, message)]}
        r = worker.post(f"/api/v1/runs/{run_id}/events", json=batch)
        assert r.status_code == 200, r.text


def set_forwarding(tenant: Tenant, forwarding: str) -> None:
    with tenant.user() as c:
        r = c.patch(tenant.dep_path, json={"log_settings": {"forwarding": forwarding}})
        assert r.status_code == 200, r.text


def masked(text: str) -> str:
    return text.replace(SECRET, f"<masked:{SECRET_NAME}>")


# --- prepare_run ---------------------------------------------------------------------------


async def test_a_valid_run_proceeds_with_its_steps_and_its_code_server(
    agent: Agent, served: str
) -> None:
    """Validated by the location's code server on this host: the job's steps, the max
    runtime from its tag, and the code server (with its generation) to fork the worker from."""
    agent.deploy()
    state = await agent.serving(served)
    run = agent.tenant.launch("loc", "etl", run_config={"source": "s3://orders"})
    tagged = agent.tenant.launch(
        "loc", "etl", run_config={"source": "s3://orders"}, tags={MAX_RUNTIME_TAG: "90"}
    )
    assert state.server is not None
    expected = PrepareRunOutput(
        proceed=True,
        status=RunStatus.STARTING,
        steps=["extract", "load"],
        code_server_label=state.server.label,
        code_server_generation=1,
    )
    assert await agent.prepare(run["id"]) == expected
    assert await agent.prepare(tagged["id"]) == expected.model_copy(
        update={"max_runtime_seconds": 90.0}
    )
    # Nothing was reported: the workflow launches it next.
    assert agent.control_plane.reports == []
    assert agent.tenant.run(run["id"])["status"] == "STARTING"


async def test_an_invalid_config_is_refused_in_the_control_plane_masked_and_not_in_the_result(
    agent: Agent, served: str
) -> None:
    """The code server's verdict (the user's text) goes to the control plane, masked; the
    workflow learns only that the run was refused."""
    agent.deploy()
    await agent.serving(served)
    run = agent.tenant.launch("loc", "etl", run_config={"source": f"bad:{MARKER}:{SECRET}"})

    result = await agent.prepare(run["id"])

    assert result == PrepareRunOutput(proceed=False, status=RunStatus.FAILURE, message=REFUSED)
    assert MARKER not in result.model_dump_json() and SECRET not in result.model_dump_json()
    found = agent.tenant.run(run["id"])
    assert found["status"] == "FAILURE"
    assert found["status_message"] == masked(
        f"invalid run config for job 'etl': source: Value error, cannot read bad:{MARKER}:{SECRET}"
    )
    assert SECRET not in found["status_message"]


async def test_a_location_in_error_refuses_the_run_with_its_message_masked(agent: Agent) -> None:
    agent.deploy()
    await agent.serving(
        None,
        status=CodeLocationStatus.ERROR,
        server=False,
        message=f"could not load the definitions: ImportError: no {SECRET}",
    )
    run = agent.tenant.launch("loc", "etl", run_config={"source": "s3://orders"})

    assert await agent.prepare(run["id"]) == PrepareRunOutput(
        proceed=False, status=RunStatus.FAILURE, message=REFUSED
    )
    found = agent.tenant.run(run["id"])
    assert (found["status"], found["status_message"]) == (
        "FAILURE",
        masked(
            f"code location loc is ERROR: could not load the definitions: ImportError: no "
            f"{SECRET}; fix it and redeploy"
        ),
    )


async def test_a_location_not_serving_yet_is_retried_and_the_run_left_as_it_is(
    agent: Agent,
) -> None:
    agent.deploy()
    await agent.serving(None, status=CodeLocationStatus.STARTING, server=False)
    run = agent.tenant.launch("loc", "etl", run_config={"source": "s3://orders"})
    with pytest.raises(ApplicationError) as raised:
        await agent.prepare(run["id"])
    assert raised.value.type == "CodeLocationNotReady" and not raised.value.non_retryable
    assert agent.tenant.run(run["id"])["status"] == "STARTING"
    assert agent.control_plane.reports == []


async def test_a_code_server_on_another_host_validates_the_run_there(
    agent: Agent, served: str
) -> None:
    """prepare_run names the code server's host; validate_run, run there, validates."""
    agent.deploy()
    await agent.serving(served, host_queue=OTHER_HOST_QUEUE)
    run = agent.tenant.launch("loc", "etl", run_config={"source": "s3://orders"})

    prepared = await agent.prepare(run["id"])

    assert prepared == PrepareRunOutput(
        proceed=True, status=RunStatus.STARTING, validate_on=OTHER_HOST_QUEUE, address=served
    )
    validated = await ActivityEnvironment().run(
        agent.runs.validate_run,
        ValidateRunInput(run_id=run["id"], code_location="loc", address=served),
    )
    assert validated == PrepareRunOutput(
        proceed=True, status=RunStatus.STARTING, steps=["extract", "load"]
    )


@pytest.mark.parametrize(("final", "status"), ENDINGS)
async def test_a_finished_run_is_already_finished(
    agent: Agent, served: str, final: str, status: str
) -> None:
    """A launch delivered again after its run ended: nothing to do, nothing reported."""
    agent.deploy()
    await agent.serving(served)
    run = agent.tenant.launch("loc", "etl", run_config={"source": "s3://orders"})
    finish_events(agent.tenant, run["id"], final, f"{MARKER} said so")

    assert await agent.prepare(run["id"]) == PrepareRunOutput(
        proceed=False, status=RunStatus(status), message="already finished"
    )
    assert agent.control_plane.reports == []
    assert agent.tenant.run(run["id"])["status_message"] == f"{MARKER} said so"


async def test_a_run_terminated_before_it_started_is_canceled(agent: Agent, served: str) -> None:
    agent.deploy()
    await agent.serving(served)
    run = agent.tenant.launch("loc", "etl", run_config={"source": "s3://orders"})
    with agent.tenant.user() as c:
        r = c.post(f"{agent.tenant.dep_path}/runs/{run['id']}/terminate")
        assert r.status_code == 202, r.text
    assert await agent.prepare(run["id"]) == PrepareRunOutput(
        proceed=False, status=RunStatus.CANCELED, message="canceled before it started"
    )


@pytest.mark.parametrize("raw", ["soon", "0", "-5", "inf", "nan", ""])
async def test_a_bad_max_runtime_tag_refuses_the_run(agent: Agent, served: str, raw: str) -> None:
    agent.deploy()
    await agent.serving(served)
    run = agent.tenant.launch(
        "loc", "etl", run_config={"source": "s3://orders"}, tags={MAX_RUNTIME_TAG: raw}
    )

    assert await agent.prepare(run["id"]) == PrepareRunOutput(
        proceed=False, status=RunStatus.FAILURE, message=REFUSED
    )
    found = agent.tenant.run(run["id"])
    assert (found["status"], found["status_message"]) == (
        "FAILURE",
        f"tag {MAX_RUNTIME_TAG}={raw!r} is not a positive number of seconds",
    )


# --- the warm-or-cold choice ---------------------------------------------------------------


class ColdOnly(ProcessLauncher):
    """A launcher that cannot fork run workers from a code server (as the Docker one)."""

    @property
    def supports_warm_fork(self) -> bool:
        return False


@pytest.fixture
async def bare(temporal: Client, tmp_path: Path) -> AsyncIterator[RunActivities]:
    """The run activities with no control plane: ``_warm_from`` asks only Temporal."""
    launcher = ProcessLauncher(tmp_path / "state")
    runs = RunActivities(context(cast(Any, None), launcher, temporal, "http://127.0.0.1:9"))
    try:
        yield runs
    finally:
        await runs.aclose()


def warm_input(
    org: str, label: str | None = None, generation: int | None = None
) -> LaunchRunWorkerInput:
    return LaunchRunWorkerInput(
        organization=org,
        deployment="prod",
        run_id="r-1",
        code_location="loc",
        label="run:r-1",
        code_server_label=label,
        code_server_generation=generation,
    )


@pytest.mark.parametrize(
    ("warm_fork", "launch", "given_generation", "warm"),
    [
        (True, "warm", 2, True),
        (True, "warm", None, True),  # prepared by an agent that did not name the generation
        (True, "warm", 1, False),  # a redeploy is under way: the worker starts on the new code
        (True, "cold", 2, False),
        (False, "warm", 2, False),
    ],
    ids=["warm", "generation-unknown", "older-generation", "cold-location", "launcher-cannot"],
)
async def test_the_code_server_prepare_run_named_is_forked_from_only_when_all_allow_it(
    bare: RunActivities,
    tmp_path: Path,
    warm_fork: bool,
    launch: str,
    given_generation: int | None,
    warm: bool,
) -> None:
    if not warm_fork:
        bare.ctx.launcher = ColdOnly(tmp_path / "cold-state")
    chosen = await bare._warm_from(
        warm_input("org-x", "code-location:org-x:prod:loc#1", given_generation), launch, 2
    )
    assert chosen == ("code-location:org-x:prod:loc#1" if warm else None)


@pytest.mark.parametrize(
    ("where", "deployed", "has_server", "warm"),
    [
        (HOST_QUEUE, 2, True, True),
        (None, 2, True, True),  # recorded before handles named a host: local
        (OTHER_HOST_QUEUE, 2, True, False),
        (HOST_QUEUE, 1, True, False),  # still serving the generation before this one
        (HOST_QUEUE, None, False, False),  # no code server (being replaced)
    ],
    ids=["local", "legacy-handle", "other-host", "older-generation", "no-server"],
)
async def test_without_a_named_code_server_the_locations_workflow_is_asked(
    bare: RunActivities,
    temporal: Client,
    where: str | None,
    deployed: int | None,
    has_server: bool,
    warm: bool,
) -> None:
    """A launch whose prepare named no code server (its code server on another host, or an
    older workflow): the location's workflow says where the code server is."""
    org = f"org-{uuid.uuid4().hex[:8]}"
    server = server_handle(org, "loc", where) if has_server else None
    await start_location_workflow(
        temporal,
        LOCATIONS_QUEUE,
        org,
        "prod",
        CodeLocationState(
            name="loc",
            status=CodeLocationStatus.RUNNING,
            generation=2,
            deployed_generation=deployed,
            server=server,
            address="http://127.0.0.1:1" if has_server else None,
        ),
    )
    chosen = await bare._warm_from(warm_input(org), "warm", 2)
    assert chosen == (server.label if warm and server else None)


async def test_no_location_workflow_means_a_cold_start(bare: RunActivities) -> None:
    assert await bare._warm_from(warm_input("org-without-workflows"), "warm", 1) is None


@pytest.mark.parametrize("launch", ["warm", "cold"])
async def test_launch_run_worker_forks_from_the_code_server_only_for_a_warm_location(
    agent: Agent, launch: str
) -> None:
    """Through the activity: a warm launch asks the named code server's fork server first
    (none is up here, so it falls back to a cold start, as the launcher does); a cold one
    never does. The run is STARTED by this agent either way."""
    agent.deploy(launch=launch, exit_code=0)
    run = agent.tenant.launch("loc", "etl", run_config={"source": "s3://orders"})
    label = f"{names.code_location_workflow_id(agent.tenant.org, 'prod', 'loc')}#1"

    handle = await agent.launch_worker(run["id"], code_server_label=label, code_server_generation=1)

    assert (handle.agent, handle.host_queue, handle.adopted) == (AGENT, HOST_QUEUE, False)
    await agent.exited(handle)
    assert handle.log_path is not None
    log = Path(handle.log_path).read_text()
    if launch == "warm":
        assert f"(warm, forked by the code server {label})" in log
        assert "starting cold" in log
    else:
        assert "warm" not in log
    found = agent.tenant.run(run["id"])
    assert (found["status"], found["agent"]) == ("STARTED", AGENT)
    assert found["status_message"] == f"run worker started ({handle.where()})"


# --- watch_run_worker ----------------------------------------------------------------------


@pytest.mark.parametrize("forwarding", ["all", "structured"])
async def test_a_worker_exiting_non_zero_is_reported_by_its_watch(
    agent: Agent, forwarding: str
) -> None:
    """The watch reports the exit itself, on the worker's host: FAILURE with the worker's
    last lines (masked) where the deployment forwards everything, none with 'structured'.
    Its result says only how the worker exited."""
    set_forwarding(agent.tenant, forwarding)
    agent.deploy(exit_code=1)
    run = agent.tenant.launch("loc", "etl", run_config={"source": "s3://orders"})
    handle = await agent.launch_worker(run["id"])
    beats = Heartbeats()

    result = await beats.env.run(
        agent.runs.watch_run_worker,
        WatchInput(handle=handle, interval_seconds=0.05, max_seconds=30),
    )

    assert result == WatchRunWorkerOutput(running=False, exit_code=1)
    assert MARKER not in result.model_dump_json()
    assert beats.count >= 1
    found = agent.tenant.run(run["id"])
    assert (found["status"], found["exit_code"]) == ("FAILURE", 1)
    verdict, *tail = found["status_message"].split("\n")
    assert verdict == "the run worker exited with code 1 without a final event"
    report = agent.control_plane.reports_of(run["id"])[-1]
    assert report.status == RunStatus.FAILURE and report.exit_code == 1
    lines = [
        masked(f"{MARKER}: reading with {SECRET}"),
        f"{MARKER}: the last line",
    ]
    if forwarding == "all":
        assert report.log_tail[-2:] == lines
        assert tail[0] == "--- last log lines ---" and tail[-2:] == lines
    else:
        assert report.log_tail == [] and tail == []
    assert SECRET not in found["status_message"]


async def test_a_canceled_watch_leaves_the_worker_running(agent: Agent) -> None:
    """Cancellation (a terminate, the agent shutting down) stops the watch, not the worker:
    stopping it is stop_run_worker's job."""
    agent.deploy(sleep=60)
    run = agent.tenant.launch("loc", "etl", run_config={"source": "s3://orders"})
    handle = await agent.launch_worker(run["id"])
    beats = Heartbeats()
    watching = asyncio.create_task(
        beats.env.run(
            agent.runs.watch_run_worker,
            WatchInput(handle=handle, interval_seconds=0.05, max_seconds=30),
        )
    )
    while beats.count < 2:
        await asyncio.sleep(0.02)
    beats.env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watching
    assert agent.launcher.inspect(handle).running
    assert agent.tenant.run(run["id"])["status"] == "STARTED"


# --- finish_run and its verdicts -----------------------------------------------------------


@pytest.mark.parametrize(
    ("exit_code", "verdict"),
    [
        (1, "the run worker exited with code 1 without a final event"),
        (3, "the run worker could not deliver its events to the control plane (exit code 3)"),
        (4, "the control plane refused the run worker (exit code 4)"),
    ],
)
async def test_a_worker_that_ended_without_a_final_event_fails_the_run(
    agent: Agent, exit_code: int, verdict: str
) -> None:
    agent.deploy(exit_code=exit_code)
    run = agent.tenant.launch("loc", "etl", run_config={"source": "s3://orders"})
    handle = await agent.launch_worker(run["id"])
    await agent.exited(handle)

    result = await agent.finish(
        FinishRunInput(
            run_id=run["id"],
            label=handle.label,
            handle=handle,
            outcome=RunOutcome.EXITED,
            exit_code=exit_code,
        )
    )

    assert result == RunResult(
        run_id=run["id"], status=RunStatus.FAILURE, message=verdict, exit_code=exit_code
    )
    found = agent.tenant.run(run["id"])
    assert (found["status"], found["exit_code"]) == ("FAILURE", exit_code)
    assert found["status_message"].split("\n")[0] == verdict
    # Its outcome recorded, the launcher was told it finished (a failure: its output kept).
    assert (Path(handle.log_path or "").parent / "finished").exists()


async def test_a_terminated_run_is_canceled_with_the_reason_and_its_worker_stopped(
    agent: Agent,
) -> None:
    """A terminate that raced the launch: finish_run finds the worker the launch started,
    stops it, and reports CANCELED with the terminate's reason."""
    agent.deploy(sleep=60)
    run = agent.tenant.launch("loc", "etl", run_config={"source": "s3://orders"})
    handle = await agent.launch_worker(run["id"])
    reason = "terminated by a user: wrong day"

    result = await agent.finish(
        FinishRunInput(
            run_id=run["id"],
            label=handle.label,
            handle=None,
            outcome=RunOutcome.TERMINATED,
            message=reason,
        )
    )

    assert (result.status, result.message) == (RunStatus.CANCELED, reason)
    assert not agent.launcher.inspect(handle).running
    found = agent.tenant.run(run["id"])
    assert found["status"] == "CANCELED"
    assert found["status_message"].split("\n")[0] == reason


@pytest.mark.parametrize("outcome", [RunOutcome.EXITED, RunOutcome.TERMINATED])
@pytest.mark.parametrize(("final", "status"), ENDINGS)
async def test_a_run_already_final_is_left_as_it_is_and_its_message_stays_out(
    agent: Agent, outcome: RunOutcome, final: str, status: str
) -> None:
    """The worker's own final event got there first: its status stays, and the result's
    message is None, never the control plane's status message (the run's own text)."""
    agent.deploy(exit_code=0)
    run = agent.tenant.launch("loc", "etl", run_config={"source": "s3://orders"})
    handle = await agent.launch_worker(run["id"])
    await agent.exited(handle)
    said = f"steps failed: {MARKER}"
    finish_events(agent.tenant, run["id"], final, said)
    reports = len(agent.control_plane.reports)

    result = await agent.finish(
        FinishRunInput(
            run_id=run["id"],
            label=handle.label,
            handle=handle,
            outcome=outcome,
            exit_code=0,
            message="terminated by a user" if outcome == RunOutcome.TERMINATED else None,
        )
    )

    assert result == RunResult(run_id=run["id"], status=RunStatus(status), message=None)
    assert MARKER not in result.model_dump_json()
    assert len(agent.control_plane.reports) == reports  # nothing reported
    found = agent.tenant.run(run["id"])
    assert (found["status"], found["status_message"]) == (status, said)
