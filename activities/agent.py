"""AgentWorkflow's activities: poll the control plane, dispatch requests, heartbeat."""

import asyncio
import contextlib
import logging
import os
from datetime import timedelta
from typing import assert_never

from pydantic import ValidationError
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities import kept_logs, logpolicy
from activities.context import AgentContext, heartbeating
from activities.controlplane import StaleClaim, Unreadable
from tether_api.agent_api import AgentCodeLocationState, AgentHeartbeat, PollAck, PollRequest
from tether_api.agent_requests import (
    AgentRequest,
    EvaluateTickRequest,
    FetchRunLogsRequest,
    LaunchRunPayload,
    LaunchRunRequest,
    RemoveCodeLocationRequest,
    SyncCodeLocationRequest,
    TerminateRunRequest,
)
from tether_api.logs import MAX_FETCHED_LOG_BYTES, LogSettings, RunLogsAnswer
from tether_api.ticks import EvaluateTickPayload
from workflows import names
from workflows import search_attributes as attrs
from workflows.models import (
    AgentHeartbeatInput,
    CodeLocationState,
    CodeLocationWorkflowInput,
    Dispatched,
    DispatchInput,
    DispatchOutput,
    PollDispatchInput,
    PollDispatchOutput,
    PollInput,
    PollOutput,
    RemoveSignal,
    RunWorkflowInput,
    SyncSignal,
    TerminateSignal,
    TickWorkflowInput,
)

log = logging.getLogger(__name__)

POLL_HEARTBEAT_SECONDS = 2.0

# The heartbeat's code location states: state queries at once, how long one may take, and
# how long the listing and all of them may take (the heartbeat activity has 30 s, and the
# AgentWorkflow polls only after it).
LOCATION_QUERY_CONCURRENCY = 16
LOCATION_QUERY_SECONDS = 5.0
LOCATION_STATES_SECONDS = 15.0

CODE_LOCATION_WORKFLOW = names.CODE_LOCATION_WORKFLOW
RUN_WORKFLOW = names.RUN_WORKFLOW
TICK_WORKFLOW = names.TICK_WORKFLOW


