"""tether_api.steps: step summaries and errors from a run's events (pure, no server)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from tether_api.enums import EventType, StepStatus
from tether_api.run_worker_api import RunEvent
from tether_api.steps import run_errors, summarize_steps, traceback_of
from tether_sdk import execute_job
from tether_sdk.examples import quickstart

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(
    seq: int, type_: EventType, step: str | None = None, at: float = 0, **kw: Any
) -> RunEvent:
    return RunEvent(seq=seq, type=type_, step=step, timestamp=T0 + timedelta(seconds=at), **kw)


def test_a_real_failed_run_of_the_quickstart() -> None:
    result = execute_job(quickstart.etl, {"source": "s3://x", "rows": 3, "fail": True})
    steps = summarize_steps(result.events)
    assert [(s.name, s.status) for s in steps] == [
        ("extract", StepStatus.SUCCESS),
        ("transform", StepStatus.SUCCESS),
        ("load", StepStatus.FAILURE),
        ("report", StepStatus.SKIPPED),
    ]
    extract, _, load, report = steps
    assert extract.started_at is not None and extract.ended_at is not None
    assert extract.duration_seconds is not None and extract.duration_seconds >= 0
    assert load.error == "RuntimeError: load failed as requested (fail=true) for s3://x"
    assert load.traceback is not None and "Traceback (most recent call last)" in load.traceback
    # Skipped: it never started, so it has no duration.
    assert report.started_at is None and report.duration_seconds is None
    errors = run_errors(result.events)
    assert [(e.step, e.traceback is not None) for e in errors] == [("load", True), (None, False)]
    assert errors[1].message == "steps failed: load"


def test_planned_steps_are_pending_until_their_first_event() -> None:
    events = [
        _event(1, EventType.RUN_START),
        _event(2, EventType.STEP_START, "a", at=1),
        _event(3, EventType.LOG, "a", at=2, message="working"),
        _event(4, EventType.STEP_SUCCESS, "a", at=3.5),
        _event(5, EventType.STEP_START, "b", at=4),
    ]
    steps = summarize_steps(events, planned=["a", "b", "c"])
    assert [(s.name, s.status) for s in steps] == [
        ("a", StepStatus.SUCCESS),
        ("b", StepStatus.RUNNING),
        ("c", StepStatus.PENDING),
    ]
    # No measured duration in the end event: from the two events' times.
    assert steps[0].duration_seconds == 2.5
    assert steps[1].ended_at is None and steps[1].duration_seconds is None


def test_measured_duration_wins_and_order_follows_first_events() -> None:
    events = [
        # Out of order on purpose: a summary goes by seq.
        _event(4, EventType.STEP_CANCELED, "z", at=9, data={"duration_s": 1.25}),
        _event(1, EventType.STEP_START, "z", at=1),
        _event(2, EventType.STEP_START, "y", at=2),
        _event(3, EventType.STEP_FAILURE, "y", at=3, message="step 'y' failed: boom"),
    ]
    steps = summarize_steps(events, planned=["y"])
    assert [(s.name, s.status) for s in steps] == [
        ("y", StepStatus.FAILURE),
        ("z", StepStatus.CANCELED),
    ]
    # Without data["error"], the failure's message stands in; no traceback was sent.
    assert steps[0].error == "step 'y' failed: boom" and steps[0].traceback is None
    assert steps[1].duration_seconds == 1.25


def test_traceback_of_ignores_empty_or_non_text() -> None:
    assert traceback_of(_event(1, EventType.RUN_FAILURE, data={"traceback": "  "})) is None
    assert traceback_of(_event(1, EventType.RUN_FAILURE, data={"traceback": 3})) is None
    assert traceback_of(_event(1, EventType.RUN_FAILURE, data={"traceback": "Tb\n"})) == "Tb\n"
