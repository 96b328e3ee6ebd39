"""Alembic environment: run with the connection handed over by ``tether_controlplane.migrate``."""

from alembic import context

from tether_controlplane.tables import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through migrate.upgrade()
    raise RuntimeError("run migrations with `tether controlplane migrate`, not alembic directly")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
