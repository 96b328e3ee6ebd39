"""What a run's events say about its steps and its errors: pure functions, no I/O.

The CLI (``tether runs show``) and the web UI both show these, so they compute them the same
way, from the ``RunEvent``s of ``GET .../runs/{id}/events``.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from tether_api.enums import STEP_END_STATUS, EventType, StepStatus
from tether_api.run_worker_api import RunEvent


class StepSummary(BaseModel):
    """One step of a run."""

    name: str = Field(description="The step's name.")
    status: StepStatus = Field(
        description="PENDING until its first event; RUNNING from STEP_START until it ends."
    )
    started_at: datetime | None = Field(default=None, description="Its STEP_START's time.")
    ended_at: datetime | None = Field(
        default=None, description="The time of the event that ended it (success, failure ...)."
    )
    duration_seconds: float | None = Field(
        default=None,
        description="How long it ran: the worker's own measure when its end event has one, "
        "else from the two events' times; None until it ended (or when it never started).",
    )
    error: str | None = Field(default=None, description="A failed step's exception, one line.")
    traceback: str | None = Field(default=None, description="A failed step's full traceback.")
    retries: int = Field(
        default=0, description="How many times it was retried within the run (Dagster steps)."
    )


class RunError(BaseModel):
    """A failure a run's events report: a step's or the run worker's."""

    seq: int = Field(description="The event's sequence number.")
    step: str | None = Field(default=None, description="The failed step; None for the run.")
    message: str = Field(description="The event's message.")
    traceback: str | None = Field(default=None, description="The full traceback, when sent.")


def summarize_steps(events: Iterable[RunEvent], planned: Sequence[str] = ()) -> list[StepSummary]:
    """Each step's status, times and duration from a run's events.

    ``planned`` are the job's step names in execution order (from its snapshot): steps with
    no event yet are listed as PENDING in their place. Steps seen only in events come after
    them, in the order they first appear."""
    steps: dict[str, StepSummary] = {
        name: StepSummary(name=name, status=StepStatus.PENDING) for name in planned
    }
    for event in sorted(events, key=lambda e: e.seq):
        if event.step is None or not event.type.value.startswith("STEP_"):
            continue  # logs and materializations of a step say nothing about its state
        step = steps.setdefault(event.step, StepSummary(name=event.step, status=StepStatus.PENDING))
        if event.type == EventType.STEP_START:
            step.status = StepStatus.RUNNING
            step.started_at = event.timestamp
            step.ended_at = step.duration_seconds = step.error = step.traceback = None
            continue
        if event.type == EventType.STEP_RESTARTED:
            step.retries += 1
            continue
        status = STEP_END_STATUS.get(event.type)
        if status is None:
            continue
        step.status = status
        step.ended_at = event.timestamp
        step.duration_seconds = _duration(event.data, step.started_at, event.timestamp)
        if status == StepStatus.FAILURE:
            error = event.data.get("error")
            step.error = error if isinstance(error, str) else event.message
            step.traceback = traceback_of(event)
    # A mapped step of a Dagster job (downstream of a dynamic output) runs as name[key]: once
    # those are in the run, the planned name stands for them and is not listed as PENDING.
    return [
        s
        for s in steps.values()
        if not (s.status == StepStatus.PENDING and any(n.startswith(f"{s.name}[") for n in steps))
    ]


def run_errors(events: Iterable[RunEvent]) -> list[RunError]:
    """Every STEP_FAILURE and RUN_FAILURE, in order, with its traceback when it has one."""
    return [
        RunError(seq=e.seq, step=e.step, message=e.message, traceback=traceback_of(e))
        for e in sorted(events, key=lambda e: e.seq)
        if e.type in (EventType.STEP_FAILURE, EventType.RUN_FAILURE)
    ]


def traceback_of(event: RunEvent) -> str | None:
    """The traceback a failure event carries in ``data["traceback"]``, if any."""
    found = event.data.get("traceback")
    return found if isinstance(found, str) and found.strip() else None


def _duration(data: dict[str, Any], start: datetime | None, end: datetime) -> float | None:
    measured = data.get("duration_s")
    # The worker's clock measures the step itself; event times also hold queueing delays.
    if isinstance(measured, int | float) and not isinstance(measured, bool) and measured >= 0:
        return float(measured)
    if start is None:
        return None  # skipped, or its start event is missing
    return max((end - start).total_seconds(), 0.0)
