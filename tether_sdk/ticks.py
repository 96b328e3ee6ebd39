"""Evaluating a tick in the code server: call the sensor (or schedule config function) and
turn what it returned into a ``TickResponse``.

Every problem with user code (it raised, returned something unusable, named an unknown job,
asked for a run config its job rejects) is an error *in the response*, with the traceback,
never an exception out of here: the tick records it and the sensor keeps its cursor.
"""

import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tether_api import partitions as keys_of
from tether_api.enums import SensorKind, TickKind
from tether_api.runtags import TETHER_PARTITION_TAG
from tether_api.ticks import MAX_RUN_REQUESTS, RunRequestSpec, TickError, TickRequest, TickResponse
from tether_sdk.config import describe_errors, validate_config
from tether_sdk.definitions import Definitions, Job
from tether_sdk.partitions import TimeWindowPartitions
from tether_sdk.run_target import RunTargetError, run_partitions
from tether_sdk.sensors import (
    RunRequest,
    RunStatusSensorContext,
    ScheduleContext,
    SensorContext,
    SkipReason,
    as_requests,
)


class TickFailed(Exception):
    """A user function's result cannot be used; the message says why and how to fix it."""


def evaluate(defs: Definitions, request: TickRequest) -> TickResponse:
    """Run the tick's function and describe the outcome (in this thread: see TickRunner)."""
    return answer(
        lambda: (
            _schedule(defs, request)
            if request.kind == TickKind.SCHEDULE
            else _sensor(defs, request)
        )
    )


def answer(evaluate: Callable[[], TickResponse]) -> TickResponse:
    """``evaluate()``'s answer, timed; the user's exception (or one of ours about what the
    user's function returned) is the answer's error, with its traceback: never raised. Shared
    by both kinds of locations."""
    started = time.monotonic()
    try:
        response = evaluate()
    except Exception as exc:
        response = TickResponse(
            error=TickError(
                message=f"{type(exc).__name__}: {exc}",
                traceback="".join(traceback.format_exception(exc)),
            )
        )
    response.duration_seconds = round(time.monotonic() - started, 6)
    return response


def _sensor(defs: Definitions, request: TickRequest) -> TickResponse:
    sensor = defs.sensors.get(request.name)
    if sensor is None:
        known = ", ".join(sorted(defs.sensors)) or "none"
        raise TickFailed(f"this code location declares no sensor {request.name!r} (known: {known})")
    what = f"sensor {sensor.name!r}"
    base: dict[str, Any] = {
        "sensor": sensor.name,
        "cursor": request.cursor,
        "tick_time": request.tick_time,
        "last_tick_at": request.last_tick_at,
    }
    if sensor.kind == SensorKind.RUN_STATUS:
        requests: list[RunRequest] = []
        skips: list[str] = []
        for run in request.runs:
            got, skip, _, _ = as_requests(sensor.fn(RunStatusSensorContext(run=run, **base)), what)
            requests += got
            if skip:
                skips.append(skip)
        skip_reason = None
        if not requests:
            skip_reason = "; ".join(skips) or f"{len(request.runs)} ended runs, no run requests"
        # The control plane keeps a run-status sensor's cursor: the last run it was told of.
        return _response(defs, sensor.job, requests, what, skip_reason, None)
    context = SensorContext(**base)
    got, skip, cursor, cursor_set = as_requests(sensor.fn(context), what)
    if not cursor_set:
        cursor = context.cursor
    return _response(defs, sensor.job, got, what, skip, cursor)


def _schedule(defs: Definitions, request: TickRequest) -> TickResponse:
    schedule = defs.schedules.get(request.name)
    if schedule is None:
        known = ", ".join(sorted(defs.schedules)) or "none"
        raise TickFailed(
            f"this code location declares no schedule {request.name!r} (known: {known})"
        )
    fn = schedule.config_fn
    if fn is None:
        raise TickFailed(f"schedule {schedule.name!r} has a fixed run config: nothing to evaluate")
    what = f"the run_config function of schedule {schedule.name!r}"
    partitions = schedule.job.partitions
    tick_key = (
        keys_of.key_for_tick(partitions.snapshot(), request.tick_time) if partitions else None
    )
    context = ScheduleContext(
        schedule=schedule.name, scheduled_time=request.tick_time, partition_key=tick_key
    )
    value = fn(context)
    if isinstance(value, SkipReason):
        return TickResponse(skip_reason=value.reason)
    if isinstance(value, dict):
        value = RunRequest(run_config=value)
    if not isinstance(value, RunRequest):
        raise TickFailed(
            f"{what} returned {value!r}: return a dict (the run config), a RunRequest or a "
            "SkipReason"
        )
    if value.partition_key is None and (value.job is None or value.job is schedule.job):
        value.partition_key = tick_key
        if isinstance(partitions, TimeWindowPartitions) and tick_key is None:
            return TickResponse(
                skip_reason=f"no partition of job {schedule.job.name!r} has ended by this tick "
                f"(the first one starts at {partitions.start})"
            )
    return _response(defs, schedule.job, [value], what, None, None)


