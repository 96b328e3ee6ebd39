"""Declaring partitions: static keys, daily/hourly/weekly/monthly time windows, and two
dimensions combined. Each definition is checked when declared and describes itself as a
``PartitionsSnapshot``; its keys are computed from that by ``tether_api.partitions``, the
same code the control plane runs, so both always agree on which keys exist.
"""

import zoneinfo
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from tether_api import partitions as keys_of
from tether_api.enums import CodeLocationKind
from tether_api.names import check_name
from tether_api.snapshot import PartitionDimension, PartitionsSnapshot
from tether_sdk.errors import DefinitionError


class PartitionsDefinition:
    """How an asset or a job is partitioned. Two definitions are equal when they declare the
    same keys (the same snapshot)."""

    def snapshot(self) -> PartitionsSnapshot:
        raise NotImplementedError

    def keys(self, now: datetime | None = None) -> list[str]:
        """Every key that exists at ``now`` (default: now), in order."""
        return keys_of.all_keys(self.snapshot(), now or datetime.now(UTC))

    def has_key(self, key: str, now: datetime | None = None) -> bool:
        return keys_of.has_key(self.snapshot(), key, now or datetime.now(UTC))

    def time_window(self, key: str) -> tuple[datetime, datetime] | None:
        return keys_of.time_window(self.snapshot(), key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PartitionsDefinition) and self.snapshot() == other.snapshot()

    def __hash__(self) -> int:
        return hash(self.snapshot().model_dump_json())


class StaticPartitions(PartitionsDefinition):
    """A fixed list of keys, e.g. regions: ``StaticPartitions(["eu", "us"])``."""

    def __init__(self, keys: Sequence[str]) -> None:
        what = "StaticPartitions"
        if isinstance(keys, str) or not isinstance(keys, Sequence):
            raise DefinitionError(f'{what} takes a list of keys, e.g. ["eu", "us"]; got {keys!r}')
        if not keys:
            raise DefinitionError(f"{what} needs at least one key")
        seen: set[str] = set()
        for key in keys:
            if not isinstance(key, str) or not key.strip():
                raise DefinitionError(f"{what}: every key is a non-empty str, got {key!r}")
            if len(key) > keys_of.MAX_PARTITION_KEY_CHARS:
                raise DefinitionError(
                    f"{what}: key {key[:40]!r}... is {len(key)} characters long; at most "
                    f"{keys_of.MAX_PARTITION_KEY_CHARS} are allowed"
                )
            if key in seen:
                raise DefinitionError(f"{what}: key {key!r} is listed twice: list each key once")
            seen.add(key)
        self.static_keys: tuple[str, ...] = tuple(keys)

    def snapshot(self) -> PartitionsSnapshot:
        return PartitionsSnapshot(
            kind=keys_of.STATIC,
            keys=list(self.static_keys),
            count=len(self.static_keys),
            location_kind=CodeLocationKind.TETHER,
        )

    def __repr__(self) -> str:
        return f"StaticPartitions({list(self.static_keys)!r})"


class TimeWindowPartitions(PartitionsDefinition):
    """Windows of time from ``start``, one key per window (its start, formatted). A window's
    partition exists once the window has ended; ``end_offset=1`` makes the current one exist
    too (``-1``: only once the next one has ended)."""

    unit = ""
    fmt = keys_of.DAILY_FMT

    def __init__(
        self,
        start: str | date,
        *,
        timezone: str = "UTC",
        end_offset: int = 0,
        minute_offset: int = 0,
        hour_offset: int = 0,
        day_offset: int | None = None,
    ) -> None:
        what = type(self).__name__
        self.timezone = _timezone(timezone, what)
        self.end_offset = _int(end_offset, "end_offset", -10_000, 10_000, what)
        self.minute_offset = _int(minute_offset, "minute_offset", 0, 59, what)
        self.hour_offset = _int(hour_offset, "hour_offset", 0, 23, what)
        self.day_offset = day_offset
        self.start = _start(start, self.fmt, what)
        self.cron = self._cron()

    def _cron(self) -> str:
        raise NotImplementedError

    def snapshot(self) -> PartitionsSnapshot:
        return PartitionsSnapshot(
            kind=keys_of.TIME_WINDOW,
            cron=self.cron,
            timezone=self.timezone,
            start=self.start,
            fmt=self.fmt,
            end_offset=self.end_offset,
            location_kind=CodeLocationKind.TETHER,
        )

    def __repr__(self) -> str:
        extra = "".join(
            f", {name}={value!r}"
            for name, value in (
                ("timezone", self.timezone if self.timezone != "UTC" else None),
                ("end_offset", self.end_offset or None),
                ("minute_offset", self.minute_offset or None),
                ("hour_offset", self.hour_offset or None),
                ("day_offset", self.day_offset),
            )
            if value is not None
        )
        return f"{type(self).__name__}({self.start!r}{extra})"


class HourlyPartitions(TimeWindowPartitions):
    """One partition per hour, keyed ``2024-01-31-13:00``; ``start`` is a date or
    ``"YYYY-MM-DD-HH:MM"``."""

    fmt = keys_of.HOURLY_FMT

    def __init__(
        self,
        start: str | date,
        *,
        timezone: str = "UTC",
        end_offset: int = 0,
        minute_offset: int = 0,
    ) -> None:
        super().__init__(
            start, timezone=timezone, end_offset=end_offset, minute_offset=minute_offset
        )

    def _cron(self) -> str:
        return f"{self.minute_offset} * * * *"


