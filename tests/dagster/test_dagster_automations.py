"""A Dagster project's schedules and sensors on Tether (tether_sdk/dagster/automations.py and
ticks.py), on the real dagster: the snapshots and warnings a user sees at load, and each
kind of tick's answer (run requests, cursors, skips, errors). Also pins the Dagster
internals they use."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from tether_api.enums import AutomationStatus, RunStatus, SensorKind, TickKind
from tether_api.runtags import ASSET_SELECTION_TAG, PARTITION_TAG, asset_selection
from tether_api.snapshot import ScheduleSnapshot, SensorSnapshot
from tether_api.ticks import EndedRun, TickRequest, TickResponse
from tether_sdk.dagster.automations import (
    CRON_ALIASES,
    schedule_snapshots,
    sensor_snapshots,
)
from tether_sdk.dagster.names import JobNames
from tether_sdk.dagster.ticks import evaluate_tick


@pytest.fixture(autouse=True, scope="module")
def dagster_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("dagster_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        mp.setenv("DAGSTER_DISABLE_TELEMETRY", "1")
        yield home


# --- the project ------------------------------------------------------------------------------

EVENTS: list[str] = []  # what the warehouse resource and the sensor using it did, in order


class Warehouse(dg.ConfigurableResource):
    """A connection with a setup and a teardown."""

    dsn: str

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        EVENTS.append("setup")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        EVENTS.append("teardown")


@dg.op(config_schema={"day": str})
def extract(context: dg.OpExecutionContext) -> str:
    return str(context.op_config["day"])


@dg.job
def etl() -> None:
    extract()


@dg.op
def notify() -> None:
    pass


@dg.job
def report() -> None:
    notify()


daily = dg.DailyPartitionsDefinition(start_date="2026-01-01")


@dg.asset(key_prefix=["raw"], partitions_def=daily)
def orders() -> int:
    return 1


@dg.asset(partitions_def=daily, deps=[orders])
def stats() -> int:
    return 2


@dg.asset(automation_condition=dg.AutomationCondition.eager())
def eager() -> int:
    return 3


daily_orders = dg.define_asset_job("daily_orders", selection=[orders])

ETL_CONFIG = {"ops": {"extract": {"config": {"day": "static"}}}}

nightly = dg.ScheduleDefinition(
    name="nightly",
    cron_schedule="0 3 * * *",
    job=etl,
    run_config=ETL_CONFIG,
    tags={"team": "data"},
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


@dg.schedule(cron_schedule="15 4 * * *", job=etl, execution_timezone="Europe/Paris")
def dated(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    when = context.scheduled_execution_time
    return dg.RunRequest(
        run_key=when.isoformat(),
        run_config={"ops": {"extract": {"config": {"day": when.isoformat()}}}},
        tags={"tz": str(when.tzinfo)},
    )


@dg.schedule(cron_schedule="0 5 * * *", job=etl)
def fan_out(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    return [dg.RunRequest(run_key=k, run_config=ETL_CONFIG) for k in ("a", "b")]


daily_orders_schedule = dg.build_schedule_from_partitioned_job(daily_orders, hour_of_day=2)
every_day = dg.ScheduleDefinition(name="every_day", cron_schedule="@daily", job=etl)
aliases = [
    dg.ScheduleDefinition(name=f"alias_{alias[1:]}", cron_schedule=alias, job=etl)
    for alias in CRON_ALIASES
]
one_of_a_list = dg.ScheduleDefinition(name="one_of_a_list", cron_schedule=["@hourly"], job=etl)
twice = dg.ScheduleDefinition(name="twice", cron_schedule=["0 1 * * *", "30 13 * * 1-5"], job=etl)
paris_night = dg.ScheduleDefinition(
    name="paris_night", cron_schedule="30 2 * * *", job=etl, execution_timezone="Europe/Paris"
)
paris_hourly = dg.ScheduleDefinition(
    name="paris_hourly", cron_schedule="0 * * * *", job=etl, execution_timezone="Europe/Paris"
)
new_york_night = dg.ScheduleDefinition(
    name="new_york_night",
    cron_schedule="30 1 * * *",
    job=etl,
    execution_timezone="America/New_York",
)
utc_night = dg.ScheduleDefinition(name="utc_night", cron_schedule="30 2 * * *", job=etl)
hidden_schedule = dg.ScheduleDefinition(name="_hidden", cron_schedule="0 0 * * *", job=etl)


@dg.sensor(
    job=etl,
    minimum_interval_seconds=45,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Asks for two runs, one per tick, then skips.",
)
def counter(context: dg.SensorEvaluationContext) -> Any:
    n = int(context.cursor or 0)
    if n >= 2:
        return dg.SkipReason("enough")
    context.update_cursor(str(n + 1))
    return [
        dg.RunRequest(
            run_key=f"k{n}",
            run_config=ETL_CONFIG,
            tags={"n": str(n), "last": str(context.last_tick_completion_time)},
        )
    ]


@dg.sensor(asset_selection=[orders, stats])
def partitions(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key="feb1", partition_key="2026-02-01", asset_selection=[orders.key])
        ],
        cursor="c1",
    )


@dg.sensor(jobs=[etl, report])
def two_jobs(context: dg.SensorEvaluationContext) -> list[dg.RunRequest]:
    return [dg.RunRequest(run_key="r", job_name="report")]


@dg.sensor(job=etl)
def broken(context: dg.SensorEvaluationContext) -> None:
    raise ValueError("boom from the sensor")


@dg.sensor(job=etl)
def uses_warehouse(context: dg.SensorEvaluationContext, warehouse: Warehouse) -> dg.RunRequest:
    EVENTS.append("evaluate")
    return dg.RunRequest(run_key=warehouse.dsn, run_config=ETL_CONFIG)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[etl], request_job=report
)
def after_etl(context: dg.RunStatusSensorContext, warehouse: Warehouse) -> dg.RunRequest:
    EVENTS.append("evaluate")
    run = context.dagster_run
    return dg.RunRequest(run_key=run.run_id, tags={"after": run.job_name, **run.tags})


@dg.run_failure_sensor(request_job=etl, minimum_interval_seconds=60)
def on_failure(context: dg.RunFailureSensorContext) -> Any:
    run = context.dagster_run
    if run.tags.get("retry") == "no":
        return dg.SkipReason(f"{run.run_id} asked for no retry")
    return dg.RunRequest(
        run_key=f"retry-{run.run_id}",
        run_config=ETL_CONFIG,
        tags={"failed_job": run.job_name, "message": context.failure_event.message or ""},
    )


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.CANCELED)
def on_cancel(context: dg.RunStatusSensorContext) -> None:
    pass


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, monitor_all_code_locations=True)
def anything_succeeded(context: dg.RunStatusSensorContext) -> None:
    pass


@dg.run_failure_sensor(
    monitored_jobs=[
        dg.JobSelector(location_name="other", repository_name="__repository__", job_name="load")
    ],
    request_job=etl,
)
def other_failed(context: dg.RunFailureSensorContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=context.dagster_run.run_id, run_config=ETL_CONFIG)


@dg.asset_sensor(asset_key=dg.AssetKey("eager"), job=etl)
def eager_landed(context: dg.SensorEvaluationContext, asset_event: Any) -> dg.RunRequest:
    return dg.RunRequest(run_key="x", run_config=ETL_CONFIG)


@dg.sensor(job=etl, name="_private")
def private(context: dg.SensorEvaluationContext) -> None:
    pass


defs = dg.Definitions(
    assets=[orders, stats, eager],
    jobs=[etl, report, daily_orders],
    schedules=[
        nightly,
        dated,
        fan_out,
        daily_orders_schedule,
        every_day,
        *aliases,
        one_of_a_list,
        twice,
        paris_night,
        paris_hourly,
        new_york_night,
        utc_night,
        hidden_schedule,
    ],
    sensors=[
        counter,
        partitions,
        two_jobs,
        broken,
        uses_warehouse,
        after_etl,
        on_failure,
        on_cancel,
        anything_succeeded,
        other_failed,
        eager_landed,
        private,
    ],
    resources={"warehouse": Warehouse(dsn="wh://prod")},
)
REPO = defs.get_repository_def()
REPO.load_all_definitions()
NAMES = JobNames(job.name for job in REPO.get_all_jobs())
SCHEDULES, SCHEDULE_WARNINGS = schedule_snapshots(REPO, NAMES)
SENSORS, SENSOR_WARNINGS = sensor_snapshots(REPO, NAMES)
AUTOMATION_SENSOR = next(s.name for s in REPO.sensor_defs if s.name.startswith("default_"))


def schedule(name: str) -> ScheduleSnapshot:
    return next(s for s in SCHEDULES if s.name == name)


def sensor(name: str) -> SensorSnapshot:
    return next(s for s in SENSORS if s.name == name)


def warning(warnings: list[str], name: str) -> str:
    [found] = [w for w in warnings if f"{name!r}" in w]
    return found


def tick(kind: TickKind, name: str, **fields: Any) -> TickResponse:
    fields.setdefault("tick_time", datetime(2026, 3, 1, 3, 15, tzinfo=UTC))
    response = evaluate_tick(REPO, NAMES, TickRequest(kind=kind, name=name, **fields))
    # What the code server sends: it must survive JSON.
    assert TickResponse.model_validate_json(response.model_dump_json()) == response
    assert response.duration_seconds is not None
    return response


def ok(response: TickResponse) -> TickResponse:
    assert response.error is None, response.error.traceback if response.error else None
    return response


def ended(run_id: str, job: str, status: RunStatus, **fields: Any) -> EndedRun:
    return EndedRun(id=run_id, code_location="here", job=job, status=status, **fields)


# --- schedule snapshots -----------------------------------------------------------------------


def test_every_schedule_is_evaluated_in_code_and_keeps_its_cron_job_zone_and_status() -> None:
    assert schedule("nightly") == ScheduleSnapshot(
        name="nightly",
        cron="0 3 * * *",
        job="etl",
        timezone="UTC",
        default_status=AutomationStatus.RUNNING,
        config_from_code=True,
    )
    # Dagster decides each run's config and tags at the tick: none in the snapshot.
    assert schedule("nightly").run_config == {} and schedule("nightly").tags == {}
    assert all(s.config_from_code for s in SCHEDULES)
    assert schedule("dated").timezone == "Europe/Paris"
    assert schedule("dated").default_status == AutomationStatus.STOPPED
    partitioned = schedule("daily_orders_schedule")
    assert (partitioned.cron, partitioned.job) == ("0 2 * * *", "daily_orders")


@pytest.mark.parametrize("alias", sorted(CRON_ALIASES))
def test_cron_aliases_become_5_field_crons_without_a_warning(alias: str) -> None:
    expected = {
        "@hourly": "0 * * * *",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@weekly": "0 0 * * 0",
        "@monthly": "0 0 1 * *",
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
    }
    name = f"alias_{alias[1:]}"
    assert schedule(name).cron == expected[alias]
    assert not [w for w in SCHEDULE_WARNINGS if f"{name!r}" in w]
    assert schedule("every_day").cron == "0 0 * * *"


def test_a_schedule_with_several_crons_is_left_out_with_a_warning() -> None:
    assert "twice" not in {s.name for s in SCHEDULES}
    text = warning(SCHEDULE_WARNINGS, "twice")
    assert "left out" in text and "'0 1 * * *', '30 13 * * 1-5'" in text
    assert "one Dagster schedule per cron" in text
    # A list of one cron is that cron.
    assert schedule("one_of_a_list").cron == "0 * * * *"


def test_dst_warnings_name_the_schedules_whose_ticks_fall_in_a_repeated_hour() -> None:
    for name in ("paris_night", "new_york_night"):
        text = warning(SCHEDULE_WARNINGS, name)
        assert "clocks go back" in text and "both occurrences" in text
    assert "'30 2 * * *' in Europe/Paris" in warning(SCHEDULE_WARNINGS, "paris_night")
    # Every hour (both schedulers agree), UTC, and 04:15 in Paris: nothing to say.
    for name in ("paris_hourly", "utc_night", "dated", "nightly"):
        assert not [w for w in SCHEDULE_WARNINGS if f"{name!r}" in w]


def test_schedules_tether_cannot_name_are_left_out_and_every_warning_is_one_sentence() -> None:
    assert "_hidden" not in {s.name for s in SCHEDULES}
    assert "rename it" in warning(SCHEDULE_WARNINGS, "_hidden")
    assert sorted(w.split("'")[1] for w in SCHEDULE_WARNINGS) == sorted(
        ["twice", "paris_night", "new_york_night", "_hidden"]
    )
    for text in SCHEDULE_WARNINGS + SENSOR_WARNINGS:
        assert "\n" not in text and text.startswith("Dagster ")


# --- sensor snapshots -------------------------------------------------------------------------


def test_standard_sensors() -> None:
    assert sensor("counter") == SensorSnapshot(
        name="counter",
        kind=SensorKind.STANDARD,
        job="etl",
        minimum_interval_seconds=45,
        default_status=AutomationStatus.RUNNING,
        description="Asks for two runs, one per tick, then skips.",
    )
    # An asset-selection sensor names its job in each request; so does one with two jobs.
    assert sensor("partitions").job is None and sensor("two_jobs").job is None
    assert sensor("broken").minimum_interval_seconds == 30
    assert sensor("broken").default_status == AutomationStatus.STOPPED


def test_run_status_sensors_watch_success_or_failure_of_their_jobs() -> None:
    watcher = sensor("after_etl")
    assert (watcher.kind, watcher.job) == (SensorKind.RUN_STATUS, "report")
    assert (watcher.monitored_status, watcher.monitored_jobs) == (RunStatus.SUCCESS, ["etl"])
    failure = sensor("on_failure")
    assert (failure.kind, failure.job) == (SensorKind.RUN_STATUS, "etl")
    assert failure.monitored_status == RunStatus.FAILURE
    assert failure.minimum_interval_seconds == 60
    # Dagster's default: every job of its repository (Tether names: __ASSET_JOB is "assets").
    assert failure.monitored_jobs == ["assets", "daily_orders", "etl", "report"]
    assert sensor("anything_succeeded").monitored_jobs is None
    assert sensor("anything_succeeded").job is None
    # Another location's job: watched by name, with a warning.
    assert sensor("other_failed").monitored_jobs == ["load"]
    assert "other Dagster code locations" in warning(SENSOR_WARNINGS, "other_failed")


def test_sensors_tether_cannot_serve_are_left_out_with_a_warning_saying_why() -> None:
    served = {s.name for s in SENSORS}
    left_out = {"eager_landed", "on_cancel", "_private", AUTOMATION_SENSOR}
    assert not served & left_out
    assert "event log" in warning(SENSOR_WARNINGS, "eager_landed")
    assert "asset daemon" in warning(SENSOR_WARNINGS, AUTOMATION_SENSOR)
    assert "CANCELED" in warning(SENSOR_WARNINGS, "on_cancel")
    assert "rename it" in warning(SENSOR_WARNINGS, "_private")
    for name in left_out:
        assert "left out" in warning(SENSOR_WARNINGS, name)
    assert len(SENSOR_WARNINGS) == len(left_out) + 1  # + other_failed's


# --- schedule ticks ---------------------------------------------------------------------------


def test_a_static_schedule_tick_is_its_run_config_and_tags() -> None:
    response = ok(tick(TickKind.SCHEDULE, "nightly"))
    [request] = response.run_requests
    assert request.job is None  # the schedule's own job
    assert request.run_config == ETL_CONFIG
    assert request.tags["team"] == "data"
    assert request.tags["dagster/schedule_name"] == "nightly"
    assert response.skip_reason is None and response.cursor is None


def test_a_decorated_schedule_sees_its_tick_in_its_time_zone() -> None:
    # 03:15 UTC is 04:15 in Paris; a naive tick time is taken as UTC.
    for due in (datetime(2026, 3, 1, 3, 15, tzinfo=UTC), datetime(2026, 3, 1, 3, 15)):
        [request] = ok(tick(TickKind.SCHEDULE, "dated", tick_time=due)).run_requests
        assert request.run_key == "2026-03-01T04:15:00+01:00"
        assert request.run_config == {
            "ops": {"extract": {"config": {"day": "2026-03-01T04:15:00+01:00"}}}
        }
        assert request.tags["tz"] == "Europe/Paris"


def test_a_partitioned_schedule_asks_for_the_partition_that_ended() -> None:
    due = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    [request] = ok(tick(TickKind.SCHEDULE, "daily_orders_schedule", tick_time=due)).run_requests
    assert request.job is None
    assert request.run_key == "2026-02-28"
    assert request.tags[PARTITION_TAG] == "2026-02-28"


def test_a_schedule_tick_asking_for_several_runs_is_an_error() -> None:
    response = tick(TickKind.SCHEDULE, "fan_out")
    assert response.error is not None and not response.run_requests
    assert response.error.message.startswith("TickFailed: schedule 'fan_out' asked for 2 runs")


# --- sensor ticks -----------------------------------------------------------------------------


def test_a_sensor_keeps_its_cursor_and_run_keys_across_ticks_then_skips() -> None:
    last = datetime(2026, 3, 1, 3, 14, tzinfo=UTC)
    first = ok(tick(TickKind.SENSOR, "counter"))
    assert first.cursor == "1"
    [request] = first.run_requests
    assert (request.job, request.run_key, request.run_config) == (None, "k0", ETL_CONFIG)
    assert request.tags["n"] == "0" and request.tags["last"] == "None"
    assert request.tags["dagster/sensor_name"] == "counter"
    second = ok(tick(TickKind.SENSOR, "counter", cursor="1", last_tick_at=last))
    assert second.cursor == "2"
    assert second.run_requests[0].run_key == "k1"
    assert second.run_requests[0].tags["last"] == str(last.timestamp())
    third = ok(tick(TickKind.SENSOR, "counter", cursor="2"))
    assert (third.run_requests, third.skip_reason, third.cursor) == ([], "enough", "2")


def test_a_sensor_result_carries_the_partition_and_the_asset_selection_in_tags() -> None:
    response = ok(tick(TickKind.SENSOR, "partitions"))
    assert response.cursor == "c1"
    [request] = response.run_requests
    assert request.job == "assets"  # Dagster's __ASSET_JOB, by its Tether name
    assert request.run_key == "feb1"
    assert request.tags[PARTITION_TAG] == "2026-02-01"
    assert json.loads(request.tags[ASSET_SELECTION_TAG]) == ["raw/orders"]
    assert asset_selection(request.tags) == ["raw/orders"]


def test_a_request_for_another_of_the_sensors_jobs_names_it() -> None:
    [request] = ok(tick(TickKind.SENSOR, "two_jobs")).run_requests
    assert request.job == "report"


def test_a_sensor_that_raises_is_an_error_with_its_traceback() -> None:
    response = tick(TickKind.SENSOR, "broken", cursor="7")
    assert response.error is not None
    assert response.error.message == "ValueError: boom from the sensor"
    assert response.error.traceback is not None
    assert 'raise ValueError("boom from the sensor")' in response.error.traceback
    assert (response.run_requests, response.cursor, response.skip_reason) == ([], None, None)


def test_a_sensors_resources_are_set_up_and_torn_down_around_each_evaluation() -> None:
    EVENTS.clear()
    for _ in range(2):
        [request] = ok(tick(TickKind.SENSOR, "uses_warehouse")).run_requests
        assert request.run_key == "wh://prod"
    assert EVENTS == ["setup", "evaluate", "teardown"] * 2


def test_unknown_and_unserved_sensors_and_schedules_are_errors() -> None:
    unknown = tick(TickKind.SENSOR, "nope").error
    assert unknown is not None and "declares no sensor 'nope'" in unknown.message
    assert "counter" in unknown.message
    unserved = tick(TickKind.SENSOR, "eager_landed").error
    assert unserved is not None and "does not serve Dagster sensor" in unserved.message
    listed = tick(TickKind.SCHEDULE, "twice").error
    assert listed is not None and "does not serve Dagster schedule 'twice'" in listed.message
    missing = tick(TickKind.SCHEDULE, "nope").error
    assert missing is not None and "declares no schedule 'nope'" in missing.message


# --- run-status sensor ticks ------------------------------------------------------------------


def test_a_run_status_sensor_is_called_once_per_watched_run() -> None:
    runs = [
        ended("r1", "etl", RunStatus.SUCCESS, tags={"owner": "ann"}),
        ended("r2", "report", RunStatus.SUCCESS),  # a job it does not watch
        ended("r3", "etl", RunStatus.FAILURE),  # a status it does not watch
        ended("r4", "etl", RunStatus.SUCCESS),
    ]
    EVENTS.clear()
    response = ok(tick(TickKind.SENSOR, "after_etl", runs=runs, cursor="kept-by-tether"))
    assert EVENTS == ["setup", "evaluate", "teardown"] * 2  # its resources, for each run
    assert [r.run_key for r in response.run_requests] == ["r1", "r4"]
    first = response.run_requests[0]
    assert first.job is None  # its request_job, report
    assert first.tags["after"] == "etl" and first.tags["owner"] == "ann"
    assert first.tags["dagster/sensor_name"] == "after_etl"
    assert response.cursor is None  # the control plane keeps a run-status sensor's cursor


def test_a_run_failure_sensor_sees_the_failure_and_the_dagster_job_name() -> None:
    runs = [
        ended("f1", "assets", RunStatus.FAILURE, error="step raw__orders failed"),
        ended("f2", "etl", RunStatus.FAILURE, tags={"retry": "no"}),
    ]
    response = ok(tick(TickKind.SENSOR, "on_failure", runs=runs))
    [request] = response.run_requests
    assert request.run_key == "retry-f1" and request.job is None
    assert request.tags["failed_job"] == "__ASSET_JOB"
    assert request.tags["message"] == "step raw__orders failed"
    only_skips = ok(tick(TickKind.SENSOR, "on_failure", runs=runs[1:]))
    assert only_skips.run_requests == []
    assert only_skips.skip_reason == "f2 asked for no retry"


def test_a_run_status_sensor_with_nothing_to_watch_skips() -> None:
    response = ok(tick(TickKind.SENSOR, "after_etl"))
    assert response.run_requests == [] and response.skip_reason is not None
    # Another location's job is matched by location and job name.
    runs = [
        ended("o1", "load", RunStatus.FAILURE),  # "here", not "other"
        ended("o2", "load", RunStatus.FAILURE).model_copy(update={"code_location": "other"}),
    ]
    [request] = ok(tick(TickKind.SENSOR, "other_failed", runs=runs)).run_requests
    assert request.run_key == "o2"
