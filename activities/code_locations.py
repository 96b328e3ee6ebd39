"""CodeLocationWorkflow's activities: start, wait for, watch and stop code servers; publish
their snapshots; report status to the control plane."""

import asyncio
import time

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import logpolicy
from activities.context import AgentContext, blocking, resolve_env
from activities.launchers.base import LaunchError, LaunchSpec
from activities.redeploy_sender import find_sender
from tether_api.agent_api import CodeLocationStatusReport
from tether_api.codeserver import Health, SnapshotResponse
from tether_api.enums import CodeLocationStatus
from tether_api.wire import MAX_LOG_TAIL_LINES, MAX_MESSAGE_CHARS
from workflows.errors import fix_and_redeploy
from workflows.models import (
    LocationStatusInput,
    NewGenerationInput,
    NewGenerationOutput,
    OtherLiveAgentsInput,
    OtherLiveAgentsOutput,
    PublishSnapshotInput,
    PublishSnapshotOutput,
    StartCodeServerInput,
    StartCodeServerOutput,
    StopInput,
    StopOutput,
    WaitReadyInput,
    WaitReadyOutput,
    WatchInput,
    WatchOutput,
)
from workflows.names import (
    NEW_GENERATION,
    OTHER_LIVE_AGENTS,
    PUBLISH_SNAPSHOT,
    REPORT_CODE_LOCATION_STATUS,
    START_CODE_SERVER,
    STOP_CODE_SERVER,
    WAIT_CODE_SERVER_READY,
    WATCH_CODE_SERVER,
    queue_task_queue,
)

LOG_TAIL_LINES = 50
# What a workflow learns of definitions that failed to load.
LOAD_FAILED = "could not load the definitions: the error is in the location's status in Tether"


def describe_exit(exit_code: int | None, detail: str | None = None) -> str:
    """'exited with code 1', 'was killed by signal 9', or the launcher's own account."""
    if detail:
        return detail
    if exit_code is None:
        return "exited (exit code unknown)"
    if exit_code < 0:
        return f"was killed by signal {-exit_code}"
    return f"exited with code {exit_code}"


