"""Sensors as the API shows them, with their ticks (evaluations)."""

from datetime import datetime

from pydantic import BaseModel, Field

from tether_api.enums import AutomationStatus, RunStatus, SensorKind, TickStatus


class SensorTick(BaseModel):
    id: int
    status: TickStatus
    tick_time: datetime = Field(description="When it was due.")
    finished_at: datetime | None = None
    run_ids: list[str] = Field(default_factory=list, description="Runs it created.")
    run_keys_skipped: list[str] = Field(
        default_factory=list, description="Run keys that had made a run already."
    )
    skip_reason: str | None = None
    error: str | None = None
    traceback: str | None = None
    cursor: str | None = Field(default=None, description="The cursor after it.")
    workflow_id: str | None = Field(
        default=None, description="The agent's TickWorkflow that evaluated it (Temporal)."
    )


class Sensor(BaseModel):
    code_location: str
    name: str
    kind: SensorKind
    job: str | None
    description: str | None = None
    minimum_interval_seconds: float
    timeout_seconds: float
    monitored_jobs: list[str] | None = None
    monitored_status: RunStatus | None = None
    status: AutomationStatus = Field(description="Whether it is evaluated now.")
    default_status: AutomationStatus = Field(description="The status its code declares.")
    status_set_by_user: bool = Field(
        description="True once turned on or off here; that choice outlasts redeploys."
    )
    present: bool = Field(
        description="False once its code location no longer declares it; it is then never "
        "evaluated."
    )
    cursor: str | None = None
    next_tick_at: datetime | None = Field(
        default=None, description="The next evaluation, while RUNNING."
    )
    last_tick: SensorTick | None = None
