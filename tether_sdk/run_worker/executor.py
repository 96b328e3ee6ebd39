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
from tether_sdk.run_target import RunPartitions, RunTarget
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
    target: RunTarget | None = None,
) -> ExecutionReport:
    """Emit RUN_START (with ``start_data``), run every step of ``target`` (default: the whole
    job, no partition), skipping those downstream of a failure, and emit the final
    RUN_SUCCESS / RUN_FAILURE / RUN_CANCELED event."""
    cancel = cancel or CancelState()
    target = target or RunTarget(partitions=RunPartitions(), steps=job.steps)
    set_current(cancel)
    try:
        return _execute(job, config, emitter, run_id, cancel, capture, start_data, target)
    finally:
        set_current(None)


def _execute(
    job: Job,
    config: BaseModel | None,
    emitter: EventEmitter,
    run_id: str,
    cancel: CancelState,
    capture: OutputCapture | None,
    start_data: dict[str, Any] | None,
    target: RunTarget,
) -> ExecutionReport:
    report = ExecutionReport(Outcome.SUCCESS)
    emitter.emit(
        EventType.RUN_START,
        message=f"starting job {job.name!r}{_describe(target)}",
        data=start_data,
    )
    not_ok: set[str] = set()  # failed, skipped or canceled: downstream cannot run
    for s in target.steps:
        if cancel.requested:
            emitter.emit(EventType.STEP_SKIPPED, step=s.name, message="skipped: run canceled")
            report.skipped.append(s.name)
            continue
        blocked = [d for d in job.upstream(s) if d in not_ok]
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
        ok = _run_step(job, s, config, emitter, run_id, cancel, capture, report, target)
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
    target: RunTarget,
) -> bool:
    partitions = target.partitions
    ctx = StepContext(
        run_id=run_id,
        job=job.name,
        step=s.name,
        partition_keys=partitions.keys,
        partition_time_window=partitions.time_window,
    )
    # An unpartitioned asset of a partitioned job is materialized whole: no partition.
    asset_partitions = partitions.keys if s.partitions is not None else []
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
        failure: dict[str, Any] = {
            "error": error,
            "error_class": error_class(exc),
            "traceback": "".join(traceback.format_exception(exc)),
            "duration_s": time.perf_counter() - started,
        }
        if s.asset_key:
            # What the catalog marks FAILED: this asset, at each partition the run targeted.
            failure["asset_keys"] = [s.asset_key]
            failure["partitions"] = list(asset_partitions)
        emitter.emit(
            EventType.STEP_FAILURE,
            step=s.name,
            level="ERROR",
            message=f"{s.kind} {s.name!r} failed: {error}",
            data=failure,
        )
        report.failed.append(s.name)
        return False
    duration = time.perf_counter() - started
    report.outputs[s.name] = result
    if s.asset_key:
        # One materialization per partition of a range (as Dagster's), the same metadata each;
        # an unpartitioned one carries no "partition".
        each: list[str | None] = list(asset_partitions) or [None]
        for partition in each:
            data: dict[str, Any] = {"asset_key": s.asset_key, "metadata": dict(ctx.metadata)}
            at = ""
            if partition is not None:
                data["partition"], at = partition, f" partition {partition!r}"
            emitter.emit(
                EventType.ASSET_MATERIALIZATION,
                step=s.name,
                message=f"materialized asset {s.asset_key!r}{at}",
                data=data,
            )
    emitter.emit(
        EventType.STEP_SUCCESS,
        step=s.name,
        message=f"{s.kind} {s.name!r} succeeded in {duration:.3f}s",
        data={"duration_s": duration, "metadata": dict(ctx.metadata)},
    )
    return True


def _describe(target: RunTarget) -> str:
    keys = target.partitions.keys
    if not keys:
        return ""
    if len(keys) == 1:
        return f", partition {keys[0]!r}"
    return f", partitions {keys[0]!r} to {keys[-1]!r} ({len(keys)})"
