"""A Dagster project's ticks evaluated for Tether's scheduler: ``evaluate_tick`` evaluates one
schedule or sensor tick the way Dagster's code server does for its daemon
(``dagster._grpc.impl``) and answers with a ``TickResponse``; a user's exception is an error
*in the response*, with its traceback (``tether_sdk.ticks.answer``): it never raises. What
is served, and the decisions behind each answer, are in ``automations.py``'s docstring.
"""

import json
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventType, JobFailureData
from dagster._core.execution.resources_init import get_transitive_required_resource_keys

from tether_api.enums import RunStatus, TickKind
from tether_api.runtags import ASSET_SELECTION_TAG, PARTITION_TAG
from tether_api.ticks import (
    MAX_CURSOR_CHARS,
    MAX_RUN_REQUESTS,
    EndedRun,
    RunRequestSpec,
    TickRequest,
    TickResponse,
)
from tether_sdk.dagster.automations import (
    DAGSTER_RUN_STATUSES,
    MAX_SCHEDULE_RUN_REQUESTS,
    RUN_STATUSES,
    TickFailed,
    Watch,
    own_job,
    schedule_problem,
    sensor_problem,
    tether_job,
)
from tether_sdk.dagster.names import JobNames
from tether_sdk.ticks import answer


def evaluate_tick(
    repo: dg.RepositoryDefinition, names: JobNames, request: TickRequest
) -> TickResponse:
    """Evaluate one tick of a Dagster schedule or sensor and describe the outcome. Never
    raises: a user's exception, or an answer Tether cannot use, is ``TickResponse.error``."""
    return answer(
        lambda: (
            _schedule_tick(repo, names, request)
            if request.kind == TickKind.SCHEDULE
            else _sensor_tick(repo, names, request)
        )
    )


def _schedule_tick(
    repo: dg.RepositoryDefinition, names: JobNames, request: TickRequest
) -> TickResponse:
    if not repo.has_schedule_def(request.name):
        known = ", ".join(sorted(s.name for s in repo.schedule_defs)) or "none"
        raise TickFailed(
            f"this Dagster code location declares no schedule {request.name!r} (known: {known})"
        )
    schedule = repo.get_schedule_def(request.name)
    problem = schedule_problem(schedule, names)
    if problem is not None:
        raise TickFailed(f"Tether does not serve Dagster schedule {schedule.name!r}: {problem}")
    zone = ZoneInfo(schedule.execution_timezone or "UTC")
    tick = request.tick_time
    tick = (tick if tick.tzinfo is not None else tick.replace(tzinfo=UTC)).astimezone(zone)
    with dg.ScheduleEvaluationContext(
        None,
        tick,
        None,
        repo.name,
        schedule.name,
        resources=_resources(repo, schedule.required_resource_keys),
        repository_def=repo,
    ) as context:
        data = schedule.evaluate_tick(context)
    requests = list(data.run_requests or [])
    what = f"schedule {schedule.name!r}"
    if len(requests) > MAX_SCHEDULE_RUN_REQUESTS:
        keys = ", ".join(repr(r.run_key) for r in requests[:5])
        raise TickFailed(
            f"{what} asked for {len(requests)} runs in one tick (run keys {keys}"
            f"{', ...' if len(requests) > 5 else ''}); a Tether schedule launches one run per "
            "tick: return one RunRequest, or ask for several runs from a sensor"
        )
    specs = [_spec(r, names, schedule.job_name, [schedule.job_name], what) for r in requests]
    return _response(specs, data.skip_message, None, what)


