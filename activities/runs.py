"""RunWorkflow's activities: validate, launch and watch the run worker, stop it, and
reconcile the outcome with the control plane."""

import asyncio
import functools
import math
import time
from pathlib import Path

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities import kept_logs, logpolicy
from activities.code_locations import describe_exit
from activities.context import AgentContext, blocking, passthrough_names, resolve_env
from activities.launchers.base import Handle, LaunchError, LaunchSpec
from activities.locate import location_state
from tether_api.agent_api import RunStatusReport
from tether_api.codeserver import ValidateRequest, ValidateResponse
from tether_api.enums import TERMINAL_RUN_STATUSES, CodeLocationStatus, RunStatus
from tether_api.logs import LogForwarding, LogSettings
from tether_api.user_api import Run
from tether_api.wire import MAX_LOG_TAIL_LINES, MAX_MESSAGE_CHARS
from workflows import names
from workflows.models import (
    CodeLocationState,
    FinishRunInput,
    LaunchRunWorkerInput,
    PrepareRunInput,
    PrepareRunOutput,
    ReleaseInput,
    RunOutcome,
    RunResult,
    RunSettledInput,
    RunStatusOutput,
    StopInput,
    StopOutput,
    ValidateRunInput,
    WatchInput,
    WatchRunWorkerOutput,
)

LOG_TAIL_LINES = 30
# What a workflow learns of a refused run; the reasons are on the run in the control plane.
REFUSED = "refused before it started: the reason is in the run's status in Tether"
# A run's output kept for 'local' log settings: its latest part, at most.
MAX_KEPT_LOG_BYTES = 64 * 1024 * 1024
# Exit codes of `tether run-worker` (see the SDK's README).
EXIT_UNDELIVERABLE = 3
EXIT_REFUSED = 4


