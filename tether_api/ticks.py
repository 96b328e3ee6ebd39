"""Ticks evaluated in the code server: sensors, and schedules whose run config is code.

The control plane decides when a tick is due and enqueues an ``EVALUATE_TICK`` request
(``EvaluateTickPayload``); an agent's TickWorkflow asks the code server (``POST /ticks``:
``TickRequest`` in, ``TickResponse`` out) and reports the answer (``TickReport``), which the
control plane turns into runs, once each by run key.
"""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from tether_api.enums import RunStatus, TickKind, TickStatus

MAX_RUN_REQUESTS = 100
MAX_CURSOR_CHARS = 10_000
MAX_RUN_KEY_CHARS = 200


class RunRequestSpec(BaseModel):
    """A run a sensor (or a schedule's config function) asks for."""

    job: str | None = Field(
        default=None, description="The job to launch; None: the sensor's or schedule's job."
    )
    run_key: str | None = Field(
        default=None,
        max_length=MAX_RUN_KEY_CHARS,
        description="Unique per sensor: a request whose key already made a run makes no other.",
    )
    run_config: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


class EndedRun(BaseModel):
    """A run a run-status sensor is told about."""

    id: str
    code_location: str
    job: str
    status: RunStatus
    tags: dict[str, str] = Field(default_factory=dict)
    run_config: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    ended_at: datetime | None = None


class TickRequest(BaseModel):
    """``POST /ticks`` on the code server."""

    kind: TickKind
    name: str = Field(description="The sensor's or schedule's name.")
    cursor: str | None = Field(default=None, description="A sensor's cursor, as it last set it.")
    tick_time: datetime = Field(description="When the tick was due (a schedule's cron time).")
    last_tick_at: datetime | None = Field(
        default=None, description="When the previous evaluation that succeeded was due."
    )
    runs: list[EndedRun] = Field(
        default_factory=list, description="Run-status sensors: the runs that ended since."
    )
    timeout_seconds: float = Field(default=60.0, gt=0)


class TickError(BaseModel):
    message: str = Field(description="One line: the exception type and message.")
    traceback: str | None = None


class TickResponse(BaseModel):
    """What the user's function returned, or the error it raised (never both)."""

    run_requests: list[RunRequestSpec] = Field(default_factory=list, max_length=MAX_RUN_REQUESTS)
    cursor: str | None = Field(
        default=None, max_length=MAX_CURSOR_CHARS, description="The sensor's new cursor."
    )
    skip_reason: str | None = None
    error: TickError | None = None
    duration_seconds: float | None = None


class EvaluateTickPayload(BaseModel):
    """The payload of an ``EVALUATE_TICK`` request."""

    kind: TickKind
    tick_id: int
    code_location: str
    tick: TickRequest


class TickReport(BaseModel):
    """An agent's report of one tick: the code server's answer, or why there is none."""

    response: TickResponse | None = None
    error: TickError | None = Field(
        default=None,
        description="The agent could not get an answer (code server down, timed out).",
    )
    workflow_id: str | None = None


class TickOutcome(BaseModel):
    """The control plane's answer to a ``TickReport``."""

    status: TickStatus
    run_ids: list[str] = Field(default_factory=list, description="Runs the tick created.")
    error: str | None = None
    already_final: bool = Field(
        default=False,
        description="The tick had ended before this report (reported already, or past its "
        "deadline): the report changed nothing.",
    )
