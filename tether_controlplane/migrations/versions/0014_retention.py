"""retention: a deployment's rules (deployments.retention), and the audit log's gate: its
DELETE trigger lets the retention pass (and nothing else) remove entries past the audit rule

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 17:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same words as migration 0008's: people and tests know the refusal by them.
REFUSAL = "audit_log is append-only: its entries cannot be changed or deleted"

# A DELETE passes only while audit_retention_gate has a row, which only the retention pass
# inserts, and only inside its own transaction (it never commits one: see tables_retention).
# UPDATE (and TRUNCATE on PostgreSQL) stay refused for everyone.
SQLITE_GATED_DELETE = f"""CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    WHEN NOT EXISTS (SELECT 1 FROM audit_retention_gate)
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"""
SQLITE_DELETE_0008 = f"""CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"""
POSTGRES_GATED = f"""CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_retention_gate) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION '{REFUSAL} (% refused)', TG_OP;
    END $$"""
POSTGRES_0008 = f"""CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '{REFUSAL} (% refused)', TG_OP; END $$"""


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("retention", sa.JSON(), nullable=True))
    op.create_table(
        "audit_retention_gate",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute(SQLITE_GATED_DELETE)
    else:
        # The 0008 triggers call this function: replacing it changes them in place.
        op.execute(POSTGRES_GATED)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute(SQLITE_DELETE_0008)
    else:
        op.execute(POSTGRES_0008)
    op.drop_table("audit_retention_gate")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("retention")
