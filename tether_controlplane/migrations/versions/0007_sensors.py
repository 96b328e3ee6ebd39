"""sensors, their ticks and run keys; schedules whose run config the code server evaluates

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(
            sa.Column("config_from_code", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("timeout_seconds", sa.Double(), nullable=False, server_default="60")
        )
    with op.batch_alter_table("schedule_ticks") as batch:
        batch.add_column(sa.Column("traceback", sa.Text(), nullable=True))
        batch.add_column(sa.Column("workflow_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("deadline", sa.DateTime(), nullable=True))
    op.create_table(
        "sensors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("code_location", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("job", sa.String(length=63), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("minimum_interval_seconds", sa.Double(), nullable=False),
        sa.Column("timeout_seconds", sa.Double(), nullable=False),
        sa.Column("monitored_jobs", sa.JSON(), nullable=True),
        sa.Column("monitored_status", sa.String(length=20), nullable=True),
        sa.Column("default_status", sa.String(length=20), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("last_tick_at", sa.DateTime(), nullable=True),
        sa.Column("last_success_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id", "code_location", "name"),
    )
    op.create_table(
        "sensor_ticks",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("sensor_id", sa.Integer(), nullable=False),
        sa.Column("tick_time", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("deadline", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("next_cursor", sa.Text(), nullable=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("run_ids", sa.JSON(), nullable=False),
        sa.Column("run_keys_skipped", sa.JSON(), nullable=False),
        sa.Column("skip_reason", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("workflow_id", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["sensor_id"], ["sensors.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sensor_ticks_sensor_id", "sensor_ticks", ["sensor_id", "id"])
    op.create_table(
        "sensor_run_keys",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("sensor_id", sa.Integer(), nullable=False),
        sa.Column("run_key", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["sensor_id"], ["sensors.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sensor_id", "run_key", name="uq_sensor_run_keys"),
    )


def downgrade() -> None:
    op.drop_table("sensor_run_keys")
    op.drop_index("ix_sensor_ticks_sensor_id", table_name="sensor_ticks")
    op.drop_table("sensor_ticks")
    op.drop_table("sensors")
    with op.batch_alter_table("schedule_ticks") as batch:
        batch.drop_column("deadline")
        batch.drop_column("workflow_id")
        batch.drop_column("traceback")
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("timeout_seconds")
        batch.drop_column("config_from_code")
