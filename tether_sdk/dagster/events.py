"""Dagster's events of one run as Tether's (``EventTranslator``), emitted as they come: a
listener on the run's instance calls it right after Dagster stores each event, in the thread
that made it. How the two models differ is in ``execute.py``'s docstring and the README.

Dagster internals used: ``dagster._core.events`` (``DagsterEventType``, ``EventLogEntry``
fields), ``SerializableErrorInfo``.
"""

import contextlib
import sys
import time
from collections.abc import Callable
from typing import Any

from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._utils.error import SerializableErrorInfo

from tether_api.enums import EventType
from tether_sdk.dagster.metadata import json_metadata
from tether_sdk.location import RunContext
from tether_sdk.run_worker.executor import Outcome

LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
# Dagster's wrappers around the user's exception: the error shown is what they wrap.
WRAPPERS = {
    "DagsterExecutionStepExecutionError",
    "DagsterExecutionLoadInputError",
    "DagsterExecutionHandleOutputError",
    "DagsterUserCodeExecutionError",
}
INTERRUPTED = "DagsterExecutionInterruptedError"
# Dagster's bookkeeping events: no Tether event (they would double every step's count).
QUIET = {
    DagsterEventType.ENGINE_EVENT,
    DagsterEventType.STEP_INPUT,
    DagsterEventType.STEP_OUTPUT,
    DagsterEventType.LOADED_INPUT,
    DagsterEventType.HANDLED_OUTPUT,
    DagsterEventType.RESOURCE_INIT_STARTED,
    DagsterEventType.RESOURCE_INIT_SUCCESS,
    DagsterEventType.LOGS_CAPTURED,
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
    DagsterEventType.RUN_ENQUEUED,
    DagsterEventType.RUN_STARTING,
    DagsterEventType.RUN_CANCELING,
}


def error_data(error: SerializableErrorInfo | None) -> dict[str, Any]:
    """The user's error (Dagster's wrappers dropped), its causes and the whole text."""
    if error is None:
        return {}
    shown = error
    while shown.cls_name in WRAPPERS and shown.cause is not None:
        shown = shown.cause
    causes: list[str] = []
    current = shown.cause or shown.context
    while current is not None and len(causes) < 20:
        causes.append(f"{current.cls_name}: {_message(current)}")
        current = current.cause or current.context
    return {
        "error": f"{shown.cls_name}: {_message(shown)}",
        "error_class": shown.cls_name or "",
        "causes": causes,
        "traceback": error.to_string(),
    }


