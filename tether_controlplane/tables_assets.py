"""Tables of the asset catalog: every materialization, observation and check result, and
the latest state of each asset and partition (see services/assets.py).

The history (``asset_events``) is append-only and only ever read by index, newest first;
the list, an asset's page and "which partitions are missing" read the two state tables
(``asset_summaries``: one row per asset; ``asset_partitions``: one per asset and partition),
which the ingestion of a batch of run events keeps current in its own transaction."""

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tether_api.assets import AssetPartitionStatus, AssetStatus
from tether_api.enums import EventType
from tether_controlplane.tables import Base, BigId, EnumString, utcnow

# Dagster asset keys join their path by "/"; partition keys are at most 400 characters
# (tether_api.partitions).
ASSET_KEY_LENGTH = 400
PARTITION_KEY_LENGTH = 400


class AssetEventRow(Base):
    """One ASSET_MATERIALIZATION, ASSET_OBSERVATION or ASSET_CHECK_EVALUATION of a run."""

    __tablename__ = "asset_events"
    __table_args__ = (
        # An asset's history, newest first, a page at a time by id.
        Index("ix_asset_events_asset", "deployment_id", "asset_key", "id"),
        # The same of one type: the metadata series of its materializations, its checks.
        Index("ix_asset_events_asset_type", "deployment_id", "asset_key", "type", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    asset_key: Mapped[str] = mapped_column(String(ASSET_KEY_LENGTH))
    type: Mapped[EventType] = mapped_column(EnumString(EventType, 40))
    partition: Mapped[str | None] = mapped_column(String(PARTITION_KEY_LENGTH))
    run_id: Mapped[str] = mapped_column(String(36))
    job: Mapped[str] = mapped_column(String(63))
    code_location: Mapped[str] = mapped_column(String(63))
    step: Mapped[str | None] = mapped_column(String(200))
    timestamp: Mapped[datetime] = mapped_column()
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata")
    # Check evaluations only.
    check_name: Mapped[str | None] = mapped_column(String(200))
    passed: Mapped[bool | None] = mapped_column(Boolean)
    severity: Mapped[str | None] = mapped_column(String(20))


class AssetSummaryRow(Base):
    """The latest state of one asset of a deployment: what its list entry and page show."""

    __tablename__ = "asset_summaries"
    __table_args__ = (
        UniqueConstraint("deployment_id", "asset_key", name="uq_asset_summaries_asset"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    asset_key: Mapped[str] = mapped_column(String(ASSET_KEY_LENGTH))
    # Where its last event came from (an asset no longer declared is listed with it).
    code_location: Mapped[str] = mapped_column(String(63))
    status: Mapped[AssetStatus] = mapped_column(EnumString(AssetStatus, 20))
    last_materialization_id: Mapped[int | None] = mapped_column(BigId)
    last_materialized_at: Mapped[datetime | None] = mapped_column()
    last_materialization_run_id: Mapped[str | None] = mapped_column(String(36))
    last_materialization_partition: Mapped[str | None] = mapped_column(String(PARTITION_KEY_LENGTH))
    last_observed_at: Mapped[datetime | None] = mapped_column()
    last_failure_at: Mapped[datetime | None] = mapped_column()
    last_failure_run_id: Mapped[str | None] = mapped_column(String(36))
    last_failure_partition: Mapped[str | None] = mapped_column(String(PARTITION_KEY_LENGTH))
    materializations: Mapped[int] = mapped_column(Integer, default=0)
    observations: Mapped[int] = mapped_column(Integer, default=0)
    check_evaluations: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # How many of its asset_partitions rows are MATERIALIZED and FAILED.
    partitions_materialized: Mapped[int] = mapped_column(Integer, default=0)
    partitions_failed: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AssetPartitionRow(Base):
    """The latest outcome of one partition of an asset (MATERIALIZED or FAILED; a key with
    no row is MISSING)."""

    __tablename__ = "asset_partitions"
    __table_args__ = (
        UniqueConstraint(
            "deployment_id", "asset_key", "partition", name="uq_asset_partitions_partition"
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    asset_key: Mapped[str] = mapped_column(String(ASSET_KEY_LENGTH))
    partition: Mapped[str] = mapped_column(String(PARTITION_KEY_LENGTH))
    status: Mapped[AssetPartitionStatus] = mapped_column(EnumString(AssetPartitionStatus, 20))
    run_id: Mapped[str] = mapped_column(String(36))
    # The materialization event (null for a failure).
    event_id: Mapped[int | None] = mapped_column(BigId)
    at: Mapped[datetime] = mapped_column()
