"""A Dagster project's schedules and sensors as Tether's: their snapshots, and their ticks.

Tether's control plane decides when a schedule or sensor is due; the code server evaluates
it (``POST /ticks``). For a Dagster location this module does both halves:

- ``schedule_snapshots`` and ``sensor_snapshots`` describe what Tether can serve, and return
  a warning (one sentence, naming the schedule or sensor and what Tether does instead) for
  everything it cannot honour.
- ``ticks.evaluate_tick`` evaluates one tick the way Dagster's code server does for its
  daemon (``dagster._grpc.impl``), and answers with a ``TickResponse``. A user's exception
  is an error *in the response*, with its traceback: it never raises.

Decisions (tests/dagster/test_dagster_automations.py holds each one):

- **Every Dagster schedule has ``config_from_code=True``**: Dagster computes a tick's run
  config, tags, partition and ``should_execute`` in code, so the code server evaluates every
  tick. The snapshot's ``run_config`` and ``tags`` are empty: the control plane adds snapshot
  tags to every run, and a decorated Dagster schedule's ``tags`` annotate the schedule
  without reaching its runs (its RunRequests already carry the tags Dagster gives runs).
- **A schedule with a list of crons is left out** (a warning says so), unless the list
  holds a single distinct cron. Tether's schedules have one cron, and firing at only the
  first cron's times would lose the others' runs without a visible failure.
- **``@hourly``, ``@daily``, ``@midnight``, ``@weekly``, ``@monthly``, ``@yearly`` and
  ``@annually`` become their 5-field crons**, with no warning: the ticks are the same.
- **DST**: both schedulers move a tick that falls in the hour skipped when clocks go forward
  to the end of that gap. When clocks go back, Dagster runs a tick that falls in the
  repeated hour once, and Tether's scheduler (croniter) runs it at both occurrences. A schedule
  whose time zone goes back within the next year, and whose cron's hours (not every hour)
  meet the repeated hour, gets a warning.
- Missed ticks follow Tether's ``missed_ticks`` default (``latest``), not Dagster's
  ``max_catchup_runs``.
- A schedule tick that asks for more than one run is an error: the control plane launches
  one run per schedule tick (``services/ticks.py`` takes the first request), and dropping the
  others silently would lose runs.
- **Sensors**: ``STANDARD`` -> ``standard``; ``RUN_STATUS`` (``@run_status_sensor``,
  ``@run_failure_sensor``) watching SUCCESS or FAILURE -> ``run_status``. Asset and
  multi-asset sensors (they read Dagster's event log), the sensors of Dagster's asset daemon
  (automation conditions, auto-materialize, freshness) and run-status sensors of other
  statuses are left out with a warning.
- **What a run-status sensor watches**: ``monitor_all_code_locations`` -> every job
  (``monitored_jobs`` None). By default Dagster watches its own repository's jobs: the
  snapshot lists them all (Tether names). ``JobSelector`` / ``RepositorySelector`` entries
  (other code locations) are matched by Tether code location name and job name at each tick;
  a ``RepositorySelector`` makes the snapshot watch every job (the tick filters). Tether
  matches a run by job name alone for the jobs of this repository, so a job of the same name
  in another location of the deployment counts too.
- **Run requests**: ``job`` is the Tether name (``names``), or None when it is the
  schedule's or sensor's own job. ``partition_key`` travels in ``PARTITION_TAG``, and
  ``asset_selection`` in ``ASSET_SELECTION_TAG`` (JSON list of ``key.to_user_string()``).
  ``asset_check_keys`` is not carried. ``stale_assets_only``, backfill requests
  (``RunRequest.for_asset_graph_subset``), dynamic partition requests and reported asset events
  are errors: they need Dagster's instance, which Tether does not keep.
- Sensors and schedules get no Dagster instance (``context.instance`` raises, as Dagster's
  ``DagsterInvariantViolationError`` says). Run-status sensors get an empty ephemeral one
  (``build_run_status_sensor_context`` needs one): its run and event queries find nothing.
  Their ``context.repository_def`` is None (passing it is a Dagster beta parameter).
- Resources are those of the repository's top level a definition needs (transitively), set
  up and torn down around each evaluation (each run, for a run-status sensor, as Dagster does).

Dagster internals used (``_`` in the path, or not ``@public``), with the version tested in
pyproject.toml's ``dagster`` extra:

- ``dagster._core.definitions.sensor_definition.SensorType`` (``SensorDefinition.sensor_type``)
- ``ScheduleEvaluationContext(instance_ref, scheduled_execution_time, log_key,
  repository_name, schedule_name, resources=, repository_def=)`` and
  ``SensorEvaluationContext(instance_ref, last_tick_completion_time=, last_run_key=, cursor=,
  log_key=, repository_name=, repository_def=, sensor_name=, resources=,
  last_sensor_start_time=, instance=)``: the constructors, as ``dagster._grpc.impl`` calls them
- ``ScheduleDefinition.evaluate_tick`` -> ``ScheduleExecutionData`` (``run_requests``,
  ``skip_message``); ``SensorDefinition.evaluate_tick`` -> ``SensorExecutionData``
  (``run_requests``, ``skip_message``, ``cursor``, ``dynamic_partitions_requests``,
  ``asset_events``)
- ``dagster._core.execution.resources_init.get_transitive_required_resource_keys``
- ``RunStatusSensorDefinition._run_status``, ``._monitored_jobs``,
  ``._monitor_all_code_locations``
- ``dagster._core.events.DagsterEvent``, ``DagsterEventType``, ``JobFailureData``
  (the event a run-status context carries)
- ``RunRequest.requires_backfill_daemon()``
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
from dagster._core.definitions.sensor_definition import SensorType

from tether_api.enums import AutomationStatus, RunStatus, SensorKind
from tether_api.names import NAME_RE
from tether_api.snapshot import ScheduleSnapshot, SensorSnapshot
from tether_api.ticks import (
    EndedRun,
)
from tether_sdk.dagster.names import ASSET_JOB_NAME, IMPLICIT_ASSET_JOB, JobNames

# Dagster's cron aliases (croniter's), as the 5-field crons they stand for.
CRON_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

# The control plane launches the first run request of a schedule tick only
# (tether_controlplane/services/ticks.py): a tick that asks for more is an error here.
MAX_SCHEDULE_RUN_REQUESTS = 1

RUN_STATUSES = {
    dg.DagsterRunStatus.SUCCESS: RunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE: RunStatus.FAILURE,
}
DAGSTER_RUN_STATUSES = {
    RunStatus.SUCCESS: dg.DagsterRunStatus.SUCCESS,
    RunStatus.FAILURE: dg.DagsterRunStatus.FAILURE,
    RunStatus.CANCELED: dg.DagsterRunStatus.CANCELED,
}

_ASSET_DAEMON = (
    "it is evaluated by Dagster's asset daemon (automation conditions, auto-materialize, "
    "freshness), which Tether does not run: launch those assets from a schedule or a sensor"
)
_UNSERVED_SENSORS = {
    SensorType.ASSET: (
        "an asset sensor reads materializations from Dagster's event log, which Tether does "
        "not keep: write it as a plain sensor that checks the data itself"
    ),
    SensorType.MULTI_ASSET: (
        "a multi-asset sensor reads materializations from Dagster's event log, which Tether "
        "does not keep: write it as a plain sensor that checks the data itself"
    ),
    SensorType.AUTO_MATERIALIZE: _ASSET_DAEMON,
    SensorType.AUTOMATION: _ASSET_DAEMON,
    SensorType.FRESHNESS_POLICY: _ASSET_DAEMON,
}
_NAME_RULE = (
    "Tether's names are 1-63 letters, digits, '_', '.' or '-', starting with a letter or "
    "digit: rename it"
)


class TickFailed(Exception):
    """A tick's outcome that Tether cannot use; the message says why and what to do."""


