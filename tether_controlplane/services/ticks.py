"""Ticks the code server evaluates: a sensor's, and a schedule's whose config is code.

The control plane never runs user code. When a sensor is due it writes an EVALUATING tick
and enqueues an ``EVALUATE_TICK`` request for the location's agents; an agent's
TickWorkflow (started with the tick's identity only, no user text) reads the request back
(``enqueued_request``), asks the code server and reports its answer here (``complete``),
which creates the runs asked for, once each per run key, and moves the cursor, all in one
transaction. A tick nobody answers by its deadline fails; a late answer then changes nothing.

One tick per sensor is in flight at a time, and a sensor's run keys are unique in the
database besides, so a report delivered twice, two replicas, or an agent that retried never
create a second run for a key.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tether_api.enums import (
    AutomationStatus,
    RequestType,
    RunStatus,
    SensorKind,
    TickKind,
    TickStatus,
)
from tether_api.ticks import (
    EndedRun,
    EvaluateTickPayload,
    TickOutcome,
    TickReport,
    TickRequest,
    TickResponse,
)
from tether_api.user_api import RunCreate
from tether_controlplane.db import Database
from tether_controlplane.errors import ApiError, Conflict, NotFound
from tether_controlplane.services import alerts, locations, requests, runs
from tether_controlplane.services.automations import effective_status
from tether_controlplane.services.sensors import next_tick_at, parse_run_cursor, run_cursor
from tether_controlplane.tables import (
    CodeLocationRow,
    DeploymentRow,
    RequestRow,
    RunRow,
    ScheduleRow,
    ScheduleTickRow,
    SensorRow,
    SensorRunKeyRow,
    SensorTickRow,
    utcnow,
)

log = logging.getLogger("tether.ticks")

SENSOR_TAG = "tether/sensor"
RUN_KEY_TAG = "tether/run_key"
SCHEDULE_TAG = "tether/schedule"
TICK_TAG = "tether/tick"
# A run-status sensor is told about at most this many ended runs per evaluation.
MAX_RUNS_PER_TICK = 25


def request_due(db: Database, now: datetime, grace_seconds: float) -> datetime | None:
    """Start a tick for each RUNNING sensor that is due, fail the ticks past their deadline;
    return when the next sensor is due (None: none is running)."""
    due: list[int] = []
    upcoming: list[datetime] = []
    with db.read() as s:
        for row in s.scalars(select(SensorRow).where(SensorRow.present.is_(True))):
            at = next_tick_at(row, now)
            if at is None:
                continue
            if at <= now:
                due.append(row.id)
            else:
                upcoming.append(at)
        overdue = _has_overdue(s, now)
    if overdue:
        with db.write() as s:
            expire(s, now)
    for sensor_id in due:
        try:
            with db.write() as s:
                start_sensor_tick(s, sensor_id, now, grace_seconds)
        except Exception:  # one sensor's trouble must not stop the others
            log.exception("starting a tick of sensor %s failed; tried again next pass", sensor_id)
    return min(upcoming, default=None)


def start_sensor_tick(
    session: Session, sensor_id: int, now: datetime, grace_seconds: float
) -> SensorTickRow | None:
    """With the sensor's row locked: a new EVALUATING tick and its request, unless one is in
    flight or the sensor is not due (another replica just started one)."""
    row = session.scalar(select(SensorRow).where(SensorRow.id == sensor_id).with_for_update())
    if row is None or not row.present or effective_status(row) != AutomationStatus.RUNNING:
        return None
    at = next_tick_at(row, now)
    if at is None or at > now:
        return None
    location = _location(session, row.deployment_id, row.code_location)
    if location is None:
        return None
    in_flight = session.scalar(
        select(SensorTickRow.id).where(
            SensorTickRow.sensor_id == row.id,
            SensorTickRow.status == TickStatus.EVALUATING,
        )
    )
    if in_flight is not None:
        return None  # its deadline ends it (expire), then the next one starts
    runs_ended: list[EndedRun] = []
    next_cursor = None
    if row.kind == SensorKind.RUN_STATUS:
        runs_ended, next_cursor = _ended_runs(session, row)
        if not runs_ended:
            row.last_tick_at = now  # nothing new: no need to wake the code server
            return None
    tick = SensorTickRow(
        sensor_id=row.id,
        tick_time=now,
        status=TickStatus.EVALUATING,
        deadline=now + timedelta(seconds=row.timeout_seconds + grace_seconds),
        next_cursor=next_cursor,
        cursor=row.cursor,
        run_ids=[],
        run_keys_skipped=[],
    )
    session.add(tick)
    session.flush()
    request = TickRequest(
        kind=TickKind.SENSOR,
        name=row.name,
        cursor=row.cursor if row.kind == SensorKind.STANDARD else None,
        tick_time=now,
        last_tick_at=row.last_success_at,
        runs=runs_ended,
        timeout_seconds=row.timeout_seconds,
    )
    _enqueue(session, location, TickKind.SENSOR, tick.id, request)
    row.last_tick_at = now
    return tick


def start_schedule_tick(
    session: Session, row: ScheduleRow, tick_time: datetime, now: datetime, grace_seconds: float
) -> ScheduleTickRow:
    """A schedule tick whose config the code server computes: EVALUATING until its answer."""
    record = ScheduleTickRow(
        schedule_id=row.id,
        tick_time=tick_time,
        created_at=now,
        status=TickStatus.EVALUATING,
        deadline=now + timedelta(seconds=row.timeout_seconds + grace_seconds),
    )
    session.add(record)
    session.flush()
    location = _location(session, row.deployment_id, row.code_location)
    assert location is not None  # the scheduler checked
    request = TickRequest(
        kind=TickKind.SCHEDULE,
        name=row.name,
        tick_time=tick_time,
        timeout_seconds=row.timeout_seconds,
    )
    _enqueue(session, location, TickKind.SCHEDULE, record.id, request)
    return record


def _enqueue(
    session: Session,
    location: CodeLocationRow,
    kind: TickKind,
    tick_id: int,
    request: TickRequest,
) -> None:
    payload = EvaluateTickPayload(
        kind=kind, tick_id=tick_id, code_location=location.name, tick=request
    )
    requests.enqueue(
        session,
        location.deployment_id,
        payload,
        dedupe_key=request_key(kind, tick_id),
        queue=locations.queue_of(location),
    )


def request_key(kind: TickKind, tick_id: int) -> str:
    return f"tick:{kind.value}:{tick_id}"


def enqueued_request(
    session: Session, dep: DeploymentRow, kind: TickKind, tick_id: int
) -> EvaluateTickPayload:
    """The tick's ``EVALUATE_TICK`` payload as it was enqueued, for the agent evaluating it.
    The agent starts its TickWorkflow with the tick's identity only (a sensor's cursor and a
    run-status sensor's ended runs are user text, kept out of Temporal histories) and its
    activity reads the rest here. Conflict once the tick has ended: evaluating it again
    would change nothing."""
    status = _tick_status(session, dep, kind, tick_id)
    if status != TickStatus.EVALUATING:
        raise Conflict(
            f"{kind.value} tick {tick_id} has ended ({status}); it is not evaluated again"
        )
    # Newest first: the tick's request is recent, so this stops after a few rows of the
    # deployment's requests rather than reading all of them (dedupe_key has no index).
    row = session.scalar(
        select(RequestRow)
        .where(
            RequestRow.deployment_id == dep.id,
            RequestRow.dedupe_key == request_key(kind, tick_id),
            RequestRow.type == RequestType.EVALUATE_TICK,
        )
        .order_by(RequestRow.id.desc())
        .limit(1)
    )
    if row is None:
        raise NotFound(f"no request of {kind.value} tick {tick_id} in deployment {dep.name!r}")
    return EvaluateTickPayload.model_validate(row.payload)


def _tick_status(session: Session, dep: DeploymentRow, kind: TickKind, tick_id: int) -> TickStatus:
    """The tick's status; NotFound when it is not a tick of this deployment."""
    if kind == TickKind.SENSOR:
        sensor_tick = session.get(SensorTickRow, tick_id)
        sensor = session.get(SensorRow, sensor_tick.sensor_id) if sensor_tick else None
        if sensor_tick is not None and sensor is not None and sensor.deployment_id == dep.id:
            return sensor_tick.status
    else:
        schedule_tick = session.get(ScheduleTickRow, tick_id)
        schedule = session.get(ScheduleRow, schedule_tick.schedule_id) if schedule_tick else None
        if schedule_tick is not None and schedule is not None and schedule.deployment_id == dep.id:
            return schedule_tick.status
    raise NotFound(f"{kind.value} tick {tick_id} not found in deployment {dep.name!r}")


