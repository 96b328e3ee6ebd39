"""CodeLocationWorkflow: first deploy, load failures and crashes retried with growing backoff,
redeploys (signal, sync, update), removal. Time-skipping test server, except the update tests
(the dev server: the test server has no updates)."""

from collections.abc import Awaitable, Callable
from itertools import pairwise
from typing import Any, NoReturn

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from tests.workflows.conftest import (
    Recorder,
    canceled_activities,
    handle,
    new_worker,
    signals_processed,
    skipping_time,
    unique_id,
    until_canceled,
)
from tether_api.enums import CodeLocationStatus as Status
from workflows import names
from workflows.code_location import CodeLocationWorkflow
from workflows.handles import Handle
from workflows.models import (
    CodeLocationSettings,
    CodeLocationState,
    CodeLocationWorkflowInput,
    LocationStatusInput,
    NewGenerationInput,
    NewGenerationOutput,
    PublishSnapshotInput,
    PublishSnapshotOutput,
    RemoveSignal,
    StartCodeServerInput,
    StartCodeServerOutput,
    StopInput,
    StopOutput,
    SyncSignal,
    WaitReadyInput,
    WaitReadyOutput,
    WatchInput,
    WatchOutput,
)

ORG, DEPLOYMENT, NAME = "acme", "prod", "quick"
LOAD_ERROR = "ModuleNotFoundError: No module named 'warehouse'"


def number(label: str) -> int:
    """The deploy number a server label ends with (``...#3``)."""
    return int(label.rsplit("#", 1)[1])


def address(n: int) -> str:
    return f"http://127.0.0.1:{4000 + n}"


def server(workflow_id: str, n: int) -> Handle:
    """The handle the stand-in start activity returns for deploy ``n``."""
    return handle(f"{workflow_id}#{n}", pid=1000 + n)


