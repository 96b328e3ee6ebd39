"""Sensors, and what a sensor or a schedule's config function returns.

A sensor is a function the code server calls at the sensor's interval (the control plane
decides when, an agent carries the request): it looks at the world, maybe asks for runs
(``RunRequest``, each with an optional ``run_key``: a key that already made a run makes no
other) and keeps a ``cursor`` of how far it has looked. A run-status sensor is called once
for each run of the jobs it watches that ended with the status it watches.
"""

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from tether_api.enums import AutomationStatus, RunStatus, SensorKind
from tether_api.snapshot import SensorSnapshot
from tether_api.ticks import EndedRun
from tether_sdk.errors import DefinitionError


class RunRequest:
    """Ask for a run of ``job`` (default: the sensor's or schedule's job); ``partition_key``:
    the partition it targets (a partitioned job's run must name one)."""

    def __init__(
        self,
        *,
        run_key: str | None = None,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        job: Any = None,
        partition_key: str | None = None,
    ) -> None:
        if run_key is not None and not isinstance(run_key, str):
            raise TypeError(f"RunRequest(run_key=...) must be a str, got {run_key!r}")
        if partition_key is not None and not isinstance(partition_key, str):
            raise TypeError(f"RunRequest(partition_key=...) must be a str, got {partition_key!r}")
        self.partition_key = partition_key
        self.run_key = run_key
        self.run_config = dict(run_config or {})
        self.tags = dict(tags or {})
        # A Job or a job's name; resolved when the request is read.
        self.job = job

    def __repr__(self) -> str:
        return f"RunRequest(run_key={self.run_key!r}, job={self.job!r})"


class SkipReason:
    """Returned instead of run requests: why nothing is asked for this time."""

    def __init__(self, reason: str) -> None:
        self.reason = str(reason)

    def __repr__(self) -> str:
        return f"SkipReason({self.reason!r})"


class SensorResult:
    """Run requests and a new cursor together (a sensor may also return only the requests)."""

    def __init__(
        self,
        run_requests: Sequence[RunRequest] = (),
        *,
        cursor: str | None = None,
        skip_reason: str | None = None,
    ) -> None:
        self.run_requests = list(run_requests)
        self.cursor = cursor
        self.skip_reason = skip_reason


class SensorContext:
    """What a sensor is called with: its cursor, the tick's time and the previous one's."""

    def __init__(
        self,
        *,
        sensor: str,
        cursor: str | None,
        tick_time: datetime,
        last_tick_at: datetime | None,
    ) -> None:
        self.sensor = sensor
        self.cursor = cursor
        self.tick_time = tick_time
        self.last_tick_at = last_tick_at

    def update_cursor(self, cursor: str | None) -> None:
        """Set the cursor the next evaluation gets (kept only if this one succeeds)."""
        if cursor is not None and not isinstance(cursor, str):
            raise TypeError(f"a cursor is a str (JSON-encode anything else), got {cursor!r}")
        self.cursor = cursor