class RunActivities:
    def __init__(self, context: AgentContext) -> None:
        self.ctx = context
        self._http = httpx.AsyncClient(timeout=30.0)

    async def aclose(self) -> None:
        await self._http.aclose()

    @activity.defn(name=names.PREPARE_RUN)
    async def prepare_run(self, input: PrepareRunInput) -> PrepareRunOutput:
        """Check the run is still wanted and valid: the code server validates the job and its
        config. Raises a retryable error while the location is not serving yet."""
        # Asked at once: they are independent round trips. The run's own state decides first.
        run_or_error, location_or_error = await asyncio.gather(
            self.ctx.control_plane.run(input.run_id),
            self._location_state(input),
            return_exceptions=True,
        )
        if isinstance(run_or_error, BaseException):
            raise run_or_error
        run: Run = run_or_error
        if RunStatus(run.status) in TERMINAL_RUN_STATUSES:
            return PrepareRunOutput(proceed=False, status=run.status, message="already finished")
        if run.status == RunStatus.CANCELING:
            return PrepareRunOutput(
                proceed=False, status=RunStatus.CANCELED, message="canceled before it started"
            )
        max_runtime = None
        raw = run.tags.get(input.max_runtime_tag)
        if raw is not None:
            try:
                max_runtime = float(raw)
                if not math.isfinite(max_runtime) or max_runtime <= 0:
                    raise ValueError
            except ValueError:
                return await self._refuse(
                    run, f"tag {input.max_runtime_tag}={raw!r} is not a positive number of seconds"
                )
        if isinstance(location_or_error, BaseException):
            raise location_or_error
        location: CodeLocationState = location_or_error
        if location.address is None:
            if location.waiting_for_new_code:
                return await self._refuse(
                    run, await self._load_error(input.code_location, location)
                )
            if location.status in (CodeLocationStatus.ERROR, CodeLocationStatus.STOPPED):
                return await self._refuse(
                    run,
                    f"code location {input.code_location} is {location.status.value}: "
                    f"{location.message or 'no code server'}; fix it and redeploy",
                )
            raise ApplicationError(
                f"code location {input.code_location} is {location.status.value}; waiting for "
                "its code server",
                type="CodeLocationNotReady",
            )
        server = location.server
        if server is not None and not self.ctx.is_local(server):
            # Its address may only be reachable on its own host: validate_run goes there.
            return PrepareRunOutput(
                proceed=True,
                status=run.status,
                max_runtime_seconds=max_runtime,
                validate_on=server.host_queue,
                address=location.address,
            )
        validated = await self._validate(run, input.code_location, location.address, max_runtime)
        if server is not None and validated.proceed:
            validated.code_server_label = server.label
            validated.code_server_generation = location.deployed_generation
        return validated

    async def _load_error(self, code_location: str, state: CodeLocationState) -> str:
        """Why a location that waits for new code cannot take the run: its load error as the
        control plane has it (first line, with the fix), else the agent's own words."""
        location = await self.ctx.control_plane.code_location(code_location)
        error = location.error.message.strip().split("\n", 1)[0] if location.error else ""
        return (
            f"code location {code_location} is ERROR and cannot run anything until it is "
            f"fixed: {error or state.message}. The traceback is in `tether locations show "
            f"{code_location}`"
        )

    @activity.defn(name=names.VALIDATE_RUN)
    async def validate_run(self, input: ValidateRunInput) -> PrepareRunOutput:
        """prepare_run's last step, on the code server's host. A code server that does not
        answer and is no longer the location's (it died and the location restarted it
        elsewhere, or the location cannot serve any more) fails this with CodeServerMoved,
        so the workflow looks for the location again instead of asking a dead address until
        the run's start timeout."""
        run = await self.ctx.control_plane.run(input.run_id)
        try:
            return await self._validate(
                run, input.code_location, input.address, input.max_runtime_seconds
            )
        except ApplicationError as exc:
            if exc.type != "CodeServerUnavailable":
                raise
            moved = await self._moved(input)
            if moved is None:
                raise  # still the location's server, as far as it knows: retried
            raise ApplicationError(
                moved, type=names.CODE_SERVER_MOVED, non_retryable=True
            ) from None

    async def _moved(self, input: ValidateRunInput) -> str | None:
        """Why ``input.address`` is no longer where the run should be validated, or None
        while the location's workflow still names it (its watch has not seen it die yet) or
        restarts it (a run waits for a restart, as it does for a start)."""
        if input.organization is None or input.deployment is None:
            return None
        try:
            state = await location_state(
                self.ctx, input.organization, input.deployment, input.code_location
            )
        except (ApplicationError, RPCError):
            return None
        if state.address == input.address:
            return None
        if state.address is not None:
            return (
                f"the code server at {input.address} is gone; code location "
                f"{input.code_location} now serves at {state.address}"
            )
        # No server now: a run waits for a restart, but not for what prepare_run refuses
        # (a location waiting for new code, removed, or failing again after a restart).
        stays_down = (
            state.waiting_for_new_code
            or state.status == CodeLocationStatus.STOPPED
            or (state.status == CodeLocationStatus.ERROR and state.consecutive_failures > 1)
        )
        if stays_down:
            return (
                f"the code server at {input.address} is gone and code location "
                f"{input.code_location} is {state.status.value}"
            )
        return None

    async def _validate(
        self, run: Run, code_location: str, address: str, max_runtime: float | None
    ) -> PrepareRunOutput:
        try:
            response = await self._http.post(
                f"{address}/validate",
                content=ValidateRequest(
                    job=run.job, run_config=run.run_config, tags=run.tags
                ).model_dump_json(),
                headers={"Content-Type": "application/json"},
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ApplicationError(
                f"the code server of {code_location} did not validate the run: {exc!r}",
                type="CodeServerUnavailable",
            ) from exc
        try:
            verdict = ValidateResponse.model_validate_json(response.content)
        except ValueError as exc:
            # Its text would quote the code server's answer: only the class leaves.
            raise ApplicationError(
                f"the code server of {code_location} answered /validate with something that "
                f"is not a validation ({type(exc).__name__}); is its tether version current?",
                type="CodeServerUnavailable",
            ) from None
        if not verdict.valid:
            problems = "; ".join(f"{e.field}: {e.message}" for e in verdict.errors)
            return await self._refuse(
                run,
                verdict.message or problems or "the code server refused the run",
                user_code=True,
            )
        return PrepareRunOutput(
            proceed=True, status=run.status, steps=verdict.steps, max_runtime_seconds=max_runtime
        )

    async def _refuse(self, run: Run, why: str, user_code: bool = False) -> PrepareRunOutput:
        """The run must not start. Why (the code server's validation, a location's load
        error: text from user code) goes straight to the control plane, masked, and with
        ``user_code`` redacted as the log settings say; the workflow learns only that it was
        refused, so the text never enters its history."""
        location = await self.ctx.control_plane.code_location(run.code_location)
        if user_code:
            _, message = logpolicy.redact_error(
                run.log_settings or location.log_settings,
                location.spec,
                f"run {run.id}: the code server refused it",
                why.split("\n", 1)[0],
                why,
            )
        else:
            message = logpolicy.masker(location.spec).text(why)
        await self.ctx.control_plane.report_run(
            run.id,
            RunStatusReport(status=RunStatus.FAILURE, message=message[:MAX_MESSAGE_CHARS]),
        )
        return PrepareRunOutput(proceed=False, status=RunStatus.FAILURE, message=REFUSED)

    async def _warm_from(
        self, input: LaunchRunWorkerInput, launch: str, generation: int
    ) -> str | None:
        """The label of the location's code server when this host runs it, it serves the
        location's current ``generation`` and the location launches warm: its fork server may
        start the worker (the launcher falls back to a cold start when it cannot; so does a
        run launched while a redeploy is under way, which starts on the new code). prepare_run
        names it; otherwise the location's workflow is asked."""
        if launch != "warm" or not self.ctx.launcher.supports_warm_fork:
            return None
        if input.code_server_label is not None:
            if input.code_server_generation not in (None, generation):
                return None
            return input.code_server_label
        try:
            state = await location_state(
                self.ctx, input.organization, input.deployment, input.code_location
            )
        except (ApplicationError, RPCError):
            return None
        server = state.server
        if server is None or state.address is None or not self.ctx.is_local(server):
            return None
        if state.deployed_generation not in (None, generation):
            return None
        return server.label

    async def _location_state(self, input: PrepareRunInput) -> CodeLocationState:
        return await location_state(
            self.ctx, input.organization, input.deployment, input.code_location
        )

    @activity.defn(name=names.LAUNCH_RUN_WORKER)
    async def launch_run_worker(self, input: LaunchRunWorkerInput) -> Handle:
        """Start the run worker with a fresh run token, or adopt the one already launched
        under this run's label (then no token is minted: a new one would revoke its own)."""
        launcher = self.ctx.launcher
        # A recorded worker, even one that already exited, means this is a retry: never a
        # second worker for one run (its watch then sees the exit and reconciles).
        handle = await asyncio.to_thread(
            functools.partial(launcher.find, input.label, include_exited=True)
        )
        if handle is None:
            # Another host's agent (another state directory) may have launched it before a
            # worker crash moved this workflow here: the control plane knows.
            launch = await self.ctx.control_plane.launch(input.run_id)
            run, location = launch.run, launch.code_location
            if run.status == RunStatus.STARTED and run.agent and run.agent != self.ctx.agent_name:
                # Launched there, and its agent died before the launch was recorded: follow
                # it on that host (or, if the host stays lost, by its heartbeats).
                return self._elsewhere(input, run)
            if run.status != RunStatus.STARTING or launch.token is None:
                raise ApplicationError(
                    f"run {input.run_id} is {run.status.value}, not STARTING: its worker was "
                    "already launched",
                    type="AlreadyLaunched",
                    non_retryable=True,
                )
            env = resolve_env(location.spec)
            # The settings the control plane recorded for this launch (an older control
            # plane records none: the location's).
            settings = run.log_settings or location.log_settings
            env.update(settings.to_env(passthrough_names(location.spec)))
            env.update(
                {
                    "TETHER_RUN_ID": input.run_id,
                    "TETHER_CONTROL_PLANE_URL": self.ctx.worker_control_plane_url,
                    "TETHER_RUN_TOKEN": launch.token,
                }
            )
            spec = LaunchSpec(
                label=input.label,
                kind="run-worker",
                location=location.spec,
                env=env,
                organization=input.organization,
                deployment=input.deployment,
                location_name=input.code_location,
                generation=location.generation,
                run_id=input.run_id,
                image=run.tags.get(self.ctx.run_settings.image_tag) or None,
                warm_from=await self._warm_from(input, location.spec.launch, location.generation),
                run=run,
            )
            try:
                handle = await blocking(lambda: launcher.start(spec))
            except LaunchError as exc:
                raise ApplicationError(str(exc), type="LaunchError", non_retryable=True) from exc
        handle = self.ctx.mark(handle)
        await self.ctx.control_plane.report_run(
            input.run_id,
            RunStatusReport(
                status=RunStatus.STARTED,
                message=f"run worker {'adopted' if handle.adopted else 'started'} "
                f"({handle.where()})",
                agent=self.ctx.agent_name,
            ),
        )
        return handle

    def _elsewhere(self, input: LaunchRunWorkerInput, run: Run) -> Handle:
        assert run.agent is not None
        base = self.ctx.task_queue_base
        return Handle(
            label=input.label,
            kind="run-worker",
            launcher=self.ctx.launcher.name,
            started_at=run.started_at or run.created_at,
            adopted=True,
            agent=run.agent,
            host_queue=names.host_task_queue(base, run.agent) if base else None,
        )

    @activity.defn(name=names.WATCH_RUN_WORKER)
    async def watch_run_worker(self, input: WatchInput) -> WatchRunWorkerOutput:
        """Wait for the run worker to exit. Cancellation (terminate, agent shutdown) leaves
        the process alone: stopping it is stop_run_worker's job.

        An exit the worker did not report (a crash, a kill) is reported here, on the
        worker's host, the one place its output can be read: with its last lines where the
        run's log settings let them leave, masked. The result carries only the exit code
        and the launcher's account of it, never a line of output."""
        end = time.monotonic() + input.max_seconds
        while time.monotonic() < end:
            activity.heartbeat()
            inspection = await asyncio.to_thread(self.ctx.launcher.inspect, input.handle)
            if not inspection.running:
                self.ctx.check_here(input.handle, inspection.found)
                run_id = input.handle.label.removeprefix("run:")
                if run_id != input.handle.label:
                    await self._report_end(
                        run_id,
                        input.handle,
                        RunOutcome.EXITED,
                        inspection.exit_code,
                        inspection.detail,
                    )
                return WatchRunWorkerOutput(
                    running=False, exit_code=inspection.exit_code, detail=inspection.detail
                )
            await asyncio.sleep(input.interval_seconds)
        return WatchRunWorkerOutput(running=True)

    @activity.defn(name=names.STOP_RUN_WORKER)
    async def stop_run_worker(self, input: StopInput) -> StopOutput:
        launcher = self.ctx.launcher
        inspection = await blocking(lambda: launcher.stop(input.handle, input.grace_seconds))
        if input.cleanup:  # the run's FAILURE is recorded already (max runtime)
            await blocking(lambda: launcher.finished(input.handle, False))
        return StopOutput(exit_code=inspection.exit_code)

    @activity.defn(name=names.FINISH_RUN)
    async def finish_run(self, input: FinishRunInput) -> RunResult:
        """Report what the run worker could not: a crash without a final event, a terminate
        that stopped it, a timeout. A run that already reached a final status keeps it."""
        launcher = self.ctx.launcher
        handle = input.handle or await asyncio.to_thread(launcher.find, input.label)
        # Only its own host can inspect, read or remove it.
        local = handle is not None and self.ctx.is_local(handle)
        exit_code = input.exit_code
        if input.handle is None and handle is not None:
            # Launched by an attempt that raced a cancel or a timeout: stop it now.
            stopped = await blocking(
                lambda: launcher.stop(handle, self.ctx.run_settings.stop_grace_seconds)
            )
            exit_code = stopped.exit_code
        run, message = await self._report_end(
            input.run_id,
            handle if local else None,
            input.outcome,
            exit_code,
            input.detail,
            input.message,
        )
        finished = handle is not None and RunStatus(run.status) in TERMINAL_RUN_STATUSES
        if finished and local and handle is not None:
            await self._keep_log(run, handle)
            # Its outcome is recorded: the launcher may remove what is left of it.
            succeeded = run.status == RunStatus.SUCCESS
            await blocking(lambda: launcher.finished(handle, succeeded))
        return RunResult(
            run_id=run.id,
            status=run.status,
            # Ours, or the terminate's reason: the control plane's status message may hold
            # what the run's code said, which stays out of the history.
            message=message,
            exit_code=run.exit_code,
            release_on_host=finished and not local,
        )

    async def _report_end(
        self,
        run_id: str,
        handle: Handle | None,
        outcome: RunOutcome,
        exit_code: int | None,
        detail: str | None,
        message: str | None = None,
    ) -> tuple[Run, str | None]:
        """Report the run's end unless it has one already: the verdict, with the worker's
        last output lines when ``handle`` (on this host) can be read and the run's log
        settings let them leave. Returns the run and the message reported (None: none)."""
        run = await self.ctx.control_plane.run(run_id)
        if RunStatus(run.status) in TERMINAL_RUN_STATUSES:
            return run, None
        if RunStatus(run.status) == RunStatus.CANCELING and message is None:
            # A terminate stops the worker while its watch still runs: the watch may see the
            # exit first, and must keep the reason the control plane recorded with CANCELING.
            message = run.status_message
        log_tail: list[str] = []
        if handle is not None:
            launcher = self.ctx.launcher
            detail = (await asyncio.to_thread(launcher.inspect, handle)).detail or detail
            log_tail = await asyncio.to_thread(launcher.log_tail, handle, LOG_TAIL_LINES)
            log_tail = await self._outgoing_tail(run, log_tail)
        status, message = _verdict(outcome, message, run.status, exit_code, detail)
        run = await self.ctx.control_plane.report_run(
            run_id,
            RunStatusReport(
                status=status,
                message=message[:MAX_MESSAGE_CHARS],
                exit_code=exit_code,
                log_tail=[line[:MAX_MESSAGE_CHARS] for line in log_tail][-MAX_LOG_TAIL_LINES:],
            ),
        )
        return run, message

    @activity.defn(name=names.RELEASE_RUN_WORKER)
    async def release_run_worker(self, input: ReleaseInput) -> None:
        """finish_run's last step, on the run worker's host."""
        launcher = self.ctx.launcher
        run_id = input.handle.label.removeprefix("run:")
        if run_id != input.handle.label:
            await self._keep_log(await self.ctx.control_plane.run(run_id), input.handle)
        await blocking(lambda: launcher.finished(input.handle, input.succeeded))

    async def _outgoing_tail(self, run: Run, lines: list[str]) -> list[str]:
        """The lines of a failure's log tail the run's settings let leave (masked)."""
        settings = run.log_settings or LogSettings()
        if not lines or not settings.forwards_text:
            return []
        location = await self.ctx.control_plane.code_location(run.code_location)
        return logpolicy.outgoing_tail(settings, location.spec, lines)

    async def _keep_log(self, run: Run, handle: Handle) -> None:
        """'local': keep the finished run's output where the settings say, before the
        launcher may remove it (a container, a swept run folder): the agent's own directory,
        or the store URL (then the control plane records the URL)."""
        settings = run.log_settings
        if settings is None or settings.forwarding != LogForwarding.LOCAL:
            return
        text, _ = await asyncio.to_thread(self.ctx.launcher.log_text, handle, MAX_KEPT_LOG_BYTES)
        if settings.store_url:
            location = await self.ctx.control_plane.code_location(run.code_location)
            path = kept_logs.store_path(settings.store_url, run.deployment, run.id)
            masked = logpolicy.masker(location.spec).cut(text)  # may begin inside a secret
            if await _write_or_warn(path, masked, run.id):
                await self.ctx.control_plane.report_run_log_url(run.id, path.as_uri())
        elif self.ctx.kept_logs_dir is not None:
            await _write_or_warn(kept_logs.kept_path(self.ctx.kept_logs_dir, run.id), text, run.id)

    @activity.defn(name=names.WAIT_RUN_SETTLED)
    async def wait_run_settled(self, input: RunSettledInput) -> RunStatusOutput:
        """Ask the control plane until the run reaches a final status (its worker's final
        event, or the monitor failing it once the worker's heartbeats stop) or the slice
        ends. Runs on any agent: it needs no host."""
        end = time.monotonic() + input.max_seconds
        while True:
            activity.heartbeat()
            run = await self.ctx.control_plane.run(input.run_id)
            if RunStatus(run.status) in TERMINAL_RUN_STATUSES or time.monotonic() > end:
                # The status alone: its message may quote the run's own output.
                return RunStatusOutput(status=run.status)
            await asyncio.sleep(input.interval_seconds)


async def _write_or_warn(path: Path, text: str, run_id: str) -> bool:
    """Write a kept copy of a run's output. A store that cannot be written must not hold up
    the run's end (this activity would be retried forever): say so in the agent's log; the
    output stays where the launcher keeps it, under its retention."""
    try:
        await asyncio.to_thread(_write, path, text)
        return True
    except OSError as exc:
        activity.logger.warning(
            "could not keep the output of run %s at %s: %s (fix the path or its permissions; "
            "until then the output stays in the launcher's run folder or container)",
            run_id,
            path,
            exc,
        )
        return False


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _verdict(
    outcome: RunOutcome,
    message: str | None,
    current: RunStatus,
    exit_code: int | None,
    detail: str | None = None,
) -> tuple[RunStatus, str]:
    if outcome == RunOutcome.TERMINATED or current == RunStatus.CANCELING:
        return RunStatus.CANCELED, message or "terminated"
    if outcome in (RunOutcome.TIMED_OUT, RunOutcome.NOT_STARTED):
        return RunStatus.FAILURE, message or "the run did not start"
    if exit_code == EXIT_UNDELIVERABLE:
        return RunStatus.FAILURE, (
            "the run worker could not deliver its events to the control plane (exit code 3)"
        )
    if exit_code == EXIT_REFUSED:
        return RunStatus.FAILURE, "the control plane refused the run worker (exit code 4)"
    return RunStatus.FAILURE, (
        f"the run worker {describe_exit(exit_code, detail)} without a final event"
    )
