"""Partitions in Tether's SDK: declaring them, running a key or a range, asset selection,
deps=, what the code server's validate and tick evaluation say."""

from datetime import UTC, date, datetime

import pytest

from tether_api.codeserver import ValidateRequest
from tether_api.enums import EventType as T
from tether_api.enums import TickKind
from tether_api.ticks import TickRequest
from tether_sdk import (
    DailyPartitions,
    DefinitionError,
    Definitions,
    HourlyPartitions,
    MonthlyPartitions,
    MultiPartitions,
    RunRequest,
    ScheduleContext,
    StaticPartitions,
    StepContext,
    WeeklyPartitions,
    asset,
    asset_job,
    execute_job,
    job,
    schedule,
    sensor,
    step,
)
from tether_sdk.examples import partitioned
from tether_sdk.location import TetherLocation
from tether_sdk.ticks import evaluate

DAYS = DailyPartitions("2024-01-01")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: DailyPartitions("2024/01/01"), "start '2024/01/01' is not a date: write it as"),
        (lambda: DailyPartitions("2024-01-01", timezone="Mars/Olympus"), "unknown timezone"),
        (lambda: HourlyPartitions("2024-01-01", minute_offset=60), "minute_offset must be an int"),
        (lambda: WeeklyPartitions("2024-01-01", day_offset=7), "day_offset must be an int from 0"),
        (lambda: MonthlyPartitions("2024-01-01", day_offset=31), "from 1 to 28 (every month"),
        (lambda: StaticPartitions(["eu", "us", "eu"]), "key 'eu' is listed twice"),
        (lambda: StaticPartitions("eu"), "takes a list of keys"),
        (lambda: StaticPartitions([]), "needs at least one key"),
        (
            lambda: MultiPartitions({"date": DAYS, "region": StaticPartitions(["eu|west"])}),
            "key 'eu|west' of dimension 'region' contains '|'",
        ),
        (lambda: MultiPartitions({"date": DAYS}), "takes two named dimensions"),
        (
            lambda: MultiPartitions({"a": DAYS, "b": HourlyPartitions("2024-01-01")}),
            "at most one dimension may be a time window",
        ),
    ],
)
def test_bad_partitions_are_definition_errors(make: object, message: str) -> None:
    with pytest.raises(DefinitionError, match=message.replace("(", r"\(").replace("|", r"\|")):
        make()  # type: ignore[operator]


def test_partitions_of_one_job_must_agree() -> None:
    @asset(partitions=DAYS)
    def a() -> int:
        return 1

    @asset(partitions=StaticPartitions(["eu"]))
    def b(a: int) -> int:
        return a

    with pytest.raises(DefinitionError) as caught:
        asset_job("both", assets=[a, b])
    assert str(caught.value).startswith(
        "job 'both': asset 'a' is partitioned by DailyPartitions('2024-01-01') but asset 'b' by "
        "StaticPartitions(['eu'])"
    )
    # Equal definitions made apart are one definition.
    same = asset(partitions=DailyPartitions("2024-01-01"), name="c")(lambda a: a)
    assert asset_job("ok", assets=[a, same]).partitions == DAYS


def test_deps_order_and_lineage_without_a_value() -> None:
    order: list[str] = []

    @asset
    def upstream() -> int:
        order.append("upstream")
        return 1

    @asset(deps=[upstream])
    def downstream(ctx: StepContext) -> None:
        order.append("downstream")

    built = asset_job("lineage", assets=[downstream, upstream])
    assert built.step_names == ["upstream", "downstream"]
    assert execute_job(built).success and order == ["upstream", "downstream"]
    snap = Definitions(jobs=[built]).snapshot()
    assert {a.key: a.deps for a in snap.assets} == {"upstream": [], "downstream": ["upstream"]}
    # A deps= asset outside the job is lineage only: the job runs without it.
    alone = asset_job("alone", assets=[downstream])
    assert alone.step_names == ["downstream"] and execute_job(alone).success
    with pytest.raises(DefinitionError, match="deps= is only for @asset"):
        from tether_sdk.definitions import Step

        Step(lambda: None, name="s", deps=["x"])
    with pytest.raises(DefinitionError, match=r"both a parameter .* and in deps=: keep one"):
        asset(deps=["upstream"], name="twice")(lambda upstream: upstream)


def test_a_run_of_one_partition() -> None:
    seen: dict[str, object] = {}

    @asset(partitions=DAYS)
    def daily(ctx: StepContext) -> int:
        seen.update(
            key=ctx.partition_key,
            keys=ctx.partition_keys,
            window=ctx.partition_time_window,
            has=ctx.has_partition,
        )
        ctx.add_metadata(rows=3)
        return 3

    result = execute_job(asset_job("days", assets=[daily]), partition="2024-01-05")
    assert result.success
    assert seen == {
        "key": "2024-01-05",
        "keys": ["2024-01-05"],
        "window": (datetime(2024, 1, 5, tzinfo=UTC), datetime(2024, 1, 6, tzinfo=UTC)),
        "has": True,
    }
    [mat] = result.events_of(T.ASSET_MATERIALIZATION)
    assert mat.data == {"asset_key": "daily", "partition": "2024-01-05", "metadata": {"rows": 3}}
    assert result.events_of(T.RUN_START)[0].message == "starting job 'days', partition '2024-01-05'"