class RunStatusSensorContext(SensorContext):
    """A run-status sensor's context: ``run`` is the run that ended."""

    def __init__(self, *, run: EndedRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run


class ScheduleContext:
    """What a schedule's config function is called with. ``partition_key``: for a job
    partitioned by time windows, the partition of the tick (the window that just ended), which
    a returned config or RunRequest without a partition_key runs; otherwise None."""

    def __init__(
        self, *, schedule: str, scheduled_time: datetime, partition_key: str | None = None
    ) -> None:
        self.schedule = schedule
        self.scheduled_time = scheduled_time
        self.partition_key = partition_key


class Sensor:
    """Made by ``@sensor`` or ``@run_status_sensor``."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None,
        job: Any,
        minimum_interval_seconds: float,
        timeout_seconds: float,
        default_status: str,
        kind: SensorKind = SensorKind.STANDARD,
        monitored_jobs: Sequence[Any] | None = None,
        monitored_status: str | None = None,
        description: str | None = None,
    ) -> None:
        from tether_sdk.definitions import Job, _name

        if not callable(fn):
            raise DefinitionError(f"@sensor must decorate a function, got {fn!r}")
        self.fn = fn
        self.name = _name(name or getattr(fn, "__name__", None), "sensor name")
        label = f"sensor {self.name!r}"
        if job is not None and not isinstance(job, Job):
            raise DefinitionError(
                f"{label}: job= must be a Job (from job() or asset_job()), got {job!r}"
            )
        if kind == SensorKind.STANDARD and job is None:
            raise DefinitionError(f"{label}: job= is required: the job its RunRequests launch")
        self.job = job
        self.kind = kind
        for what, value in (
            ("minimum_interval_seconds", minimum_interval_seconds),
            ("timeout_seconds", timeout_seconds),
        ):
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise DefinitionError(f"{label}: {what} must be a positive number, got {value!r}")
        if minimum_interval_seconds < 1:
            raise DefinitionError(f"{label}: minimum_interval_seconds must be at least 1")
        self.minimum_interval_seconds = float(minimum_interval_seconds)
        self.timeout_seconds = float(timeout_seconds)
        try:
            self.default_status = AutomationStatus(default_status)
        except ValueError:
            raise DefinitionError(
                f"{label}: default_status is RUNNING or STOPPED, got {default_status!r}"
            ) from None
        self.monitored_jobs: list[str] | None = None
        self.monitored_status: RunStatus | None = None
        if kind == SensorKind.RUN_STATUS:
            if monitored_status not in (RunStatus.SUCCESS, RunStatus.FAILURE):
                raise DefinitionError(
                    f"{label}: run_status must be 'SUCCESS' or 'FAILURE', got {monitored_status!r}"
                )
            self.monitored_status = RunStatus(monitored_status)
            if monitored_jobs is not None:
                self.monitored_jobs = [_job_name(j, label) for j in monitored_jobs]
        self.description = description or inspect.getdoc(fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def snapshot(self) -> SensorSnapshot:
        return SensorSnapshot(
            name=self.name,
            kind=self.kind,
            job=self.job.name if self.job is not None else None,
            minimum_interval_seconds=self.minimum_interval_seconds,
            timeout_seconds=self.timeout_seconds,
            default_status=self.default_status,
            description=self.description,
            monitored_jobs=self.monitored_jobs,
            monitored_status=self.monitored_status,
        )

    def __repr__(self) -> str:
        return f"<sensor {self.name!r} ({self.kind.value})>"


def sensor(
    *,
    job: Any,
    name: str | None = None,
    minimum_interval_seconds: float = 30,
    timeout_seconds: float = 60,
    default_status: str = AutomationStatus.STOPPED,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], Sensor]:
    """Declare a sensor: the decorated function takes a ``SensorContext`` and returns run
    requests (a ``RunRequest``, a list or generator of them, or a ``SensorResult`` that also
    sets the cursor), a ``SkipReason``, or None. It is evaluated in the code server at most
    every ``minimum_interval_seconds``, for at most ``timeout_seconds``; STOPPED until turned
    on (``tether sensors on``) unless ``default_status="RUNNING"``."""

    def decorate(fn: Callable[..., Any]) -> Sensor:
        return Sensor(
            fn,
            name=name,
            job=job,
            minimum_interval_seconds=minimum_interval_seconds,
            timeout_seconds=timeout_seconds,
            default_status=default_status,
            description=description,
        )

    return decorate


def run_status_sensor(
    *,
    run_status: str,
    monitored_jobs: Sequence[Any] | None = None,
    job: Any = None,
    name: str | None = None,
    minimum_interval_seconds: float = 30,
    timeout_seconds: float = 60,
    default_status: str = AutomationStatus.STOPPED,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], Sensor]:
    """Declare a sensor called once for each run of ``monitored_jobs`` (default: every job of
    the deployment) that ended with ``run_status`` (``"SUCCESS"`` or ``"FAILURE"``), with a
    ``RunStatusSensorContext`` whose ``run`` is that run. It may return run requests of
    ``job`` like any sensor; the control plane keeps its cursor (the last run it saw)."""

    def decorate(fn: Callable[..., Any]) -> Sensor:
        return Sensor(
            fn,
            name=name,
            job=job,
            minimum_interval_seconds=minimum_interval_seconds,
            timeout_seconds=timeout_seconds,
            default_status=default_status,
            kind=SensorKind.RUN_STATUS,
            monitored_jobs=monitored_jobs,
            monitored_status=run_status,
            description=description,
        )

    return decorate


def _job_name(job: Any, label: str) -> str:
    from tether_sdk.definitions import Job

    if isinstance(job, Job):
        return job.name
    if isinstance(job, str) and job:
        return job
    raise DefinitionError(f"{label}: monitored_jobs lists {job!r}: give Jobs or job names")


def as_requests(value: Any, what: str) -> tuple[list[RunRequest], str | None, str | None, bool]:
    """(run requests, skip reason, cursor, cursor set) from what a sensor returned."""
    if value is None:
        return [], None, None, False
    if isinstance(value, SkipReason):
        return [], value.reason, None, False
    if isinstance(value, RunRequest):
        return [value], None, None, False
    if isinstance(value, SensorResult):
        requests, _, _, _ = as_requests(value.run_requests, what)
        return requests, value.skip_reason, value.cursor, value.cursor is not None
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping):
        items = list(value)
        wrong = [i for i in items if not isinstance(i, RunRequest)]
        if not wrong:
            return items, None, None, False
        value = wrong[0]
    raise TypeError(
        f"{what} returned {value!r}: return a RunRequest, a list of them, a SensorResult, "
        "a SkipReason or None"
    )