class DailyPartitions(TimeWindowPartitions):
    """One partition per day, keyed ``2024-01-31``, starting at ``hour_offset:minute_offset``."""

    def _cron(self) -> str:
        return f"{self.minute_offset} {self.hour_offset} * * *"


class WeeklyPartitions(TimeWindowPartitions):
    """One partition per week, keyed by its first day; ``day_offset``: the day it starts
    (0 Sunday ... 6 Saturday)."""

    def __init__(
        self,
        start: str | date,
        *,
        timezone: str = "UTC",
        end_offset: int = 0,
        minute_offset: int = 0,
        hour_offset: int = 0,
        day_offset: int = 0,
    ) -> None:
        _int(day_offset, "day_offset", 0, 6, "WeeklyPartitions", " (0 is Sunday)")
        super().__init__(
            start,
            timezone=timezone,
            end_offset=end_offset,
            minute_offset=minute_offset,
            hour_offset=hour_offset,
            day_offset=day_offset,
        )

    def _cron(self) -> str:
        return f"{self.minute_offset} {self.hour_offset} * * {self.day_offset}"


class MonthlyPartitions(TimeWindowPartitions):
    """One partition per month, keyed by its first day; ``day_offset``: the day of the month
    it starts (1 to 28)."""

    def __init__(
        self,
        start: str | date,
        *,
        timezone: str = "UTC",
        end_offset: int = 0,
        minute_offset: int = 0,
        hour_offset: int = 0,
        day_offset: int = 1,
    ) -> None:
        _int(day_offset, "day_offset", 1, 28, "MonthlyPartitions", " (every month has it)")
        super().__init__(
            start,
            timezone=timezone,
            end_offset=end_offset,
            minute_offset=minute_offset,
            hour_offset=hour_offset,
            day_offset=day_offset,
        )

    def _cron(self) -> str:
        return f"{self.minute_offset} {self.hour_offset} {self.day_offset} * *"


class MultiPartitions(PartitionsDefinition):
    """Two dimensions combined, e.g. ``{"date": DailyPartitions(...), "region":
    StaticPartitions([...])}``: a key joins one key of each with ``|``, the dimensions in the
    order of their names (as Dagster does): ``"2024-01-31|eu"``."""

    def __init__(self, dimensions: Mapping[str, PartitionsDefinition]) -> None:
        what = "MultiPartitions"
        if not isinstance(dimensions, Mapping) or len(dimensions) != 2:
            raise DefinitionError(
                f"{what} takes two named dimensions, e.g. "
                '{"date": DailyPartitions("2024-01-01"), "region": StaticPartitions(["eu"])}'
            )
        time_windows = 0
        for name, definition in dimensions.items():
            try:
                check_name(name, f"{what} dimension name")
            except ValueError as exc:
                raise DefinitionError(str(exc)) from None
            if not isinstance(definition, StaticPartitions | TimeWindowPartitions):
                raise DefinitionError(
                    f"{what}: dimension {name!r} must be a StaticPartitions or a time window "
                    f"(DailyPartitions, ...), got {definition!r}"
                )
            if isinstance(definition, TimeWindowPartitions):
                time_windows += 1
            else:
                for key in definition.static_keys:
                    if keys_of.MULTI_SEPARATOR in key:
                        raise DefinitionError(
                            f"{what}: key {key!r} of dimension {name!r} contains '|', which "
                            "joins the dimensions' keys: rename the key"
                        )
        if time_windows > 1:
            raise DefinitionError(f"{what}: at most one dimension may be a time window")
        self.dimensions: dict[str, PartitionsDefinition] = dict(sorted(dimensions.items()))

    def snapshot(self) -> PartitionsSnapshot:
        return PartitionsSnapshot(
            kind=keys_of.MULTI,
            dimensions=[
                PartitionDimension(
                    name=name, **d.snapshot().model_dump(exclude={"dimensions", "location_kind"})
                )
                for name, d in self.dimensions.items()
            ],
            location_kind=CodeLocationKind.TETHER,
        )

    def __repr__(self) -> str:
        return f"MultiPartitions({self.dimensions!r})"


def _timezone(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise DefinitionError(f"{what}: timezone must be a name such as 'UTC', got {name!r}")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DefinitionError(
            f"{what}: unknown timezone {name!r}; use an IANA name such as 'UTC' or "
            "'Europe/Paris' (and install the tzdata package where the system has none)"
        ) from None
    return name


def _int(value: Any, name: str, low: int, high: int, what: str, note: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DefinitionError(
            f"{what}: {name} must be an int from {low} to {high}{note}, got {value!r}"
        )
    return value


def _start(start: Any, fmt: str, what: str) -> str:
    """The first window's key, from a date, a datetime or a key-formatted string."""
    if isinstance(start, datetime):
        moment = start.replace(tzinfo=None)
    elif isinstance(start, date):
        moment = datetime(start.year, start.month, start.day)
    elif isinstance(start, str):
        parsed: datetime | None = None
        for candidate in dict.fromkeys((fmt, keys_of.DAILY_FMT)):
            try:
                parsed = datetime.strptime(start, candidate)
                break
            except ValueError:
                continue
        if parsed is None:
            example = datetime(2024, 1, 31).strftime(fmt)
            raise DefinitionError(
                f"{what}: start {start!r} is not a date: write it as {example!r} (or pass a "
                "datetime.date)"
            )
        moment = parsed
    else:
        raise DefinitionError(f"{what}: start must be a date or a str such as '2024-01-31'")
    return moment.strftime(fmt)