# -- snapshots ---------------------------------------------------------------------------------


def schedule_snapshots(
    repo: dg.RepositoryDefinition, names: JobNames
) -> tuple[list[ScheduleSnapshot], list[str]]:
    """Every Dagster schedule Tether can serve, by name, and a warning for each one it leaves
    out or honours differently (see the module's docstring)."""
    snapshots: list[ScheduleSnapshot] = []
    warnings: list[str] = []
    for schedule in sorted(repo.schedule_defs, key=lambda s: s.name):
        label = f"Dagster schedule {schedule.name!r}"
        problem = schedule_problem(schedule, names)
        if problem is not None:
            warnings.append(f"{label} is left out: {problem}")
            continue
        cron, _ = _one_cron(schedule.cron_schedule)
        assert cron is not None  # schedule_problem said so
        timezone = schedule.execution_timezone or "UTC"
        try:
            snapshots.append(
                ScheduleSnapshot(
                    name=schedule.name,
                    cron=cron,
                    job=names.tether(schedule.job_name),
                    timezone=timezone,
                    default_status=AutomationStatus(schedule.default_status.value),
                    config_from_code=True,
                )
            )
        except ValueError as exc:  # pydantic's ValidationError: a field Tether cannot hold
            warnings.append(f"{label} is left out: {_one_line(exc)}")
            continue
        dst = _dst_difference(cron, timezone)
        if dst is not None:
            warnings.append(f"{label} ({cron!r} in {timezone}): {dst}")
    return snapshots, warnings


