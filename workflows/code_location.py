"""CodeLocationWorkflow: one per code location (``code-location:{org}:{deployment}:{name}``).

An entity workflow that keeps one healthy code server for the location's current generation:

    PENDING -> STARTING -> LOADING -> RUNNING          first deploy
    RUNNING -> UPDATING -> LOADING -> RUNNING          redeploy: new server healthy, then the
                                                       old one is stopped
    * -> ERROR -> (backoff) -> STARTING ...            crashed, never answered, or its host
                                                       failed it: retried forever with capped
                                                       backoff
    * -> ERROR (waiting for new code)                  the definitions failed to load (the code
                                                       server served a load error): no restart
                                                       until a redeploy or a new generation
    * -> STOPPING -> STOPPED                           removal; the workflow ends

Host affinity: a server's handle names the agent that started it and that agent's own task
queue; waiting for, reading, watching and stopping the server go there, with a schedule-to-start
timeout. When it times out the agent and its host are lost: the server is abandoned (a stop
waits on that queue, so it is stopped if the agent comes back) and a new one is started on a
live agent (STARTING, not ERROR: nothing is wrong with the code).

Every transition is reported to the control plane. Signals: ``sync`` (a new generation from
the control plane), ``redeploy`` (no argument, so ``temporal workflow signal --name redeploy``
works), ``remove``. The ``redeploy_and_wait`` update answers once the new server is RUNNING.
"""