class LocationStandIns:
    """CodeLocationWorkflow's activities, recorded. Each behaviour is an attribute a test
    replaces; by default servers start, answer /health, load and then run until canceled."""

    def __init__(self) -> None:
        self.rec = Recorder()
        self.generation = 1  # the control plane's, as new_generation advances it
        self.lost_answers = 0  # new_generation calls whose answer is lost after recording
        self.start: Callable[[StartCodeServerInput], Awaitable[StartCodeServerOutput]] = (
            self.started
        )
        self.wait_ready: Callable[[WaitReadyInput], Awaitable[WaitReadyOutput]] = self.ready
        self.publish: Callable[[PublishSnapshotInput], Awaitable[PublishSnapshotOutput]] = (
            self.loaded
        )
        self.watch: Callable[[WatchInput], Awaitable[WatchOutput]] = self.runs

    @staticmethod
    async def started(input: StartCodeServerInput) -> StartCodeServerOutput:
        return StartCodeServerOutput(handle=handle(input.label, pid=1000 + number(input.label)))

    @staticmethod
    async def ready(input: WaitReadyInput) -> WaitReadyOutput:
        return WaitReadyOutput(address=address(number(input.handle.label)))

    @staticmethod
    async def loaded(input: PublishSnapshotInput) -> PublishSnapshotOutput:
        return PublishSnapshotOutput(loaded=True, jobs=2)

    @staticmethod
    async def fails_to_load(input: PublishSnapshotInput) -> PublishSnapshotOutput:
        return PublishSnapshotOutput(loaded=False, error=LOAD_ERROR)

    @staticmethod
    async def runs(input: WatchInput) -> NoReturn:
        await until_canceled()

    @property
    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.start_code_server,
            self.wait_code_server_ready,
            self.publish_snapshot,
            self.watch_code_server,
            self.stop_code_server,
            self.report_code_location_status,
            self.new_generation,
        ]

    def reports(self) -> list[LocationStatusInput]:
        reports: list[LocationStatusInput] = self.rec.inputs(names.REPORT_CODE_LOCATION_STATUS)
        return reports

    def statuses(self) -> list[Status]:
        return [r.status for r in self.reports()]

    def index(self, name: str, label_suffix: str) -> int:
        """Position in the call order of the first ``name`` call about server ``#n``."""
        for i, call in enumerate(self.rec.calls):
            if call.name == name and call.input.handle.label.endswith(label_suffix):
                return i
        raise AssertionError(f"no {name} of server {label_suffix}: {self.rec.names()}")

    @activity.defn(name=names.START_CODE_SERVER)
    async def start_code_server(self, input: StartCodeServerInput) -> StartCodeServerOutput:
        self.rec.record(names.START_CODE_SERVER, input)
        return await self.start(input)

    @activity.defn(name=names.WAIT_CODE_SERVER_READY)
    async def wait_code_server_ready(self, input: WaitReadyInput) -> WaitReadyOutput:
        self.rec.record(names.WAIT_CODE_SERVER_READY, input)
        return await self.wait_ready(input)

    @activity.defn(name=names.PUBLISH_SNAPSHOT)
    async def publish_snapshot(self, input: PublishSnapshotInput) -> PublishSnapshotOutput:
        self.rec.record(names.PUBLISH_SNAPSHOT, input)
        return await self.publish(input)

    @activity.defn(name=names.WATCH_CODE_SERVER)
    async def watch_code_server(self, input: WatchInput) -> WatchOutput:
        self.rec.record(names.WATCH_CODE_SERVER, input)
        return await self.watch(input)

    @activity.defn(name=names.STOP_CODE_SERVER)
    async def stop_code_server(self, input: StopInput) -> StopOutput:
        self.rec.record(names.STOP_CODE_SERVER, input)
        return StopOutput(exit_code=-15)

    @activity.defn(name=names.REPORT_CODE_LOCATION_STATUS)
    async def report_code_location_status(self, input: LocationStatusInput) -> None:
        self.rec.record(names.REPORT_CODE_LOCATION_STATUS, input)

    @activity.defn(name=names.NEW_GENERATION)
    async def new_generation(self, input: NewGenerationInput) -> NewGenerationOutput:
        self.rec.record(names.NEW_GENERATION, input)
        # As the control plane does: a new generation after the one followed, only once.
        if input.follows is None or input.follows == self.generation:
            self.generation += 1
        if self.lost_answers:
            self.lost_answers -= 1
            raise RuntimeError("the connection closed before the control plane's answer")
        return NewGenerationOutput(generation=self.generation)


@pytest.fixture
def acts() -> LocationStandIns:
    return LocationStandIns()


Location = WorkflowHandle[CodeLocationWorkflow, CodeLocationState]


async def start(
    env: WorkflowEnvironment,
    task_queue: str,
    settings: CodeLocationSettings | None = None,
    name: str = NAME,
) -> Location:
    return await env.client.start_workflow(
        CodeLocationWorkflow.run,
        CodeLocationWorkflowInput(
            organization=ORG,
            deployment=DEPLOYMENT,
            name=name,
            generation=1,
            settings=settings or CodeLocationSettings(),
        ),
        id=names.code_location_workflow_id(ORG, DEPLOYMENT, name),
        task_queue=task_queue,
    )


async def watching(acts: LocationStandIns, count: int) -> None:
    """Until the ``count``-th watch started: that server is RUNNING."""
    await acts.rec.wait_for(
        lambda: acts.rec.count(names.WATCH_CODE_SERVER) >= count, what=f"watch #{count}"
    )


# --- first deploy ----------------------------------------------------------------------------


