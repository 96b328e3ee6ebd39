"""runs started through the Nexus service: a create's idempotency key (unique per
deployment) and the Temporal workflow that called (searchable by its workflow ID)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("caller_namespace", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("caller_workflow_id", sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column("caller_run_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("caller_workflow_type", sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column("caller_endpoint", sa.String(length=255), nullable=True))
        batch.create_unique_constraint(
            "uq_runs_deployment_idempotency_key", ["deployment_id", "idempotency_key"]
        )
        batch.create_index(
            "ix_runs_deployment_caller", ["deployment_id", "caller_workflow_id", "pk"]
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_deployment_caller")
        batch.drop_constraint("uq_runs_deployment_idempotency_key", type_="unique")
        batch.drop_column("caller_endpoint")
        batch.drop_column("caller_workflow_type")
        batch.drop_column("caller_run_id")
        batch.drop_column("caller_workflow_id")
        batch.drop_column("caller_namespace")
        batch.drop_column("idempotency_key")