def test_a_range_run_materializes_each_key_and_a_failure_names_them() -> None:
    result = execute_job(
        partitioned.daily_orders,
        {"fail_on": []},
        partition_range=("2024-01-30", "2024-02-01"),
    )
    assert result.success
    mats = result.events_of(T.ASSET_MATERIALIZATION, "raw_orders")
    assert [m.data["partition"] for m in mats if m.data] == [
        "2024-01-30",
        "2024-01-31",
        "2024-02-01",
    ]
    [audit] = {
        m.data["metadata"]["checked_from"]
        for m in result.events_of(T.ASSET_MATERIALIZATION, "orders_audit")
        if m.data
    }
    assert audit == "2024-01-30T00:00:00+00:00"  # the range's window: first start...

    failed = execute_job(
        partitioned.daily_orders,
        {"fail_on": ["2024-01-31"]},
        partition_range=("2024-01-30", "2024-02-01"),
    )
    [failure] = failed.events_of(T.STEP_FAILURE)
    assert failure.data is not None
    assert failure.data["asset_keys"] == ["raw_orders"]
    assert failure.data["partitions"] == ["2024-01-30", "2024-01-31", "2024-02-01"]
    assert "fail_on) for 2024-01-31" in failure.data["error"]
    # deps= is an order and a skip too: orders_audit does not run after raw_orders failed.
    assert {e.step for e in failed.events_of(T.STEP_SKIPPED)} == {"daily_revenue", "orders_audit"}


def test_runs_that_name_no_or_a_wrong_partition_are_refused() -> None:
    with pytest.raises(ValueError) as caught:
        execute_job(partitioned.regional)
    assert str(caught.value) == (
        "job 'regional' is partitioned (StaticPartitions(['eu', 'us', 'apac'])): name a "
        "partition with tag tether/partition (e.g. 'apac'), or a range with tags "
        "tether/partition_range_start and tether/partition_range_end"
    )
    with pytest.raises(
        ValueError,
        match=r"partition 'mars' does not exist in job 'regional' "
        r"\(its keys: eu, us, apac\)",
    ):
        execute_job(partitioned.regional, partition="mars")
    with pytest.raises(ValueError, match="job 'summary' is not partitioned: remove tag"):
        execute_job(partitioned.summary, partition="eu")
    with pytest.raises(ValueError, match="first key '2024-02-01' is after its last key"):
        execute_job(partitioned.daily_orders, partition_range=("2024-02-01", "2024-01-01"))
    with pytest.raises(ValueError, match="name its partition with tag tether/partition, not"):
        execute_job(partitioned.regional, tags={"dagster/partition": "eu"})
    with pytest.raises(
        ValueError, match="a partition range needs both ends: add tag tether/partition_range_end"
    ):
        execute_job(partitioned.regional, tags={"tether/partition_range_start": "eu"})
    future = date.today().replace(year=date.today().year + 1).isoformat()
    with pytest.raises(ValueError, match=f"partition '{future}' does not exist"):
        execute_job(partitioned.daily_orders, partition=future)


def test_an_asset_selection_runs_only_the_selected_assets() -> None:
    result = execute_job(
        partitioned.daily_orders, partition="2024-01-02", assets=["raw_orders", "orders_audit"]
    )
    assert result.success
    assert {e.step for e in result.events_of(T.STEP_SUCCESS)} == {"raw_orders", "orders_audit"}
    # orders_audit's deps= upstream need not be selected: it takes no value from it.
    assert execute_job(
        partitioned.daily_orders, partition="2024-01-02", assets=["orders_audit"]
    ).success
    with pytest.raises(ValueError) as caught:
        execute_job(partitioned.daily_orders, partition="2024-01-02", assets=["daily_revenue"])
    assert str(caught.value) == (
        "asset 'daily_revenue' takes the value of 'raw_orders': select 'raw_orders' too, or "
        "declare it with deps=['raw_orders'] (a dependency that passes no value)"
    )
    with pytest.raises(ValueError, match="asset 'nope' is not in job 'daily_orders'"):
        execute_job(partitioned.daily_orders, partition="2024-01-02", assets=["nope"])


def test_the_code_servers_validate_checks_partitions_and_selection() -> None:
    location = TetherLocation(partitioned.defs)
    ok = location.validate(
        ValidateRequest(
            job="daily_orders",
            tags={"tether/partition": "2024-01-02", "tether/asset_selection": '["raw_orders"]'},
        )
    )
    assert ok.valid and ok.steps == ["raw_orders"]
    missing = location.validate(ValidateRequest(job="daily_orders"))
    assert not missing.valid and "job 'daily_orders' is partitioned" in (missing.message or "")
    assert missing.errors[0].field == "tags.tether/partition"
    selection = location.validate(
        ValidateRequest(
            job="daily_orders",
            tags={"tether/partition": "2024-01-02", "tether/asset_selection": '["daily_revenue"]'},
        )
    )
    assert not selection.valid and selection.errors[0].field == "tags.tether/asset_selection"