def sensor_snapshots(
    repo: dg.RepositoryDefinition, names: JobNames
) -> tuple[list[SensorSnapshot], list[str]]:
    """Every Dagster sensor Tether can serve, by name, and a warning for each one it leaves
    out or honours differently (see the module's docstring)."""
    snapshots: list[SensorSnapshot] = []
    warnings: list[str] = []
    for sensor in sorted(repo.sensor_defs, key=lambda s: s.name):
        label = f"Dagster sensor {sensor.name!r}"
        problem = sensor_problem(sensor, names)
        if problem is not None:
            warnings.append(f"{label} is left out: {problem}")
            continue
        fields: dict[str, Any] = {
            "name": sensor.name,
            "job": tether_job(names, own_job(sensor)),
            "minimum_interval_seconds": max(1, sensor.minimum_interval_seconds or 30),
            "default_status": AutomationStatus(sensor.default_status.value),
            "description": sensor.description,
        }
        if isinstance(sensor, dg.RunStatusSensorDefinition):
            watch = Watch.of(sensor, names)
            fields.update(
                kind=SensorKind.RUN_STATUS,
                monitored_status=RUN_STATUSES[sensor._run_status],
                monitored_jobs=watch.monitored_jobs(),
            )
            if watch.job_selectors or watch.locations:
                warnings.append(
                    f"{label} watches jobs of other Dagster code locations: Tether matches "
                    "them by code location name and job name, so it sees their runs only if "
                    "those locations run on Tether under the same names"
                )
            if watch.dropped:
                warnings.append(
                    f"{label} watches jobs Tether cannot name ({', '.join(watch.dropped)}): "
                    "it does not see their runs"
                )
        try:
            snapshots.append(SensorSnapshot(**fields))
        except ValueError as exc:  # pydantic's ValidationError: a field Tether cannot hold
            warnings.append(f"{label} is left out: {_one_line(exc)}")
    return snapshots, warnings


def schedule_problem(schedule: dg.ScheduleDefinition, names: JobNames) -> str | None:
    """Why Tether does not serve ``schedule`` (None: it does)."""
    if not NAME_RE.match(schedule.name):
        return _NAME_RULE
    if tether_job(names, schedule.job_name) is None:
        return f"its job {schedule.job_name!r} is not one of the jobs Tether shows"
    _, problem = _one_cron(schedule.cron_schedule)
    return problem


def sensor_problem(sensor: dg.SensorDefinition, names: JobNames) -> str | None:
    """Why Tether does not serve ``sensor`` (None: it does)."""
    if not NAME_RE.match(sensor.name):
        return _NAME_RULE
    kind = sensor.sensor_type
    if kind == SensorType.RUN_STATUS and isinstance(sensor, dg.RunStatusSensorDefinition):
        if sensor._run_status not in RUN_STATUSES:
            return (
                f"it watches runs that are {sensor._run_status.value}, and Tether's run-status "
                "sensors watch SUCCESS or FAILURE"
            )
    elif kind != SensorType.STANDARD:
        return _UNSERVED_SENSORS.get(
            kind, f"Tether serves standard and run-status sensors, not {kind.value} ones"
        )
    own = own_job(sensor)
    if own is not None and tether_job(names, own) is None:
        return f"its job {own!r} is not one of the jobs Tether shows"
    return None


def _one_cron(cron_schedule: str | Sequence[str]) -> tuple[str | None, str | None]:
    """The one 5-field cron of a Dagster schedule, or None and why there is none."""
    crons = [cron_schedule] if isinstance(cron_schedule, str) else list(cron_schedule)
    distinct = list(dict.fromkeys(CRON_ALIASES.get(c.strip().lower(), c.strip()) for c in crons))
    if len(distinct) == 1:
        return distinct[0], None
    return None, (
        f"it has {len(crons)} crons ({', '.join(repr(c) for c in crons)}) and a Tether schedule "
        "has one: declare one Dagster schedule per cron"
    )


# -- DST ---------------------------------------------------------------------------------------


def _dst_difference(cron: str, timezone: str) -> str | None:
    """Why Tether's ticks of ``cron`` in ``timezone`` differ from Dagster's (None: they
    don't, as far as a cron's hours tell). See the module's docstring."""
    try:
        repeated = _repeated_hours(timezone, datetime.now(UTC).date())
    except (ZoneInfoNotFoundError, ValueError):
        return None  # the control plane reports an unknown time zone itself
    if not repeated:
        return None
    fields = cron.split()
    hours = _cron_hours(fields[1]) if len(fields) == 5 else None
    if hours is not None and len(hours) == 24:
        return None  # every hour: both run each occurrence of each hour
    hit = set(repeated) if hours is None else hours & set(repeated)
    if not hit:
        return None
    day = min(repeated[h] for h in hit)
    return (
        f"when clocks go back (next on {day.isoformat()}) Dagster runs a tick of the repeated "
        "hour once, and Tether runs it at both occurrences of that time"
    )


