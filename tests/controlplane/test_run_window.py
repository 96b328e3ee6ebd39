"""A run list's time window as a pk range (services/runwindow.py), on a SQLite store of
many runs of several deployments: the same runs as comparing every run's created_at, found
with a number of index seeks that grows with the log of the runs, not with the runs."""

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import Session

from tests.support import Tenant
from tether_api.enums import RunStatus
from tether_controlplane.services import runwindow
from tether_controlplane.tables import Base, RunRow

RUNS = 20_000
START = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    rng = random.Random(7)
    rows = []
    at = START
    for pk in range(1, RUNS + 1):
        at += timedelta(seconds=rng.randint(1, 120))
        # A few runs a little out of step with their pk (concurrent inserts, clock skew).
        skew = timedelta(seconds=-rng.randint(0, 90)) if pk % 97 == 0 else timedelta()
        rows.append(
            {
                "pk": pk,
                "id": f"run-{pk}",
                "deployment_id": 1 + pk % 3,  # three deployments, interleaved
                "code_location": "quick",
                "job": "etl",
                "run_config": {},
                "tags": {},
                "status": RunStatus.SUCCESS,
                "created_at": at + skew,
            }
        )
    with Session(engine) as s:
        s.execute(RunRow.__table__.insert(), rows)
        s.commit()
        yield s
    engine.dispose()


def brute(s: Session, dep: int, after: datetime | None, before: datetime | None) -> set[int]:
    query = select(RunRow.pk).where(RunRow.deployment_id == dep)
    if after is not None:
        query = query.where(RunRow.created_at >= after)
    if before is not None:
        query = query.where(RunRow.created_at < before)
    return set(s.scalars(query))


def windowed(s: Session, dep: int, after: datetime | None, before: datetime | None) -> set[int]:
    low, high = runwindow.pk_range(s, dep, after, before)
    query = select(RunRow.pk).where(RunRow.deployment_id == dep)
    if low is not None:
        query = query.where(RunRow.pk >= low)
    if high is not None:
        query = query.where(RunRow.pk < high)
    # The pk range only narrows the scan; the list filters by created_at exactly after it.
    found = set(s.scalars(query))
    return found & brute(s, dep, after, before)


def test_the_pk_range_holds_exactly_the_runs_of_the_window(session: Session) -> None:
    rng = random.Random(11)
    last = session.scalar(select(RunRow.created_at).order_by(RunRow.pk.desc()).limit(1))
    assert last is not None
    span = (last - START).total_seconds()
    for _ in range(40):
        dep = rng.randint(1, 3)
        a = START + timedelta(seconds=rng.uniform(-600, span + 600))
        b = a + timedelta(seconds=rng.uniform(1, span / 10))
        for after, before in ((a, None), (None, b), (a, b)):
            assert windowed(session, dep, after, before) == brute(session, dep, after, before)
    # Outside every run: nothing, and no bound past the end.
    assert runwindow.pk_range(session, 9, START, None) == (1, None)
    assert brute(session, 1, last + timedelta(hours=1), None) == set()


def test_finding_the_range_takes_a_few_dozen_index_seeks(session: Session) -> None:
    statements: list[tuple[str, object]] = []
    engine = session.get_bind()

    def seen(
        _conn: object, _cursor: object, statement: str, parameters: object, *_: object
    ) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        middle = START + timedelta(days=10)
        low, high = runwindow.pk_range(session, 2, middle, middle + timedelta(days=1))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert low is not None and high is not None and low < high
    # Two bisections over 20,000 pks: about 2 x (log2(20,000) + 3) statements.
    assert len(statements) <= 2 * 20
    # Each one a search of the (deployment, pk) index: no statement reads the table in full.
    connection = session.connection()
    for statement, parameters in statements:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)  # type: ignore[arg-type]
        details = " ".join(str(row[-1]) for row in plan)
        assert "SCAN runs" not in details, details
        assert "ix_runs_deployment_pk" in details, details


def test_a_window_at_the_ends_of_time_lists_runs_instead_of_failing(tenant: Tenant) -> None:
    """Year 1 at +17:12 is in year 0 in UTC, and 9999-12-31 at -17:00 past year 9999: such a
    bound is the earliest (latest) time there is, not a server error."""
    tenant.deploy("quick")
    run = tenant.launch("quick", "etl")
    with tenant.user() as c:
        for params in (
            {"created_after": "0001-01-01T00:00:08+17:12"},
            {"created_before": "9999-12-31T23:59:59-17:00"},
            {"created_after": "0001-01-01T00:00:00Z", "created_before": "9999-12-31T23:59:59Z"},
        ):
            r = c.get(f"{tenant.dep_path}/runs", params=params)
            assert r.status_code == 200, (params, r.text)
            assert [found["id"] for found in r.json()["runs"]] == [run["id"]], params
    assert runwindow.bounded(datetime(9999, 12, 31, 23, tzinfo=UTC)) == runwindow.LATEST
