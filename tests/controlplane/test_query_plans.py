"""The hot paths' query plans read the tables that grow with history through an index,
never by a full scan: on a small but real store (SQLite and PostgreSQL), the same paths
bench/bench_scale.py times on a year of runs run once each, every statement they send is
explained, and a full scan of runs, run_events, run_tags, agent_requests or schedule_ticks
fails the test with its plan. A later change that drops an index or reshapes a query into a
scan is caught here, without a million rows.

SQLite plans by the query's shape and the indexes alone (the control plane never runs
ANALYZE), so its plans here are those of a big store, and strictly checked: no ``SCAN``, and
no page of runs or events cut from sorted rows. PostgreSQL weighs its statistics, and on a
few thousand rows a scan is cheap: its plans are read with ``enable_seqscan = off``, which
leaves a sequential scan (or a whole index read) only where no index can serve the query,
and run (``EXPLAIN ANALYZE``, rolled back): a statement that read more than MAX_ROWS rows of
one of those tables (where a page is 51 runs or 1,000 events of a run) scanned it, whatever
the plan's shape (an index read in its order while a filter throws most rows away)."""

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.conftest import POSTGRES_URL
from tests.scale.fill import Store, fill
from tests.scale.paths import paths
from tests.scale.plans import Statement, captured, distinct, explain
from tests.support import drop_postgres_database, fresh_postgres_database
from tether_api.enums import RunStatus
from tether_controlplane.db import Database
from tether_controlplane.services import runs
from tether_controlplane.tables import DeploymentRow, RunRow, RunTagRow

RUNS = 3000  # the measured deployment's; the store holds 3,061
# Half the store's runs: the most a hot statement may read of one table (PostgreSQL).
MAX_ROWS = RUNS // 2


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Database, Store]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('plans') / 'store.db'}"
    if request.param == "postgres":
        if not POSTGRES_URL:
            pytest.skip("PostgreSQL not configured: set TETHER_TEST_POSTGRES_URL")
        url = fresh_postgres_database(POSTGRES_URL)
    db = Database(url)
    try:
        yield db, fill(db, runs_wanted=RUNS, events_wanted=30_000, big_runs=2)
    finally:
        db.dispose()
        if request.param == "postgres" and POSTGRES_URL:
            drop_postgres_database(POSTGRES_URL, url)


def test_no_hot_path_scans_a_table_that_grows_with_history(store: tuple[Database, Store]) -> None:
    db, filled = store
    statements: list[Statement] = []
    for path in paths(db, filled):
        if path.prepare:
            path.prepare()
        with captured(db.engine, statements, path.name):
            path.call()
    ran = {st.path for st in statements}
    assert ran == {p.name for p in paths(db, filled)}, "a path sent no statement"
    found = []
    for st in distinct(statements):
        plan = explain(db.engine, st, analyze=True, force_index=True, max_rows=MAX_ROWS)
        if plan.scans:
            found.append(f"{st.path}: {'; '.join(plan.scans)}\n  {st.sql}\n{plan.text}")
        # A page of runs or events is read in an index's order and stops after the page.
        pages = st.path.startswith(("runs:", "run ", "admission", "sensor:"))
        if pages and plan.pages_by_sorting and db.sqlite:
            found.append(f"{st.path}: a page cut from sorted rows\n  {st.sql}\n{plan.text}")
    assert not found, "full scans in hot paths:\n\n" + "\n\n".join(found)


def test_runs_of_several_statuses_and_a_tag_page_newest_first(
    store: tuple[Database, Store],
) -> None:
    """The run list reads several statuses one by one and merges them: paging through
    with the cursor gives every run of those statuses with the tag once, newest first."""
    db, filled = store
    wanted = [RunStatus.FAILURE, RunStatus.CANCELED, RunStatus.QUEUED]
    with db.read() as s:
        dep = s.get(DeploymentRow, filled.deployment_id)
        assert dep is not None
        expected = list(
            s.scalars(
                select(RunRow.id)
                .join(RunTagRow, RunTagRow.run_pk == RunRow.pk)
                .where(
                    RunRow.deployment_id == dep.id,
                    RunRow.status.in_(wanted),
                    RunTagRow.key == "team",
                    RunTagRow.value == "data",
                )
                .order_by(RunRow.pk.desc())
            )
        )
        seen: list[str] = []
        cursor = None
        while True:
            page = runs.list_page(s, dep, wanted, None, {"team": "data"}, 17, cursor)
            seen += [r.id for r in page.runs]
            assert all(r.status in wanted and r.tags["team"] == "data" for r in page.runs)
            cursor = page.next_cursor
            if cursor is None:
                break
    assert len(expected) > 17 * 3  # several pages, each status among them
    assert seen == expected
