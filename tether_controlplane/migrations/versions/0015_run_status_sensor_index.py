"""a run-status sensor's index: a deployment's runs of a status in the order they ended, so
a sensor tick reads the runs that ended after its cursor and no others

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 20:00:00

On a store of a million runs the index takes seconds to build, and runs take no writes
meanwhile: upgrade with the control plane stopped (as for every migration).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_runs_deployment_status_ended", "runs", ["deployment_id", "status", "ended_at", "pk"]
    )


def downgrade() -> None:
    op.drop_index("ix_runs_deployment_status_ended", table_name="runs")
