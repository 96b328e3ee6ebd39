"""The handler of the Nexus service ``tether.v1.Runs`` (tether_api/nexus.py), hosted by the agent
on its deployment's Nexus task queue when it has a Nexus token.

``run_job`` creates the run through the control plane in its start handler, keyed by the
caller's request ID (a retried start gets the same run), records the caller (namespace,
workflow, run: from the request's link, which Temporal sets), and starts NexusRunWorkflow to
await it; the operation completes when that workflow does. ``get_run`` and ``terminate_run``
are synchronous.

Who may call: a caller's namespace is read from the request's inbound link and checked
against ``TETHER_NEXUS_CALLERS``. Self-hosted Temporal has no per-endpoint caller allowlist,
so this check is what refuses other namespaces there; it trusts the Temporal server that
delivers the request (on Temporal Cloud, also set the endpoint's allowed callers). The
control plane is only ever called with the agent's own Nexus token.
"""

import logging
import urllib.parse
from collections.abc import Sequence
from typing import Any, NoReturn

import nexusrpc
import nexusrpc.handler
import temporalio.nexus
from nexusrpc.handler import StartOperationContext
from temporalio.exceptions import ApplicationError

from activities.runs_api import (
    RunsApiClient,
    RunsApiError,
    RunsApiRefused,
    RunsApiRejected,
    RunsApiUnavailable,
)
from tether_api.nexus import (
    RUN_REFUSED_ERROR,
    GetRunInput,
    RunInfo,
    RunJobInput,
    RunJobResult,
    TerminateRunInput,
    TetherRuns,
)
from tether_api.user_api import Run
from worker.nexus_settings import NexusSettings
from workflows.names import nexus_run_workflow_id
from workflows.nexus_models import NexusCaller, NexusRunInput
from workflows.nexus_run import NexusRunWorkflow

log = logging.getLogger("tether.agent.nexus")


def caller_of(links: Sequence[nexusrpc.Link], endpoint: str | None) -> NexusCaller | None:
    """The calling workflow, from a link ``temporal:///namespaces/NS/workflows/WF/RUN/...``."""
    for link in links:
        parts = urllib.parse.urlparse(link.url)
        if parts.scheme != "temporal":
            continue
        path = [urllib.parse.unquote(p) for p in parts.path.split("/") if p]
        if len(path) >= 4 and path[0] == "namespaces" and path[2] == "workflows":
            return NexusCaller(
                namespace=path[1],
                workflow_id=path[3],
                run_id=path[4] if len(path) > 4 else None,
                service_endpoint=endpoint,
            )
    return None


