"""Times given on the command line: a duration (``90d``, ``12h``, ``30m``, ``45s``) or an ISO
8601 date and time."""

import re
from datetime import UTC, datetime, timedelta

from tether_cli.render import UsageProblem

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_duration(value: str, option: str) -> timedelta:
    match = _DURATION.match(value.strip().lower())
    if not match:
        raise UsageProblem(
            f"{option}: {value!r} is not a duration; use a number and a unit, e.g. 90d, 12h, "
            "30m (s, m, h, d, w)"
        )
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_time(value: str, option: str) -> datetime:
    """An ISO date/time (local time when it names no zone)."""
    try:
        found = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageProblem(
            f"{option}: {value!r} is not a date and time; use ISO 8601, e.g. 2027-01-31 or "
            "2027-01-31T18:00:00+00:00"
        ) from None
    return found if found.tzinfo else found.astimezone()


def parse_when(value: str, option: str) -> datetime:
    """A time ago (a duration) or a date and time."""
    if _DURATION.match(value.strip().lower()):
        return datetime.now(UTC) - parse_duration(value, option)
    return parse_time(value, option)