def _write_stderr(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        stream = sys.__stderr__ or sys.stderr
        stream.write(line + "\n")
        stream.flush()


def _message(error: SerializableErrorInfo) -> str:
    text = (error.message or "").strip()
    prefix = f"{error.cls_name}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


class EventTranslator:
    """Dagster's events of one run as Tether's, emitted as they come."""

    def __init__(
        self,
        context: RunContext,
        job_name: str,
        planned: Callable[[], list[str]],
        canceled: Callable[[], bool],
    ) -> None:
        self.context = context
        self.emitter = context.emitter
        self.job_name = job_name
        self.planned = planned
        self.canceled = canceled
        self.started: set[str] = set()
        self.ended: set[str] = set()
        self.failed: list[str] = []
        self.outcome: Outcome | None = None
        self._step_capture: contextlib.ExitStack | None = None

    def __call__(self, entry: EventLogEntry) -> None:
        # Dagster fails the run when a listener raises: never let anything out.
        try:
            self._translate(entry)
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.emitter.emit(
                    EventType.LOG,
                    level="ERROR",
                    message=f"tether: could not translate a Dagster event: {exc!r}",
                )

    def _translate(self, entry: EventLogEntry) -> None:
        event, step = entry.dagster_event, entry.step_key
        if event is None:  # context.log, and Dagster's own log lines
            capture = self.context.capture
            if capture is not None and not capture.forward_text:
                # Log text stays in the run's output (forwarding 'structured' or 'local').
                _write_stderr(
                    f"{LEVELS.get(int(entry.level), entry.level)} dagster: {entry.user_message}"
                )
                return
            self.emitter.emit(
                EventType.LOG,
                step=step,
                level=LEVELS.get(int(entry.level), str(entry.level)),
                message=entry.user_message,
                data={"logger": "dagster"},
            )
            return
        kind = event.event_type
        data: Any = event.event_specific_data
        emit = self.emitter.emit
        if kind in QUIET:
            return
        if kind == DagsterEventType.RUN_START:
            emit(
                EventType.RUN_START,
                message=f"starting Dagster job {self.job_name!r} (in process)",
                data={**self.context.start_data, "dagster_run_id": entry.run_id},
            )
        elif kind == DagsterEventType.STEP_START and step:
            self.started.add(step)
            self._capture(step)
            emit(EventType.STEP_START, step=step, message=event.message or f"starting {step}")
        elif kind == DagsterEventType.STEP_SUCCESS and step:
            self._end(step)
            duration = getattr(data, "duration_ms", None)
            emit(
                EventType.STEP_SUCCESS,
                step=step,
                message=event.message or f"{step} succeeded",
                data={"duration_s": duration / 1000} if duration is not None else {},
            )
        elif kind == DagsterEventType.STEP_FAILURE and step:
            self._end(step)
            details = error_data(getattr(data, "error", None))
            user_failure = getattr(data, "user_failure_data", None)
            if user_failure is not None:
                details["metadata"] = json_metadata(user_failure.metadata)
                details["description"] = user_failure.description
            if details.get("error_class") == INTERRUPTED and self._canceled_soon():
                emit(EventType.STEP_CANCELED, step=step, message=f"{step} canceled")
                return
            self.failed.append(step)
            emit(
                EventType.STEP_FAILURE,
                step=step,
                level="ERROR",
                message=f"{step} failed: {details.get('error', event.message)}",
                data=details,
            )
        elif kind == DagsterEventType.STEP_SKIPPED and step:
            self.ended.add(step)
            emit(
                EventType.STEP_SKIPPED,
                step=step,
                message=f"{step} skipped: an optional output it needs was not produced",
                data={"reason": "output not produced"},
            )
        elif kind == DagsterEventType.STEP_UP_FOR_RETRY and step:
            self._close_capture()
            details = error_data(getattr(data, "error", None))
            emit(
                EventType.STEP_UP_FOR_RETRY,
                step=step,
                level="WARNING",
                message=event.message or f"{step} will be retried",
                data={**details, "seconds_to_wait": getattr(data, "seconds_to_wait", None)},
            )
        elif kind == DagsterEventType.STEP_RESTARTED and step:
            self._capture(step)
            emit(EventType.STEP_RESTARTED, step=step, message=event.message or f"{step} restarted")
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            m = data.materialization
            key = m.asset_key.to_user_string()
            emit(
                EventType.ASSET_MATERIALIZATION,
                step=step,
                message=f"materialized asset {key!r}"
                + (f" partition {m.partition}" if m.partition else ""),
                data={
                    "asset_key": key,
                    "partition": m.partition,
                    "metadata": json_metadata(m.metadata),
                },
            )
        elif kind == DagsterEventType.ASSET_OBSERVATION:
            o = data.asset_observation
            key = o.asset_key.to_user_string()
            emit(
                EventType.ASSET_OBSERVATION,
                step=step,
                message=f"observed asset {key!r}",
                data={
                    "asset_key": key,
                    "partition": o.partition,
                    "metadata": json_metadata(o.metadata),
                },
            )
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            key = data.asset_key.to_user_string()
            passed = bool(data.passed)
            emit(
                EventType.ASSET_CHECK_EVALUATION,
                step=step,
                level="INFO" if passed else "WARNING",
                message=f"check {data.check_name} of {key!r} "
                + ("passed" if passed else "did not pass"),
                data={
                    "asset_key": key,
                    "check": data.check_name,
                    "passed": passed,
                    "severity": getattr(getattr(data, "severity", None), "value", None),
                    "metadata": json_metadata(data.metadata),
                },
            )
        elif kind == DagsterEventType.RESOURCE_INIT_FAILURE:
            # The error itself is the run's failure's (redacted there when the settings say).
            emit(
                EventType.LOG,
                step=step,
                level="ERROR",
                message="a resource failed to set up: the run fails with its error",
            )
        elif kind in (
            DagsterEventType.RUN_SUCCESS,
            DagsterEventType.RUN_FAILURE,
            DagsterEventType.RUN_CANCELED,
        ):
            self._finish(kind, data, event.message)

    def _finish(self, kind: DagsterEventType, data: Any, message: str | None) -> None:
        self._close_capture()
        canceled = self.canceled() or kind == DagsterEventType.RUN_CANCELED
        # Every planned step the run did not reach says why (Dagster says nothing of them);
        # the plan is made only then (a run that succeeded reached them all).
        reason = "run canceled" if canceled else "upstream failed"
        reached_all = kind == DagsterEventType.RUN_SUCCESS and not canceled
        for step in [] if reached_all else self.planned():
            if (
                step not in self.started
                and step not in self.ended
                and not any(s.startswith(f"{step}[") for s in self.started)
            ):
                self.emitter.emit(
                    EventType.STEP_SKIPPED,
                    step=step,
                    message=f"{step} not executed: "
                    + ("the run was canceled" if canceled else "a step it depends on failed"),
                    data={"reason": reason},
                )
        if canceled:
            self.outcome = Outcome.CANCELED
            reason_text = self.context.cancel.reason or "canceled"
            self.emitter.emit(EventType.RUN_CANCELED, message=f"run canceled: {reason_text}")
        elif kind == DagsterEventType.RUN_SUCCESS:
            self.outcome = Outcome.SUCCESS
            self.emitter.emit(
                EventType.RUN_SUCCESS, message=f"Dagster job {self.job_name!r} succeeded"
            )
        else:
            self.outcome = Outcome.FAILURE
            details = error_data(getattr(data, "error", None))
            text = (
                f"steps failed: {', '.join(self.failed)}"
                if self.failed
                else f"the run failed: {details.get('error', message or 'see its logs')}"
            )
            self.emitter.emit(
                EventType.RUN_FAILURE,
                level="ERROR",
                message=text,
                data={**details, "failed_steps": self.failed},
            )

    def _canceled_soon(self, seconds: float = 2.0) -> bool:
        """Whether the run is being canceled. A step interrupted by a signal is seen here as
        soon as Dagster's handler raises in this thread, perhaps before CancelWatch's thread
        has recorded the same signal: wait for it a moment (an interruption comes only from
        a signal, so the wait is short and rare)."""
        deadline = time.monotonic() + seconds
        while not self.canceled() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.canceled()

    def _end(self, step: str) -> None:
        self.ended.add(step)
        self._close_capture()

    def _capture(self, step: str) -> None:
        """stdout, stderr and Python logging of the step's code, as the step's LOG events
        (the in-process executor runs one step at a time, in this thread)."""
        self._close_capture()
        capture = self.context.capture
        if capture is not None:
            stack = contextlib.ExitStack()
            stack.enter_context(capture.step(step))
            self._step_capture = stack

    def _close_capture(self) -> None:
        if self._step_capture is not None:
            stack, self._step_capture = self._step_capture, None
            stack.close()