def _sensor_tick(
    repo: dg.RepositoryDefinition, names: JobNames, request: TickRequest
) -> TickResponse:
    if not repo.has_sensor_def(request.name):
        known = ", ".join(sorted(s.name for s in repo.sensor_defs)) or "none"
        raise TickFailed(
            f"this Dagster code location declares no sensor {request.name!r} (known: {known})"
        )
    sensor = repo.get_sensor_def(request.name)
    problem = sensor_problem(sensor, names)
    if problem is not None:
        raise TickFailed(f"Tether does not serve Dagster sensor {sensor.name!r}: {problem}")
    if isinstance(sensor, dg.RunStatusSensorDefinition):
        return _run_status_tick(repo, names, sensor, request.runs)
    what = f"sensor {sensor.name!r}"
    last = request.last_tick_at
    with dg.SensorEvaluationContext(
        None,
        last_tick_completion_time=last.timestamp() if last is not None else None,
        last_run_key=None,
        cursor=request.cursor,
        log_key=None,
        repository_name=repo.name,
        repository_def=repo,
        sensor_name=sensor.name,
        resources=_resources(repo, sensor.required_resource_keys),
        last_sensor_start_time=None,
        instance=None,
    ) as context:
        data = sensor.evaluate_tick(context)
    if data.dynamic_partitions_requests:
        raise TickFailed(
            f"{what} asked to add or delete dynamic partitions; Tether keeps no dynamic "
            "partitions (they live in a Dagster instance)"
        )
    if data.asset_events:
        raise TickFailed(
            f"{what} reported {len(data.asset_events)} asset events; Tether keeps no asset "
            "events (they live in a Dagster instance)"
        )
    own = own_job(sensor)
    targets = [t.job_name for t in sensor.targets]
    specs = [_spec(r, names, own, targets, what) for r in data.run_requests or []]
    if data.cursor is not None and len(data.cursor) > MAX_CURSOR_CHARS:
        raise TickFailed(
            f"{what} set a cursor of {len(data.cursor)} characters; at most {MAX_CURSOR_CHARS} "
            "are kept: keep less state in it"
        )
    return _response(specs, data.skip_message, data.cursor, what)


def _run_status_tick(
    repo: dg.RepositoryDefinition,
    names: JobNames,
    sensor: dg.RunStatusSensorDefinition,
    runs: list[EndedRun],
) -> TickResponse:
    """Call the user's function once per ended run it watches, as Dagster's daemon does for
    each run-status event, without Dagster's event log. The control plane keeps the cursor."""
    what = f"sensor {sensor.name!r}"
    status = RUN_STATUSES[sensor._run_status]
    watch = Watch.of(sensor, names)
    watched = [r for r in runs if r.status == status and watch.matches(r)]
    if not watched:
        return TickResponse(skip_reason=f"{len(runs)} ended runs, none of them watched")
    own = own_job(sensor)
    targets = [t.job_name for t in sensor.targets]
    resources = _resources(repo, sensor.required_resource_keys)
    sensor_tags = dg.DagsterRun.tags_for_sensor(sensor)
    specs: list[RunRequestSpec] = []
    skips: list[str] = []
    with dg.DagsterInstance.ephemeral(settings={"telemetry": {"enabled": False}}) as instance:
        for run in watched:
            context = dg.build_run_status_sensor_context(
                sensor_name=sensor.name,
                dagster_event=_run_event(run, names),
                dagster_instance=instance,
                dagster_run=_dagster_run(run, names),
                resources=resources,
                partition_key=run.tags.get(PARTITION_TAG),
            )
            with context:
                items = _items(sensor(context))  # consumed while its resources are up
            for item in items:
                if isinstance(item, dg.SensorResult):
                    if item.cursor:
                        raise TickFailed(
                            f"{what} returned a SensorResult with a cursor; a run-status "
                            "sensor's cursor is kept for it (as in Dagster)"
                        )
                    if item.dynamic_partitions_requests or item.asset_events:
                        raise TickFailed(
                            f"{what} returned dynamic partition requests or asset events; "
                            "Tether keeps neither (they live in a Dagster instance)"
                        )
                    if item.skip_reason is not None:
                        skips.append(item.skip_reason.skip_message or "skipped")
                    requests = list(item.run_requests or [])
                elif isinstance(item, dg.RunRequest):
                    requests = [item]
                elif isinstance(item, dg.SkipReason):
                    skips.append(item.skip_message or "skipped")
                    continue
                else:
                    raise TickFailed(
                        f"{what} returned {item!r} for run {run.id}: return RunRequests, a "
                        "SkipReason, a SensorResult or None"
                    )
                for r in requests:
                    if r.job_name is None and own is None:
                        raise TickFailed(
                            f"{what}: a RunRequest names no job and the sensor has no "
                            "request_job: give it request_job= or name the job"
                        )
                    specs.append(_spec(r, names, own, targets, what, sensor_tags))
    skip = None
    if not specs:
        skip = "; ".join(skips) or f"{len(watched)} ended runs, no run requests"
    return _response(specs, skip, None, what)