async def test_first_deploy_starts_loads_and_runs(
    env: WorkflowEnvironment, acts: LocationStandIns
) -> None:
    async with new_worker(env.client, [CodeLocationWorkflow], acts.activities) as worker:
        location = await start(env, worker.task_queue)
        await watching(acts, 1)
        state = await location.query(CodeLocationWorkflow.state)

    workflow_id = location.id
    assert acts.rec.names() == [
        names.REPORT_CODE_LOCATION_STATUS,
        names.START_CODE_SERVER,
        names.WAIT_CODE_SERVER_READY,
        names.REPORT_CODE_LOCATION_STATUS,
        names.PUBLISH_SNAPSHOT,
        names.WATCH_CODE_SERVER,
    ]
    assert acts.statuses() == [Status.STARTING, Status.LOADING]
    assert all(r.generation == 1 and r.name == NAME for r in acts.reports())
    start_input: StartCodeServerInput = acts.rec.inputs(names.START_CODE_SERVER)[0]
    assert start_input == StartCodeServerInput(
        organization=ORG, deployment=DEPLOYMENT, name=NAME, label=f"{workflow_id}#1", generation=1
    )
    first = server(workflow_id, 1)
    assert acts.rec.inputs(names.WAIT_CODE_SERVER_READY)[0].handle == first
    assert acts.rec.inputs(names.PUBLISH_SNAPSHOT)[0] == PublishSnapshotInput(
        name=NAME, generation=1, address=address(1), handle=first
    )
    watch: WatchInput = acts.rec.inputs(names.WATCH_CODE_SERVER)[0]
    assert watch.handle == first and watch.address == address(1)
    assert state.status == Status.RUNNING
    assert state.address == address(1)
    assert state.server == first
    assert state.generation == 1 and state.deployed_generation == 1
    assert state.deploys == 1 and state.consecutive_failures == 0
    assert state.message == f"2 jobs; code server #1 at {address(1)}"


# --- failures and restarts -------------------------------------------------------------------


async def test_a_load_failure_stops_the_server_and_retries_with_growing_backoff(
    env: WorkflowEnvironment, acts: LocationStandIns
) -> None:
    acts.publish = acts.fails_to_load
    async with new_worker(env.client, [CodeLocationWorkflow], acts.activities) as worker:
        location = await start(env, worker.task_queue)
        await acts.rec.wait_for(lambda: acts.rec.count(names.STOP_CODE_SERVER) == 1)
        state = await location.query(CodeLocationWorkflow.state)
        assert state.status == Status.ERROR
        assert state.message == LOAD_ERROR
        assert state.server is None and state.address is None
        assert state.consecutive_failures == 1
        assert acts.rec.inputs(names.STOP_CODE_SERVER)[0].handle == server(location.id, 1)
        assert acts.rec.count(names.START_CODE_SERVER) == 1, "no restart before the backoff"
        async with skipping_time(env):
            await acts.rec.wait_for(lambda: acts.rec.count(names.START_CODE_SERVER) >= 5)

    assert names.WATCH_CODE_SERVER not in acts.rec.names()
    starts = acts.rec.of(names.START_CODE_SERVER)
    assert [number(c.input.label) for c in starts[:5]] == [1, 2, 3, 4, 5]
    gaps = [(b.scheduled - a.scheduled).total_seconds() for a, b in pairwise(starts[:5])]
    for gap, backoff in zip(gaps, [2, 4, 8, 16], strict=True):
        assert backoff <= gap < backoff + 1, gaps
    stopped = [number(s.handle.label) for s in acts.rec.inputs(names.STOP_CODE_SERVER)]
    assert stopped[:4] == [1, 2, 3, 4], "every server that failed to load is stopped"
    # publish_snapshot reports the load error itself (with the traceback); the workflow
    # reports only the retries.
    assert Status.ERROR not in acts.statuses()


async def test_a_server_that_never_gets_ready_reports_error_with_the_retry_delay(
    env: WorkflowEnvironment, acts: LocationStandIns
) -> None:
    async def exits_early(input: WaitReadyInput) -> NoReturn:
        raise ApplicationError(
            "the code server exited with code 1 before it answered /health",
            type="CodeServerExited",
            non_retryable=True,
        )

    acts.wait_ready = exits_early
    settings = CodeLocationSettings(restart_backoff_max_seconds=10)
    async with new_worker(env.client, [CodeLocationWorkflow], acts.activities) as worker:
        location = await start(env, worker.task_queue, settings)
        async with skipping_time(env):
            await acts.rec.wait_for(lambda: acts.rec.count(names.STOP_CODE_SERVER) >= 6)

    errors = [r for r in acts.reports() if r.status == Status.ERROR][:6]
    assert [r.message for r in errors] == [
        f"the code server exited with code 1 before it answered /health (retrying in {s} s)"
        for s in (2, 4, 8, 10, 10, 10)
    ]
    # Each ERROR carries the failed server, whose last log lines the activity attaches.
    assert [r.log_handle for r in errors] == [server(location.id, n) for n in range(1, 7)]
    stopped = [number(s.handle.label) for s in acts.rec.inputs(names.STOP_CODE_SERVER)]
    assert stopped[:6] == [1, 2, 3, 4, 5, 6]


