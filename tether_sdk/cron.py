"""Syntax check of 5-field cron expressions (minute hour day-of-month month day-of-week).

Only validation: evaluating schedules is the control plane's job. Catching a typo here,
at import time, beats discovering it when the schedule silently never fires.
"""

_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(
                ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
            )
        },
    ),
    # 0 and 7 are both Sunday, as in Vixie cron.
    (
        "day of week",
        0,
        7,
        {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])},
    ),
)


def cron_error(expression: str) -> str | None:
    """Return why ``expression`` is not a valid 5-field cron expression, or None if it is."""
    fields = expression.split()
    if len(fields) != 5:
        return (
            f"cron expression {expression!r} has {len(fields)} field(s); expected 5: "
            "'minute hour day-of-month month day-of-week', e.g. '0 3 * * *'"
        )
    for text, (what, low, high, names) in zip(fields, _FIELDS, strict=True):
        problem = _field_error(text, low, high, names)
        if problem:
            return f"cron expression {expression!r}: {what} field {text!r}: {problem}"
    return None


def _field_error(text: str, low: int, high: int, names: dict[str, int]) -> str | None:
    for item in text.split(","):
        if not item:
            return "empty list item"
        base, slash, step = item.partition("/")
        if slash and (not step.isdigit() or int(step) == 0):
            return f"step {step!r} must be a positive integer"
        if base == "*":
            continue
        start_text, dash, end_text = base.partition("-")
        bounds = [start_text, end_text] if dash else [start_text]
        values: list[int] = []
        for bound in bounds:
            value = _value(bound, names)
            if value is None:
                return f"{bound!r} is not a number" + (
                    " or a name (e.g. " + next(iter(names)) + ")" if names else ""
                )
            if not low <= value <= high:
                return f"{value} is out of range {low}-{high}"
            values.append(value)
        if dash and values[0] > values[1]:
            return f"range {base!r} goes backwards"
    return None


def _value(text: str, names: dict[str, int]) -> int | None:
    if text.isdigit():
        return int(text)
    return names.get(text.upper())
