"""web UI: tokens that expire and tokens made from another token (sessions, sign-in links),
when a code location was last deployed, and an index for a run's step events

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing tokens never expire and have no parent, as before.
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_tokens_parent_id", "tokens", ["parent_id"], ["id"])
    with op.batch_alter_table("code_locations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deployed_at", sa.DateTime(), nullable=True))
    # The best known answer for locations deployed before: their last change.
    op.execute("UPDATE code_locations SET deployed_at = updated_at")
    op.create_index("ix_run_events_run_type", "run_events", ["run_pk", "type"])


def downgrade() -> None:
    op.drop_index("ix_run_events_run_type", table_name="run_events")
    with op.batch_alter_table("code_locations", schema=None) as batch_op:
        batch_op.drop_column("deployed_at")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_constraint("fk_tokens_parent_id", type_="foreignkey")
        batch_op.drop_column("parent_id")
        batch_op.drop_column("expires_at")