@nexusrpc.handler.service_handler(service=TetherRuns)
class TetherRunsHandler:
    def __init__(
        self,
        runs: RunsApiClient,
        settings: NexusSettings,
        organization: str,
        deployment: str,
        own_namespace: str,
    ) -> None:
        self.runs = runs
        self.settings = settings
        self.organization = organization
        self.deployment = deployment
        self.own_namespace = own_namespace

    def _caller(self, ctx: StartOperationContext, operation: str) -> NexusCaller | None:
        """The caller, when its namespace may call; else the request is refused."""
        endpoint = temporalio.nexus.info().endpoint if temporalio.nexus.in_operation() else None
        caller = caller_of(ctx.inbound_links, endpoint)
        namespace = caller.namespace if caller else None
        if not self.settings.allows(namespace, self.own_namespace):
            who = f"namespace {namespace!r}" if namespace else "a caller that names no namespace"
            log.warning(
                "refused %s from %s (workflow %s): not in TETHER_NEXUS_CALLERS",
                operation,
                who,
                caller.workflow_id if caller else "unknown",
            )
            raise nexusrpc.HandlerError(
                f"{who} may not call {TetherRuns.__name__} of deployment {self.deployment}: "
                f"this agent serves {self.settings.describe_callers(self.own_namespace)}; add "
                "it to the agent's TETHER_NEXUS_CALLERS",
                type=nexusrpc.HandlerErrorType.UNAUTHORIZED,
            )
        return caller

    @temporalio.nexus.workflow_run_operation
    async def run_job(
        self, ctx: temporalio.nexus.WorkflowRunOperationContext, input: RunJobInput
    ) -> temporalio.nexus.WorkflowHandle[RunJobResult]:
        caller = self._caller(ctx, "run_job")
        body: dict[str, Any] = {
            **input.model_dump(mode="json"),
            # Nexus redelivers a start with the same request ID: one run for all of them.
            "idempotency_key": f"nexus:{ctx.request_id}",
        }
        if caller is not None:
            body["caller"] = caller.model_dump(mode="json", exclude_none=True)
        try:
            run = await self.runs.create(body)
        except RunsApiError as exc:
            _raise(exc, self.deployment, refused_fails=True)
        log.info(
            "run %s of %s/%s started through Nexus by %s",
            run.id,
            input.code_location,
            input.job,
            f"{caller.namespace}/{caller.workflow_id}" if caller else "an unknown caller",
        )
        return await ctx.start_workflow(
            NexusRunWorkflow.run,
            NexusRunInput(
                organization=self.organization,
                deployment=self.deployment,
                run_id=run.id,
                code_location=input.code_location,
                job=input.job,
                caller=caller,
                detail=self.settings.outcome,
            ),
            id=nexus_run_workflow_id(run.id),
            # Its first task comes back in the start's answer to this worker, which serves the
            # queue: no trip through the server's matching.
            request_eager_start=True,
            static_summary=f"Tether run {run.id} ({input.code_location}/{input.job})",
            static_details=_details(run.id, self.runs.run_url(run.id), caller),
        )

    @nexusrpc.handler.sync_operation
    async def get_run(self, ctx: StartOperationContext, input: GetRunInput) -> RunInfo:
        self._caller(ctx, "get_run")
        try:
            return self._info(await self.runs.get(input.run_id))
        except RunsApiError as exc:
            _raise(exc, self.deployment)

    @nexusrpc.handler.sync_operation
    async def terminate_run(self, ctx: StartOperationContext, input: TerminateRunInput) -> RunInfo:
        self._caller(ctx, "terminate_run")
        try:
            terminated = await self.runs.terminate(input.run_id)
            return self._info(terminated or await self.runs.get(input.run_id))
        except RunsApiError as exc:
            _raise(exc, self.deployment)

    def _info(self, run: Run) -> RunInfo:
        return RunInfo(
            run_id=run.id,
            deployment=run.deployment,
            code_location=run.code_location,
            job=run.job,
            status=run.status,
            status_message=run.status_message,
            url=self.runs.run_url(run.id),
            created_at=run.created_at,
            ended_at=run.ended_at,
        )


def _details(run_id: str, url: str, caller: NexusCaller | None) -> str:
    lines = [f"Run: {url}", f"Its workflow: run:{run_id}"]
    if caller is not None:
        lines.append(f"Caller: {caller.namespace}/{caller.workflow_id}")
    return "\n".join(lines)


def _raise(exc: RunsApiError, deployment: str, refused_fails: bool = False) -> NoReturn:
    """A failed control-plane call, as the caller should see it: an outage or a bad token
    is retried by Temporal (the operation waits); a refusal of the run (unknown job, bad
    config, a location in error) fails the operation; a missing run is NOT_FOUND."""
    if isinstance(exc, RunsApiUnavailable | RunsApiRejected):
        log.warning("%s; Temporal retries the request", exc)
        raise nexusrpc.HandlerError(str(exc), type=nexusrpc.HandlerErrorType.UNAVAILABLE)
    assert isinstance(exc, RunsApiRefused)
    message = f"{exc.detail} (deployment {deployment})"
    if refused_fails and exc.status in (404, 409, 422):
        raise nexusrpc.OperationError(
            message, state=nexusrpc.OperationErrorState.FAILED
        ) from ApplicationError(message, type=RUN_REFUSED_ERROR, non_retryable=True)
    if exc.status == 404:
        raise nexusrpc.HandlerError(message, type=nexusrpc.HandlerErrorType.NOT_FOUND)
    raise nexusrpc.HandlerError(
        message, type=nexusrpc.HandlerErrorType.BAD_REQUEST, retryable_override=False
    )
