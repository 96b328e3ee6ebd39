"""Migrations build the schema from empty, and match the ORM tables exactly."""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError

from tests.conftest import POSTGRES_URL
from tests.support import drop_postgres_database, fresh_postgres_database
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


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured: set TETHER_TEST_POSTGRES_URL")
    url = fresh_postgres_database(POSTGRES_URL)
    try:
        yield url
    finally:
        drop_postgres_database(POSTGRES_URL, url)


def test_0008_names_existing_tokens_and_makes_the_audit_log_append_only(
    empty_database: str,
) -> None:
    db = Database(empty_database)
    try:
        migrate.upgrade(db.engine, "0007")
        with db.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO organizations (id, name, created_at) VALUES (1, 'o', :t)"),
                {"t": datetime(2026, 1, 1)},
            )
            for token_id, description in ((1, "ci pipeline"), (2, "")):
                conn.execute(
                    text(
                        "INSERT INTO tokens (id, kind, token_hash, organization_id, description, "
                        "created_at) VALUES (:id, 'user', :hash, 1, :description, :t)"
                    ),
                    {
                        "id": token_id,
                        "hash": f"h{token_id}",
                        "description": description,
                        "t": datetime(2026, 1, 1),
                    },
                )
        migrate.upgrade(db.engine)
        with db.engine.connect() as conn:
            names = conn.execute(text("SELECT id, name FROM tokens ORDER BY id")).all()
        assert [tuple(row) for row in names] == [(1, "ci pipeline"), (2, "token-2")]
        with db.write() as s:
            s.execute(
                text(
                    "INSERT INTO audit_log (organization_id, at, actor_token_id, actor_name, "
                    "actor_kind, action, target, details) "
                    "VALUES (1, :t, 1, 'ci pipeline', 'user', 'token.create', 'x', '{}')"
                ),
                {"t": datetime(2026, 1, 2)},
            )
        for statement in ("UPDATE audit_log SET target = 'y'", "DELETE FROM audit_log"):
            with pytest.raises(DatabaseError, match="append-only"), db.write() as s:
                s.execute(text(statement))
    finally:
        db.dispose()
