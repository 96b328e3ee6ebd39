"""What only new code can fix, and what a restart fixes.

CodeLocationWorkflow: a load error the code server served (``needs_new_code``) leaves the
location in ERROR, waiting for a redeploy, instead of restarting it with backoff forever; a
crash is still restarted. RunWorkflow: a run whose code server died while it was being
validated (validate_run's ``CodeServerMoved``) looks for the location again instead of
asking the dead address until its start timeout. Time-skipping test server."""

from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.conftest import new_worker, skipping_time, unique_id
from tests.workflows.test_code_location_workflow import (
    LOAD_ERROR,
    NAME,
    LocationStandIns,
    address,
    number,
    start,
    watching,
)
from tests.workflows.test_run_workflow import RunStandIns, finish_input, run_input
from tests.workflows.test_run_workflow import start as start_run
from tether_api.enums import CodeLocationStatus as Status
from tether_api.enums import RunStatus
from workflows import names
from workflows.code_location import CodeLocationWorkflow
from workflows.models import (
    PrepareRunInput,
    PrepareRunOutput,
    PublishSnapshotInput,
    PublishSnapshotOutput,
    SyncSignal,
    ValidateRunInput,
    WatchInput,
    WatchOutput,
)
from workflows.run import RunWorkflow

# --- CodeLocationWorkflow ------------------------------------------------------------------


async def test_a_served_load_error_waits_in_error_for_new_code_then_a_new_generation_runs(
    env: WorkflowEnvironment,
) -> None:
    acts = LocationStandIns()
    fixed = False

    async def fails_until_fixed(input: PublishSnapshotInput) -> PublishSnapshotOutput:
        if fixed:
            return await acts.loaded(input)
        return PublishSnapshotOutput(loaded=False, error=LOAD_ERROR, needs_new_code=True)

    acts.publish = fails_until_fixed
    async with new_worker(env.client, [CodeLocationWorkflow], acts.activities) as worker:
        location = await start(env, worker.task_queue)
        await acts.rec.wait_for(lambda: acts.rec.count(names.STOP_CODE_SERVER) == 1)
        # An hour of the test server's time, far past every backoff (at most 120 s):
        # nothing restarts it.
        await env.sleep(3600)
        state = await location.query(CodeLocationWorkflow.state)
        assert acts.rec.count(names.START_CODE_SERVER) == 1, acts.rec.names()
        assert state.status == Status.ERROR and state.waiting_for_new_code
        assert state.message == f"{LOAD_ERROR}; fix the code and run `tether redeploy {NAME}`"
        assert state.server is None and state.consecutive_failures == 1
        # publish_snapshot reported the load error itself; the workflow adds no report of a
        # retry that will not happen.
        assert acts.statuses() == [Status.STARTING, Status.LOADING]

        fixed = True
        await location.signal(CodeLocationWorkflow.sync, SyncSignal(generation=2))
        await watching(acts, 1)
        state = await location.query(CodeLocationWorkflow.state)
    assert state.status == Status.RUNNING and not state.waiting_for_new_code
    assert state.deployed_generation == 2 and state.address == address(2)
    assert state.consecutive_failures == 0


async def test_a_redeploy_signal_ends_the_wait_for_new_code(env: WorkflowEnvironment) -> None:
    acts = LocationStandIns()

    async def first_fails(input: PublishSnapshotInput) -> PublishSnapshotOutput:
        if number(input.handle.label) == 1:
            return PublishSnapshotOutput(loaded=False, error=LOAD_ERROR, needs_new_code=True)
        return await acts.loaded(input)

    acts.publish = first_fails
    async with new_worker(env.client, [CodeLocationWorkflow], acts.activities) as worker:
        location = await start(env, worker.task_queue)
        await acts.rec.wait_for(lambda: acts.rec.count(names.STOP_CODE_SERVER) == 1)
        await location.signal(CodeLocationWorkflow.redeploy)
        await watching(acts, 1)
        state = await location.query(CodeLocationWorkflow.state)
    assert state.status == Status.RUNNING and state.deploys == 2
    assert acts.rec.count(names.NEW_GENERATION) == 1  # recorded as a new generation