async def test_a_crashed_server_is_reported_stopped_and_restarted_after_the_backoff(
    env: WorkflowEnvironment, acts: LocationStandIns
) -> None:
    async def crashes_once(input: WatchInput) -> WatchOutput:
        if number(input.handle.label) == 1:
            return WatchOutput(running=False, reason="exited with code 1", exit_code=1)
        await until_canceled()

    acts.watch = crashes_once
    async with new_worker(env.client, [CodeLocationWorkflow], acts.activities) as worker:
        location = await start(env, worker.task_queue)
        await acts.rec.wait_for(lambda: acts.rec.count(names.STOP_CODE_SERVER) == 1)

        async def stopped() -> bool:
            # The stop's completion reaches the workflow a moment after the stand-in ran.
            state = await location.query(CodeLocationWorkflow.state)
            return state.status == Status.ERROR and state.server is None

        await acts.rec.wait_for(stopped, what="ERROR with no server")
        async with skipping_time(env):
            await watching(acts, 2)
        state = await location.query(CodeLocationWorkflow.state)

    first, second = server(location.id, 1), server(location.id, 2)
    assert acts.statuses() == [
        Status.STARTING,
        Status.LOADING,
        Status.ERROR,
        Status.STARTING,
        Status.LOADING,
    ]
    error = acts.reports()[2]
    assert error.message == "code server #1 exited with code 1 (retrying in 2 s)"
    assert error.log_handle == first
    assert acts.rec.inputs(names.STOP_CODE_SERVER) == [StopInput(handle=first, grace_seconds=10)]
    restarted = acts.rec.of(names.START_CODE_SERVER)[1]
    crashed = acts.rec.of(names.STOP_CODE_SERVER)[0]
    assert (restarted.scheduled - crashed.scheduled).total_seconds() >= 2
    assert state.status == Status.RUNNING
    assert state.server == second and state.address == address(2)
    assert state.deploys == 2 and state.consecutive_failures == 0


# --- redeploys -------------------------------------------------------------------------------


async def test_redeploy_signal_starts_a_new_server_and_stops_the_old_one_after_it_loaded(
    env: WorkflowEnvironment, acts: LocationStandIns
) -> None:
    async with new_worker(env.client, [CodeLocationWorkflow], acts.activities) as worker:
        location = await start(env, worker.task_queue)
        await watching(acts, 1)
        await location.signal(CodeLocationWorkflow.redeploy)
        await watching(acts, 2)
        state = await location.query(CodeLocationWorkflow.state)

    labels = [i.label for i in acts.rec.inputs(names.START_CODE_SERVER)]
    assert labels == [f"{location.id}#1", f"{location.id}#2"]
    assert await canceled_activities(location) == [names.WATCH_CODE_SERVER]
    # The old server serves until the new one has loaded its definitions.
    published_2 = acts.index(names.PUBLISH_SNAPSHOT, "#2")
    stopped_1 = acts.index(names.STOP_CODE_SERVER, "#1")
    watching_2 = acts.index(names.WATCH_CODE_SERVER, "#2")
    assert published_2 < stopped_1 < watching_2
    assert acts.rec.count(names.STOP_CODE_SERVER) == 1
    assert acts.statuses() == [Status.STARTING, Status.LOADING, Status.UPDATING, Status.LOADING]
    assert state.status == Status.RUNNING
    assert state.server == server(location.id, 2) and state.address == address(2)
    assert state.deploys == 2 and state.redeploy_pending is False
    # A redeploy sent straight through Temporal is recorded as a new generation, as one
    # sent through the control plane is, before the new server starts.
    [recorded] = acts.rec.inputs(names.NEW_GENERATION)
    assert recorded.follows == 1  # the generation it follows: a retry records no other
    order = acts.rec.names()
    second_start = len(order) - 1 - order[::-1].index(names.START_CODE_SERVER)
    assert order.index(names.NEW_GENERATION) < second_start
    assert state.generation == state.deployed_generation == 2
    assert [r.generation for r in acts.reports()[2:]] == [2, 2]