@lru_cache(maxsize=64)
def _repeated_hours(timezone: str, today: date) -> dict[int, date]:
    """The local hours that occur twice in ``timezone`` within a year from ``today``, each
    with the first day it does."""
    zone = ZoneInfo(timezone)
    found: dict[int, date] = {}
    previous = None
    for i in range(367):
        day = today + timedelta(days=i)
        offset = datetime(day.year, day.month, day.day, 12, tzinfo=zone).utcoffset()
        if previous is not None and offset is not None and offset < previous:
            for d in (day - timedelta(days=1), day):
                for quarter in range(96):
                    hour, minute = divmod(quarter * 15, 60)
                    t = datetime(d.year, d.month, d.day, hour, minute, tzinfo=zone)
                    first, second = t.utcoffset(), t.replace(fold=1).utcoffset()
                    if first is not None and second is not None and first > second:
                        found.setdefault(t.hour, d)
        previous = offset
    return found


_CRON_ITEM = re.compile(r"^(\*|\d+(?:-\d+)?)(?:/(\d+))?$")


def _cron_hours(field: str) -> set[int] | None:
    """The hours a cron's hour field matches (None: a form this does not read)."""
    hours: set[int] = set()
    for item in field.split(","):
        match = _CRON_ITEM.match(item)
        if match is None:
            return None
        base, step = match.group(1), int(match.group(2) or 1)
        if step == 0:
            return None
        if base == "*":
            low, high = 0, 23
        else:
            low_text, _, high_text = base.partition("-")
            low = int(low_text)
            high = int(high_text) if high_text else (23 if match.group(2) else low)
        hours.update(h for h in range(low, high + 1, step) if 0 <= h <= 23)
    return hours


# -- ticks -------------------------------------------------------------------------------------


# -- shared ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Watch:
    """The runs a run-status sensor watches (see the module's docstring)."""

    everything: bool
    jobs: frozenset[str]  # Tether job names, of any code location
    job_selectors: frozenset[tuple[str, str]]  # (code location, Tether job name)
    locations: frozenset[str]  # every job of these code locations
    dropped: tuple[str, ...]  # watched jobs Tether cannot name

    @classmethod
    def of(cls, sensor: dg.RunStatusSensorDefinition, names: JobNames) -> "Watch":
        monitored = list(sensor._monitored_jobs or [])
        if sensor._monitor_all_code_locations:
            return cls(True, frozenset(), frozenset(), frozenset(), ())
        if not monitored:  # Dagster's default: every job of this repository
            return cls(False, frozenset(names.shown()), frozenset(), frozenset(), ())
        jobs: set[str] = set()
        selectors: set[tuple[str, str]] = set()
        locations: set[str] = set()
        dropped: list[str] = []
        for m in monitored:
            if isinstance(m, dg.RepositorySelector | dg.CodeLocationSelector):
                locations.add(m.location_name)
            elif isinstance(m, dg.JobSelector):
                name = _other_job(m.job_name)
                if name is None:
                    dropped.append(repr(m.job_name))
                else:
                    selectors.add((m.location_name, name))
            else:
                found = tether_job(names, m.name)
                if found is None:
                    found = m.name if NAME_RE.match(m.name) else None
                if found is None:
                    dropped.append(repr(m.name))
                else:
                    jobs.add(found)
        return cls(
            False, frozenset(jobs), frozenset(selectors), frozenset(locations), tuple(dropped)
        )

    def monitored_jobs(self) -> list[str] | None:
        """The snapshot's ``monitored_jobs``: the job names whose runs the control plane
        sends (None: every job's; the tick picks)."""
        if self.everything or self.locations:
            return None
        return sorted(self.jobs | {job for _, job in self.job_selectors})

    def matches(self, run: EndedRun) -> bool:
        return (
            self.everything
            or run.job in self.jobs
            or (run.code_location, run.job) in self.job_selectors
            or run.code_location in self.locations
        )


def own_job(sensor: dg.SensorDefinition) -> str | None:
    """The Dagster job a sensor's RunRequests run when they name none (None: several jobs,
    or none: an asset-selection sensor's requests name ``__ASSET_JOB``)."""
    targets = sensor.targets
    return targets[0].job_name if len(targets) == 1 else None


def tether_job(names: JobNames, dagster_name: str | None) -> str | None:
    if dagster_name is None:
        return None
    try:
        return names.tether(dagster_name)
    except KeyError:
        return None


def _other_job(dagster_name: str) -> str | None:
    """The Tether name of a job of another Dagster location (as ``JobNames`` names them)."""
    if dagster_name == IMPLICIT_ASSET_JOB:
        return ASSET_JOB_NAME
    return dagster_name if NAME_RE.match(dagster_name) else None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
