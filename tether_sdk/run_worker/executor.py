"""Running a job's steps in order in the current thread, reporting each as events."""

import asyncio
import inspect
import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from tether_api.enums import EventType
from tether_sdk.context import StepContext
from tether_sdk.definitions import Job, Step
from tether_sdk.run_worker.capture import OutputCapture
from tether_sdk.run_worker.events import EventEmitter
from tether_sdk.run_worker.interrupt import CancelState, RunCanceled, set_current
from tether_sdk.run_worker.redaction import error_class

__all__ = ["CancelState", "ExecutionReport", "Outcome", "RunCanceled", "execute"]


class Outcome(StrEnum):
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCELED = "CANCELED"


@dataclass
class ExecutionReport:
    outcome: Outcome
    outputs: dict[str, Any] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)


def execute(
    job: Job,
    config: BaseModel | None,
    emitter: EventEmitter,
    *,
    run_id: str,
    cancel: CancelState | None = None,
    capture: OutputCapture | None = None,
    start_data: dict[str, Any] | None = None,
) -> ExecutionReport:
    """Emit RUN_START (with ``start_data``), run every step (skipping those downstream of a
    failure) and emit the final RUN_SUCCESS / RUN_FAILURE / RUN_CANCELED event."""
    cancel = cancel or CancelState()
    set_current(cancel)
    try:
        return _execute(job, config, emitter, run_id, cancel, capture, start_data)
    finally:
        set_current(None)


def _execute(
    job: Job,
    config: BaseModel | None,
    emitter: EventEmitter,
    run_id: str,
    cancel: CancelState,
    capture: OutputCapture | None,
    start_data: dict[str, Any] | None = None,
) -> ExecutionReport:
    report = ExecutionReport(Outcome.SUCCESS)
    emitter.emit(EventType.RUN_START, message=f"starting job {job.name!r}", data=start_data)
    not_ok: set[str] = set()  # failed, skipped or canceled: downstream cannot run
    for s in job.steps:
        if cancel.requested:
            emitter.emit(EventType.STEP_SKIPPED, step=s.name, message="skipped: run canceled")
            report.skipped.append(s.name)
            continue
        blocked = [d for d in s.deps if d in not_ok]
        if blocked:
            emitter.emit(
                EventType.STEP_SKIPPED,
                step=s.name,
                message=f"skipped: upstream step {blocked[0]!r} did not succeed",
                data={"upstream": blocked},
            )
            report.skipped.append(s.name)
            not_ok.add(s.name)
            continue
        ok = _run_step(job, s, config, emitter, run_id, cancel, capture, report)
        if not ok:
            not_ok.add(s.name)

    if report.canceled or cancel.requested:
        report.outcome = Outcome.CANCELED
        reason = cancel.reason or "canceled"
        emitter.emit(EventType.RUN_CANCELED, message=f"run canceled: {reason}")
    elif report.failed:
        report.outcome = Outcome.FAILURE
        emitter.emit(
            EventType.RUN_FAILURE,
            level="ERROR",
            message=f"steps failed: {', '.join(report.failed)}",
            data={"failed_steps": report.failed, "skipped_steps": report.skipped},
        )
    else:
        emitter.emit(EventType.RUN_SUCCESS, message=f"job {job.name!r} succeeded")
    return report


def _run_step(
    job: Job,
    s: Step,
    config: BaseModel | None,
    emitter: EventEmitter,
    run_id: str,
    cancel: CancelState,
    capture: OutputCapture | None,
    report: ExecutionReport,
) -> bool:
    ctx = StepContext(run_id=run_id, job=job.name, step=s.name)
    kwargs: dict[str, Any] = {dep: report.outputs[dep] for dep in s.deps}
    if s.context_param:
        kwargs[s.context_param] = ctx
    if s.takes_config:
        kwargs["config"] = config
    emitter.emit(EventType.STEP_START, step=s.name, message=f"starting {s.kind} {s.name!r}")
    started = time.perf_counter()
    try:
        with capture.step(s.name) if capture else nullcontext():
            # The window in which a cancel signal interrupts the step (see CancelState).
            cancel.in_step = True
            try:
                if cancel.requested:
                    raise RunCanceled(cancel.reason)
                result = s.fn(**kwargs)
                if inspect.iscoroutine(result):
                    result = asyncio.run(result)
            finally:
                cancel.in_step = False
    except RunCanceled as exc:
        emitter.emit(
            EventType.STEP_CANCELED,
            step=s.name,
            message=f"{s.kind} {s.name!r} canceled: {exc}",
            data={"duration_s": time.perf_counter() - started},
        )
        report.canceled.append(s.name)
        return False
    except BaseException as exc:  # sys.exit() or a KeyboardInterrupt of its own fails the step
        error = "".join(traceback.format_exception_only(exc)).strip()
        emitter.emit(
            EventType.STEP_FAILURE,
            step=s.name,
            level="ERROR",
            message=f"{s.kind} {s.name!r} failed: {error}",
            data={
                "error": error,
                "error_class": error_class(exc),
                "traceback": "".join(traceback.format_exception(exc)),
                "duration_s": time.perf_counter() - started,
            },
        )
        report.failed.append(s.name)
        return False
    duration = time.perf_counter() - started
    report.outputs[s.name] = result
    if s.asset_key:
        emitter.emit(
            EventType.ASSET_MATERIALIZATION,
            step=s.name,
            message=f"materialized asset {s.asset_key!r}",
            data={"asset_key": s.asset_key, "metadata": dict(ctx.metadata)},
        )
    emitter.emit(
        EventType.STEP_SUCCESS,
        step=s.name,
        message=f"{s.kind} {s.name!r} succeeded in {duration:.3f}s",
        data={"duration_s": duration, "metadata": dict(ctx.metadata)},
    )
    return True
