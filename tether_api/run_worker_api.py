"""The run worker's API (``/api/v1/runs/{id}/events``, its heartbeat) and what a pooled run
worker is handed on its stdin."""

from datetime import UTC, datetime
from typing import Any

from pydantic import (
    BaseModel,
    Field,
    field_validator,
)

from tether_api.enums import (
    EventType,
    RunStatus,
)
from tether_api.wire import (
    MAX_EVENT_DATA_BYTES,
    MAX_EVENTS_PER_BATCH,
    MAX_MESSAGE_CHARS,
    MAX_SEQ,
    JsonInt,
    Text,
    check_json_size,
)


class RunEvent(BaseModel):
    seq: JsonInt = Field(ge=1, le=MAX_SEQ, description="Per-run sequence number, from 1.")
    type: EventType
    timestamp: datetime
    step: Text | None = Field(default=None, max_length=200)
    level: Text | None = Field(default=None, max_length=20)
    message: Text = Field(default="", max_length=MAX_MESSAGE_CHARS)
    data: dict[str, Any] = Field(
        default_factory=dict, description=f"At most {MAX_EVENT_DATA_BYTES} bytes as JSON."
    )

    @field_validator("timestamp", mode="before")
    @classmethod
    def _text_or_datetime(cls, value: Any) -> Any:
        if isinstance(value, int | float):  # pydantic would read a number as Unix time
            raise ValueError("timestamp must be an ISO 8601 string, e.g. 2026-01-01T00:00:00Z")
        return value

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp needs a time zone, e.g. 2026-01-01T00:00:00Z")
        try:
            return value.astimezone(UTC)
        except OverflowError:
            # Within an hour of year 1 or year 9999: a valid date-time that UTC cannot hold.
            # Clamped rather than refused, so the event itself is not lost.
            edge = datetime.min if value.year == 1 else datetime.max
            return edge.replace(tzinfo=UTC)

    @field_validator("data")
    @classmethod
    def _data_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            return value
        return check_json_size(value, MAX_EVENT_DATA_BYTES, "event data")


class EventBatch(BaseModel):
    events: list[RunEvent] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class EventBatchResult(BaseModel):
    accepted: int = Field(description="Events stored by this call.")
    duplicates: int = Field(description="Events already stored by an earlier delivery.")
    run_status: RunStatus


class WorkerHeartbeatResult(BaseModel):
    run_status: RunStatus
    cancel_requested: bool = Field(
        description="True when the worker must stop: the run is being canceled, or it was "
        "already recorded CANCELED or FAILURE without it (e.g. its agent's host was lost and "
        "its max runtime passed, or it was silent past the heartbeat timeout)."
    )
