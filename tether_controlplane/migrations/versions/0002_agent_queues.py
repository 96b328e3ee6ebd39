"""agent queues: requests routed to a queue, agents serving queues, runs knowing their agent

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing requests and agents belong to the default queue, as they always did.
    with op.batch_alter_table("agent_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("queue", sa.String(length=63), nullable=False, server_default="default")
        )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "queues", sa.JSON(), nullable=False, server_default=sa.text("'[\"default\"]'")
            )
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_name", sa.String(length=63), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("agent_name")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("queues")
    with op.batch_alter_table("agent_requests", schema=None) as batch_op:
        batch_op.drop_column("queue")
