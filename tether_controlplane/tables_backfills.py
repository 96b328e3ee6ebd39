"""Tables of backfills: one row per backfill, one per partition it launches (see
services/backfills.py)."""

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tether_api.backfills import BackfillPartitionStatus, BackfillStatus
from tether_api.partitions import MAX_PARTITION_KEY_CHARS
from tether_controlplane.tables import Base, BigId, EnumString, utcnow


class BackfillRow(Base):
    """A backfill, with its partitions' counts by status kept here (updated in the
    transactions that change its partitions, under this row's lock), so that its page and
    the list never count partition rows."""

    __tablename__ = "backfills"
    __table_args__ = (
        # The deployment's backfills, newest first (the list pages by id).
        Index("ix_backfills_deployment_id", "deployment_id", "id"),
        # What the control plane's loop works on: the active ones.
        Index("ix_backfills_status", "status"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    code_location: Mapped[str] = mapped_column(String(63))
    job: Mapped[str] = mapped_column(String(63))
    # The assets it was asked for (null: the whole job).
    assets: Mapped[list[Any] | None] = mapped_column()
    # How its partitions were chosen, as said back to people.
    selection: Mapped[str] = mapped_column(Text)
    run_config: Mapped[dict[str, Any]] = mapped_column()
    tags: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[BackfillStatus] = mapped_column(EnumString(BackfillStatus, 30))
    # Why it does not launch now (its location in ERROR or removed); null otherwise.
    message: Mapped[str | None] = mapped_column(Text)
    max_in_flight: Mapped[int] = mapped_column(Integer)
    runs_per_minute: Mapped[float | None] = mapped_column(Float)
    # With a pace: when the next run may be launched.
    next_launch_at: Mapped[datetime | None] = mapped_column()
    partition_count: Mapped[int] = mapped_column(Integer)
    first_partition: Mapped[str] = mapped_column(String(MAX_PARTITION_KEY_CHARS))
    last_partition: Mapped[str] = mapped_column(String(MAX_PARTITION_KEY_CHARS))
    pending: Mapped[int] = mapped_column(Integer)
    launched: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    canceled: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()


class BackfillPartitionRow(Base):
    """One partition of a backfill, at its place (``position``) in it: its status and the
    run of its current attempt. The run is created in the transaction that marks it
    LAUNCHED, with an idempotency key of (backfill, position, attempt)."""

    __tablename__ = "backfill_partitions"
    __table_args__ = (
        # The next PENDING ones, the LAUNCHED ones, a page of one status: by position.
        Index("ix_backfill_partitions_status", "backfill_id", "status", "position"),
    )
    backfill_id: Mapped[int] = mapped_column(BigId, ForeignKey("backfills.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    partition_key: Mapped[str] = mapped_column(String(MAX_PARTITION_KEY_CHARS))
    status: Mapped[BackfillPartitionStatus] = mapped_column(EnumString(BackfillPartitionStatus, 20))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    run_id: Mapped[str | None] = mapped_column(String(36))
    # Why its run could not be created (it is FAILURE then).
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