async def test_a_redeploy_whose_new_generation_answer_is_lost_records_one(
    env: WorkflowEnvironment, acts: LocationStandIns
) -> None:
    """new_generation is retried until it answers. The control plane recorded the first
    call's generation, but its answer was lost: the retry follows the same generation, so
    no second one is recorded and the redeploy deploys the first."""
    acts.lost_answers = 1
    async with new_worker(env.client, [CodeLocationWorkflow], acts.activities) as worker:
        location = await start(env, worker.task_queue)
        await watching(acts, 1)
        await location.signal(CodeLocationWorkflow.redeploy)
        await watching(acts, 2)
        state = await location.query(CodeLocationWorkflow.state)

    assert [i.follows for i in acts.rec.inputs(names.NEW_GENERATION)] == [1, 1]
    assert acts.generation == 2
    assert state.generation == state.deployed_generation == 2
    assert acts.rec.inputs(names.START_CODE_SERVER)[1].generation == 2


async def test_sync_of_the_deployed_generation_changes_nothing_a_newer_one_deploys(
    env: WorkflowEnvironment, acts: LocationStandIns
) -> None:
    async with new_worker(env.client, [CodeLocationWorkflow], acts.activities) as worker:
        location = await start(env, worker.task_queue)
        await watching(acts, 1)
        await location.signal(CodeLocationWorkflow.sync, SyncSignal(generation=1))
        await acts.rec.wait_for(lambda: signals_processed(location, 1), what="sync 1 seen")
        # The history shows the workflow handled the signal: a deploy would have begun.
        assert acts.rec.count(names.START_CODE_SERVER) == 1
        assert await canceled_activities(location) == []

        await location.signal(CodeLocationWorkflow.sync, SyncSignal(generation=2))
        await watching(acts, 2)
        state = await location.query(CodeLocationWorkflow.state)

    assert acts.rec.count(names.START_CODE_SERVER) == 2
    assert acts.rec.inputs(names.PUBLISH_SNAPSHOT)[1].generation == 2
    updating = acts.reports()[2]
    assert updating.status == Status.UPDATING and updating.generation == 2
    assert state.generation == 2 and state.deployed_generation == 2
    assert state.status == Status.RUNNING and state.server == server(location.id, 2)


# --- removal ---------------------------------------------------------------------------------


async def test_remove_stops_the_server_and_completes(
    env: WorkflowEnvironment, acts: LocationStandIns
) -> None:
    async with new_worker(env.client, [CodeLocationWorkflow], acts.activities) as worker:
        location = await start(env, worker.task_queue)
        await watching(acts, 1)
        await location.signal(CodeLocationWorkflow.remove)
        final = await location.result()

    assert await canceled_activities(location) == [names.WATCH_CODE_SERVER]
    assert acts.statuses()[-2:] == [Status.STOPPING, Status.STOPPED]
    # Reported for the removed generation, so a newer deploy's reports win over them.
    assert [r.generation for r in acts.reports()[-2:]] == [1, 1]
    assert acts.rec.inputs(names.STOP_CODE_SERVER) == [
        StopInput(handle=server(location.id, 1), grace_seconds=10)
    ]
    assert acts.rec.names()[-3:] == [
        names.REPORT_CODE_LOCATION_STATUS,
        names.STOP_CODE_SERVER,
        names.REPORT_CODE_LOCATION_STATUS,
    ]
    assert final.status == Status.STOPPED
    assert final.server is None and final.address is None