def _response(
    defs: Definitions,
    default_job: Job | None,
    requests: list[RunRequest],
    what: str,
    skip_reason: str | None,
    cursor: str | None,
) -> TickResponse:
    if len(requests) > MAX_RUN_REQUESTS:
        raise TickFailed(
            f"{what} asked for {len(requests)} runs in one tick; at most {MAX_RUN_REQUESTS} are "
            "accepted: keep the rest for the next tick with the cursor"
        )
    specs = []
    for i, r in enumerate(requests):
        job = _resolve_job(defs, r.job if r.job is not None else default_job, what)
        _, errors = validate_config(job.config, r.run_config)
        key = f" (run_key {r.run_key!r})" if r.run_key else ""
        if errors:
            raise TickFailed(f"{what}: run request {i}{key}: {describe_errors(job.name, errors)}")
        tags = dict(r.tags)
        if r.partition_key is not None:
            tags[TETHER_PARTITION_TAG] = r.partition_key
        try:
            run_partitions(job, tags, datetime.now(UTC))
        except RunTargetError as exc:
            hint = ""
            if job.partitions is not None and r.partition_key is None:
                hint = ": return RunRequest(partition_key=...)"
            raise TickFailed(f"{what}: run request {i}{key}: {exc}{hint}") from None
        specs.append(
            RunRequestSpec(job=job.name, run_key=r.run_key, run_config=r.run_config, tags=tags)
        )
    if not specs and skip_reason is None:
        skip_reason = "no run requests"
    return TickResponse(run_requests=specs, cursor=cursor, skip_reason=skip_reason)


def _resolve_job(defs: Definitions, job: Any, what: str) -> Job:
    name = job.name if isinstance(job, Job) else job
    if not isinstance(name, str):
        raise TickFailed(f"{what}: a RunRequest names no job and there is no default job")
    found = defs.get_job(name)
    if found is None:
        known = ", ".join(sorted(defs.jobs)) or "none"
        raise TickFailed(f"{what}: RunRequest for unknown job {name!r} (known jobs: {known})")
    return found


class TickRunner:
    """Runs evaluations off the HTTP thread, bounded by the tick's timeout.

    Python cannot kill a thread: an evaluation past its timeout is answered with a timeout
    error and left to finish in the background, and the same sensor or schedule is refused
    until it has, so a hung function costs at most one thread."""

    def __init__(self, evaluate_fn: Callable[[TickRequest], TickResponse]) -> None:
        self._evaluate = evaluate_fn
        self._lock = threading.Lock()
        self._busy: set[tuple[str, str]] = set()

    def run(self, request: TickRequest) -> TickResponse:
        key = (request.kind.value, request.name)
        with self._lock:
            if key in self._busy:
                return _failed(
                    f"the previous evaluation of {request.kind.value} {request.name!r} is still "
                    "running past its timeout; it is not started again until that one returns"
                )
            self._busy.add(key)
        result: list[TickResponse] = []

        def target() -> None:
            try:
                result.append(self._evaluate(request))
            finally:
                with self._lock:
                    self._busy.discard(key)

        thread = threading.Thread(target=target, name=f"tick-{request.name}", daemon=True)
        thread.start()
        thread.join(request.timeout_seconds)
        if result:
            return result[0]
        return _failed(
            f"{request.kind.value} {request.name!r} did not return within its timeout of "
            f"{request.timeout_seconds:g} s (timeout_seconds= in its declaration)"
        )


def _failed(message: str) -> TickResponse:
    return TickResponse(error=TickError(message=message))
