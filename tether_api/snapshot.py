"""The definitions snapshot a code server reports: what the user's code declares."""

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, StrictBool

from tether_api.enums import (
    AutomationStatus,
    CodeLocationKind,
    MissedTicks,
    RetryOn,
    RunStatus,
    SensorKind,
)


def _json_integer(value: Any) -> Any:
    # What the published schema's "integer" allows: an int or an integral float (5.0, which
    # JSON Schema counts as an integer), never a boolean or a string (as models.JsonInt).
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("Input should be a valid integer")
    return value


JsonInteger = Annotated[int, BeforeValidator(_json_integer)]


class StepSnapshot(BaseModel):
    name: str = Field(description="Step name, unique within its job.")
    deps: list[str] = Field(default_factory=list, description="Steps whose outputs it takes.")
    description: str | None = None
    asset_key: str | None = Field(default=None, description="Set when the step is an asset.")
    # Dagster jobs: what their graphs hold beyond a chain of steps.
    mapped: StrictBool = Field(
        default=False,
        description="Downstream of a dynamic output: it runs once per output, as name[key] "
        "(those steps exist only in the run).",
    )
    asset_keys: list[str] = Field(
        default_factory=list, description="Every asset it materializes (a multi-asset: more)."
    )
    asset_check: str | None = Field(
        default=None, description="The asset check it evaluates, as 'asset key:check name'."
    )


class PartitionKeys(BaseModel):
    """A set of partition keys: what a partitions definition, or a multi one's dimension, has."""

    kind: str = Field(description="'static', 'time_window', 'multi' or 'dynamic'.")
    keys: list[str] = Field(
        default_factory=list,
        description="Static: every key; time windows: the first ones (see count).",
    )
    count: JsonInteger | None = Field(default=None, description="How many keys there are now.")
    cron: str | None = Field(default=None, description="Time windows: when one starts.")
    timezone: str | None = None
    start: str | None = Field(default=None, description="Time windows: the first window's key.")
    fmt: str | None = Field(
        default=None,
        max_length=100,
        description="Time windows: the strftime format of a window's key (its start).",
    )
    end_offset: JsonInteger = Field(
        default=0,
        description="Time windows: how many windows past the last ended one exist (1: the "
        "current one too; -1: the last ended one not yet).",
    )


class PartitionDimension(PartitionKeys):
    name: str


class PartitionsSnapshot(PartitionKeys):
    """How an asset or a job is partitioned. Its keys are computed by
    ``tether_api.partitions``."""

    location_kind: CodeLocationKind = Field(
        default=CodeLocationKind.DAGSTER,
        description="What declared it, so how a run names its partition: a Tether SDK job's "
        "run must name a key (tag tether/partition) or a range (tether/partition_range_start "
        "and _end); a Dagster job's run names a key (dagster/partition), or none.",
    )

    dimensions: list[PartitionDimension] = Field(
        default_factory=list, description="Multi: each dimension; a key joins one of each by '|'."
    )


class JobSnapshot(BaseModel):
    name: str
    description: str | None = None
    steps: list[StepSnapshot] = Field(description="Steps in the order they execute.")
    config_schema: dict[str, Any] | None = Field(
        default=None, description="JSON schema of the run config, from the job's pydantic model."
    )
    tags: dict[str, str] = Field(default_factory=dict)
    max_retries: JsonInteger = Field(
        default=0, ge=0, le=100, description="New attempts after a failure (0: none)."
    )
    retry_on: RetryOn = Field(default=RetryOn.ANY, description="Which failures are retried.")
    partitions: PartitionsSnapshot | None = Field(
        default=None,
        description="The job's partitions: a run names one key (Tether SDK jobs: or a range).",
    )


class AssetCheckSnapshot(BaseModel):
    name: str
    description: str | None = None
    blocking: StrictBool = Field(
        default=False, description="A failing check keeps what depends on its asset from running."
    )


class AssetSnapshot(BaseModel):
    key: str
    deps: list[str] = Field(default_factory=list)
    description: str | None = None
    group: str = "default"
    kinds: list[str] = Field(default_factory=list)
    owners: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    partitions: PartitionsSnapshot | None = None
    checks: list[AssetCheckSnapshot] = Field(default_factory=list)
    external: StrictBool = Field(
        default=False, description="Declared only (an AssetSpec): never materialized here."
    )


class ResourceSnapshot(BaseModel):
    name: str
    description: str | None = None


class ScheduleSnapshot(BaseModel):
    name: str = Field(max_length=63)
    cron: str = Field(max_length=200)
    job: str = Field(max_length=63)
    timezone: str = Field(default="UTC", max_length=100)
    run_config: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    default_status: AutomationStatus = Field(
        default=AutomationStatus.STOPPED,
        description="Whether it runs before anyone turns it on or off.",
    )
    missed_ticks: MissedTicks = Field(
        default=MissedTicks.LATEST,
        description="What happens to ticks that passed while the scheduler was down.",
    )
    config_from_code: StrictBool = Field(
        default=False,
        description="True when the run config is a function of the tick time: the code server "
        "evaluates it at each tick (run_config above is then empty).",
    )
    timeout_seconds: float = Field(
        default=60.0, gt=0, description="How long the code server may take to evaluate a tick."
    )


class SensorSnapshot(BaseModel):
    name: str = Field(max_length=63)
    kind: SensorKind = SensorKind.STANDARD
    job: str | None = Field(
        default=None,
        max_length=63,
        description="The job its run requests launch when they name none (run-status sensors "
        "may have none and only act, e.g. notify).",
    )
    minimum_interval_seconds: float = Field(
        default=30.0, ge=1, description="The least time between two evaluations."
    )
    timeout_seconds: float = Field(
        default=60.0, gt=0, description="How long one evaluation may take in the code server."
    )
    default_status: AutomationStatus = AutomationStatus.STOPPED
    description: str | None = None
    monitored_jobs: list[str] | None = Field(
        default=None,
        description="Run-status sensors: the jobs whose runs it watches (None: every job of "
        "the deployment).",
    )
    monitored_status: RunStatus | None = Field(
        default=None, description="Run-status sensors: SUCCESS or FAILURE."
    )


class DefinitionsSnapshot(BaseModel):
    kind: CodeLocationKind = Field(
        default=CodeLocationKind.TETHER, description="What the code is written with."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="What the code declares that Tether cannot honour, or honours "
        "differently, each said once: found at load, not in the middle of a run.",
    )
    resources: list[ResourceSnapshot] = Field(default_factory=list)
    jobs: list[JobSnapshot] = Field(default_factory=list)
    assets: list[AssetSnapshot] = Field(default_factory=list)
    schedules: list[ScheduleSnapshot] = Field(default_factory=list)
    sensors: list[SensorSnapshot] = Field(default_factory=list)

    def job(self, name: str) -> JobSnapshot | None:
        return next((j for j in self.jobs if j.name == name), None)