def _location(session: Session, deployment_id: int, name: str) -> CodeLocationRow | None:
    row = session.scalar(
        select(CodeLocationRow).where(
            CodeLocationRow.deployment_id == deployment_id, CodeLocationRow.name == name
        )
    )
    return None if row is None or row.removed else row


def _ended_runs(session: Session, row: SensorRow) -> tuple[list[EndedRun], str | None]:
    """The runs that ended with the watched status after the cursor, oldest first."""
    after = parse_run_cursor(row.cursor) or (row.updated_at, 0)
    query = select(RunRow).where(
        RunRow.deployment_id == row.deployment_id,
        RunRow.status == (row.monitored_status or RunStatus.FAILURE),
        # A range of the index (deployment_id, status, ended_at, pk) from the cursor on; the
        # second test only drops the runs that ended at the cursor's instant before it.
        RunRow.ended_at >= after[0],
        or_(RunRow.ended_at > after[0], RunRow.pk > after[1]),
    )
    if row.monitored_jobs is not None:
        query = query.where(RunRow.job.in_(row.monitored_jobs))
    found = session.scalars(
        query.order_by(RunRow.ended_at, RunRow.pk).limit(MAX_RUNS_PER_TICK)
    ).all()
    if not found:
        return [], None
    ended = [
        EndedRun(
            id=r.id,
            code_location=r.code_location,
            job=r.job,
            status=r.status,
            tags=r.tags,
            run_config=r.run_config,
            error=r.status_message,
            ended_at=r.ended_at,
        )
        for r in found
    ]
    last = found[-1]
    assert last.ended_at is not None
    return ended, run_cursor(last.ended_at, last.pk)