import asyncio
import contextlib

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from tether_api.enums import CodeLocationStatus
    from workflows import names
    from workflows.errors import failure_message, fix_and_redeploy
    from workflows.handles import Handle
    from workflows.models import (
        CodeLocationState,
        CodeLocationWorkflowInput,
        LocationStatusInput,
        NewGenerationInput,
        NewGenerationOutput,
        OtherLiveAgentsInput,
        OtherLiveAgentsOutput,
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
    from workflows.options import (
        HEARTBEAT_TIMEOUT,
        PERSISTENT,
        SHORT,
        host_lost,
        on_host,
        seconds,
    )

Status = CodeLocationStatus


class _LoadFailed(Exception):
    """The server came up but the definitions did not load (already reported)."""

    def __init__(self, message: str, needs_new_code: bool) -> None:
        super().__init__(message)
        self.needs_new_code = needs_new_code


@workflow.defn(name=names.CODE_LOCATION_WORKFLOW)
class CodeLocationWorkflow:
    @workflow.init
    def __init__(self, input: CodeLocationWorkflowInput) -> None:
        self._input = input
        self._state = input.carried or CodeLocationState(
            name=input.name, status=Status.PENDING, generation=input.generation
        )
        self._state.generation = max(self._state.generation, input.generation)
        self._remove = False
        self._removed_generation = 0
        self._retry_due = False
        self._last_finished_deploy = self._state.deploys
        # A redeploy asked of this workflow directly (signal or update), not by a sync from
        # the control plane: it needs a new generation recorded there.
        self._direct_redeploy = False

    # --- handlers ------------------------------------------------------------------------

    @workflow.signal(name=names.SIGNAL_SYNC)
    def sync(self, signal: SyncSignal) -> None:
        # A redelivered or older sync changes nothing: generations only go up.
        self._state.generation = max(self._state.generation, signal.generation)
        if self._remove and signal.generation > self._removed_generation:
            self._remove = False  # deployed again after the removal: the deploy wins

    @workflow.signal(name=names.SIGNAL_REDEPLOY)
    def redeploy(self) -> None:
        self._state.redeploy_pending = True
        self._direct_redeploy = True

    @workflow.signal(name=names.SIGNAL_REMOVE)
    def remove(self, signal: RemoveSignal | None = None) -> None:
        # No argument (a person with the temporal CLI): remove whatever is deployed.
        generation = signal.generation if signal and signal.generation is not None else None
        if generation is not None and generation < self._state.generation:
            return  # superseded by a newer deploy
        self._remove = True
        self._removed_generation = max(generation or 0, self._state.generation)

    @workflow.update(name=names.UPDATE_REDEPLOY)
    async def redeploy_and_wait(self) -> CodeLocationState:
        # Wait for a deploy that *starts* after this request, not one already under way.
        after = self._state.deploys
        self._state.redeploy_pending = True
        self._direct_redeploy = True
        await workflow.wait_condition(lambda: self._last_finished_deploy > after or self._remove)
        if self._state.status != Status.RUNNING:
            raise ApplicationError(
                f"redeploy of {self._input.name} ended {self._state.status.value}: "
                f"{self._state.message or 'removed'}",
                non_retryable=True,
            )
        return self._state

    @redeploy_and_wait.validator
    def _validate_redeploy(self) -> None:
        if self._remove:
            raise ApplicationError(f"code location {self._input.name} is being removed")

    @workflow.query(name=names.QUERY_STATE)
    def state(self) -> CodeLocationState:
        return self._state

    # --- main loop -----------------------------------------------------------------------

    @workflow.run
    async def run(self, input: CodeLocationWorkflowInput) -> CodeLocationState:
        state = self._state
        for handle in state.abandoned:  # carried over by continue-as-new
            self._start_reaper(handle)
        while True:
            self._show()
            if self._remove:
                await self._stop_all()
                if self._remove and state.abandoned:
                    # A server on a lost host is stopped when its agent comes back: the
                    # workflow stays until then, unless the location is deployed again.
                    self._show()
                    await workflow.wait_condition(lambda: not state.abandoned or not self._remove)
                if self._remove:
                    return state
                continue  # a newer deploy arrived while stopping: deploy it

            if self._deploy_wanted():
                await self._deploy()
            elif state.server is not None:
                await self._watch()
            elif state.waiting_for_new_code:
                await workflow.wait_condition(self._change_pending)
            else:
                await self._wait_backoff()
            # Only with nothing pending: a continue-as-new must not drop a removal or leave
            # a redeploy_and_wait waiting for a deploy that the new run never starts.
            if self._history_is_long() and not self._deploy_wanted() and not self._remove:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    CodeLocationWorkflowInput(
                        organization=input.organization,
                        deployment=input.deployment,
                        name=input.name,
                        generation=state.generation,
                        settings=input.settings,
                        carried=state,
                    )
                )

    def _change_pending(self) -> bool:
        state = self._state
        return (
            self._remove
            or state.redeploy_pending
            or state.deployed_generation is None
            or state.generation > state.deployed_generation
        )

    def _deploy_wanted(self) -> bool:
        return self._change_pending() or (self._state.server is None and self._retry_due)

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > 2000

    # --- deploy --------------------------------------------------------------------------

    async def _deploy(self) -> None:
        state = self._state
        settings = self._input.settings
        state.redeploy_pending = False
        state.waiting_for_new_code = False
        self._retry_due = False
        if self._direct_redeploy and workflow.patched(names.PATCH_REDEPLOY_NEW_GENERATION):
            await self._record_new_generation()
        self._direct_redeploy = False
        generation = state.generation
        state.deploys += 1
        number = state.deploys
        old = state.server
        updating = old is not None and state.status == Status.RUNNING
        new: Handle | None = None
        try:
            await self._report(
                Status.UPDATING if updating else Status.STARTING,
                f"starting code server #{number} for generation {generation}",
            )
            started = await workflow.execute_activity(
                names.START_CODE_SERVER,
                StartCodeServerInput(
                    organization=self._input.organization,
                    deployment=self._input.deployment,
                    name=self._input.name,
                    label=f"{workflow.info().workflow_id}#{number}",
                    generation=generation,
                ),
                result_type=StartCodeServerOutput,
                start_to_close_timeout=SHORT,
                retry_policy=PERSISTENT,
                summary=f"start code server #{number}",
            )
            if started.removed or started.handle is None:
                self._remove = True
                return
            new = started.handle
            ready = await workflow.execute_activity(
                names.WAIT_CODE_SERVER_READY,
                WaitReadyInput(handle=new, timeout_seconds=settings.startup_timeout_seconds),
                result_type=WaitReadyOutput,
                start_to_close_timeout=seconds(settings.startup_timeout_seconds + 30),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=PERSISTENT,
                summary=f"wait for code server #{number} to answer /health",
                **on_host(new, settings.host_lost_after_seconds),
            )
            await self._report(Status.LOADING, f"code server #{number} is up; loading definitions")
            published = await workflow.execute_activity(
                names.PUBLISH_SNAPSHOT,
                PublishSnapshotInput(
                    name=self._input.name,
                    generation=generation,
                    address=ready.address,
                    handle=new,
                ),
                result_type=PublishSnapshotOutput,
                start_to_close_timeout=SHORT,
                retry_policy=PERSISTENT,
                summary="fetch the definitions snapshot and report it",
                **on_host(new, settings.host_lost_after_seconds),
            )
            if not published.loaded:
                raise _LoadFailed(
                    published.error or "the definitions failed to load", published.needs_new_code
                )
        except (ActivityError, _LoadFailed) as exc:
            if new is not None and host_lost(exc):
                if old is not None and updating:
                    # The old server still serves: the update starts again on a live agent.
                    self._abandon(new)
                    state.status = Status.RUNNING
                    state.redeploy_pending = True
                    state.message = f"agent {new.agent or '?'} was lost starting {new.label}"
                    return
                await self._replace_lost(new)
                if old is not None:
                    await self._stop(old)
                self._last_finished_deploy = number
                return
            reported = isinstance(exc, _LoadFailed)
            # Decided from the load result (publish_snapshot's), never from a message: only a
            # load error the code server served waits; a crash is retried.
            waits = (
                isinstance(exc, _LoadFailed)
                and exc.needs_new_code
                and workflow.patched(names.PATCH_LOAD_ERROR_WAITS)
            )
            await self._fail(
                failure_message(exc), new, already_reported=reported, wait_for_new_code=waits
            )
            if old is not None:
                # The location is in ERROR now; an old server would only mislead.
                await self._stop(old)
            self._last_finished_deploy = number
            return
        # The new server serves from here on, before the old one's stop (which may take its
        # grace period): a run launched meanwhile is validated by, and forked from, the
        # generation the control plane already shows as RUNNING. (State only: the commands,
        # and so replay, are unchanged.)
        state.server = new
        state.address = ready.address
        state.deployed_generation = generation
        state.status = Status.RUNNING
        state.message = f"{published.jobs} jobs; code server #{number} at {ready.address}"
        state.consecutive_failures = 0
        if old is not None:
            await self._stop(old)
        # Only now: a waiting redeploy_and_wait must see the final state, not LOADING.
        self._last_finished_deploy = number

    async def _record_new_generation(self) -> None:
        """The control plane shows a redeploy sent through Temporal as a new generation,
        the same as one sent through the control plane. The activity is retried: it names the
        generation the new one follows, so a retry after a lost answer records no second one
        (and a newer generation, deployed meanwhile, is the one to deploy)."""
        recorded = await workflow.execute_activity(
            names.NEW_GENERATION,
            NewGenerationInput(
                name=self._input.name,
                reason="redeploy requested through Temporal",
                follows=self._state.generation,
            ),
            result_type=NewGenerationOutput,
            start_to_close_timeout=SHORT,
            retry_policy=PERSISTENT,
            summary="record the redeploy as a new generation",
        )
        self._state.generation = max(self._state.generation, recorded.generation)

    async def _fail(
        self,
        message: str,
        server: Handle | None,
        already_reported: bool,
        wait_for_new_code: bool = False,
    ) -> None:
        """ERROR with the server's last log lines, then stop it; the loop retries after
        a backoff, or (``wait_for_new_code``) waits for a redeploy or a new generation."""
        state = self._state
        state.consecutive_failures += 1
        state.deployed_generation = state.generation
        retry_in = self._backoff_seconds()
        if not already_reported:
            await self._report(
                Status.ERROR, f"{message} (retrying in {retry_in:g} s)", log_handle=server
            )
        state.status = Status.ERROR
        state.message = message
        if wait_for_new_code:
            # The load error itself is in the control plane (publish_snapshot reported it,
            # with the same advice); the state query holds the agent's words only.
            state.waiting_for_new_code = True
            state.message = f"{message}; {fix_and_redeploy(self._input.name)}"
        if server is not None:
            await self._stop(server)
        state.server = None
        state.address = None

    def _backoff_seconds(self) -> float:
        settings = self._input.settings
        exponent = max(self._state.consecutive_failures - 1, 0)
        delay = settings.restart_backoff_initial_seconds * (2 ** min(exponent, 30))
        return float(min(delay, settings.restart_backoff_max_seconds))

    async def _wait_backoff(self) -> None:
        try:
            await workflow.wait_condition(
                self._change_pending,
                timeout=self._backoff_seconds(),
                timeout_summary="restart backoff",
            )
        except TimeoutError:
            self._retry_due = True

    # --- watching and stopping -----------------------------------------------------------

    async def _watch(self) -> None:
        state = self._state
        settings = self._input.settings
        assert state.server is not None
        task = workflow.start_activity(
            names.WATCH_CODE_SERVER,
            WatchInput(
                handle=state.server,
                address=state.address,
                interval_seconds=settings.health_check_interval_seconds,
                unhealthy_after_failures=settings.unhealthy_after_failures,
                max_seconds=settings.watch_slice_seconds,
            ),
            result_type=WatchOutput,
            start_to_close_timeout=seconds(settings.watch_slice_seconds + 60),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=PERSISTENT,
            summary="check the code server's health until it fails",
            **on_host(state.server, settings.host_lost_after_seconds),
        )
        await workflow.wait_condition(lambda: task.done() or self._change_pending())
        if not task.done():
            task.cancel()
            with contextlib.suppress(ActivityError, asyncio.CancelledError):
                await task
            return
        try:
            watched = await task
        except ActivityError as exc:
            if not host_lost(exc):
                raise
            if await self._others_serve(state.server):
                await self._replace_lost(state.server)
            else:
                # Nowhere else to run it: wait for that agent (a slow restart, say), which
                # then adopts its server, rather than restart the server when it is back.
                state.message = (
                    f"agent {state.server.agent or '?'} is not answering and no other live "
                    "agent serves this location's queue: waiting for it"
                )
                self._show()
            return
        if watched.running:
            return  # the slice ended; the loop starts the next one
        await self._fail(
            f"code server #{state.deploys} {watched.reason or 'stopped'}", state.server, False
        )
        self._retry_due = False

    async def _stop(self, server: Handle) -> None:
        """Stop it on its host; a lost host's server is abandoned, to be stopped if its agent
        comes back."""
        settings = self._input.settings
        try:
            await self._stop_on_host(server, settings.host_lost_after_seconds)
        except ActivityError as exc:
            if not host_lost(exc):
                raise
            self._abandon(server)

    async def _stop_on_host(self, server: Handle, lost_after: float) -> None:
        settings = self._input.settings
        await workflow.execute_activity(
            names.STOP_CODE_SERVER,
            StopInput(handle=server, grace_seconds=settings.stop_grace_seconds),
            result_type=StopOutput,
            start_to_close_timeout=seconds(settings.stop_grace_seconds + 30),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=PERSISTENT,
            summary=f"stop code server {server.label}",
            **on_host(server, lost_after),
        )

    async def _others_serve(self, server: Handle) -> bool:
        """Whether another live agent could run the location instead of the lost one."""
        others = await workflow.execute_activity(
            names.OTHER_LIVE_AGENTS,
            OtherLiveAgentsInput(agent=server.agent, task_queue=workflow.info().task_queue),
            result_type=OtherLiveAgentsOutput,
            start_to_close_timeout=SHORT,
            retry_policy=PERSISTENT,
            summary=f"ask which other agents are live ({server.agent} is not answering)",
        )
        return bool(others.agents)

    async def _replace_lost(self, server: Handle) -> None:
        """Its agent is lost with its host: start the location again on a live agent."""
        state = self._state
        self._abandon(server)
        state.server = None
        state.address = None
        self._retry_due = True  # now, without a backoff: nothing is wrong with the code
        await self._report(
            Status.STARTING,
            f"agent {server.agent or '?'} is lost with code server {server.label} "
            f"({server.where()}): starting it again on a live agent",
        )

    def _abandon(self, server: Handle) -> None:
        if all(h.label != server.label for h in self._state.abandoned):
            self._state.abandoned.append(server)
            self._start_reaper(server)

    def _start_reaper(self, server: Handle) -> None:
        asyncio.create_task(self._reap(server))  # noqa: RUF006 (tracked by state.abandoned)

    async def _reap(self, server: Handle) -> None:
        """Wait on the lost agent's queue, a slice at a time, to stop its server once it is
        back: the location must not end with two servers once both hosts are up."""
        while True:
            try:
                await self._stop_on_host(server, self._input.settings.watch_slice_seconds)
            except ActivityError as exc:
                if host_lost(exc):
                    continue
                workflow.logger.warning("could not stop abandoned %s: %s", server.label, exc)
            self._state.abandoned = [h for h in self._state.abandoned if h.label != server.label]
            return

    async def _stop_all(self) -> None:
        state = self._state
        # Reported for the removed generation: a newer deploy's reports win over these.
        removed = self._removed_generation
        await self._report(Status.STOPPING, "removing the code location", generation=removed)
        if state.server is not None:
            await self._stop(state.server)
        state.server = None
        state.address = None
        await self._report(Status.STOPPED, "removed", generation=removed)
        self._show()

    # --- reporting -----------------------------------------------------------------------

    async def _report(
        self,
        status: CodeLocationStatus,
        message: str,
        log_handle: Handle | None = None,
        generation: int | None = None,
    ) -> None:
        state = self._state
        state.status = status
        state.message = message
        self._show()
        report = LocationStatusInput(
            name=self._input.name,
            status=status,
            generation=state.generation if generation is None else generation,
            message=message,
            log_handle=log_handle,
        )
        try:
            # With log lines: on the server's host, the one place they can be read.
            await workflow.execute_activity(
                names.REPORT_CODE_LOCATION_STATUS,
                report,
                start_to_close_timeout=SHORT,
                retry_policy=PERSISTENT,
                summary=f"report {status.value}",
                **(
                    on_host(log_handle, self._input.settings.host_lost_after_seconds)
                    if log_handle
                    else {}
                ),
            )
        except ActivityError as exc:
            if not host_lost(exc):
                raise
            await workflow.execute_activity(
                names.REPORT_CODE_LOCATION_STATUS,
                report.model_copy(update={"log_handle": None}),
                start_to_close_timeout=SHORT,
                retry_policy=PERSISTENT,
                summary=f"report {status.value} (without the log of a lost host)",
            )

    def _show(self) -> None:
        state = self._state
        where = f" at {state.address}" if state.address else ""
        workflow.set_current_details(
            f"code location **{self._input.name}** "
            f"({self._input.organization}/{self._input.deployment}): **{state.status.value}**, "
            f"generation {state.generation}, server #{state.deploys}{where}"
            + (f"\n\n{state.message}" if state.message else "")
            + "".join(
                f"\n\nwaiting for agent {h.agent} to come back and stop {h.label}"
                for h in state.abandoned
            )
        )