class CodeLocationActivities:
    def __init__(self, context: AgentContext) -> None:
        self.ctx = context
        # One client for all health checks: cheap keep-alive connections to local servers.
        self._http = httpx.AsyncClient(timeout=5.0)

    async def aclose(self) -> None:
        await self._http.aclose()

    @activity.defn(name=START_CODE_SERVER)
    async def start_code_server(self, input: StartCodeServerInput) -> StartCodeServerOutput:
        location = await self.ctx.control_plane.code_location(input.name)
        if location.removed:
            return StartCodeServerOutput(removed=True)
        spec = LaunchSpec(
            label=input.label,
            kind="code-server",
            location=location.spec,
            env=resolve_env(location.spec),
            organization=input.organization,
            deployment=input.deployment,
            location_name=input.name,
            generation=input.generation,
        )
        try:
            handle = await blocking(lambda: self.ctx.launcher.start(spec))
        except LaunchError as exc:
            raise ApplicationError(str(exc), type="LaunchError", non_retryable=True) from exc
        return StartCodeServerOutput(handle=self.ctx.mark(handle))

    @activity.defn(name=WAIT_CODE_SERVER_READY)
    async def wait_code_server_ready(self, input: WaitReadyInput) -> WaitReadyOutput:
        deadline = time.monotonic() + input.timeout_seconds
        delay = 0.02
        while True:
            activity.heartbeat()
            inspection = await asyncio.to_thread(self.ctx.launcher.inspect, input.handle)
            if not inspection.running:
                exited = describe_exit(inspection.exit_code, inspection.detail)
                raise ApplicationError(
                    f"the code server {exited} before it answered /health",
                    type="CodeServerExited",
                    non_retryable=True,
                )
            if inspection.address:
                try:
                    response = await self._http.get(f"{inspection.address}/health", timeout=2)
                    if response.status_code == 200:
                        Health.model_validate_json(response.content)
                        return WaitReadyOutput(address=inspection.address)
                except (httpx.HTTPError, ValueError):
                    pass
            if time.monotonic() > deadline:
                raise ApplicationError(
                    f"the code server did not answer /health within {input.timeout_seconds:g} s "
                    "(raise the agent's code server startup timeout if it is slow to import)",
                    type="CodeServerStartTimeout",
                    non_retryable=True,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    @activity.defn(name=PUBLISH_SNAPSHOT)
    async def publish_snapshot(self, input: PublishSnapshotInput) -> PublishSnapshotOutput:
        try:
            # Under the activity's 30 s start-to-close, so a slow answer fails this attempt
            # rather than the activity timing out unexplained.
            response = await self._http.get(f"{input.address}/snapshot", timeout=25)
            response.raise_for_status()
            answer = SnapshotResponse.model_validate_json(response.content)
        except (httpx.HTTPError, ValueError) as exc:
            inspection = await asyncio.to_thread(self.ctx.launcher.inspect, input.handle)
            if not inspection.running:
                reason = f"the code server {describe_exit(inspection.exit_code, inspection.detail)}"
            elif isinstance(exc, httpx.HTTPError):
                reason = f"the code server did not serve its snapshot ({exc!r})"
            else:
                # A validation error quotes the snapshot (the user's definitions): its class
                # only, here and in the failure (no cause).
                reason = (
                    "the code server served a snapshot this agent cannot read "
                    f"({type(exc).__name__}): are the agent's and the image's tether versions "
                    "compatible?"
                )
            # Not retried here: the workflow reports ERROR and restarts it with backoff.
            raise ApplicationError(reason, type="SnapshotFailed", non_retryable=True) from None
        if answer.snapshot is None:
            error = answer.load_error
            first_line = error.message if error else "the code server served no snapshot"
            # A load error that is no exception ("no Definitions found in ...") carries its
            # message as its traceback: the text says it once.
            tb = error.traceback.rstrip() if error else ""
            full = f"{first_line}\n{tb}" if tb and tb != first_line else first_line
            # User code failed: its text obeys the location's log settings (redacted, masked).
            location = await self.ctx.control_plane.code_location(input.name)
            first_line, text = logpolicy.redact_error(
                location.log_settings,
                location.spec,
                f"code location {input.name}: the definitions failed to load",
                first_line,
                full,
            )
            # On the first line, which lists show: only new code can fix this, and the
            # location waits for it (no restarts, see CodeLocationWorkflow).
            head, newline, rest = text.partition("\n")
            message = (
                f"could not load the definitions: {head}; {fix_and_redeploy(input.name)}"
                f"{newline}{rest}"
            )
            await self._report(
                LocationStatusInput(
                    name=input.name,
                    status=CodeLocationStatus.ERROR,
                    generation=input.generation,
                    message=message,
                    log_handle=input.handle,
                )
            )
            # The error's text went to the control plane above; the workflow (its history,
            # its state query) gets only this.
            return PublishSnapshotOutput(loaded=False, error=LOAD_FAILED, needs_new_code=True)
        jobs = len(answer.snapshot.jobs)
        await self.ctx.control_plane.report_code_location(
            input.name,
            CodeLocationStatusReport(
                status=CodeLocationStatus.RUNNING,
                message=f"{jobs} job{'' if jobs == 1 else 's'} loaded",
                log_tail=[],
                snapshot=answer.snapshot,
                generation=input.generation,
            ),
        )
        return PublishSnapshotOutput(loaded=True, jobs=jobs)

    @activity.defn(name=WATCH_CODE_SERVER)
    async def watch_code_server(self, input: WatchInput) -> WatchOutput:
        """Check the server until it dies or fails ``unhealthy_after_failures`` health checks
        in a row, or the slice ends. Never stops the server: on cancellation (a redeploy, or
        the agent shutting down) it leaves it running, to be adopted."""
        end = time.monotonic() + input.max_seconds
        failures = 0
        last_error = ""
        while time.monotonic() < end:
            activity.heartbeat()
            inspection = await asyncio.to_thread(self.ctx.launcher.inspect, input.handle)
            if not inspection.running:
                self.ctx.check_here(input.handle, inspection.found)
                return WatchOutput(
                    running=False,
                    reason=describe_exit(inspection.exit_code, inspection.detail),
                    exit_code=inspection.exit_code,
                )
            address = inspection.address or input.address
            try:
                response = await self._http.get(f"{address}/health", timeout=5)
                healthy = response.status_code == 200
                last_error = f"/health answered {response.status_code}"
            except httpx.HTTPError as exc:
                healthy = False
                last_error = f"/health failed: {exc!r}"
            failures = 0 if healthy else failures + 1
            if failures >= input.unhealthy_after_failures:
                return WatchOutput(
                    running=False,
                    reason=f"failed {failures} health checks in a row ({last_error})",
                )
            await asyncio.sleep(input.interval_seconds)
        return WatchOutput(running=True)

    @activity.defn(name=STOP_CODE_SERVER)
    async def stop_code_server(self, input: StopInput) -> StopOutput:
        launcher = self.ctx.launcher
        inspection = await blocking(lambda: launcher.stop(input.handle, input.grace_seconds))
        if input.cleanup:
            await blocking(lambda: launcher.cleanup(input.handle))
        return StopOutput(exit_code=inspection.exit_code)

    @activity.defn(name=OTHER_LIVE_AGENTS)
    async def other_live_agents(self, input: OtherLiveAgentsInput) -> OtherLiveAgentsOutput:
        """Live agents, other than ``input.agent``, that serve the agent queue whose task queue
        is ``input.task_queue``: somewhere to start a lost host's code server again."""
        base = self.ctx.task_queue_base
        found = [
            agent.name
            for agent in await self.ctx.control_plane.agents()
            if agent.available
            and agent.name != input.agent
            and (
                not base or any(queue_task_queue(base, q) == input.task_queue for q in agent.queues)
            )
        ]
        return OtherLiveAgentsOutput(agents=found)

    @activity.defn(name=NEW_GENERATION)
    async def new_generation(self, input: NewGenerationInput) -> NewGenerationOutput:
        """Record a redeploy that came straight through Temporal as a new generation: one
        after ``input.follows``, however often this is retried (a lost answer, a retried
        attempt); the location's generation, a newer one included, is the answer."""
        info = activity.info()
        sender = await find_sender(self.ctx.temporal, info.workflow_id, info.workflow_run_id)
        location = await self.ctx.control_plane.new_generation(
            input.name,
            input.reason,
            follows=input.follows,
            requested_by=sender.identity if sender else None,
            requested_via=sender.via if sender else None,
        )
        return NewGenerationOutput(generation=location.generation)

    @activity.defn(name=REPORT_CODE_LOCATION_STATUS)
    async def report_code_location_status(self, input: LocationStatusInput) -> None:
        await self._report(input)

    async def _report(self, input: LocationStatusInput) -> None:
        log_tail: list[str] = []
        if input.log_handle is not None:
            handle = input.log_handle
            log_tail = await asyncio.to_thread(self.ctx.launcher.log_tail, handle, LOG_TAIL_LINES)
            if log_tail:
                # The server's output is the user's: what may leave follows the settings.
                location = await self.ctx.control_plane.code_location(input.name)
                log_tail = logpolicy.outgoing_tail(location.log_settings, location.spec, log_tail)
                if location.log_settings.redact_errors and input.status == CodeLocationStatus.ERROR:
                    # A code server prints its load error unmarked: its tail cannot be
                    # redacted line by line, so none is sent with an error.
                    log_tail = []
        await self.ctx.control_plane.report_code_location(
            input.name,
            CodeLocationStatusReport(
                status=input.status,
                message=input.message[:MAX_MESSAGE_CHARS] if input.message else None,
                log_tail=[line[:MAX_MESSAGE_CHARS] for line in log_tail[-MAX_LOG_TAIL_LINES:]],
                generation=input.generation,
            ),
        )