def test_snapshots_carry_the_partitions() -> None:
    snap = partitioned.defs.snapshot()
    job_partitions = snap.job("daily_orders").partitions  # type: ignore[union-attr]
    assert job_partitions is not None
    assert (job_partitions.kind, job_partitions.cron, job_partitions.start, job_partitions.fmt) == (
        "time_window",
        "0 0 * * *",
        "2024-01-01",
        "%Y-%m-%d",
    )
    assert job_partitions.location_kind == "tether"
    assets = {a.key: a for a in snap.assets}
    assert assets["regional_customers"].partitions.keys == ["eu", "us", "apac"]  # type: ignore[union-attr]
    assert assets["customer_summary"].partitions is None
    assert assets["customer_summary"].deps == ["regional_customers"]
    [nightly] = snap.schedules
    assert (nightly.cron, nightly.timezone) == ("0 0 * * *", "UTC")
    multi = MultiPartitions({"region": StaticPartitions(["eu"]), "date": DAYS}).snapshot()
    assert [d.name for d in multi.dimensions] == ["date", "region"]  # by name, as Dagster


def test_schedules_of_partitioned_jobs() -> None:
    paris = DailyPartitions("2024-01-01", timezone="Europe/Paris", hour_offset=2)
    assert (
        schedule("s", job=asset_job("j", assets=[asset(partitions=paris, name="x")(lambda: 1)]))
    ).cron == "0 2 * * *"
    with pytest.raises(DefinitionError, match="cron= is required"):
        schedule("s", job=partitioned.summary)
    with pytest.raises(DefinitionError) as caught:
        schedule("s", job=partitioned.regional, cron="0 1 * * *")
    assert "a tick cannot tell which key to run: pass run_config= a function" in str(caught.value)


def _tick(defs: Definitions, name: str, at: datetime, kind: TickKind = TickKind.SCHEDULE):  # type: ignore[no-untyped-def]
    return evaluate(defs, TickRequest(kind=kind, name=name, tick_time=at))


def test_a_schedules_config_function_gets_the_ticks_partition() -> None:
    seen: list[ScheduleContext] = []

    def config(ctx: ScheduleContext) -> dict[str, object]:
        seen.append(ctx)
        return {"fail_on": []}

    daily = schedule("nightly", job=partitioned.daily_orders, run_config=config)
    regions = schedule(
        "regions",
        job=partitioned.regional,
        cron="0 1 * * *",
        run_config=lambda ctx: RunRequest(partition_key="us"),
    )
    forgetful = schedule(
        "forgetful", job=partitioned.regional, cron="0 1 * * *", run_config=lambda ctx: {}
    )
    defs = Definitions(
        jobs=[partitioned.daily_orders, partitioned.regional],
        schedules=[daily, regions, forgetful],
    )
    answer = _tick(defs, "nightly", datetime(2024, 3, 2, tzinfo=UTC))
    assert seen[0].partition_key == "2024-03-01"
    assert answer.run_requests[0].tags == {"tether/partition": "2024-03-01"}
    early = _tick(defs, "nightly", datetime(2023, 12, 2, tzinfo=UTC))
    assert early.skip_reason and "no partition of job 'daily_orders' has ended" in early.skip_reason
    assert _tick(defs, "regions", datetime(2024, 3, 2, tzinfo=UTC)).run_requests[0].tags == {
        "tether/partition": "us"
    }
    failed = _tick(defs, "forgetful", datetime(2024, 3, 2, tzinfo=UTC))
    assert failed.error is not None
    assert "job 'regional' is partitioned" in failed.error.message
    assert failed.error.message.endswith("return RunRequest(partition_key=...)")


def test_a_sensors_run_request_names_its_partition() -> None:
    @sensor(job=partitioned.regional)
    def new_region(ctx: object) -> list[RunRequest]:
        return [RunRequest(run_key="k", partition_key="apac"), RunRequest(partition_key="mars")]

    defs = Definitions(jobs=[partitioned.regional], sensors=[new_region])
    answer = _tick(defs, "new_region", datetime(2024, 3, 2, tzinfo=UTC), TickKind.SENSOR)
    assert answer.error is not None and "partition 'mars' does not exist" in answer.error.message


def test_step_without_partitions_in_a_partitioned_job_is_materialized_whole() -> None:
    @asset(partitions=StaticPartitions(["eu", "us"]))
    def per_region(ctx: StepContext) -> str:
        return ctx.partition_key or ""

    @asset
    def everything(ctx: StepContext, per_region: str) -> str:
        return per_region

    @step
    def notify(everything: str) -> None:
        return None

    built = job("mixed", steps=[per_region, everything, notify])
    result = execute_job(built, tags={"tether/partition": "us"})
    assert result.outputs["everything"] == "us"
    by_asset = {
        m.data["asset_key"]: m.data.get("partition")
        for m in result.events_of(T.ASSET_MATERIALIZATION)
        if m.data
    }
    assert by_asset == {"per_region": "us", "everything": None}
