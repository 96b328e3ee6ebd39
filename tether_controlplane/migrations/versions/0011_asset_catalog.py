"""asset catalog: every asset event of every run, and the latest state of each asset and
each (asset, partition)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "asset_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("asset_key", sa.String(length=400), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("partition", sa.String(length=400), nullable=True),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("job", sa.String(length=63), nullable=False),
        sa.Column("code_location", sa.String(length=63), nullable=False),
        sa.Column("step", sa.String(length=200), nullable=True),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("check_name", sa.String(length=200), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("severity", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_asset_events_asset", "asset_events", ["deployment_id", "asset_key", "id"])
    op.create_index(
        "ix_asset_events_asset_type", "asset_events", ["deployment_id", "asset_key", "type", "id"]
    )
    op.create_table(
        "asset_summaries",
        sa.Column("id", BigId, nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("asset_key", sa.String(length=400), nullable=False),
        sa.Column("code_location", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("last_materialization_id", BigId, nullable=True),
        sa.Column("last_materialized_at", sa.DateTime(), nullable=True),
        sa.Column("last_materialization_run_id", sa.String(length=36), nullable=True),
        sa.Column("last_materialization_partition", sa.String(length=400), nullable=True),
        sa.Column("last_observed_at", sa.DateTime(), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(), nullable=True),
        sa.Column("last_failure_run_id", sa.String(length=36), nullable=True),
        sa.Column("last_failure_partition", sa.String(length=400), nullable=True),
        sa.Column("materializations", sa.Integer(), nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.Column("check_evaluations", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("partitions_materialized", sa.Integer(), nullable=False),
        sa.Column("partitions_failed", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id", "asset_key", name="uq_asset_summaries_asset"),
    )
    op.create_table(
        "asset_partitions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("asset_key", sa.String(length=400), nullable=False),
        sa.Column("partition", sa.String(length=400), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("event_id", BigId, nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "deployment_id", "asset_key", "partition", name="uq_asset_partitions_partition"
        ),
    )


def downgrade() -> None:
    op.drop_table("asset_partitions")
    op.drop_table("asset_summaries")
    op.drop_index("ix_asset_events_asset_type", table_name="asset_events")
    op.drop_index("ix_asset_events_asset", table_name="asset_events")
    op.drop_table("asset_events")
