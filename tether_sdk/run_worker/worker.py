"""One run, start to finish: fetch it, load the code, execute, deliver events, exit."""

import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from types import FrameType

from tether_api.codeserver import LoadError
from tether_api.enums import TERMINAL_RUN_STATUSES, EventType, RunStatus
from tether_api.user_api import Run
from tether_sdk.location import LoadedLocation, LocationTarget, RunContext, load_location
from tether_sdk.run_worker.capture import OutputCapture
from tether_sdk.run_worker.client import (
    ControlPlaneClient,
    ControlPlaneRejected,
    DeliveryTimeout,
)
from tether_sdk.run_worker.executor import CancelState, Outcome
from tether_sdk.run_worker.heartbeat import Heartbeat
from tether_sdk.run_worker.interrupt import RunCanceled
from tether_sdk.run_worker.policy import LogPolicy
from tether_sdk.run_worker.redaction import error_class
from tether_sdk.run_worker.sink import EventSink

EXIT_SUCCESS = 0
EXIT_FAILURE = 1  # the run failed (a step, the code, or the config)
EXIT_UNDELIVERED = 3  # events could not all be delivered within the flush timeout
EXIT_REJECTED = 4  # the control plane refused us (4xx): revoked token, unknown run...
EXIT_CANCELED = 143  # 128 + SIGTERM, as if the signal had killed us
# A repeated signal this long after the first forces an immediate exit.
FORCE_AFTER = 5.0

_OUTCOME_EXIT = {
    Outcome.SUCCESS: EXIT_SUCCESS,
    Outcome.FAILURE: EXIT_FAILURE,
    Outcome.CANCELED: EXIT_CANCELED,
}


@dataclass
class WorkerOptions:
    run_id: str
    control_plane_url: str
    token: str
    target: LocationTarget = field(default_factory=LocationTarget)
    heartbeat_interval: float = 5.0
    flush_timeout: float = 300.0
    # Warm launches (tether_sdk/forkserver.py) and pooled workers (run_worker/pooled.py): the
    # code loaded before the run was known, instead of loading it for it.
    preloaded: LoadedLocation | None = None
    # Warm and pooled launches: the run as the agent's launch read it a moment ago, instead
    # of a call to fetch it.
    run: Run | None = None
    # The run's log settings (forwarding, redaction, masked names) from its environment.
    log_policy: LogPolicy = field(default_factory=LogPolicy)


def options_from_env(
    env: dict[str, str],
    preloaded: LoadedLocation,
    run: Run | None,
    heartbeat_interval: float | None = None,
    flush_timeout: float | None = None,
) -> WorkerOptions:
    """Options of a worker whose code is imported already (warm or pooled): the run's ID,
    control plane and token come in its env (TETHER_RUN_ID, TETHER_CONTROL_PLANE_URL,
    TETHER_RUN_TOKEN), as they do for a cold worker, with its log settings
    (TETHER_LOG_FORWARDING, TETHER_REDACT_ERRORS, TETHER_MASK_ENV)."""
    return WorkerOptions(
        run_id=env["TETHER_RUN_ID"],
        control_plane_url=env["TETHER_CONTROL_PLANE_URL"],
        token=env["TETHER_RUN_TOKEN"],
        heartbeat_interval=heartbeat_interval or float(env.get("TETHER_HEARTBEAT_INTERVAL", "5")),
        flush_timeout=flush_timeout or float(env.get("TETHER_FLUSH_TIMEOUT", "300")),
        preloaded=preloaded,
        run=run,
        log_policy=LogPolicy.from_env(env),
    )


def log(line: str) -> None:
    """Diagnostics go to the real stderr, never to a step's captured stream."""
    print(line, file=sys.__stderr__ or sys.stderr, flush=True)


