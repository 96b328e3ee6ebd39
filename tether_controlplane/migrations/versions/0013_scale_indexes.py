"""scale indexes: the run list by job, by code location and by tag read newest first from an
index; runs by status first (the monitor's passes over every deployment); finished agent
requests by age

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 17:15:00

On a store of a million runs each new index takes seconds to build, and the tables it is
built on take no writes meanwhile: upgrade with the control plane stopped (as for every
migration).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_deployment_job", "runs", ["deployment_id", "job", "pk"])
    op.create_index("ix_runs_deployment_location", "runs", ["deployment_id", "code_location", "pk"])
    # Replaces (deployment_id, status, pk): the same reads of a deployment's runs of a status,
    # and the monitor's of a status in every deployment.
    op.create_index("ix_runs_status", "runs", ["status", "deployment_id", "pk"])
    op.drop_index("ix_runs_deployment_status", table_name="runs")
    # Replaced by one that ends in run_pk (a tag's runs newest first, from the index alone).
    op.create_index("ix_run_tags_key_value_run", "run_tags", ["key", "value", "run_pk"])
    op.drop_index("ix_run_tags_key_value", table_name="run_tags")
    op.create_index("ix_agent_requests_finished_at", "agent_requests", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_agent_requests_finished_at", table_name="agent_requests")
    op.create_index("ix_run_tags_key_value", "run_tags", ["key", "value"])
    op.drop_index("ix_run_tags_key_value_run", table_name="run_tags")
    op.create_index("ix_runs_deployment_status", "runs", ["deployment_id", "status", "pk"])
    op.drop_index("ix_runs_status", table_name="runs")
    op.drop_index("ix_runs_deployment_location", table_name="runs")
    op.drop_index("ix_runs_deployment_job", table_name="runs")
