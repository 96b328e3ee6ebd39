"""Partition keys computed from a partitions snapshot: which keys exist at a time, the time
window of a key, and the partition a schedule tick targets.

Shared by the SDK (run worker, code server), the control plane (run validation, the asset
catalog, backfills) and the agent, so it needs only the standard library and pydantic.

Time windows are computed from the snapshot's start, cron, timezone, key format (``fmt``) and
``end_offset`` for the standard crons Dagster and Tether's SDK make: hourly (``M * * * *``),
daily (``M H * * *``), weekly (``M H * * D``) and monthly (``M H D * *``, D up to 28). Any
other cron, or a snapshot without ``fmt``, falls back to the keys the snapshot lists.
As in Dagster, days, weeks and months are calendar ones in the timezone (a daily window is
23 or 25 hours long on a DST change) and hours are real hours: the wall-clock hour a DST
change skips has no window, and the one it repeats has two, the second keyed with its UTC
offset (``2024-10-27-02:00+0100``).
"""

import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from tether_api.snapshot import PartitionDimension, PartitionKeys, PartitionsSnapshot

# A partition key is stored in run tags and catalog rows: bounded.
MAX_PARTITION_KEY_CHARS = 400
# Joins one key per dimension into a multi-partitions key (Dagster's separator).
MULTI_SEPARATOR = "|"

STATIC, TIME_WINDOW, MULTI, DYNAMIC = "static", "time_window", "multi", "dynamic"

# Dagster's default key formats, which Tether's SDK uses too.
HOURLY_FMT = "%Y-%m-%d-%H:%M"
DAILY_FMT = "%Y-%m-%d"


@dataclass(frozen=True)
class Cadence:
    """When the windows of a standard cron start: every hour at ``minute``, every day at
    ``hour:minute``, every week on ``weekday`` (cron: 0 is Sunday) or every month on ``day``."""

    unit: str  # "hourly", "daily", "weekly" or "monthly"
    minute: int
    hour: int = 0
    weekday: int = 0
    day: int = 1

    def floor(self, t: datetime) -> datetime:
        """The latest window start at or before the naive wall-clock time ``t``."""
        t = t.replace(second=0, microsecond=0)
        if self.unit == "hourly":
            c = t.replace(minute=self.minute)
            return c if c <= t else c - timedelta(hours=1)
        c = t.replace(hour=self.hour, minute=self.minute)
        if self.unit == "daily":
            return c if c <= t else c - timedelta(days=1)
        if self.unit == "weekly":
            cron_weekday = (t.weekday() + 1) % 7
            c -= timedelta(days=(cron_weekday - self.weekday) % 7)
            return c if c <= t else c - timedelta(days=7)
        c = c.replace(day=self.day)
        return c if c <= t else _add_months(c, -1)

    def step(self, t: datetime, n: int = 1) -> datetime:
        """The window start ``n`` windows after (before, when negative) the start ``t``."""
        if self.unit == "hourly":
            return t + timedelta(hours=n)
        if self.unit == "daily":
            return t + timedelta(days=n)
        if self.unit == "weekly":
            return t + timedelta(days=7 * n)
        return _add_months(t, n)


