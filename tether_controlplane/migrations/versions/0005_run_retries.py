"""run retries: a retried run's parent, its chain's first run, and its attempt number

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 04:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_run_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("root_run_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
        batch_op.create_unique_constraint("uq_runs_parent_run_id", ["parent_run_id"])
        batch_op.create_index("ix_runs_root_run_id", ["root_run_id"])


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_root_run_id")
        batch_op.drop_constraint("uq_runs_parent_run_id", type_="unique")
        batch_op.drop_column("attempt")
        batch_op.drop_column("root_run_id")
        batch_op.drop_column("parent_run_id")
