"""A small line chart of one number over time as inline SVG: an asset's numeric metadata
(rows, revenue...) over its last materializations.

Pure Python, server-rendered, no script: the page's Content-Security-Policy allows no inline
script, and a chart this small needs none. Each point is a circle with a tooltip (when, the
value, the partition) that links to the run that wrote it. Colours come from CSS classes
(``spark-line``, ``spark-point``, ``spark-label``); the embedded ``<style>`` holds
zero-specificity defaults, as ``graph.py``'s does."""

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

WIDTH, HEIGHT = 320, 64
# Room for the min/max labels on the left and the latest value on the right.
LEFT, RIGHT, TOP, BOTTOM = 56, 64, 8, 8
POINT_RADIUS = 3

_STYLE = """
:where(.spark){font:11px system-ui,sans-serif}
:where(.spark .spark-line){fill:none;stroke:#0b57d0;stroke-width:1.5}
:where(.spark .spark-point){fill:#0b57d0}
:where(.spark .spark-axis){stroke:#d0d7de;stroke-width:1}
:where(.spark .spark-label){fill:#4d5561}
:where(.spark .spark-last){fill:#1b1f24;font-weight:600}
:where(.spark a:hover .spark-point,.spark a:focus .spark-point){r:5}
"""


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float
    note: str = ""  # more for the tooltip, e.g. "partition 2024-01-03"
    href: str | None = None  # the point links here (the run that wrote the value)


def number_text(value: float) -> str:
    """A value as a person reads it: whole numbers without decimals, others to 4 digits."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _xs(points: Sequence[Point], left: float, width: float) -> list[float]:
    """Each point's x, proportional to its time; evenly spaced when they all share one time."""
    if len(points) == 1:
        return [left + width / 2]
    times = [p.at.timestamp() for p in points]
    first, last = min(times), max(times)
    if last == first:
        return [left + width * i / (len(points) - 1) for i in range(len(points))]
    return [left + width * (t - first) / (last - first) for t in times]


def chart_svg(points: Sequence[Point], title: str) -> str:
    """``points`` (oldest first) as an ``<svg>``; ``title`` names the chart for screen
    readers, and its ``<desc>`` says the range and the latest value in words. No points: a
    chart that says "(no values)"."""
    finite = [p for p in points if math.isfinite(p.value)]
    if not finite:
        desc = "No values."
    else:
        low, high = min(p.value for p in finite), max(p.value for p in finite)
        desc = (
            f"{len(finite)} value{'s' if len(finite) != 1 else ''} from "
            f"{number_text(low)} to {number_text(high)}; latest {number_text(finite[-1].value)}."
        )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="spark" role="img" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}"><title>{_esc(title)}</title>'
        f"<desc>{_esc(desc)}</desc><style>{_STYLE}</style>"
    ]
    if not finite:
        out.append(
            f'<text class="spark-label" x="{WIDTH // 2}" y="{HEIGHT // 2 + 4}" '
            'text-anchor="middle">(no values)</text></svg>'
        )
        return "".join(out)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = high - low

    def y_of(value: float) -> float:
        # A flat series sits in the middle rather than on an edge.
        return TOP + plot_h / 2 if span == 0 else TOP + plot_h * (high - value) / span

    xs = _xs(finite, LEFT, plot_w)
    ys = [y_of(p.value) for p in finite]
    out.append(
        f'<line class="spark-axis" x1="{LEFT - 4}" y1="{TOP}" x2="{LEFT - 4}" '
        f'y2="{TOP + plot_h}"/>'
        f'<text class="spark-label" x="{LEFT - 8}" y="{TOP + 8}" text-anchor="end">'
        f"{_esc(number_text(high))}</text>"
        f'<text class="spark-label" x="{LEFT - 8}" y="{TOP + plot_h}" text-anchor="end">'
        f"{_esc(number_text(low))}</text>"
    )
    if len(finite) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        out.append(f'<polyline class="spark-line" points="{path}"/>')
    for p, x, y in zip(finite, xs, ys, strict=True):
        when = p.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        tip = f"{when}: {number_text(p.value)}" + (f" ({p.note})" if p.note else "")
        dot = (
            f'<circle class="spark-point" cx="{x:.1f}" cy="{y:.1f}" r="{POINT_RADIUS}">'
            f"<title>{_esc(tip)}</title></circle>"
        )
        out.append(f'<a href="{_esc(p.href)}">{dot}</a>' if p.href else dot)
    out.append(
        f'<text class="spark-last" x="{xs[-1] + 8:.1f}" y="{ys[-1] + 4:.1f}">'
        f"{_esc(number_text(finite[-1].value))}</text></svg>"
    )
    return "".join(out)