async def test_a_location_removed_before_its_server_started_completes(
    env: WorkflowEnvironment, acts: LocationStandIns
) -> None:
    async def removed(input: StartCodeServerInput) -> StartCodeServerOutput:
        return StartCodeServerOutput(removed=True)

    acts.start = removed
    async with new_worker(env.client, [CodeLocationWorkflow], acts.activities) as worker:
        final = await (await start(env, worker.task_queue)).result()

    assert acts.statuses() == [Status.STARTING, Status.STOPPING, Status.STOPPED]
    assert names.STOP_CODE_SERVER not in acts.rec.names()
    assert names.WAIT_CODE_SERVER_READY not in acts.rec.names()
    assert final.status == Status.STOPPED and final.server is None


# --- the redeploy_and_wait update (dev server) -------------------------------------------------


async def test_redeploy_and_wait_answers_running_once_the_new_server_serves(
    dev_env: WorkflowEnvironment, acts: LocationStandIns
) -> None:
    async with new_worker(dev_env.client, [CodeLocationWorkflow], acts.activities) as worker:
        location = await start(dev_env, worker.task_queue, name=unique_id("update"))
        try:
            await watching(acts, 1)
            state = await location.execute_update(
                names.UPDATE_REDEPLOY, result_type=CodeLocationState
            )
        finally:
            await location.terminate(reason="end of test")

    assert state.status == Status.RUNNING
    assert state.server is not None and state.server.label.endswith("#2")
    assert state.address == address(2)
    assert state.deploys == 2
    assert acts.index(names.PUBLISH_SNAPSHOT, "#2") < acts.index(names.STOP_CODE_SERVER, "#1")


async def test_redeploy_and_wait_fails_with_the_load_error(
    dev_env: WorkflowEnvironment, acts: LocationStandIns
) -> None:
    async def second_fails(input: PublishSnapshotInput) -> PublishSnapshotOutput:
        if number(input.handle.label) == 1:
            return await acts.loaded(input)
        return await acts.fails_to_load(input)

    acts.publish = second_fails
    async with new_worker(dev_env.client, [CodeLocationWorkflow], acts.activities) as worker:
        location = await start(dev_env, worker.task_queue, name=unique_id("update"))
        try:
            await watching(acts, 1)
            with pytest.raises(WorkflowUpdateFailedError) as failed:
                await location.execute_update(names.UPDATE_REDEPLOY, result_type=CodeLocationState)
            state = await location.query(CodeLocationWorkflow.state)
        finally:
            await location.terminate(reason="end of test")

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert "ERROR" in cause.message and LOAD_ERROR in cause.message
    assert state.status == Status.ERROR
    # A failed update stops the old server too (the location is ERROR, not half-updated).
    stopped = {number(s.handle.label) for s in acts.rec.inputs(names.STOP_CODE_SERVER)}
    assert stopped == {1, 2}


async def test_a_stale_remove_is_ignored_and_a_newer_deploy_survives_a_removal(
    env: WorkflowEnvironment, acts: LocationStandIns
) -> None:
    """`tether remove X; tether deploy X` in quick succession: the deploy wins, whatever order
    the two requests reach the workflow in."""
    async with new_worker(env.client, [CodeLocationWorkflow], acts.activities) as worker:
        location = await start(env, worker.task_queue)
        await watching(acts, 1)
        # The deploy (generation 2) overtook the removal of generation 1: nothing is removed.
        await location.signal(CodeLocationWorkflow.sync, SyncSignal(generation=2))
        await location.signal(CodeLocationWorkflow.remove, RemoveSignal(generation=1))
        await watching(acts, 2)
        assert (await location.query(CodeLocationWorkflow.state)).status == Status.RUNNING
        # Removal of generation 2, then the deploy of generation 3 arrives while it stops.
        await location.signal(CodeLocationWorkflow.remove, RemoveSignal(generation=2))
        await location.signal(CodeLocationWorkflow.sync, SyncSignal(generation=3))
        await watching(acts, 3)
        state = await location.query(CodeLocationWorkflow.state)
        assert state.status == Status.RUNNING and state.generation == 3
        await location.signal(CodeLocationWorkflow.remove)
        final = await location.result()
    assert final.status == Status.STOPPED
