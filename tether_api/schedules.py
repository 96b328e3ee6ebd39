"""Schedules as the API shows them, and their ticks."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from tether_api.enums import AutomationStatus, MissedTicks, TickStatus


class ScheduleTick(BaseModel):
    tick_time: datetime = Field(description="The time the cron expression named.")
    status: TickStatus
    run_id: str | None = Field(default=None, description="The run it created (SUCCESS).")
    error: str | None = Field(default=None, description="Why no run was created (FAILURE).")
    created_at: datetime = Field(description="When the scheduler evaluated it.")
    traceback: str | None = Field(
        default=None, description="The config function's traceback, when it raised."
    )
    workflow_id: str | None = Field(
        default=None,
        description="The agent's TickWorkflow that evaluated its config function (Temporal).",
    )


class Schedule(BaseModel):
    code_location: str
    name: str
    cron: str
    timezone: str
    job: str
    run_config: dict[str, Any]
    tags: dict[str, str]
    status: AutomationStatus = Field(description="Whether its ticks create runs now.")
    default_status: AutomationStatus = Field(description="The status its code declares.")
    status_set_by_user: bool = Field(
        description="True once turned on or off here; that choice outlasts redeploys."
    )
    missed_ticks: MissedTicks
    config_from_code: bool = Field(
        default=False,
        description="True when the code server computes the run config at each tick.",
    )
    present: bool = Field(
        description="False once its code location no longer declares it; it then never ticks."
    )
    next_tick_at: datetime | None = Field(default=None, description="The next tick, while RUNNING.")
    last_tick: ScheduleTick | None = None
    error: str | None = Field(
        default=None,
        description="Why the control plane cannot evaluate it (an unknown time zone, a cron "
        "that never fires); it does not tick until its code is fixed.",
    )
