"""Migrations build the schema from empty, and match the ORM tables exactly."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from tether_controlplane import migrate
from tether_controlplane.db import Database
from tether_controlplane.tables import Base


def test_upgrade_from_empty_matches_tables(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert migrate.current_revision(db.engine) is None
        migrate.upgrade(db.engine)
        assert migrate.current_revision(db.engine) == migrate.head_revision()
        assert set(Base.metadata.tables) <= set(inspect(db.engine).get_table_names())
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"tables.py and the migrations disagree: {diff}"
        migrate.upgrade(db.engine)  # a second upgrade is a no-op
    finally:
        db.dispose()
