"""log settings of deployments; the settings a run was launched with, and its stored log URL

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("log_settings", sa.JSON(), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("log_settings", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("log_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("log_url")
        batch.drop_column("log_settings")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("log_settings")