class RunWorker:
    """Must be used from the main thread: it installs SIGTERM/SIGINT handlers."""

    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self.cancel = CancelState()
        self.rejected: ControlPlaneRejected | None = None
        self._interrupt_reason: str | None = None
        self._first_signal_at: float | None = None
        self._interrupt_lock = threading.Lock()

    def _client(self) -> ControlPlaneClient:
        o = self.options
        return ControlPlaneClient(o.control_plane_url, o.run_id, o.token, log=log)

    def run(self) -> int:
        o = self.options
        log(
            f"tether run-worker: run {o.run_id} (pid {os.getpid()}), "
            f"control plane {o.control_plane_url}"
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        run = o.run
        if run is None:
            client = self._client()
            try:
                # Retried forever, unless a SIGTERM asks us to give up.
                run = client.get_run(deadline=lambda: 0.0 if self.cancel.requested else None)
            except ControlPlaneRejected as exc:
                log(f"tether run-worker: cannot fetch run {o.run_id}: {exc}")
                return EXIT_REJECTED
            except DeliveryTimeout as exc:
                log(f"tether run-worker: canceled while fetching run {o.run_id}: {exc}")
                return EXIT_CANCELED
            finally:
                client.close()
        if run.status in TERMINAL_RUN_STATUSES:
            log(f"tether run-worker: run {run.id} is already {run.status}; not running it again")
            return EXIT_FAILURE

        sink = EventSink(self._client(), on_rejected=self._on_rejected)
        if not o.log_policy.is_default:
            sink.policy = o.log_policy.apply
        heartbeat = Heartbeat(
            self._client(),
            o.heartbeat_interval,
            on_cancel=lambda: self._interrupt("cancel requested by the control plane"),
            on_rejected=self._on_rejected,
            log=log,
        )
        sink.start()
        heartbeat.start()
        if run.status == RunStatus.CANCELING:
            self.cancel.request("cancel requested by the control plane")
        try:
            code = self._execute(run, sink, {sink.thread_id or 0, heartbeat.thread_id or 0})
        finally:
            heartbeat.stop()
            delivered = sink.close(o.flush_timeout)
        if sink.dropped_after_final:
            log(
                f"tether run-worker: {sink.dropped_after_final} lines logged by user threads "
                "after the run ended were not recorded"
            )
        if self.cancel.requested:
            log(f"tether run-worker: run {run.id} canceled: {self.cancel.reason}")
        if self.rejected is not None:
            log(f"tether run-worker: stopping: {self.rejected}")
            return EXIT_REJECTED
        if not delivered:
            log(
                f"tether run-worker: could not deliver all events of run {run.id} "
                f"({sink.delivered} of {sink.last_seq} delivered): {sink.error}"
            )
            return EXIT_UNDELIVERED
        return code

    def _execute(self, run: Run, sink: EventSink, ignored_threads: set[int]) -> int:
        """Load, validate and execute, always ending with a final event (a run that ends
        without one would be left for the control plane's timeouts to find)."""
        try:
            return self._load_and_execute(run, sink, ignored_threads)
        except RunCanceled:
            sink.emit(EventType.RUN_CANCELED, message=f"run canceled: {self.cancel.reason}")
            return EXIT_CANCELED
        except BaseException as exc:
            sink.emit(
                EventType.RUN_FAILURE,
                level="ERROR",
                message=f"run worker error: {exc!r}",
                data={
                    "error_class": error_class(exc),
                    "traceback": "".join(traceback.format_exception(exc)),
                },
            )
            return EXIT_FAILURE

    def _load_and_execute(self, run: Run, sink: EventSink, ignored_threads: set[int]) -> int:
        o = self.options
        # Importing user code can take long or hang: a cancel interrupts it, as in a step.
        self.cancel.in_step = True
        try:
            if self.cancel.requested:
                raise RunCanceled(self.cancel.reason)
            loaded = o.preloaded or load_location(o.target)
        finally:
            self.cancel.in_step = False
        if self.cancel.requested:
            raise RunCanceled(self.cancel.reason)
        if isinstance(loaded, LoadError):
            if not o.log_policy.redact_errors:  # redaction writes it under its error ID
                log(f"tether run-worker: could not load definitions:\n{loaded.traceback}")
            sink.emit(
                EventType.RUN_FAILURE,
                level="ERROR",
                message=f"could not load the code location's definitions: {loaded.message}",
                data={"error": loaded.message, "traceback": loaded.traceback},
            )
            return EXIT_FAILURE
        outcome = loaded.execute(
            RunContext(
                run=run,
                emitter=sink,
                cancel=self.cancel,
                capture=OutputCapture(sink, ignored_threads, o.log_policy.forwards_text),
                # How the launcher started this worker: a new interpreter, or a warm fork.
                start_data={"launch": os.environ.get("TETHER_LAUNCH", "cold")},
            )
        )
        return _OUTCOME_EXIT[outcome]

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.cancel.requested and self._interrupt_reason is None:
            # Signals a moment apart are one request (the agent's SIGTERM and our own, from a
            # heartbeat answer, may coincide). One that comes later while we are still here
            # (stuck in the final flush, say) means the operator insists: stop now, even if
            # buffered events are lost.
            if self._first_signal_at is not None and now - self._first_signal_at >= FORCE_AFTER:
                os.write(2, b"tether run-worker: signaled again while canceling; exiting now\n")
                os._exit(EXIT_CANCELED)
            return
        self._first_signal_at = self._first_signal_at or now
        with self._interrupt_lock:
            reason, self._interrupt_reason = self._interrupt_reason, None
        # No printing here: the main thread may be inside a write to the same stream, and
        # a reentrant write raises. The reason is logged once the run has ended.
        self.cancel.request(reason or f"received {signal.Signals(signum).name}")

    def _interrupt(self, reason: str) -> None:
        """From a background thread: cancel the run as SIGTERM would, with a reason."""
        if self.cancel.requested:
            return  # already canceling: a signal would only look like an operator's repeat
        with self._interrupt_lock:
            self._interrupt_reason = reason
        os.kill(os.getpid(), signal.SIGTERM)

    def _on_rejected(self, exc: ControlPlaneRejected) -> None:
        if self.rejected is None:
            self.rejected = exc
            log(f"tether run-worker: {exc}")
            self._interrupt(f"control plane rejected the worker (HTTP {exc.status})")


def run_worker(options: WorkerOptions) -> int:
    """Run ``options.run_id`` to completion and return the process exit code."""
    return RunWorker(options).run()