def complete(
    session: Session, dep: DeploymentRow, kind: TickKind, tick_id: int, report: TickReport
) -> TickOutcome:
    """Apply an agent's report of a tick. Idempotent: a tick that is no longer EVALUATING
    (reported before, or past its deadline) is left as it is and described."""
    if kind == TickKind.SENSOR:
        return _complete_sensor(session, dep, tick_id, report)
    return _complete_schedule(session, dep, tick_id, report)


def _complete_sensor(
    session: Session, dep: DeploymentRow, tick_id: int, report: TickReport
) -> TickOutcome:
    tick = session.scalar(
        select(SensorTickRow).where(SensorTickRow.id == tick_id).with_for_update()
    )
    sensor = session.get(SensorRow, tick.sensor_id) if tick is not None else None
    if tick is None or sensor is None or sensor.deployment_id != dep.id:
        raise NotFound(f"sensor tick {tick_id} not found in deployment {dep.name!r}")
    if tick.status != TickStatus.EVALUATING:
        return _outcome(tick.status, tick.run_ids, tick.error, already=True)
    tick.workflow_id = report.workflow_id
    tick.finished_at = utcnow()
    error, trace = _error_of(report)
    response = report.response
    if error is None and response is not None:
        try:
            with session.begin_nested():  # a refused request leaves no run behind
                created, skipped = _create_sensor_runs(session, dep, sensor, response)
        except (ApiError, ValidationError, _Refused) as exc:
            error = exc.detail if isinstance(exc, ApiError | _Refused) else str(exc)
        else:
            tick.run_ids, tick.run_keys_skipped = created, skipped
            tick.status = TickStatus.SUCCESS if created else TickStatus.SKIPPED
            tick.skip_reason = response.skip_reason
            if not created and skipped:
                tick.skip_reason = f"run keys already used: {', '.join(skipped[:10])}"
            sensor.cursor = (
                tick.next_cursor if sensor.kind == SensorKind.RUN_STATUS else response.cursor
            )
            tick.cursor = sensor.cursor
            sensor.last_success_at = tick.tick_time
            return _outcome(tick.status, created, None)
    _fail_sensor_tick(session, dep, sensor, tick, error or "no answer", trace)
    return _outcome(tick.status, [], tick.error)