async def test_a_crash_is_still_restarted_with_backoff(env: WorkflowEnvironment) -> None:
    """Only a served load error waits: a server that exits is a crash, restarted."""
    acts = LocationStandIns()

    async def exits(input: WatchInput) -> WatchOutput:
        return WatchOutput(running=False, reason="exited with code 1", exit_code=1)

    acts.watch = exits
    async with new_worker(env.client, [CodeLocationWorkflow], acts.activities) as worker:
        location = await start(env, worker.task_queue)
        async with skipping_time(env):
            await acts.rec.wait_for(lambda: acts.rec.count(names.START_CODE_SERVER) >= 3)
        state = await location.query(CodeLocationWorkflow.state)
    assert not state.waiting_for_new_code


# --- RunWorkflow ------------------------------------------------------------------------------


async def test_a_run_whose_code_server_moved_during_validation_follows_the_location(
    env: WorkflowEnvironment,
) -> None:
    acts = RunStandIns()
    host_queue = unique_id("host")
    dead, alive = "http://127.0.0.1:4001", "http://127.0.0.1:4002"
    where = [dead, alive]

    async def on_the_other_host(input: PrepareRunInput) -> PrepareRunOutput:
        # The location's workflow names its current server: the dead one at first.
        return PrepareRunOutput(
            proceed=True, status=RunStatus.STARTING, validate_on=host_queue, address=where[0]
        )

    validations: list[ValidateRunInput] = []

    @activity.defn(name=names.VALIDATE_RUN)
    async def validate_run(input: ValidateRunInput) -> PrepareRunOutput:
        validations.append(input)
        if input.address == dead:
            where.pop(0)  # the location restarted its server elsewhere meanwhile
            raise ApplicationError(
                f"the code server at {dead} is gone; code location quick now serves at {alive}",
                type="CodeServerMoved",
                non_retryable=True,
            )
        return PrepareRunOutput(proceed=True, status=RunStatus.STARTING, steps=["extract"])

    acts.prepare = on_the_other_host
    input = run_input()
    host: Any = Worker(env.client, task_queue=host_queue, activities=[validate_run])
    async with host, new_worker(env.client, [RunWorkflow], acts.activities) as worker:
        result = await (await start_run(env, worker.task_queue, input)).result()

    assert [v.address for v in validations] == [dead, alive]
    assert all((v.organization, v.deployment) == ("acme", "prod") for v in validations)
    assert acts.rec.names() == [
        names.PREPARE_RUN,
        names.PREPARE_RUN,
        names.LAUNCH_RUN_WORKER,
        names.WATCH_RUN_WORKER,
        names.FINISH_RUN,
    ]
    assert result.status == RunStatus.SUCCESS


async def test_a_run_whose_location_cannot_serve_any_more_ends_with_prepares_reason(
    env: WorkflowEnvironment,
) -> None:
    """The location went into ERROR waiting for new code while the run was being validated:
    prepare_run, asked again, refuses it (its reason goes to the control plane)."""
    acts = RunStandIns()
    host_queue = unique_id("host")
    prepares = 0

    async def then_refused(input: PrepareRunInput) -> PrepareRunOutput:
        nonlocal prepares
        prepares += 1
        if prepares == 1:
            return PrepareRunOutput(
                proceed=True,
                status=RunStatus.STARTING,
                validate_on=host_queue,
                address="http://127.0.0.1:4001",
            )
        return PrepareRunOutput(proceed=False, status=RunStatus.FAILURE, message="refused")

    @activity.defn(name=names.VALIDATE_RUN)
    async def validate_run(input: ValidateRunInput) -> PrepareRunOutput:
        raise ApplicationError(
            "the code server at http://127.0.0.1:4001 is gone and code location quick is ERROR",
            type="CodeServerMoved",
            non_retryable=True,
        )

    acts.prepare = then_refused
    host: Any = Worker(env.client, task_queue=host_queue, activities=[validate_run])
    async with host, new_worker(env.client, [RunWorkflow], acts.activities) as worker:
        result = await (await start_run(env, worker.task_queue, run_input())).result()

    assert acts.rec.names() == [names.PREPARE_RUN, names.PREPARE_RUN, names.FINISH_RUN]
    assert finish_input(acts).message == "refused"
    assert result.status == RunStatus.FAILURE
