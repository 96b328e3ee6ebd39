"""AgentWorkflow: one per agent and deployment (``agent:{org}:{deployment}:{agent_name}``).

Heartbeats, long-polls the control plane's request queue, and hands each request to the
workflow it concerns (``dispatch_request`` signals-with-start the code location's or run's
workflow, then acknowledges the request). Continues as new before its history grows large.
"""

import asyncio
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from tether_api.agent_requests import AgentRequest
    from workflows import names
    from workflows.models import (
        AgentHeartbeatInput,
        AgentWorkflowInput,
        DispatchInput,
        DispatchOutput,
        PollDispatchInput,
        PollDispatchOutput,
        PollInput,
        PollOutput,
    )
    from workflows.options import HEARTBEAT_TIMEOUT, PERSISTENT, SHORT, seconds


@workflow.defn(name=names.AGENT_WORKFLOW)
class AgentWorkflow:
    def __init__(self) -> None:
        self._dispatched = 0
        self._stop = False

    @workflow.query(name=names.QUERY_STATE)
    def state(self) -> dict[str, int]:
        return {"dispatched": self._dispatched}

    @workflow.signal(name=names.SIGNAL_STOP)
    def stop(self) -> None:
        """Ends the workflow after the current poll (used when an agent is retired)."""
        self._stop = True

    async def _dispatch(self, input: AgentWorkflowInput, request: AgentRequest) -> None:
        try:
            # Local: no task-queue round trip between poll and dispatch. Independent
            # requests go out at once; the target workflows make their order irrelevant (a
            # terminate that overtakes its launch still ends the run).
            await workflow.execute_local_activity(
                names.DISPATCH_REQUEST,
                DispatchInput(
                    organization=input.organization,
                    deployment=input.deployment,
                    request=request,
                ),
                result_type=DispatchOutput,
                start_to_close_timeout=SHORT,
                retry_policy=PERSISTENT,
                summary=f"{request.type.value} {request.subject()}",
            )
        except (ActivityError, ApplicationError) as exc:
            # One request that cannot be dispatched must not end the agent: it stays
            # unacknowledged, comes back when its lease expires, and the control plane fails
            # it as poison after repeated claims.
            workflow.logger.warning(
                "request %s (%s) not dispatched: %s", request.id, request.type.value, exc
            )

    async def _poll_and_dispatch(self, input: AgentWorkflowInput) -> None:
        """One activity: the long-poll, then each request handed to its workflow at once (the
        target workflows make their order irrelevant: a terminate that overtakes its launch
        still ends the run). Its result lists each request and what became of it."""
        done = await workflow.execute_activity(
            names.POLL_AND_DISPATCH,
            PollDispatchInput(
                organization=input.organization,
                deployment=input.deployment,
                agent_name=input.agent_name,
                wait_seconds=input.poll_wait_seconds,
                max_requests=input.max_requests,
            ),
            result_type=PollDispatchOutput,
            start_to_close_timeout=seconds(input.poll_wait_seconds + 30),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=PERSISTENT,
            summary="long-poll the control plane and hand each request to its workflow",
        )
        self._dispatched += len(done.dispatched)

    async def _poll_then_dispatch(self, input: AgentWorkflowInput) -> None:
        """Before PATCH_POLL_DISPATCHES: a poll activity, then a local activity per request
        (when it can go: workflows/README.md, "Deprecations")."""
        polled = await workflow.execute_activity(
            names.POLL_REQUESTS,
            PollInput(
                agent_name=input.agent_name,
                wait_seconds=input.poll_wait_seconds,
                max_requests=input.max_requests,
            ),
            result_type=PollOutput,
            start_to_close_timeout=seconds(input.poll_wait_seconds + 30),
            retry_policy=PERSISTENT,
            summary="long-poll the control plane for requests",
        )
        if polled.requests:
            await asyncio.gather(*(self._dispatch(input, request) for request in polled.requests))
            self._dispatched += len(polled.requests)

    @workflow.run
    async def run(self, input: AgentWorkflowInput) -> None:
        last_heartbeat: datetime | None = None
        # Decided once, at the start, so that replay takes the same branch: histories from
        # before the patch poll, then dispatch each request in a local activity.
        poll_dispatches = workflow.patched(names.PATCH_POLL_DISPATCHES)
        while not self._stop:
            now = workflow.now()
            if last_heartbeat is None or (now - last_heartbeat) >= seconds(
                input.heartbeat_interval_seconds
            ):
                await workflow.execute_activity(
                    names.SEND_AGENT_HEARTBEAT,
                    AgentHeartbeatInput(
                        organization=input.organization,
                        deployment=input.deployment,
                        agent_name=input.agent_name,
                    ),
                    start_to_close_timeout=SHORT,
                    retry_policy=PERSISTENT,
                    summary="heartbeat to the control plane",
                )
                last_heartbeat = now
            if poll_dispatches:
                await self._poll_and_dispatch(input)
            else:
                await self._poll_then_dispatch(input)
            workflow.set_current_details(
                f"agent **{input.agent_name}** of {input.organization}/{input.deployment}: "
                f"{self._dispatched} requests dispatched since the last continue-as-new"
            )
            if self._stop:
                break  # a continue-as-new would forget the stop
            info = workflow.info()
            if (
                info.is_continue_as_new_suggested()
                or info.get_current_history_length() > input.continue_as_new_after_events
            ):
                workflow.continue_as_new(input)