def _add_months(t: datetime, n: int) -> datetime:
    months = t.year * 12 + t.month - 1 + n
    return t.replace(year=months // 12, month=months % 12 + 1)


def cadence(cron: str | None) -> Cadence | None:
    """The cadence of a standard hourly/daily/weekly/monthly cron; None for any other."""
    fields = (cron or "").split()
    if len(fields) != 5:
        return None
    minute, hour, dom, month, dow = fields
    if month != "*" or not _int_in(minute, 0, 59):
        return None
    m = int(minute)
    if hour == "*":
        return Cadence("hourly", m) if dom == "*" and dow == "*" else None
    if not _int_in(hour, 0, 23):
        return None
    h = int(hour)
    if dom == "*" and dow == "*":
        return Cadence("daily", m, h)
    if dom == "*" and _int_in(dow, 0, 7):
        return Cadence("weekly", m, h, weekday=int(dow) % 7)
    if dow == "*" and _int_in(dom, 1, 28):
        return Cadence("monthly", m, h, day=int(dom))
    return None


def _int_in(text: str, low: int, high: int) -> bool:
    return text.isdigit() and low <= int(text) <= high


@dataclass(frozen=True)
class _Windows:
    """A time-window partitions definition, resolved: computable. Window starts are aware
    datetimes in ``tz``; they are compared in UTC (Python compares two datetimes of one
    tzinfo by wall-clock time, which a DST change makes ambiguous)."""

    cadence: Cadence
    tz: zoneinfo.ZoneInfo
    fmt: str
    first: datetime
    end_offset: int

    @property
    def hourly(self) -> bool:
        return self.cadence.unit == "hourly"

    def step(self, t: datetime, n: int = 1) -> datetime:
        # Hours are real hours (a DST change skips or repeats a wall-clock hour); days, weeks
        # and months are calendar ones.
        if self.hourly:
            return (t.astimezone(UTC) + timedelta(hours=n)).astimezone(self.tz)
        return self.cadence.step(t.replace(tzinfo=None), n).replace(tzinfo=self.tz)

    def floor(self, t: datetime) -> datetime:
        """The latest window start at or before the aware time ``t``."""
        local = t.astimezone(self.tz)
        if self.hourly:
            c = local.replace(minute=self.cadence.minute, second=0, microsecond=0)
            return c if _utc(c) <= _utc(t) else self.step(c, -1)
        return self.cadence.floor(local.replace(tzinfo=None)).replace(tzinfo=self.tz)

    def ceil(self, t: datetime) -> datetime:
        floor = self.floor(t)
        return floor if _utc(floor) == _utc(t) else self.step(floor)

    def key(self, start: datetime) -> str:
        key = start.strftime(self.fmt)
        # The second of two equal wall-clock hours (DST ends) gets its UTC offset, as in
        # Dagster ("2024-10-27-02:00+0100"), so that keys stay unique.
        if self.hourly and start.fold and start.replace(fold=0).utcoffset() != start.utcoffset():
            key += start.strftime("%z")
        return key

    def parse(self, key: str) -> datetime | None:
        """The window start a key names, or None when it names none."""
        try:
            parsed = datetime.strptime(key, self.fmt).replace(tzinfo=self.tz)
        except ValueError:
            try:
                parsed = datetime.strptime(key, self.fmt + "%z").astimezone(self.tz)
            except ValueError:
                return None
        # A key may format its start coarser than the cadence (a daily window starting at
        # 03:00 has key "2024-01-01"): the window is the first that starts at or after it.
        start = self.ceil(parsed)
        if _utc(start) < _utc(self.first) or self.key(start) != key:
            return None
        return start

    def last(self, now: datetime) -> datetime | None:
        """The start of the last window that exists at ``now``: the last one ended at or
        before it, moved by end_offset windows; None when there is none yet."""
        if now.tzinfo is None:
            raise ValueError(f"{now!r} must be an aware datetime (with a timezone)")
        last = self.step(self.floor(now), self.end_offset - 1)
        return last if _utc(last) >= _utc(self.first) else None

    def starts(self, first: datetime, last: datetime) -> Iterator[datetime]:
        t, end = first, _utc(last)
        while _utc(t) <= end:
            yield t
            t = self.step(t)

    def index(self, start: datetime) -> int:
        """How many windows start before ``start`` (a window start)."""
        if self.hourly:
            return int((_utc(start) - _utc(self.first)).total_seconds() // 3600)
        a, b = self.first.replace(tzinfo=None), start.replace(tzinfo=None)
        if self.cadence.unit == "monthly":
            return (b.year - a.year) * 12 + b.month - a.month
        days = (b.date() - a.date()).days
        return days // 7 if self.cadence.unit == "weekly" else days

    def window(self, start: datetime) -> tuple[datetime, datetime]:
        return start, self.step(start)


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC)


def _windows(p: PartitionKeys) -> _Windows | None:
    """The computable form of time-window partitions; None when they are not computable
    (another kind, a non-standard cron, no key format): the listed keys are used then."""
    if p.kind != TIME_WINDOW or not p.fmt or not p.start:
        return None
    found = cadence(p.cron)
    if found is None:
        return None
    try:
        tz = zoneinfo.ZoneInfo(p.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {p.timezone!r} in a partitions definition: use an IANA name "
            "such as 'UTC' or 'Europe/Paris'"
        ) from None
    try:
        start = datetime.strptime(p.start, p.fmt).replace(tzinfo=tz)
    except ValueError:
        raise ValueError(
            f"the partitions' start {p.start!r} does not match their key format {p.fmt!r}"
        ) from None
    windows = _Windows(found, tz, p.fmt, start, p.end_offset)
    return replace(windows, first=windows.ceil(start))


def _dimensions(p: PartitionKeys) -> list[PartitionDimension]:
    return list(p.dimensions) if isinstance(p, PartitionsSnapshot) else []


def all_keys(p: PartitionKeys, now: datetime) -> list[str]:
    """Every key that exists at ``now``, in order. Multi: the product of the dimensions' keys,
    the first dimension outermost, each key joining one per dimension with ``|``."""
    if p.kind == MULTI:
        keys = [""]
        for i, d in enumerate(_dimensions(p)):
            sep = MULTI_SEPARATOR if i else ""
            keys = [f"{k}{sep}{dk}" for k in keys for dk in all_keys(d, now)]
        return keys if _dimensions(p) else []
    w = _windows(p)
    if w is None:
        return list(p.keys)
    last = w.last(now)
    return [] if last is None else [w.key(s) for s in w.starts(w.first, last)]


def count_keys(p: PartitionKeys, now: datetime) -> int:
    """``len(all_keys(p, now))`` without listing them (hourly windows over years are tens of
    thousands of keys)."""
    if p.kind == MULTI:
        dims = _dimensions(p)
        total = 1 if dims else 0
        for d in dims:
            total *= count_keys(d, now)
        return total
    w = _windows(p)
    if w is None:
        return len(p.keys)
    last = w.last(now)
    return 0 if last is None else w.index(last) + 1


def has_key(p: PartitionKeys, key: str, now: datetime) -> bool:
    """Whether ``key`` exists at ``now``. True for keys the snapshot cannot tell about:
    dynamic partitions, and time windows it lists only in part (the code decides then)."""
    if len(key) > MAX_PARTITION_KEY_CHARS:
        return False
    if p.kind == MULTI:
        dims = _dimensions(p)
        parts = key.split(MULTI_SEPARATOR)
        return (
            bool(dims)
            and len(parts) == len(dims)
            and all(has_key(d, part, now) for d, part in zip(dims, parts, strict=True))
        )
    w = _windows(p)
    if w is not None:
        start, last = w.parse(key), w.last(now)
        return start is not None and last is not None and _utc(start) <= _utc(last)
    if p.kind == DYNAMIC or (p.count is not None and p.count > len(p.keys)):
        return True
    return key in p.keys


def key_test(p: PartitionKeys, now: datetime) -> Callable[[str], bool]:
    """``has_key(p, key, now)`` for many keys at once (a backfill's list of them): listed
    keys are put in a set once, instead of each key being looked for along the list."""
    if p.kind == MULTI:
        dims = _dimensions(p)
        tests = [key_test(d, now) for d in dims]

        def multi(key: str) -> bool:
            parts = key.split(MULTI_SEPARATOR)
            return (
                bool(dims)
                and len(key) <= MAX_PARTITION_KEY_CHARS
                and len(parts) == len(dims)
                and all(test(part) for test, part in zip(tests, parts, strict=True))
            )

        return multi
    listed = p.kind != DYNAMIC and not (p.count is not None and p.count > len(p.keys))
    if _windows(p) is None and listed:
        keys = frozenset(p.keys)
        return lambda key: key in keys
    return lambda key: has_key(p, key, now)


def unknown_key_error(p: PartitionKeys, key: str, now: datetime, owner: str) -> str:
    """Why ``key`` is not a key of ``owner``'s partitions, with a few valid ones."""
    if len(key) > MAX_PARTITION_KEY_CHARS:
        return (
            f"partition key of {owner} is {len(key)} characters long; at most "
            f"{MAX_PARTITION_KEY_CHARS} are allowed"
        )
    if p.kind == MULTI:
        dims = _dimensions(p)
        if len(key.split(MULTI_SEPARATOR)) != len(dims):
            names = MULTI_SEPARATOR.join(d.name for d in dims)
            return (
                f"partition {key!r} does not exist in {owner}: a key joins one key of each "
                f"dimension with '|', as {names}"
            )
        for d, part in zip(dims, key.split(MULTI_SEPARATOR), strict=True):
            if not has_key(d, part, now):
                return (
                    f"partition {key!r} does not exist in {owner}: {part!r} is not a key of "
                    f"dimension {d.name!r} ({_some(all_keys(d, now))})"
                )
    keys = all_keys(p, now)
    if not keys:
        return f"partition {key!r} does not exist in {owner}: it has no partitions yet"
    return f"partition {key!r} does not exist in {owner} ({_some(keys)})"


def _some(keys: list[str], shown: int = 3) -> str:
    if not keys:
        return "no keys yet"
    if len(keys) <= 2 * shown:
        return "its keys: " + ", ".join(keys)
    return f"{len(keys)} keys: {', '.join(keys[:shown])}, ..., {', '.join(keys[-shown:])}"


def keys_between(p: PartitionKeys, first: str, last: str, now: datetime) -> list[str]:
    """The keys from ``first`` to ``last``, both included, in order. ValueError naming the
    end that does not exist, or when first is after last."""
    for end, key in (("first", first), ("last", last)):
        if not has_key(p, key, now):
            raise ValueError(
                f"the range's {end} key {key!r} is not a partition ({_some(all_keys(p, now))})"
            )
    w = _windows(p)
    if w is not None:
        a, b = w.parse(first), w.parse(last)
        assert a is not None and b is not None
        if _utc(a) > _utc(b):
            raise ValueError(f"the range's first key {first!r} is after its last key {last!r}")
        return [w.key(s) for s in w.starts(a, b)]
    keys = all_keys(p, now)
    if first not in keys or last not in keys:
        # Keys the snapshot cannot list (dynamic, or listed in part): no order to go by.
        raise ValueError(
            f"a range of these partitions cannot be computed ({first!r}..{last!r}): "
            "name the keys one by one"
        )
    i, j = keys.index(first), keys.index(last)
    if i > j:
        raise ValueError(f"the range's first key {first!r} is after its last key {last!r}")
    return keys[i : j + 1]


def time_window(p: PartitionKeys, key: str) -> tuple[datetime, datetime] | None:
    """The time window a key names, as aware datetimes in the partitions' timezone; None for
    static and dynamic partitions, and for a key that names no window. Multi: the window of
    its time dimension, if it has one."""
    if p.kind == MULTI:
        parts = key.split(MULTI_SEPARATOR)
        dims = _dimensions(p)
        if len(parts) != len(dims):
            return None
        for d, part in zip(dims, parts, strict=True):
            if d.kind == TIME_WINDOW:
                return time_window(d, part)
        return None
    w = _windows(p)
    if w is None:
        return None
    start = w.parse(key)
    return None if start is None else w.window(start)


def key_for_tick(p: PartitionKeys, tick: datetime) -> str | None:
    """The partition a schedule tick at ``tick`` targets: the last window that has ended at
    or before it, moved by end_offset as Dagster does (the daily tick at midnight targets
    yesterday). None when there is none yet, or the partitions are not time windows."""
    w = _windows(p)
    if w is None:
        return None
    last = w.last(tick)
    return None if last is None else w.key(last)


def default_cron(p: PartitionKeys) -> str | None:
    """The cron of time-window partitions (a schedule of their job ticks when a window ends),
    None for other kinds."""
    return p.cron if p.kind == TIME_WINDOW else None
