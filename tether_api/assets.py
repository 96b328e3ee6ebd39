"""The asset catalog's API bodies: a deployment's assets, an asset's materialization
history, its partitions' statuses, and launching a materialization."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

from tether_api.enums import EventType
from tether_api.snapshot import PartitionsSnapshot
from tether_api.wire import MAX_RUN_CONFIG_BYTES, MAX_TAGS, Text, check_json_size

# Dagster asset keys join their path with "/"; a partition key is at most 400 characters.
MAX_ASSET_KEY = 400
MAX_PARTITION_KEY = 400
# The most assets one materialization launches.
MAX_SELECTED_ASSETS = 1000
# How many materializations an asset's page charts its numeric metadata over.
METADATA_SERIES_LENGTH = 50


class AssetPartitionStatus(StrEnum):
    """What the catalog knows of one partition of an asset."""

    MATERIALIZED = "MATERIALIZED"  # its latest event is a materialization
    FAILED = "FAILED"  # the latest run that was to materialize it failed at the asset's step
    MISSING = "MISSING"  # neither (never stored: a key of the definition with no row)


class AssetStatus(StrEnum):
    """An asset's state in the list: its latest outcome."""

    MATERIALIZED = "MATERIALIZED"
    FAILED = "FAILED"  # its latest outcome, or one of its partitions', is a failure
    NEVER = "NEVER"  # never materialized (nor failed) here


# The run event types the catalog keeps as an asset's history.
ASSET_EVENT_TYPES = (
    EventType.ASSET_MATERIALIZATION,
    EventType.ASSET_OBSERVATION,
    EventType.ASSET_CHECK_EVALUATION,
)


class AssetOutcome(BaseModel):
    """A materialization, or a failure to materialize: when, by which run, which partition."""

    at: datetime
    run_id: str
    partition: str | None = Field(default=None, description="Null for an unpartitioned asset.")


class AssetSummary(BaseModel):
    """An asset in a deployment's list."""

    key: str = Field(description="The asset key ('raw/orders' for a Dagster key path).")
    declared: bool = Field(
        description="False for an asset with events that no code location declares any more."
    )
    code_location: str | None = Field(
        default=None,
        description="The location that declares it (or, undeclared, its last events').",
    )
    group: str | None = None
    description: str | None = None
    kinds: list[str] = Field(default_factory=list)
    partitioned: bool = False
    jobs: list[str] = Field(
        default_factory=list, description="The jobs of its location that materialize it."
    )
    status: AssetStatus = Field(
        description="MATERIALIZED or FAILED as its latest outcome (FAILED too while one of "
        "its partitions is); NEVER: not materialized here yet."
    )
    last_materialization: AssetOutcome | None = None
    last_failure: AssetOutcome | None = None


class AssetList(BaseModel):
    assets: list[AssetSummary] = Field(description="By key.")
    next_cursor: str | None = Field(
        default=None, description="Pass as ?after= for the next page (the last key of this one)."
    )


class LineageNode(BaseModel):
    key: str
    code_location: str | None = None
    group: str | None = None
    declared: bool = True


class LineageEdge(BaseModel):
    upstream: str
    downstream: str


class AssetLineage(BaseModel):
    """Every asset upstream and downstream of one (transitively), across the deployment's
    code locations, and the dependencies between them."""

    nodes: list[LineageNode]
    edges: list[LineageEdge]


class AssetCheckResult(BaseModel):
    """A check an asset declares, with its latest evaluation (none yet: nulls)."""

    name: str
    description: str | None = None
    blocking: bool = False
    passed: bool | None = None
    severity: str | None = None
    at: datetime | None = None
    run_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class PartitionCounts(BaseModel):
    total: int = Field(description="How many keys the definition has now.")
    materialized: int
    failed: int
    missing: int


class MetadataPoint(BaseModel):
    at: datetime
    value: float
    run_id: str
    partition: str | None = None


class AssetDetail(AssetSummary):
    """One asset: its definition, its state, its lineage, checks and metadata over time."""

    owners: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="The definition's metadata (not a run's)."
    )
    deps: list[str] = Field(default_factory=list, description="The assets it depends on.")
    downstream: list[str] = Field(default_factory=list, description="The assets depending on it.")
    partitions: PartitionsSnapshot | None = Field(
        default=None, description="Its partitions definition; null: unpartitioned."
    )
    lineage: AssetLineage
    checks: list[AssetCheckResult] = Field(default_factory=list)
    materializations: int = Field(default=0, description="How many were recorded.")
    observations: int = 0
    failures: int = 0
    last_observed_at: datetime | None = None
    partition_counts: PartitionCounts | None = Field(
        default=None, description="Partitioned assets: how many keys are in each status."
    )
    metadata_series: dict[str, list[MetadataPoint]] = Field(
        default_factory=dict,
        description=f"Each numeric metadata entry over its last {METADATA_SERIES_LENGTH} "
        "materializations, oldest first (for a chart).",
    )


class AssetEvent(BaseModel):
    id: int = Field(description="Orders the history; pass the last one as ?before= for older.")
    type: EventType
    asset_key: str
    partition: str | None = None
    run_id: str
    job: str
    code_location: str
    step: str | None = None
    timestamp: datetime
    metadata: dict[str, Any] = Field(default_factory=dict)
    check: str | None = Field(default=None, description="Check evaluations: the check's name.")
    passed: bool | None = None
    severity: str | None = None


class AssetEventPage(BaseModel):
    events: list[AssetEvent] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        default=None, description="Pass as ?before= for the next (older) page."
    )


class AssetPartition(BaseModel):
    key: str
    status: AssetPartitionStatus
    run_id: str | None = Field(default=None, description="The run of its latest outcome.")
    at: datetime | None = None


class AssetPartitionPage(BaseModel):
    partitions: list[AssetPartition] = Field(description="In the definition's order.")
    counts: PartitionCounts
    next_cursor: str | None = Field(
        default=None, description="Pass as ?after= for the next page (the last key of this one)."
    )


class AssetMaterializationCreate(BaseModel):
    """Launch a run that materializes some assets (of one code location)."""

    assets: list[Annotated[Text, Field(min_length=1, max_length=MAX_ASSET_KEY)]] = Field(
        min_length=1, max_length=MAX_SELECTED_ASSETS, description="The asset keys to materialize."
    )
    partition: Text | None = Field(
        default=None, min_length=1, max_length=MAX_PARTITION_KEY, description="One partition key."
    )
    partition_range: (
        tuple[
            Annotated[Text, Field(min_length=1, max_length=MAX_PARTITION_KEY)],
            Annotated[Text, Field(min_length=1, max_length=MAX_PARTITION_KEY)],
        ]
        | None
    ) = Field(
        default=None,
        description="[first, last]: every key between them, in one run (Tether SDK jobs).",
    )
    tags: dict[
        Annotated[Text, Field(min_length=1, max_length=200)],
        Annotated[Text, Field(max_length=1000)],
    ] = Field(default_factory=dict, max_length=MAX_TAGS)
    run_config: dict[str, Any] = Field(
        default_factory=dict, description=f"At most {MAX_RUN_CONFIG_BYTES} bytes as JSON."
    )

    @field_validator("run_config")
    @classmethod
    def _config_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_json_size(value, MAX_RUN_CONFIG_BYTES, "run_config")
