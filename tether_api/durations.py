"""One way to write a duration, for the web UI and the CLI alike."""

from __future__ import annotations


def duration_text(seconds: float | None, *, missing: str = "-") -> str:
    """``350 ms`` under a second, ``4.2 s`` under a minute, then ``3 min 05 s`` and
    ``1 h 02 min``; ``missing`` for None. A negative duration (clocks apart) counts as 0."""
    if seconds is None:
        return missing
    seconds = max(seconds, 0.0)
    if seconds < 1:
        # 0.9996 s would round to "1000 ms": say it in seconds instead.
        millis = round(seconds * 1000)
        return f"{millis} ms" if millis < 1000 else "1.0 s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
