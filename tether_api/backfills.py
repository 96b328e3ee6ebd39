"""Backfills as the API shows them: a set of partitions of a job launched as runs, one per
partition, under the deployment's concurrency limit (and at a pace, when given)."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import BaseModel, Field, field_validator

from tether_api.names import Name
from tether_api.partitions import MAX_PARTITION_KEY_CHARS
from tether_api.wire import (
    JSON_NUMBER,
    MAX_RUN_CONFIG_BYTES,
    MAX_TAGS,
    JsonBool,
    Text,
    check_json_size,
)

# The most partitions one backfill launches (its rows are inserted at once).
MAX_BACKFILL_PARTITIONS = 100_000
# The most runs of one backfill in flight at once, and the fastest pace it may be given.
MAX_IN_FLIGHT = 10_000
MAX_RUNS_PER_MINUTE = 10_000.0
MIN_RUNS_PER_MINUTE = 0.01

PartitionKey = Annotated[Text, Field(min_length=1, max_length=MAX_PARTITION_KEY_CHARS)]
AssetKey = Annotated[Text, Field(min_length=1, max_length=400)]


class BackfillStatus(StrEnum):
    """Where a backfill is: REQUESTED until the control plane's first pass over it, RUNNING
    while it has partitions to launch or runs going, then COMPLETED (every partition's run
    succeeded) or COMPLETED_WITH_FAILURES (some failed or were canceled: resume retries
    them). A cancel makes it CANCELING until its runs in flight have ended, then CANCELED."""

    REQUESTED = "REQUESTED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    COMPLETED_WITH_FAILURES = "COMPLETED_WITH_FAILURES"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"


# The statuses the control plane's backfill loop still works on.
ACTIVE_BACKFILL_STATUSES = frozenset(
    {BackfillStatus.REQUESTED, BackfillStatus.RUNNING, BackfillStatus.CANCELING}
)


class BackfillPartitionStatus(StrEnum):
    """One partition of a backfill: PENDING until its run is created (LAUNCHED), then its
    run's outcome (a run the job's retry policy retries is followed to its last attempt)."""

    PENDING = "PENDING"
    LAUNCHED = "LAUNCHED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCELED = "CANCELED"


class PartitionFilter(StrEnum):
    """Which partitions of the chosen set a backfill keeps, by what was made of them before:
    ``missing``, never made (nor failed); ``failed``, whose latest attempt failed. For an
    asset job, from the asset catalog (a partition is failed when one of the job's assets
    failed for it, missing when one has neither); for a job without assets, from the latest
    run of the job that targeted the partition (a CANCELED one counts as missing)."""

    MISSING = "missing"
    FAILED = "failed"


class BackfillCreate(BaseModel):
    """What to backfill: a job (``code_location`` and ``job``) or assets (``assets``: the
    smallest job of their code location that holds them all runs them), and which of its
    partitions: ``partitions`` (these keys), ``partition_range`` (first..last, both
    included), ``all_partitions``, or only ``only`` (missing or failed among all of them;
    with one of the others, among those)."""

    code_location: Name | None = Field(
        default=None, description="The job's code location (with `job`); optional with assets."
    )
    job: Name | None = Field(default=None, description="The partitioned job to run.")
    assets: list[AssetKey] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="Instead of a job: the assets to materialize. Runs of a job that holds "
        "other assets too select these only (tag tether/asset_selection).",
    )
    partitions: list[PartitionKey] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_BACKFILL_PARTITIONS,
        description="These partition keys (a key given twice is launched once), in this order.",
    )
    partition_range: tuple[PartitionKey, PartitionKey] | None = Field(
        default=None, description="[first, last]: every key from first to last, in order."
    )
    all_partitions: JsonBool = Field(default=False, description="Every partition the job has now.")
    only: PartitionFilter | None = Field(
        default=None,
        description="Keep only the missing or the failed partitions (of all of them, or of "
        "those named by partitions/partition_range).",
    )
    run_config: dict[str, Any] = Field(
        default_factory=dict,
        description=f"The run config of every run (at most {MAX_RUN_CONFIG_BYTES} bytes).",
    )
    tags: dict[
        Annotated[Text, Field(min_length=1, max_length=200)],
        Annotated[Text, Field(max_length=1000)],
    ] = Field(
        default_factory=dict,
        max_length=MAX_TAGS,
        description="Tags of every run, besides tether/backfill and the partition's tag, "
        "which the backfill sets.",
    )
    max_in_flight: Annotated[int, Ge(1), Le(MAX_IN_FLIGHT), JSON_NUMBER] | None = Field(
        default=None,
        description="The most of its runs not yet ended at once; default: the deployment's "
        "run concurrency limit. Its runs queue under that limit like any other run.",
    )
    runs_per_minute: (
        Annotated[float, Ge(MIN_RUNS_PER_MINUTE), Le(MAX_RUNS_PER_MINUTE), JSON_NUMBER] | None
    ) = Field(
        default=None,
        description="The most runs it launches a minute (at least one per 100 minutes); "
        "default: no pace.",
    )

    @field_validator("run_config")
    @classmethod
    def _config_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_json_size(value, MAX_RUN_CONFIG_BYTES, "run_config")


class BackfillCounts(BaseModel):
    """How many of its partitions are in each status."""

    pending: int = Field(description="Not launched yet.")
    launched: int = Field(description="Whose run has not ended yet.")
    success: int
    failure: int
    canceled: int


class Backfill(BaseModel):
    id: str = Field(description="Its public ID: every run it launches has tag tether/backfill=ID.")
    deployment: str
    code_location: str
    job: str
    assets: list[str] | None = Field(
        default=None, description="The assets it was asked for (null: the whole job)."
    )
    selection: str = Field(
        description="How its partitions were chosen, as a person would say it, e.g. "
        "'range 2026-01-01..2026-01-31, missing only'."
    )
    status: BackfillStatus
    message: str | None = Field(
        default=None,
        description="Why it is not launching now, when it waits (its code location in ERROR or "
        "removed); null otherwise.",
    )
    partition_count: int = Field(description="How many partitions it launches.")
    first_partition: str = Field(description="The key of its first partition.")
    last_partition: str = Field(description="The key of its last partition.")
    counts: BackfillCounts
    run_config: dict[str, Any]
    tags: dict[str, str]
    max_in_flight: int = Field(description="The most of its runs not yet ended at once.")
    runs_per_minute: float | None = Field(
        default=None, description="The most runs it launches a minute; null: no pace."
    )
    created_by: str = Field(description="The name of the token that launched it.")
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None = Field(
        default=None, description="When it was COMPLETED, COMPLETED_WITH_FAILURES or CANCELED."
    )


class BackfillPage(BaseModel):
    backfills: list[Backfill] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next (older) page; null at the end."
    )


class BackfillPartition(BaseModel):
    position: int = Field(description="Its place in the backfill, from 0: pages go by it.")
    key: str = Field(description="The partition key.")
    status: BackfillPartitionStatus
    attempt: int = Field(description="1, plus one for each resume that relaunched it.")
    run_id: str | None = Field(
        default=None,
        description="The run of its current attempt (the last retry, when the job's retry "
        "policy retried it); null while PENDING.",
    )
    error: str | None = Field(
        default=None, description="Why its run could not be created (then FAILURE)."
    )
    updated_at: datetime


class BackfillPartitionPage(BaseModel):
    partitions: list[BackfillPartition] = Field(description="In position order.")
    next_cursor: str | None = Field(
        default=None,
        description="Pass as ?after= for the next page (the last position shown); null at the end.",
    )


class BackfillCancel(BaseModel):
    terminate: JsonBool = Field(
        default=False,
        description="Terminate its runs in flight too; else they run to their end (the "
        "backfill is CANCELING until then).",
    )
