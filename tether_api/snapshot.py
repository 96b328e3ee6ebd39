"""The definitions snapshot a code server reports: what the user's code declares."""

from typing import Any

from pydantic import BaseModel, Field, StrictInt

from tether_api.enums import MissedTicks, RetryOn, ScheduleStatus


class StepSnapshot(BaseModel):
    name: str = Field(description="Step name, unique within its job.")
    deps: list[str] = Field(default_factory=list, description="Steps whose outputs it takes.")
    description: str | None = None
    asset_key: str | None = Field(default=None, description="Set when the step is an asset.")


class JobSnapshot(BaseModel):
    name: str
    description: str | None = None
    steps: list[StepSnapshot] = Field(description="Steps in the order they execute.")
    config_schema: dict[str, Any] | None = Field(
        default=None, description="JSON schema of the run config, from the job's pydantic model."
    )
    tags: dict[str, str] = Field(default_factory=dict)
    max_retries: StrictInt = Field(
        default=0, ge=0, le=100, description="New attempts after a failure (0: none)."
    )
    retry_on: RetryOn = Field(default=RetryOn.ANY, description="Which failures are retried.")


class AssetSnapshot(BaseModel):
    key: str
    deps: list[str] = Field(default_factory=list)
    description: str | None = None
    group: str = "default"


class ScheduleSnapshot(BaseModel):
    name: str
    cron: str
    job: str
    timezone: str = "UTC"
    run_config: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    default_status: ScheduleStatus = Field(
        default=ScheduleStatus.STOPPED,
        description="Whether it runs before anyone turns it on or off.",
    )
    missed_ticks: MissedTicks = Field(
        default=MissedTicks.LATEST,
        description="What happens to ticks that passed while the scheduler was down.",
    )


class DefinitionsSnapshot(BaseModel):
    jobs: list[JobSnapshot] = Field(default_factory=list)
    assets: list[AssetSnapshot] = Field(default_factory=list)
    schedules: list[ScheduleSnapshot] = Field(default_factory=list)

    def job(self, name: str) -> JobSnapshot | None:
        return next((j for j in self.jobs if j.name == name), None)