class AgentActivities:
    def __init__(self, context: AgentContext) -> None:
        self.ctx = context
        # Requests dispatched by poll_and_dispatch, acknowledged by the next poll. Lost with
        # the process, they come back when their lease expires and are dispatched again,
        # which changes nothing (dispatching is idempotent).
        self._to_ack: list[PollAck] = []
        # Which of location_listings() the heartbeat uses: the next one once the server
        # refuses a query (an older server without STARTS_WITH, say).
        self._listing = 0

    @activity.defn(name=names.POLL_REQUESTS)
    async def poll_requests(self, input: PollInput) -> PollOutput:
        polled = await self.ctx.control_plane.poll(
            PollRequest(
                agent_name=input.agent_name,
                max_requests=input.max_requests,
                wait_seconds=input.wait_seconds,
                queues=self.ctx.queues,
            )
        )
        await self._refuse(polled.unreadable)
        return PollOutput(requests=polled.requests)

    @activity.defn(name=names.POLL_AND_DISPATCH)
    async def poll_and_dispatch(self, input: PollDispatchInput) -> PollDispatchOutput:
        """Long-poll, then hand each request to its workflow at once (as dispatch_request
        does). The dispatched ones are acknowledged by the next poll, in the control plane's
        claim transaction: no call of its own per request. A request that cannot be
        dispatched stays unacknowledged, says why, and comes back when its lease expires; the
        others are not held up by it."""
        # Heartbeats while the poll is held: an agent killed mid-poll is noticed within the
        # heartbeat timeout, and its successor polls again without waiting out the poll.
        acks, self._to_ack = self._to_ack, []
        poll = self.ctx.control_plane.poll(
            PollRequest(
                agent_name=input.agent_name,
                max_requests=input.max_requests,
                wait_seconds=input.wait_seconds,
                queues=self.ctx.queues,
                acks=acks,
            )
        )
        try:
            polled = await heartbeating(poll, POLL_HEARTBEAT_SECONDS)
        except BaseException:
            self._to_ack = acks + self._to_ack  # the next poll takes them
            raise
        await self._refuse(polled.unreadable)
        requests = polled.requests
        dispatches = asyncio.gather(
            *(
                self._dispatch_quietly(
                    DispatchInput(
                        organization=input.organization, deployment=input.deployment, request=r
                    )
                )
                for r in requests
            ),
            return_exceptions=True,
        )
        outcomes = await heartbeating(dispatches, POLL_HEARTBEAT_SECONDS)
        dispatched = []
        for request, outcome in zip(requests, outcomes, strict=True):
            about = {"request_id": request.id, "type": request.type, "subject": request.subject()}
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome  # cancellation: the activity is being stopped
                log.warning("request %s (%s) not dispatched: %r", request.id, request.type, outcome)
                dispatched.append(
                    Dispatched(
                        workflow_id=None,
                        action="failed",
                        acknowledged=False,
                        error=_said(outcome),
                        **about,
                    )
                )
            else:
                dispatched.append(Dispatched(**outcome.model_dump(), **about))
        return PollDispatchOutput(dispatched=dispatched)

    async def _dispatch_quietly(self, input: DispatchInput) -> DispatchOutput:
        """Hand the request to its workflow; its acknowledgement rides on the next poll."""
        output = await self._dispatch_or_fail(input)
        if output.workflow_id is not None:
            self._to_ack.append(PollAck(id=input.request.id, attempt=input.request.attempt))
        return output

    async def flush_acks(self) -> None:
        """At shutdown: acknowledge what the next poll would have (best effort)."""
        acks, self._to_ack = self._to_ack, []
        for ack in acks:
            with contextlib.suppress(Exception):
                await self.ctx.control_plane.ack(ack.id, ack.attempt)

    async def _dispatch_or_fail(self, input: DispatchInput) -> DispatchOutput:
        """Signal-with-start makes this idempotent: a request delivered twice reaches the one
        workflow its ID names. A run's workflow ID is never reused, so a redelivered launch
        of a finished run starts nothing."""
        try:
            if isinstance(input.request, FetchRunLogsRequest):
                # Answered here, on this agent's host (where run outputs are), not by a
                # workflow: a user call is waiting, and the answer acknowledges it.
                action = await self._serve_run_logs(input.request)
                return DispatchOutput(workflow_id=None, action=action, acknowledged=True)
            workflow_id, action = await self._dispatch(input)
        except ValidationError as exc:
            # A payload this agent cannot read will not get better by retrying.
            await self._fail_quietly(input.request, f"agent cannot read the request payload: {exc}")
            return DispatchOutput(workflow_id=None, action="ignored", acknowledged=False)
        return DispatchOutput(workflow_id=workflow_id, action=action, acknowledged=False)

    @activity.defn(name=names.DISPATCH_REQUEST)
    async def dispatch_request(self, input: DispatchInput) -> DispatchOutput:
        """Hand the request to its workflow (durable in Temporal from then on), then ack it
        (the local activity of AgentWorkflows from before PATCH_POLL_DISPATCHES)."""
        request = input.request
        output = await self._dispatch_or_fail(input)
        if output.workflow_id is None:
            return output
        workflow_id, action = output.workflow_id, output.action
        try:
            await self.ctx.control_plane.ack(request.id, request.attempt)
            acknowledged = True
        except StaleClaim:
            # Redelivered meanwhile: the newer claim dispatches to the same workflow again.
            acknowledged = False
        return DispatchOutput(workflow_id=workflow_id, action=action, acknowledged=acknowledged)

    async def _dispatch(self, input: DispatchInput) -> tuple[str, str]:
        request = input.request
        org, dep = input.organization, input.deployment
        task_queue = self._task_queue(request)
        match request:
            case SyncCodeLocationRequest(payload=sync):
                return await self._to_location(
                    task_queue,
                    org,
                    dep,
                    sync.code_location,
                    sync.generation,
                    names.SIGNAL_SYNC,
                    SyncSignal(generation=sync.generation),
                )
            case RemoveCodeLocationRequest(payload=remove):
                return await self._to_location(
                    task_queue,
                    org,
                    dep,
                    remove.code_location,
                    0,
                    names.SIGNAL_REMOVE,
                    RemoveSignal(generation=remove.generation),
                )
            case LaunchRunRequest(payload=launch):
                return await self._to_run(
                    task_queue,
                    org,
                    dep,
                    launch.run_id,
                    launch.code_location,
                    launch.job,
                    None,
                    None,
                    _nexus_details(launch),
                )
            case TerminateRunRequest(payload=terminate):
                run = await self.ctx.control_plane.run(terminate.run_id)
                return await self._to_run(
                    task_queue,
                    org,
                    dep,
                    run.id,
                    run.code_location,
                    run.job,
                    names.SIGNAL_TERMINATE,
                    TerminateSignal(reason=terminate.reason),
                )
            case EvaluateTickRequest(payload=tick):
                return await self._to_tick(task_queue, org, dep, tick)
            case FetchRunLogsRequest():
                raise AssertionError("answered by _dispatch_or_fail, not dispatched")
            case _:
                assert_never(request)

    async def _serve_run_logs(self, request: FetchRunLogsRequest) -> str:
        """Send a run's output (masked; redacted errors' text left out) to the user call
        waiting for it through the control plane. The output is read from this agent's kept
        copy of a finished run, else from the launcher (a run still going, or not kept)."""
        payload = request.payload
        me = self.ctx.agent_name
        run = await self.ctx.control_plane.run(payload.run_id)
        found = await asyncio.to_thread(self._read_run_log, run.id)
        if found is None and payload.agent and payload.agent != me:
            # Another agent's host ran it: let that agent claim the request.
            await self.ctx.control_plane.fail(
                request.id,
                request.attempt,
                f"agent {me} does not hold the output of run {run.id}; agent {payload.agent} "
                "launched it",
                retry=True,
            )
            return "passed-on"
        if found is None:
            answer = RunLogsAnswer(
                agent_name=me,
                error=f"agent {me} holds no output of run {run.id}: it never started here, "
                "or its output was removed (the agent's run output retention)",
            )
        else:
            text, truncated = found
            location = await self.ctx.control_plane.code_location(run.code_location)
            settings = run.log_settings or LogSettings()
            text = logpolicy.outgoing_text(settings, location.spec, text)
            if len(text) > MAX_FETCHED_LOG_BYTES:  # masks can lengthen it
                text, truncated = text[-MAX_FETCHED_LOG_BYTES:], True
            answer = RunLogsAnswer(agent_name=me, text=text, truncated=truncated)
        await self.ctx.control_plane.answer_run_logs(request.id, answer)
        return "answered"

    def _read_run_log(self, run_id: str) -> tuple[str, bool] | None:
        if self.ctx.kept_logs_dir is not None:
            kept = kept_logs.kept_path(self.ctx.kept_logs_dir, run_id)
            try:
                with open(kept, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    f.seek(max(0, size - MAX_FETCHED_LOG_BYTES))
                    data = f.read()
                return data.decode("utf-8", "replace"), size > MAX_FETCHED_LOG_BYTES
            except FileNotFoundError:
                pass
        launcher = self.ctx.launcher
        handle = launcher.find(names.run_workflow_id(run_id), include_exited=True)
        if handle is None:
            return None
        return launcher.log_text(handle, MAX_FETCHED_LOG_BYTES)

    def _task_queue(self, request: AgentRequest) -> str:
        """The Temporal task queue of the request's agent queue: only agents serving it run
        the workflow it starts."""
        base = self.ctx.task_queue_base or activity.info().task_queue
        return names.queue_task_queue(base, request.queue)

    async def _to_location(
        self,
        task_queue: str,
        org: str,
        dep: str,
        name: str,
        generation: int,
        signal: str,
        signal_arg: SyncSignal | RemoveSignal,
    ) -> tuple[str, str]:
        workflow_id = names.code_location_workflow_id(org, dep, name)
        await self.ctx.temporal.start_workflow(
            CODE_LOCATION_WORKFLOW,
            CodeLocationWorkflowInput(
                organization=org,
                deployment=dep,
                name=name,
                generation=generation,
                settings=self.ctx.code_location_settings,
            ),
            id=workflow_id,
            task_queue=task_queue,
            start_signal=signal,
            start_signal_args=[signal_arg],
            # A removed location may be deployed again under the same name.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"code location {name} ({org}/{dep})",
            search_attributes=self._attributes(org, dep, name),
        )
        return workflow_id, signal

    async def _to_run(
        self,
        task_queue: str,
        org: str,
        dep: str,
        run_id: str,
        code_location: str,
        job: str,
        signal: str | None,
        signal_arg: TerminateSignal | None,
        details: str | None = None,
    ) -> tuple[str, str]:
        workflow_id = names.run_workflow_id(run_id)
        # A launch joins the run's workflow if it exists; a terminate signals it, starting
        # it if need be (it then ends the run without launching anything).
        conflict = WorkflowIDConflictPolicy.USE_EXISTING
        if signal is not None:
            conflict = WorkflowIDConflictPolicy.UNSPECIFIED
        try:
            await self.ctx.temporal.start_workflow(
                RUN_WORKFLOW,
                RunWorkflowInput(
                    organization=org,
                    deployment=dep,
                    run_id=run_id,
                    code_location=code_location,
                    job=job,
                    settings=self.ctx.run_settings,
                ),
                id=workflow_id,
                task_queue=task_queue,
                # One run, one launch, ever: a finished run's ID is never started again.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=conflict,
                static_summary=f"run {run_id}: job {job} from {code_location}",
                static_details=details,
                search_attributes=self._attributes(org, dep, code_location, job),
                start_signal=signal,
                start_signal_args=[signal_arg] if signal_arg is not None else [],
                # The first task comes back in the start's answer to this worker, which
                # serves the queue: no trip through the server's matching (~10 ms per run).
                request_eager_start=signal is None,
            )
        except WorkflowAlreadyStartedError:
            return workflow_id, "already-finished"
        return workflow_id, signal or "started"

    async def _to_tick(
        self, task_queue: str, org: str, dep: str, payload: EvaluateTickPayload
    ) -> tuple[str, str]:
        workflow_id = names.tick_workflow_id(
            org, dep, payload.code_location, payload.kind.value, payload.tick.name, payload.tick_id
        )
        # The workflow gets the tick's identity only: the cursor (set by the user's function)
        # and a run-status sensor's ended runs (their configs and errors) are user text, which
        # stays out of Temporal histories; its activity reads them from the control plane.
        held = payload.model_copy(
            update={"tick": payload.tick.model_copy(update={"cursor": None, "runs": []})}
        )
        try:
            await self.ctx.temporal.start_workflow(
                TICK_WORKFLOW,
                TickWorkflowInput(
                    organization=org,
                    deployment=dep,
                    held_payload=held,
                    host_lost_after_seconds=self.ctx.code_location_settings.host_lost_after_seconds,
                ),
                id=workflow_id,
                task_queue=task_queue,
                # A tick is evaluated once: a redelivered request joins it or starts nothing.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=(
                    f"{payload.kind.value} {payload.tick.name} of {payload.code_location}: "
                    f"tick {payload.tick_id}"
                ),
                search_attributes=self._attributes(org, dep, payload.code_location),
            )
        except WorkflowAlreadyStartedError:
            return workflow_id, "already-finished"
        return workflow_id, "started"

    def _attributes(
        self, org: str, dep: str, location: str, job: str | None = None
    ) -> TypedSearchAttributes | None:
        """Set at the start; a run's status is upserted by its workflow as it changes."""
        if not self.ctx.search_attributes:
            return None
        pairs = [
            SearchAttributePair(attrs.DEPLOYMENT, attrs.deployment_value(org, dep)),
            SearchAttributePair(attrs.CODE_LOCATION, location),
        ]
        if job is not None:
            pairs.append(SearchAttributePair(attrs.JOB, job))
        return TypedSearchAttributes(pairs)

    async def _fail_quietly(self, request: AgentRequest, error: str) -> None:
        with contextlib.suppress(StaleClaim):
            await self.ctx.control_plane.fail(request.id, request.attempt, error)

    async def _refuse(self, unreadable: list[Unreadable]) -> None:
        """Fail, for good, each handed-out request this agent cannot read: retrying will not
        make it readable (an agent that can is a newer one, which a redeploy brings)."""
        for request in unreadable:
            log.warning("request %s (%s) is unreadable here: failed", request.id, request.type)
            with contextlib.suppress(StaleClaim):
                await self.ctx.control_plane.fail(
                    request.id,
                    request.attempt,
                    f"agent {self.ctx.agent_name} cannot read request {request.id} of type "
                    f"{request.type!r} (an agent older than the control plane? upgrade the "
                    f"agent): {request.error}",
                )

    @activity.defn(name=names.SEND_AGENT_HEARTBEAT)
    async def send_agent_heartbeat(self, input: AgentHeartbeatInput) -> None:
        await self.ctx.control_plane.heartbeat(
            AgentHeartbeat(
                agent_name=input.agent_name,
                version=self.ctx.version,
                launcher=self.ctx.launcher.name,
                code_locations=await self._location_states(input),
                queues=self.ctx.queues,
                metadata=self.ctx.metadata,
            )
        )

    async def _location_states(self, input: AgentHeartbeatInput) -> list[AgentCodeLocationState]:
        """The code locations whose serving code server runs on this agent's host, as their
        workflows' state query answers: each location is in the report of one agent only
        (none while it has no server: ERROR, or STARTING on a lost host; its status comes
        from its workflow's own reports). Listed in Temporal's visibility narrowed to this
        deployment (``location_listings``), so other deployments' locations, however many
        in the namespace, neither cost a query nor cut this deployment's off; asked
        concurrently within ``LOCATION_STATES_SECONDS``, so that the heartbeat (and the
        poll after it) is never held up by workflows that do not answer."""
        org, dep = input.organization, input.deployment
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOCATION_STATES_SECONDS
        try:
            async with asyncio.timeout_at(deadline):
                workflow_ids = await self._location_workflow_ids(org, dep)
        except TimeoutError:
            log.warning(
                "could not list code location workflows: no answer within %g s",
                LOCATION_STATES_SECONDS,
            )
            return []
        except RPCError as exc:
            # Visibility is best effort: a heartbeat without location states still counts.
            if exc.status not in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                log.warning("could not list code location workflows: %s", exc)
            return []
        if not workflow_ids:
            return []
        limit = asyncio.Semaphore(LOCATION_QUERY_CONCURRENCY)
        tasks = [asyncio.create_task(self._location_state(w, limit)) for w in workflow_ids]
        done, pending = await asyncio.wait(tasks, timeout=max(deadline - loop.time(), 0.5))
        for task in pending:
            task.cancel()
        if pending:
            log.info(
                "%d of %d code location workflows did not answer their state query within "
                "%g s: left out of this heartbeat",
                len(pending),
                len(tasks),
                LOCATION_STATES_SECONDS,
            )
        hosted = [
            state
            for task in tasks
            if task in done and (state := task.result()) is not None and self._hosts(state)
        ]
        return [
            AgentCodeLocationState(name=state.name, status=state.status, detail=state.message)
            for state in sorted(hosted, key=lambda s: s.name)
        ]

    async def _location_workflow_ids(self, org: str, dep: str) -> list[str]:
        """The IDs of the deployment's running CodeLocationWorkflows, all pages of them,
        through the first of ``location_listings`` the server takes (remembered)."""
        prefix = names.code_location_workflow_id(org, dep, "")
        listings = location_listings(org, dep, self.ctx.search_attributes)
        while True:
            index = min(self._listing, len(listings) - 1)
            what, query = listings[index]
            try:
                return list(
                    dict.fromkeys(
                        [
                            execution.id
                            async for execution in self.ctx.temporal.list_workflows(query)
                            # The whole namespace's, in the last resort: filtered here.
                            if execution.id.startswith(prefix)
                            and execution.status == WorkflowExecutionStatus.RUNNING
                        ]
                    )
                )
            except RPCError as exc:
                if exc.status != RPCStatusCode.INVALID_ARGUMENT or index == len(listings) - 1:
                    raise
                self._listing = index + 1
                fallback = listings[index + 1][0]
                log.warning(
                    "Temporal refused to list code location workflows by %s (%s): listing "
                    "them by %s from now on",
                    what,
                    exc.message,
                    fallback,
                )

    async def _location_state(
        self, workflow_id: str, limit: asyncio.Semaphore
    ) -> CodeLocationState | None:
        """The workflow's state, or None when it does not answer (its workers are gone, say:
        then it is not this agent's to report)."""
        async with limit:
            handle = self.ctx.temporal.get_workflow_handle(workflow_id)
            try:
                return await handle.query(
                    names.QUERY_STATE,
                    result_type=CodeLocationState,
                    rpc_timeout=timedelta(seconds=LOCATION_QUERY_SECONDS),
                )
            except (RPCError, TimeoutError) as exc:
                log.debug("%s did not answer its state query: %r", workflow_id, exc)
            except Exception as exc:  # its answer failed (or did not read): the others count
                log.warning("state query of %s failed: %r", workflow_id, exc)
            return None

    def _hosts(self, state: CodeLocationState) -> bool:
        """Whether the location's serving code server runs on this agent's host."""
        server = state.server
        if server is None:
            return False
        if server.agent is not None:
            return server.agent == self.ctx.agent_name
        # Recorded before handles named their agent: reported by each agent, as it was.
        return self.ctx.is_local(server)