def _items(value: Any) -> list[Any]:
    """What a sensor function returned, as a list (None: nothing; a generator: consumed)."""
    if value is None:
        return []
    if isinstance(value, dg.RunRequest | dg.SkipReason | dg.SensorResult):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | dict):
        return [v for v in value if v is not None]
    return [value]


def _run_event(run: EndedRun, names: JobNames) -> DagsterEvent:
    job = names.dagster(run.job) or run.job
    if run.status == RunStatus.FAILURE:
        return DagsterEvent(
            event_type_value=DagsterEventType.RUN_FAILURE.value,
            job_name=job,
            message=run.error or f'Execution of run for "{job}" failed.',
            event_specific_data=JobFailureData(error=None),
        )
    kind = (
        DagsterEventType.RUN_CANCELED
        if run.status == RunStatus.CANCELED
        else DagsterEventType.RUN_SUCCESS
    )
    return DagsterEvent(event_type_value=kind.value, job_name=job, message=run.error)


def _dagster_run(run: EndedRun, names: JobNames) -> dg.DagsterRun:
    return dg.DagsterRun(
        job_name=names.dagster(run.job) or run.job,
        run_id=run.id,
        status=DAGSTER_RUN_STATUSES.get(run.status, dg.DagsterRunStatus.FAILURE),
        tags=dict(run.tags),
        run_config=dict(run.run_config),
    )


def _spec(
    request: dg.RunRequest,
    names: JobNames,
    own_job: str | None,
    targets: list[str],
    what: str,
    extra_tags: Mapping[str, str] | None = None,
) -> RunRequestSpec:
    """A Dagster RunRequest as Tether's (see the module's docstring)."""
    where = f"{what}: run request" + (f" {request.run_key!r}" if request.run_key else "")
    if request.requires_backfill_daemon():
        raise TickFailed(f"{where} asks for a backfill, which needs Dagster's backfill daemon")
    if request.stale_assets_only:
        raise TickFailed(
            f"{where} asks for stale assets only; Tether cannot tell which assets are stale "
            "(that needs a Dagster instance's history)"
        )
    job = None
    if request.job_name is not None and request.job_name != own_job:
        if targets and request.job_name not in targets and request.asset_selection is None:
            raise TickFailed(
                f"{where} names job {request.job_name!r}; expected one of {', '.join(targets)}"
            )
        job = tether_job(names, request.job_name)
        if job is None:
            raise TickFailed(f"{where} names job {request.job_name!r}, which Tether does not show")
    tags = {str(k): str(v) for k, v in {**request.tags, **(extra_tags or {})}.items()}
    if request.partition_key is not None:
        tags[PARTITION_TAG] = request.partition_key
    if request.asset_selection is not None:
        tags[ASSET_SELECTION_TAG] = json.dumps(
            [key.to_user_string() for key in request.asset_selection]
        )
    return RunRequestSpec(
        job=job, run_key=request.run_key, run_config=dict(request.run_config), tags=tags
    )


def _response(
    specs: list[RunRequestSpec], skip_reason: str | None, cursor: str | None, what: str
) -> TickResponse:
    if len(specs) > MAX_RUN_REQUESTS:
        raise TickFailed(
            f"{what} asked for {len(specs)} runs in one tick; at most {MAX_RUN_REQUESTS} are "
            "accepted: keep the rest for the next tick with the cursor"
        )
    if specs:
        skip_reason = None
    elif skip_reason is None:
        skip_reason = "no run requests"
    return TickResponse(run_requests=specs, cursor=cursor, skip_reason=skip_reason)


def _resources(repo: dg.RepositoryDefinition, keys: set[str]) -> dict[str, Any]:
    """The repository's top-level resources a definition needs, with their dependencies."""
    top = repo.get_top_level_resources()
    needed = get_transitive_required_resource_keys(keys, top)
    return {k: v for k, v in top.items() if k in needed}