class _Refused(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _create_sensor_runs(
    session: Session, dep: DeploymentRow, sensor: SensorRow, response: TickResponse
) -> tuple[list[str], list[str]]:
    created: list[str] = []
    skipped: list[str] = []
    for i, request in enumerate(response.run_requests):
        job = request.job or sensor.job
        where = f"run request {i}" + (f" (run_key {request.run_key!r})" if request.run_key else "")
        if job is None:
            raise _Refused(f"{where} names no job and sensor {sensor.name!r} has none")
        if request.run_key is not None:
            used = session.scalar(
                select(SensorRunKeyRow.run_id).where(
                    SensorRunKeyRow.sensor_id == sensor.id,
                    SensorRunKeyRow.run_key == request.run_key,
                )
            )
            if used is not None or request.run_key in created:
                skipped.append(request.run_key)
                continue
        tags = {**request.tags, SENSOR_TAG: sensor.name}
        if request.run_key is not None:
            tags[RUN_KEY_TAG] = request.run_key
        body = RunCreate(
            code_location=sensor.code_location, job=job, run_config=request.run_config, tags=tags
        )
        try:
            run = runs.create(session, dep, body)
        except ApiError as exc:
            raise _Refused(f"{where}: {exc.detail}") from exc
        if request.run_key is not None:
            session.add(
                SensorRunKeyRow(sensor_id=sensor.id, run_key=request.run_key, run_id=run.id)
            )
            session.flush()  # the unique key decides now, inside the savepoint
        created.append(run.id)
    return created, skipped


def _fail_sensor_tick(
    session: Session,
    dep: DeploymentRow,
    sensor: SensorRow,
    tick: SensorTickRow,
    error: str,
    trace: str | None,
) -> None:
    """The cursor stays where it was, so the next evaluation sees the same world again."""
    previous = session.scalar(
        select(SensorTickRow.status)
        .where(
            SensorTickRow.sensor_id == sensor.id,
            SensorTickRow.id < tick.id,
            SensorTickRow.status != TickStatus.EVALUATING,
        )
        .order_by(SensorTickRow.id.desc())
        .limit(1)
    )
    tick.status, tick.error, tick.traceback = TickStatus.FAILURE, error, trace
    tick.finished_at = tick.finished_at or utcnow()
    tick.cursor = sensor.cursor
    # On the transition into failure, not on every failing evaluation of a broken sensor.
    if previous != TickStatus.FAILURE:
        alerts.tick_failed(
            session,
            dep,
            sensor.code_location,
            f"sensor {sensor.name}",
            f"sensor:{sensor.code_location}:{sensor.name}:{tick.id}",
            tick.tick_time,
            error,
        )


def _complete_schedule(
    session: Session, dep: DeploymentRow, tick_id: int, report: TickReport
) -> TickOutcome:
    tick = session.scalar(
        select(ScheduleTickRow).where(ScheduleTickRow.id == tick_id).with_for_update()
    )
    schedule = session.get(ScheduleRow, tick.schedule_id) if tick is not None else None
    if tick is None or schedule is None or schedule.deployment_id != dep.id:
        raise NotFound(f"schedule tick {tick_id} not found in deployment {dep.name!r}")
    if tick.status != TickStatus.EVALUATING:
        return _outcome(tick.status, [tick.run_id] if tick.run_id else [], tick.error, True)
    tick.workflow_id = report.workflow_id
    error, trace = _error_of(report)
    response = report.response
    if error is None and response is not None:
        if not response.run_requests:
            tick.status = TickStatus.SKIPPED
            tick.error = response.skip_reason or "the config function asked for no run"
            return _outcome(tick.status, [], tick.error)
        request = response.run_requests[0]
        body = RunCreate(
            code_location=schedule.code_location,
            job=request.job or schedule.job,
            run_config=request.run_config,
            tags={
                **schedule.tags,
                **request.tags,
                SCHEDULE_TAG: schedule.name,
                TICK_TAG: tick.tick_time.isoformat(),
            },
        )
        try:
            with session.begin_nested():
                run = runs.create(session, dep, body)
        except ApiError as exc:
            error = exc.detail
        else:
            tick.status, tick.run_id = TickStatus.SUCCESS, run.id
            return _outcome(tick.status, [run.id], None)
    fail_schedule_tick(session, dep, schedule, tick, error or "no answer", trace)
    return _outcome(tick.status, [], tick.error)


def fail_schedule_tick(
    session: Session,
    dep: DeploymentRow,
    schedule: ScheduleRow,
    tick: ScheduleTickRow,
    error: str,
    trace: str | None = None,
) -> None:
    tick.status, tick.error, tick.traceback = TickStatus.FAILURE, error, trace
    log.warning("schedule %s: tick %s created no run: %s", schedule.name, tick.tick_time, error)
    alerts.tick_failed(
        session,
        dep,
        schedule.code_location,
        f"schedule {schedule.name}",
        f"tick:{schedule.code_location}:{schedule.name}:{tick.tick_time.isoformat()}",
        tick.tick_time,
        error,
    )


def _error_of(report: TickReport) -> tuple[str | None, str | None]:
    if report.error is not None:
        return report.error.message, report.error.traceback
    if report.response is None:
        return "the agent reported neither an answer nor an error", None
    if report.response.error is not None:
        return report.response.error.message, report.response.error.traceback
    return None, None


def _outcome(
    status: TickStatus, run_ids: list[Any], error: str | None, already: bool = False
) -> TickOutcome:
    return TickOutcome(status=status, run_ids=list(run_ids), error=error, already_final=already)


def _has_overdue(session: Session, now: datetime) -> bool:
    evaluating = TickStatus.EVALUATING
    return (
        session.scalar(
            select(SensorTickRow.id)
            .where(SensorTickRow.status == evaluating, SensorTickRow.deadline < now)
            .limit(1)
        )
        is not None
        or session.scalar(
            select(ScheduleTickRow.id)
            .where(ScheduleTickRow.status == evaluating, ScheduleTickRow.deadline < now)
            .limit(1)
        )
        is not None
    )


def expire(session: Session, now: datetime) -> int:
    """Fail the ticks no agent answered by their deadline (agents down, the location's code
    server not serving), and withdraw their requests if nobody claimed them."""
    evaluating = TickStatus.EVALUATING
    count = 0
    for tick in session.scalars(
        select(SensorTickRow)
        .where(SensorTickRow.status == evaluating, SensorTickRow.deadline < now)
        .with_for_update(skip_locked=True)
    ):
        sensor = session.get(SensorRow, tick.sensor_id)
        dep = session.get(DeploymentRow, sensor.deployment_id) if sensor else None
        if sensor is None or dep is None:
            continue
        _fail_sensor_tick(session, dep, sensor, tick, _no_answer(sensor.timeout_seconds), None)
        requests.supersede(session, dep.id, request_key(TickKind.SENSOR, tick.id), "expired")
        count += 1
    for stick in session.scalars(
        select(ScheduleTickRow)
        .where(ScheduleTickRow.status == evaluating, ScheduleTickRow.deadline < now)
        .with_for_update(skip_locked=True)
    ):
        schedule = session.get(ScheduleRow, stick.schedule_id)
        dep = session.get(DeploymentRow, schedule.deployment_id) if schedule else None
        if schedule is None or dep is None:
            continue
        fail_schedule_tick(session, dep, schedule, stick, _no_answer(schedule.timeout_seconds))
        requests.supersede(session, dep.id, request_key(TickKind.SCHEDULE, stick.id), "expired")
        count += 1
    return count


def _no_answer(timeout: float) -> str:
    return (
        f"no agent reported an evaluation within the deadline (timeout {timeout:g} s plus "
        "grace): is an agent serving this location's queue, and its code server RUNNING?"
    )