def location_listings(
    organization: str, deployment: str, search_attributes: bool
) -> list[tuple[str, str]]:
    """The visibility queries that list a deployment's running CodeLocationWorkflows, best
    first, each as (what it filters by, query): by workflow ID prefix (no search attribute
    needed, and it finds the workflows started before Tether's were registered); on a server
    that does not take ``STARTS_WITH``, by ``TetherDeployment`` when this agent's workflows
    set it; else every running CodeLocationWorkflow of the namespace (all pages), filtered
    by ID in Python."""
    running = f"WorkflowType = '{CODE_LOCATION_WORKFLOW}' AND ExecutionStatus = 'Running'"
    prefix = names.code_location_workflow_id(organization, deployment, "")
    listings = [("workflow ID prefix", f"{running} AND WorkflowId STARTS_WITH '{prefix}'")]
    if search_attributes:
        value = attrs.deployment_value(organization, deployment)
        listings.append(
            (attrs.DEPLOYMENT.name, f"{running} AND {attrs.DEPLOYMENT.name} = '{value}'")
        )
    listings.append(("workflow type (the whole namespace's)", running))
    return listings


def _said(exc: Exception) -> str:
    """Why a request was not dispatched, as this activity's result (a workflow's history)
    may say it: Temporal's own errors in full, any other only by its class (its message,
    which may quote a payload or a run's output, is in the agent's log above)."""
    if isinstance(exc, RPCError | ApplicationError):
        return repr(exc)[:2000]
    return f"{type(exc).__name__} (its message is in the agent's log)"


def _nexus_details(launch: LaunchRunPayload) -> str | None:
    """A run started through the Nexus service: its caller and its operation's workflow, in
    the RunWorkflow's details (Temporal links only what a Nexus handler starts)."""
    if launch.caller_workflow_id is None:
        return None
    return (
        f"Started through Tether's Nexus service by Temporal workflow "
        f"{launch.caller_workflow_id} (namespace {launch.caller_namespace}); its operation: "
        f"workflow {names.nexus_run_workflow_id(launch.run_id)}"
    )
