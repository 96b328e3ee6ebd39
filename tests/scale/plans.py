"""Query plans: the statements a path sends, captured and explained on either backend, and
the full scans of the tables that grow with history (``WATCHED``) found in them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, event

from tests.scale.fill import WATCHED


@dataclass
class Statement:
    sql: str
    params: Any
    path: str


@contextmanager
def captured(engine: Engine, into: list[Statement], path: str) -> Iterator[None]:
    """Record the reads and updates ``engine`` runs meanwhile (their driver-level SQL and
    parameters, to be explained afterwards); batch inserts are left out."""

    def record(
        conn: Connection, cursor: Any, sql: str, params: Any, context: Any, many: bool
    ) -> None:
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if not many and head in ("SELECT", "UPDATE", "DELETE", "WITH"):
            into.append(Statement(sql, params, path))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", record)


def distinct(statements: list[Statement]) -> list[Statement]:
    """The first of each statement's text in each path (a bisection runs the same one
    twenty times)."""
    seen: dict[tuple[str, str], Statement] = {}
    for st in statements:
        seen.setdefault((st.path, st.sql), st)
    return list(seen.values())


@dataclass
class Plan:
    statement: Statement
    text: str  # as the database prints it
    scans: list[str]  # full scans of WATCHED tables found in it
    sorts: bool  # the rows are sorted, not read in an index's order

    @property
    def pages_by_sorting(self) -> bool:
        """A page (ORDER BY ... LIMIT) cut from sorted rows: every matching row is read
        first, however many there are."""
        sql = " ".join(self.statement.sql.upper().split())
        return self.sorts and " ORDER BY " in sql and " LIMIT " in sql


def explain(
    engine: Engine,
    st: Statement,
    analyze: bool = False,
    force_index: bool = False,
    max_rows: int | None = None,
) -> Plan:
    """The statement's plan, and the full scans of WATCHED tables in it. On PostgreSQL
    ``analyze`` runs it (``EXPLAIN (ANALYZE, BUFFERS)``, rolled back) and a scan is also
    any read of more than ``max_rows`` (MAX_ROWS_READ) rows of the table; ``force_index``
    makes sequential
    scans a last resort (``enable_seqscan = off``), so that on a small test store, where
    one costs nothing, a sequential scan shows that no index can serve the query."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            if engine.dialect.name == "sqlite":
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + st.sql, st.params).all()
                lines = [str(r[3]) for r in rows]
                sorts = any("TEMP B-TREE FOR" in line and "ORDER BY" in line for line in lines)
                return Plan(st, "\n".join(lines), sqlite_scans(lines, st.sql), sorts)
            if force_index:
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            options = "ANALYZE, BUFFERS" if analyze else "COSTS OFF"
            shown = conn.exec_driver_sql(f"EXPLAIN ({options}) " + st.sql, st.params).all()
            tree = conn.exec_driver_sql(
                f"EXPLAIN ({'ANALYZE, ' if analyze else ''}FORMAT JSON) " + st.sql, st.params
            ).scalar()
            root = (tree if isinstance(tree, list) else json.loads(tree))[0]["Plan"]
            scans = postgres_scans(root, analyze, max_rows=max_rows or MAX_ROWS_READ)
            return Plan(st, "\n".join(r[0] for r in shown), scans, _sorts(root))
        finally:
            trans.rollback()


SQLITE_SCAN = re.compile(r"^SCAN (\w+)")
SQLITE_SEARCH = re.compile(r"^SEARCH (\w+) USING (?:COVERING )?INDEX \w+ \((.*)\)")


def sqlite_scans(lines: list[str], sql: str = "") -> list[str]:
    """``SCAN t`` reads every row of t (``USING INDEX``: every entry of an index); a read
    through an index's range is ``SEARCH``. A search of a whole deployment's rows, by
    ``deployment_id`` alone, while the statement asks for another column's value the index
    does not serve, reads them all in the worst case (a job run once a year): a scan too."""
    found = []
    for line in lines:
        m = SQLITE_SCAN.match(line)
        if m and _watched(m.group(1)):
            found.append(line)
        m = SQLITE_SEARCH.match(line)
        if m and _watched(m.group(1)):
            served = set(re.findall(r"(\w+)=\?", m.group(2)))
            asked = set(re.findall(rf"\b{m.group(1)}\.\"?(\w+)\"? = \?", sql))
            if served == {"deployment_id"} and asked - served:
                found.append(f"{line}, filtering {', '.join(sorted(asked - served))}")
    return found


# A page is 51 runs or 1,000 events: a plan that read more rows than this of one table, for
# one statement, scanned it (measured plans only).
MAX_ROWS_READ = 10_000


def postgres_scans(
    node: dict[str, Any],
    measured: bool = False,
    limited: bool = False,
    max_rows: int = MAX_ROWS_READ,
) -> list[str]:
    """Sequential scans of WATCHED tables, and index scans of them with no condition on the
    index and no LIMIT above them (the whole index read); when ``measured`` (ANALYZE), any
    read of more than ``max_rows`` of their rows besides.

    An index read in its order without a condition, under a LIMIT, is the planner's bet
    that the rows it filters for are common (the newest page of a deployment holding most
    runs: the primary key read backwards): its cost shows only measured, on a big store."""
    found = []
    kind = node.get("Node Type", "")
    relation = node.get("Relation Name", "")
    limited = limited or kind == "Limit"
    if _watched(relation):
        read = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * node.get(
            "Actual Loops", 1
        )
        if "Seq Scan" in kind:
            found.append(f"{kind} on {relation}")
        elif measured and read > max_rows:
            found.append(f"{kind} on {relation} read {read:,} rows")
        elif kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node and not limited:
            found.append(f"{kind} using {node.get('Index Name')} on {relation}, whole")
    for child in node.get("Plans", []):
        found += postgres_scans(child, measured, limited, max_rows)
    return found


def _sorts(node: dict[str, Any]) -> bool:
    return node.get("Node Type") == "Sort" or any(_sorts(c) for c in node.get("Plans", []))


def _watched(name: str) -> bool:
    # SQLAlchemy's aliases: run_tags_1.
    return re.sub(r"_\d+$", "", name) in WATCHED
