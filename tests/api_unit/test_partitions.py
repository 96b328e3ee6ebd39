"""tether_api.partitions: keys computed from a snapshot, checked against hand-worked cases and
against Dagster's own computation of the same definitions."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from tether_api.enums import CodeLocationKind
from tether_api.partitions import (
    all_keys,
    cadence,
    count_keys,
    has_key,
    key_for_tick,
    key_test,
    keys_between,
    time_window,
    unknown_key_error,
)
from tether_api.runtags import (
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITION_TAG,
    TETHER_PARTITION_TAG,
    partition_tags,
    run_partition,
    run_partition_range,
)
from tether_api.snapshot import PartitionDimension, PartitionsSnapshot
from tether_sdk.dagster.snapshot import partitions as dagster_snapshot

PARIS = ZoneInfo("Europe/Paris")


def daily(start: str = "2024-01-01", **kw: object) -> PartitionsSnapshot:
    return PartitionsSnapshot.model_validate(
        {"kind": "time_window", "cron": "0 0 * * *", "start": start, "fmt": "%Y-%m-%d", **kw}
    )


def at(*args: int, tz: ZoneInfo | None = None) -> datetime:
    return datetime(*args, tzinfo=tz or UTC)  # type: ignore[arg-type,misc]


def test_daily_keys_are_the_days_that_have_ended() -> None:
    p = daily()
    assert all_keys(p, at(2024, 1, 4, 0, 0)) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert all_keys(p, at(2024, 1, 3, 23, 59)) == ["2024-01-01", "2024-01-02"]
    assert all_keys(p, at(2023, 12, 31)) == []
    # end_offset=1: today's window exists too; -1: yesterday's not yet.
    assert all_keys(daily(end_offset=1), at(2024, 1, 2, 12))[-1] == "2024-01-02"
    assert all_keys(daily(end_offset=-1), at(2024, 1, 4, 12)) == ["2024-01-01", "2024-01-02"]


def test_has_key_and_ranges() -> None:
    p, now = daily(), at(2024, 3, 1)
    assert has_key(p, "2024-02-29", now)
    assert not has_key(p, "2024-03-01", now)  # not ended yet
    assert not has_key(p, "2023-12-31", now)  # before the start
    assert not has_key(p, "2024-2-3", now)  # not the key format
    assert not has_key(p, "yesterday", now)
    assert keys_between(p, "2024-02-27", "2024-02-29", now) == [
        "2024-02-27",
        "2024-02-28",
        "2024-02-29",
    ]
    assert keys_between(p, "2024-02-01", "2024-02-01", now) == ["2024-02-01"]
    with pytest.raises(ValueError, match="first key '2024-02-10' is after its last key"):
        keys_between(p, "2024-02-10", "2024-02-01", now)
    with pytest.raises(ValueError, match="last key '2024-03-05' is not a partition"):
        keys_between(p, "2024-02-10", "2024-03-05", now)


def test_time_window_is_aware_and_follows_dst() -> None:
    p = daily(timezone="Europe/Paris")
    start, end = time_window(p, "2024-03-31") or (None, None)
    assert start == at(2024, 3, 31, tz=PARIS) and end == at(2024, 4, 1, tz=PARIS)
    assert start is not None and end is not None
    # A same-zone subtraction is wall-clock time: the real length needs UTC.
    assert (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() == 23 * 3600
    assert time_window(p, "not-a-day") is None
    assert time_window(PartitionsSnapshot(kind="static", keys=["a"]), "a") is None


def test_key_for_tick_targets_the_window_that_just_ended() -> None:
    p = daily()
    assert key_for_tick(p, at(2024, 1, 5)) == "2024-01-04"  # the midnight tick: yesterday
    assert key_for_tick(p, at(2024, 1, 5, 7, 30)) == "2024-01-04"
    assert key_for_tick(daily(end_offset=1), at(2024, 1, 5)) == "2024-01-05"
    assert key_for_tick(p, at(2024, 1, 1)) is None  # no window has ended yet
    hourly = PartitionsSnapshot(
        kind="time_window", cron="15 * * * *", start="2024-01-01-00:15", fmt="%Y-%m-%d-%H:%M"
    )
    assert key_for_tick(hourly, at(2024, 1, 1, 3, 15)) == "2024-01-01-02:15"
    assert key_for_tick(PartitionsSnapshot(kind="static", keys=["a"]), at(2024, 1, 1)) is None


def test_static_multi_and_dynamic() -> None:
    static = PartitionsSnapshot(kind="static", keys=["eu", "us"])
    now = at(2024, 1, 3)
    assert all_keys(static, now) == ["eu", "us"] and has_key(static, "us", now)
    assert not has_key(static, "asia", now)
    assert keys_between(static, "eu", "us", now) == ["eu", "us"]
    multi = PartitionsSnapshot(
        kind="multi",
        dimensions=[
            PartitionDimension(name="date", **daily().model_dump(exclude={"dimensions"})),
            PartitionDimension(name="region", kind="static", keys=["eu", "us"]),
        ],
    )
    assert all_keys(multi, now) == [
        "2024-01-01|eu",
        "2024-01-01|us",
        "2024-01-02|eu",
        "2024-01-02|us",
    ]
    assert count_keys(multi, now) == 4 and count_keys(static, now) == 2
    assert has_key(multi, "2024-01-02|us", now) and not has_key(multi, "2024-01-02", now)
    window = time_window(multi, "2024-01-02|us")
    assert window == (at(2024, 1, 2), at(2024, 1, 3))
    assert "'asia' is not a key of dimension 'region'" in unknown_key_error(
        multi, "2024-01-02|asia", now, "job 'j'"
    )
    dynamic = PartitionsSnapshot(kind="dynamic")
    assert all_keys(dynamic, now) == [] and has_key(dynamic, "anything", now)
    # key_test answers as has_key does, for many keys at once.
    listed_in_part = PartitionsSnapshot(kind="static", keys=["eu"], count=2)
    for p in (static, multi, dynamic, listed_in_part, daily()):
        known = key_test(p, now)
        for key in ("eu", "asia", "2024-01-02", "2024-01-02|us", "2024-01-02|asia", "x" * 401):
            assert known(key) == has_key(p, key, now), (p.kind, key)


def test_unknown_key_error_shows_a_few_valid_keys() -> None:
    message = unknown_key_error(daily(), "2025-01-01", at(2024, 2, 1), "job 'etl'")
    assert message == (
        "partition '2025-01-01' does not exist in job 'etl' (31 keys: 2024-01-01, 2024-01-02, "
        "2024-01-03, ..., 2024-01-29, 2024-01-30, 2024-01-31)"
    )
    assert "at most 400" in unknown_key_error(daily(), "x" * 401, at(2024, 2, 1), "job 'etl'")


def test_non_standard_crons_fall_back_to_the_listed_keys() -> None:
    assert cadence("*/5 * * * *") is None and cadence("0 0 31 * *") is None
    assert cadence("0 0 * * 7") is not None  # Sunday as 7
    p = PartitionsSnapshot(
        kind="time_window", cron="*/5 * * * *", start="a", fmt="%H:%M", keys=["a", "b"], count=2
    )
    assert all_keys(p, at(2024, 1, 1)) == ["a", "b"]
    assert key_for_tick(p, at(2024, 1, 1)) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        all_keys(daily(), datetime(2024, 1, 1))


DAGSTER_DEFINITIONS = [
    dg.DailyPartitionsDefinition(start_date="2023-10-20", timezone="Europe/Paris"),
    dg.DailyPartitionsDefinition(start_date="2024-01-01", hour_offset=3, end_offset=1),
    dg.DailyPartitionsDefinition(
        start_date="2024-01-01", minute_offset=30, hour_offset=2, timezone="America/New_York"
    ),
    dg.HourlyPartitionsDefinition(start_date="2024-03-29-00:00", timezone="Europe/Paris"),
    dg.HourlyPartitionsDefinition(
        start_date="2024-10-25-00:00", timezone="Europe/Paris", minute_offset=15
    ),
    dg.WeeklyPartitionsDefinition(start_date="2023-06-01", day_offset=3, end_offset=-1),
    dg.WeeklyPartitionsDefinition(start_date="2023-06-04", timezone="Asia/Kolkata"),
    dg.MonthlyPartitionsDefinition(start_date="2022-01-15", day_offset=15, hour_offset=6),
    dg.MonthlyPartitionsDefinition(start_date="2022-01-01", end_offset=2),
]
NOWS = [
    at(2024, 3, 31, 0, 59),
    at(2024, 3, 31, 1, 0),
    at(2024, 4, 2, 5, 7),
    at(2024, 10, 27, 0, 30),
    at(2024, 10, 27, 1, 30),
    at(2024, 10, 28, 12),
]


@pytest.mark.parametrize("definition", DAGSTER_DEFINITIONS, ids=lambda d: d.cron_schedule)
def test_keys_match_dagsters(definition: dg.TimeWindowPartitionsDefinition) -> None:
    snap = dagster_snapshot(definition)
    assert snap is not None and snap.fmt == definition.fmt
    for now in NOWS:
        expected = list(definition.get_partition_keys(current_time=now))
        assert all_keys(snap, now) == expected, now
        assert count_keys(snap, now) == len(expected)
        for key in expected[:3] + expected[-3:]:
            assert has_key(snap, key, now)
            window = definition.time_window_for_partition_key(key)
            assert time_window(snap, key) == (window.start, window.end)
        # A schedule tick targets the last key that exists then.
        assert key_for_tick(snap, now) == (expected[-1] if expected else None), now


def test_partition_tags_per_location_kind() -> None:
    assert partition_tags(CodeLocationKind.DAGSTER, "2024-01-01") == {PARTITION_TAG: "2024-01-01"}
    assert partition_tags(CodeLocationKind.TETHER, "eu") == {TETHER_PARTITION_TAG: "eu"}
    assert partition_tags(CodeLocationKind.TETHER, key_range=("a", "c")) == {
        PARTITION_RANGE_START_TAG: "a",
        PARTITION_RANGE_END_TAG: "c",
    }
    assert partition_tags(CodeLocationKind.TETHER) == {}
    with pytest.raises(ValueError, match="ranges are for Tether SDK jobs"):
        partition_tags(CodeLocationKind.DAGSTER, key_range=("a", "c"))
    with pytest.raises(ValueError, match="not both"):
        partition_tags(CodeLocationKind.TETHER, "a", ("a", "c"))


def test_reading_a_runs_partition() -> None:
    assert run_partition({PARTITION_TAG: "2024-01-01"}) == "2024-01-01"
    assert run_partition({TETHER_PARTITION_TAG: "eu"}) == "eu"
    assert run_partition({}) is None
    tags = partition_tags(CodeLocationKind.TETHER, key_range=("a", "c"))
    assert run_partition_range(tags) == ("a", "c") and run_partition(tags) is None
    assert run_partition_range({PARTITION_RANGE_START_TAG: "a"}) is None
