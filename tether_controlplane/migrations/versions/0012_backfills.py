"""backfills: one row per backfill (with its partitions' counts by status) and one per
partition it launches

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "backfills",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("code_location", sa.String(length=63), nullable=False),
        sa.Column("job", sa.String(length=63), nullable=False),
        sa.Column("assets", sa.JSON(), nullable=True),
        sa.Column("selection", sa.Text(), nullable=False),
        sa.Column("run_config", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("max_in_flight", sa.Integer(), nullable=False),
        sa.Column("runs_per_minute", sa.Float(), nullable=True),
        sa.Column("next_launch_at", sa.DateTime(), nullable=True),
        sa.Column("partition_count", sa.Integer(), nullable=False),
        sa.Column("first_partition", sa.String(length=400), nullable=False),
        sa.Column("last_partition", sa.String(length=400), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("launched", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("canceled", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
    )
    op.create_index("ix_backfills_deployment_id", "backfills", ["deployment_id", "id"])
    op.create_index("ix_backfills_status", "backfills", ["status"])
    op.create_table(
        "backfill_partitions",
        sa.Column("backfill_id", BIG_ID, nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("partition_key", sa.String(length=400), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["backfill_id"], ["backfills.id"]),
        sa.PrimaryKeyConstraint("backfill_id", "position"),
    )
    op.create_index(
        "ix_backfill_partitions_status",
        "backfill_partitions",
        ["backfill_id", "status", "position"],
    )


def downgrade() -> None:
    op.drop_index("ix_backfill_partitions_status", table_name="backfill_partitions")
    op.drop_table("backfill_partitions")
    op.drop_index("ix_backfills_status", table_name="backfills")
    op.drop_index("ix_backfills_deployment_id", table_name="backfills")
    op.drop_table("backfills")
