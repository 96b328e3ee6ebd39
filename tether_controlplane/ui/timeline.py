"""The step timeline: one bar per step on the run's time axis, coloured by outcome (a Gantt
chart drawn with positioned HTML, so it needs no script and reads as a table)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tether_controlplane.ui.render import parse_time


@dataclass(frozen=True)
class Bar:
    step: str
    status: str
    left: float  # percent of the axis
    width: float
    duration: float | None
    error: str | None


def timeline(run: dict[str, Any], steps: list[dict[str, Any]]) -> list[Bar]:
    # The axis spans the steps themselves (the run's own start comes a process start earlier,
    # which would squeeze every bar of a quick run into its right end).
    started = [parse_time(s.get("started_at")) for s in steps]
    begin = min((t for t in started if t), default=None)
    if begin is None:
        return [Bar(s["name"], s["status"], 0, 0, None, s.get("error")) for s in steps]
    running = any(s["status"] == "RUNNING" for s in steps)
    ends = [t for t in (parse_time(s.get("ended_at")) for s in steps) if t]
    # A step still RUNNING grows until now, or until its run ended without its end event.
    run_end = parse_time(run.get("ended_at"))
    end = max(ends) if ends and not running else run_end or datetime.now(UTC)
    span = max((end - begin).total_seconds(), 1e-6)
    bars = []
    for s, step_start in zip(steps, started, strict=True):
        if step_start is None:
            bars.append(Bar(s["name"], s["status"], 0, 0, None, s.get("error")))
            continue
        step_end = parse_time(s.get("ended_at")) or (
            end if s["status"] == "RUNNING" else step_start
        )
        # At least a sliver, so that an instant step still shows; never past the lane's end.
        left = min(max((step_start - begin).total_seconds() / span * 100, 0), 99.5)
        width = max((step_end - step_start).total_seconds() / span * 100, 0.5)
        bars.append(
            Bar(
                s["name"],
                s["status"],
                round(left, 2),
                round(min(width, 100 - left), 2),
                s.get("duration_seconds"),
                s.get("error"),
            )
        )
    return bars
