"""A store of a year of runs, made in bulk, the hot paths that read it, and their query plans.

Shared by ``bench/bench_scale.py`` (a million runs, 20 million events: the paths timed, their
plans printed) and ``tests/controlplane/test_query_plans.py`` (a small store, the same paths,
the same check that no plan scans a table that grows with history). Both backends: the rows
go in by ``COPY`` on PostgreSQL and ``executemany`` on SQLite, through the store's own schema
(the migrations), so what is read is what the control plane would have written."""

from __future__ import annotations

import io
import itertools
import json
import random
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, event, select, update
from sqlalchemy.orm import Session

from tether_api.agent_requests import SyncCodeLocationPayload
from tether_api.enums import (
    AutomationStatus,
    CodeLocationStatus,
    EventType,
    MissedTicks,
    RequestStatus,
    RequestType,
    RunStatus,
    SensorKind,
    TickStatus,
)
from tether_controlplane import migrate
from tether_controlplane.db import Database
from tether_controlplane.services import (
    agents,
    events,
    locations,
    requests,
    runs,
    scheduler,
    sensors,
    ticks,
)
from tether_controlplane.tables import (
    AgentRow,
    CodeLocationRow,
    DeploymentRow,
    Organization,
    RunRow,
    ScheduleRow,
    SensorRow,
)

# The tables that grow with history: a plan may read them only through an index's range.
WATCHED = ("runs", "run_events", "run_tags", "agent_requests", "schedule_ticks")

LOCATIONS = ("etl", "ml", "reports", "ingest", "ops")
JOBS_PER_LOCATION = 10
TEAMS = ("data", "ml", "finance", "growth", "platform")
# The deployment's slots are all taken and a backlog waits: admission's steady state.
CONCURRENCY_LIMIT = 50
BACKLOG = 1000
SCHEDULES = 5
YEAR = timedelta(days=365)


@dataclass
class Store:
    """What the paths need to know about the store ``fill`` made."""

    deployment_id: int
    runs: int
    events: int
    now: datetime
    common_job: str
    rare_job: str
    big_run_id: str  # a run with many events
    big_run_last_seq: int
    run_id: str  # a run as most are: a few steps and their log lines
    deep_cursor: str  # a page near the oldest runs
    day: tuple[datetime, datetime]  # one day in the middle of the year
    schedule_clock: list[datetime] = field(default_factory=list)
    sensor_id: int = 0  # a run-status sensor of SUCCESS (most runs), its cursor an hour old


def _jobs() -> list[tuple[str, str, float]]:
    """(location, job, weight): a few jobs run often, most rarely (1/rank)."""
    found = []
    rank = 1
    for i in range(JOBS_PER_LOCATION):
        for location in LOCATIONS:
            found.append((location, f"{location}_job_{i}", 1.0 / rank))
            rank += 1
    return found


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


class _Writer:
    """Rows into a table: ``COPY`` on PostgreSQL, ``executemany`` on SQLite."""

    def __init__(
        self,
        raw: Any,
        sqlite: bool,
        table: str,
        columns: tuple[str, ...],
        after: _Writer | None = None,
    ) -> None:
        """``after``: the writer of the rows these refer to (foreign keys), flushed first."""
        self.raw, self.sqlite, self.table, self.columns = raw, sqlite, table, columns
        self.after = after
        self.rows: list[tuple[Any, ...]] = []
        self.text = io.StringIO()
        self.count = 0

    def add(self, row: tuple[Any, ...]) -> None:
        self.count += 1
        if self.sqlite:
            self.rows.append(row)
            if len(self.rows) >= 50_000:
                self.flush()
            return
        # COPY's text format; none of the values generated here holds a tab, newline or \\.
        self.text.write("\t".join("\\N" if v is None else str(v) for v in row))
        self.text.write("\n")
        if self.text.tell() > 8_000_000:
            self.flush()

    def flush(self) -> None:
        if self.after is not None:
            self.after.flush()
        cur = self.raw.cursor()
        if self.sqlite:
            if self.rows:
                marks = ", ".join("?" * len(self.columns))
                cur.executemany(
                    f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES ({marks})",
                    self.rows,
                )
                self.rows = []
        elif self.text.tell():
            with cur.copy(f"COPY {self.table} ({', '.join(self.columns)}) FROM STDIN") as copy:
                copy.write(self.text.getvalue())
            self.text = io.StringIO()
        cur.close()


RUN_COLUMNS = (
    "pk",
    "id",
    "deployment_id",
    "code_location",
    "job",
    "run_config",
    "tags",
    "status",
    "status_message",
    "exit_code",
    "created_at",
    "admitted_at",
    "started_at",
    "ended_at",
    "last_heartbeat_at",
    "agent_name",
    "attempt",
)
EVENT_COLUMNS = ("run_pk", "seq", "type", "timestamp", "step", "level", "message", "data")


def fill(
    db: Database,
    runs_wanted: int,
    events_wanted: int,
    big_runs: int = 10,
    seed: int = 24,
    progress: Callable[[str], None] = lambda _: None,
) -> Store:
    """Migrate an empty store and fill it with a deployment's year: ``runs_wanted`` runs
    (and 2% as many of a second deployment's, interleaved), ``events_wanted`` events (a
    quarter of them in ``big_runs`` long runs, the rest a few per run), their tags, a year
    of hourly schedule ticks, the agent requests of the last tenth of the runs, agents,
    code locations, and a backlog of queued runs behind a full concurrency limit."""
    rng = random.Random(seed)
    migrate.upgrade(db.engine)
    now = datetime.now(UTC).replace(microsecond=0)
    with db.write() as s:
        org = Organization(name="scale", created_at=now - YEAR)
        s.add(org)
        s.flush()
        deps = [
            DeploymentRow(
                organization_id=org.id,
                name=name,
                run_concurrency_limit=CONCURRENCY_LIMIT,
                created_at=now - YEAR,
            )
            for name in ("prod", "staging")
        ]
        s.add_all(deps)
        s.flush()
        for dep in deps:
            for name in LOCATIONS:
                s.add(
                    CodeLocationRow(
                        deployment_id=dep.id,
                        name=name,
                        spec={"module": f"{name}.definitions"},
                        status=CodeLocationStatus.RUNNING,
                        created_at=now - YEAR,
                        updated_at=now,
                        deployed_at=now,
                    )
                )
            for i in range(2):
                s.add(
                    AgentRow(
                        deployment_id=dep.id,
                        name=f"agent-{i}",
                        code_locations=[{"name": n, "status": "RUNNING"} for n in LOCATIONS],
                        metadata_={},
                        last_heartbeat_at=now,
                        created_at=now - YEAR,
                    )
                )
        schedules = [
            ScheduleRow(
                deployment_id=deps[0].id,
                code_location="etl",
                name=f"hourly_{i}",
                cron="0 * * * *",
                timezone="UTC",
                job=f"etl_job_{i}",
                run_config={},
                tags={},
                default_status=AutomationStatus.RUNNING,
                missed_ticks=MissedTicks.LATEST,
                cursor=now,
                updated_at=now,
            )
            for i in range(SCHEDULES)
        ]
        s.add_all(schedules)
        sensor = SensorRow(
            deployment_id=deps[0].id,
            code_location="etl",
            name="on_success",
            kind=SensorKind.RUN_STATUS,
            job="etl_job_0",
            minimum_interval_seconds=30.0,
            timeout_seconds=60.0,
            monitored_status=RunStatus.SUCCESS,
            default_status=AutomationStatus.RUNNING,
            cursor=sensors.run_cursor(now - timedelta(hours=1), 0),
            updated_at=now,
        )
        s.add(sensor)
        s.flush()
        sensor_id = sensor.id
        dep_id, other_id = deps[0].id, deps[1].id
        schedule_ids = [r.id for r in schedules]

    jobs = _jobs()
    cumulative = list(itertools.accumulate(w for _, _, w in jobs))
    every_other = 50  # every 50th run is the other deployment's
    total = runs_wanted + runs_wanted // (every_other - 1)
    start = now - YEAR
    step = YEAR / max(total, 1)
    big_every = max(total // max(big_runs, 1), 1)
    # The long runs: spread over the year, none of them the other deployment's.
    big_pks = {i * big_every + big_every // 2 for i in range(big_runs)}
    big_pks = {pk + 1 if pk % every_other == 0 else pk for pk in big_pks}
    big_each = events_wanted // 4 // max(big_runs, 1)
    # The rest over the other runs: run pk gets small_total * pk // total minus what the
    # runs before it got, 14 or 15 each for 20M over 1M (at least 4: a run's own events).
    small_total = events_wanted - big_each * big_runs
    requests_from = total - total // 10
    raw = db.engine.raw_connection()
    sqlite = db.sqlite
    if sqlite:
        # Rows made consistent here: no foreign-key lookup per row, no sync per page.
        raw.execute("PRAGMA foreign_keys=OFF")
        raw.execute("PRAGMA synchronous=OFF")
        raw.execute("BEGIN")
    try:
        run_w = _Writer(raw, sqlite, "runs", RUN_COLUMNS)
        tag_w = _Writer(raw, sqlite, "run_tags", ("run_pk", "key", "value"), after=run_w)
        event_w = _Writer(raw, sqlite, "run_events", EVENT_COLUMNS, after=run_w)
        request_w = _Writer(
            raw,
            sqlite,
            "agent_requests",
            (
                "deployment_id",
                "type",
                "payload",
                "dedupe_key",
                "status",
                "attempt",
                "created_at",
                "claimed_by",
                "queue",
                "finished_at",
            ),
        )
        big: tuple[str, int] | None = None
        ordinary: str | None = None
        deep_pk = 0
        active = 0
        backlog_from = total - min(BACKLOG, total // 20)
        for pk in range(1, total + 1):
            dep = other_id if pk % every_other == 0 else dep_id
            location, job, _ = rng.choices(jobs, cum_weights=cumulative)[0]
            created = start + step * pk
            run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            tags = {"team": rng.choice(TEAMS)}
            if rng.random() < 0.01:
                tags["priority"] = "high"
            status = RunStatus.SUCCESS
            roll = rng.random()
            if roll < 0.08:
                status = RunStatus.FAILURE
            elif roll < 0.10:
                status = RunStatus.CANCELED
            admitted = started = ended = created + timedelta(seconds=1)
            if dep == dep_id and pk >= backlog_from:
                status, admitted, started, ended = RunStatus.QUEUED, None, None, None
            elif (
                dep == dep_id
                and pk >= backlog_from - 2 * CONCURRENCY_LIMIT
                and active < CONCURRENCY_LIMIT
            ):
                status, ended = RunStatus.STARTED, None
                active += 1
            elif ended is not None:
                ended = created + timedelta(seconds=rng.randint(2, 3600))
            if dep == dep_id and deep_pk == 0 and pk >= total // 20:
                deep_pk = pk
            run_w.add(
                (
                    pk,
                    run_id,
                    dep,
                    location,
                    job,
                    '{"ops": {"load": {"config": {"limit": 1000}}}}',
                    json.dumps(tags),
                    status.value,
                    "step load failed: ValueError" if status == RunStatus.FAILURE else None,
                    1 if status == RunStatus.FAILURE else None,
                    _ts(created),
                    None if admitted is None else _ts(admitted),
                    None if started is None else _ts(started),
                    None if ended is None else _ts(ended),
                    # A run going now has heartbeats of now (the monitor fails none of them).
                    None if started is None else _ts(ended or now),
                    None if started is None else f"agent-{pk % 2}",
                    1,
                )
            )
            for key, value in tags.items():
                tag_w.add((pk, key, value))
            if status != RunStatus.QUEUED:
                is_big = pk in big_pks
                share = small_total * pk // total - small_total * (pk - 1) // total
                count = big_each if is_big else max(share, 4)
                _events(event_w, pk, created, count, status)
                if is_big:
                    big = (run_id, count)
                elif dep == dep_id and status == RunStatus.SUCCESS:
                    ordinary = run_id
            if pk >= requests_from:
                payload = json.dumps({"run_id": run_id, "code_location": location, "job": job})
                request_w.add(
                    (
                        dep,
                        RequestType.LAUNCH_RUN.value,
                        payload,
                        f"launch:{run_id}",
                        RequestStatus.DONE.value,
                        1,
                        _ts(created),
                        f"agent-{pk % 2}",
                        "default",
                        _ts(created + timedelta(seconds=1)),
                    )
                )
            if pk % 100_000 == 0:
                progress(f"{pk:,} runs, {event_w.count:,} events")
        tick_w = _Writer(
            raw,
            sqlite,
            "schedule_ticks",
            ("schedule_id", "tick_time", "status", "created_at"),
        )
        for schedule_id in schedule_ids:
            tick = start.replace(minute=0, second=0)
            while tick < now:
                tick_w.add((schedule_id, _ts(tick), TickStatus.SUCCESS.value, _ts(tick)))
                tick += timedelta(hours=1)
        for writer in (run_w, tag_w, event_w, request_w, tick_w):
            writer.flush()
        raw.commit()
        events_made = event_w.count
    finally:
        if sqlite:
            raw.execute("PRAGMA foreign_keys=ON")
            raw.execute("PRAGMA synchronous=NORMAL")
        raw.close()
    if not sqlite:
        # The pks COPY gave: the next run made through the ORM gets the next one.
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('runs', 'pk'), (SELECT max(pk) FROM runs))"
            )
        progress("VACUUM ANALYZE (a year-old table is all-visible, its statistics known)")
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in WATCHED:
                conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    assert big is not None and ordinary is not None, "too few runs for the store's shape"
    midnight = (start + YEAR / 2).replace(hour=0, minute=0, second=0, microsecond=0)
    day = (midnight, midnight + timedelta(days=1))
    return Store(
        deployment_id=dep_id,
        runs=total,
        events=events_made,
        now=now,
        common_job=jobs[0][1],
        rare_job=jobs[-1][1],
        big_run_id=big[0],
        big_run_last_seq=big[1],
        run_id=ordinary,
        deep_cursor=str(deep_pk),
        day=day,
        schedule_clock=[now.replace(minute=0, second=1) + timedelta(hours=1)],
        sensor_id=sensor_id,
    )


def _events(writer: _Writer, pk: int, at: datetime, count: int, status: RunStatus) -> None:
    """A run's events: it starts, a step starts, log lines, the step and the run end."""
    ts = _ts(at)
    final = {
        RunStatus.SUCCESS: ("STEP_SUCCESS", "RUN_SUCCESS"),
        RunStatus.FAILURE: ("STEP_FAILURE", "RUN_FAILURE"),
        RunStatus.CANCELED: ("STEP_CANCELED", "RUN_CANCELED"),
    }.get(status)
    writer.add((pk, 1, EventType.RUN_START.value, ts, None, None, "run started", "{}"))
    writer.add((pk, 2, EventType.STEP_START.value, ts, "load", None, "step load started", "{}"))
    logs = count - 2 - (2 if final else 0)
    for seq in range(3, 3 + logs):
        writer.add((pk, seq, "LOG", ts, "load", "INFO", f"loaded batch {seq} of the day", "{}"))
    if final:
        seq = 3 + logs
        writer.add((pk, seq, final[0], ts, "load", None, "step load ended", "{}"))
        writer.add((pk, seq + 1, final[1], ts, None, None, "run ended", "{}"))


# --- the hot paths -------------------------------------------------------------------------


@dataclass
class Path:
    """One thing users (or the control plane's loops) do, timed as a whole. ``prepare``
    runs untimed before each call (what makes the call do its real work again)."""

    name: str
    call: Callable[[], object]
    prepare: Callable[[], object] | None = None


def paths(db: Database, store: Store) -> list[Path]:
    dep_id = store.deployment_id

    def dep(s: Any) -> DeploymentRow:
        found = s.get(DeploymentRow, dep_id)
        assert found is not None
        return found

    def run_list(
        statuses: tuple[RunStatus, ...] = (),
        tags: dict[str, str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
        **filters: Any,
    ) -> Callable[[], object]:
        def call() -> object:
            with db.read() as s:
                return runs.list_page(
                    s,
                    dep(s),
                    list(statuses),
                    filters.get("location"),
                    tags or {},
                    limit,
                    cursor,
                    filters.get("job"),
                    created_after=filters.get("after"),
                    created_before=filters.get("before"),
                )

        return call

    def run_page() -> object:
        with db.read() as s:
            d = dep(s)
            row = runs.find(s, d, store.run_id)
            return (
                runs.to_model(s, d, row),
                events.step_events(s, row),
                runs.planned_steps(s, d, row),
                events.list_after(s, row, 0, 500),
            )

    def run_events(after: int) -> Callable[[], object]:
        def call() -> object:
            with db.read() as s:
                row = runs.find(s, dep(s), store.big_run_id)
                return events.list_after(s, row, after, 1000)

        return call

    def overview() -> object:
        with db.read() as s:
            d = dep(s)
            return (
                agents.list_all(s, d, 30.0),
                locations.list_all(s, d, False, 30.0),
                runs.list_page(s, d, [], None, {}, 10, None),
            )

    def scheduler_pass() -> object:
        at = store.schedule_clock[0]
        store.schedule_clock[0] = at + timedelta(hours=1)
        return scheduler.run_due(db, at)

    def free_a_slot() -> None:
        # A running run ends (untimed): admission then has a slot for the oldest queued run.
        with db.write() as s:
            pk = s.scalar(
                select(RunRow.pk)
                .where(
                    RunRow.deployment_id == dep_id,
                    RunRow.status.in_([RunStatus.STARTING, RunStatus.STARTED]),
                )
                .limit(1)
            )
            s.execute(update(RunRow).where(RunRow.pk == pk).values(status=RunStatus.SUCCESS))

    def admission() -> int:
        with db.write() as s:
            return runs.admit(s, dep(s))

    def pending_request() -> None:
        with db.write() as s:
            payload = SyncCodeLocationPayload(code_location="etl", generation=1)
            requests.enqueue(s, dep_id, payload, f"sync:{uuid.uuid4()}")

    def poll() -> object:
        with db.write() as s:
            claimed = requests.claim(s, dep_id, "agent-0", 10, 60.0)
            if not claimed:
                return requests.next_lease_expiry(s, dep_id)
            for row in claimed:  # the agent's ack comes with its next poll: same transaction
                row.status = RequestStatus.DONE
                row.finished_at = row.lease_expires_at
            return claimed

    def monitor() -> object:
        with db.write() as s:
            now = datetime.now(UTC)
            return runs.check_timeouts(s, now, 3600.0, 3600.0), runs.admit_all(s)

    def sensor_tick() -> object:
        # Rolled back: every call finds the same runs ended since the sensor's cursor.
        with db.engine.connect() as conn, Session(bind=conn) as s:
            try:
                return ticks.start_sensor_tick(s, store.sensor_id, store.now, 60.0)
            finally:
                s.rollback()

    after, before = store.day
    return [
        Path("runs: newest page", run_list()),
        Path("runs: status FAILURE", run_list((RunStatus.FAILURE,))),
        Path("runs: status QUEUED", run_list((RunStatus.QUEUED,))),
        Path("runs: status SUCCESS or FAILURE", run_list((RunStatus.SUCCESS, RunStatus.FAILURE))),
        Path("runs: job (the most run)", run_list(job=store.common_job)),
        Path("runs: job (the least run)", run_list(job=store.rare_job)),
        Path("runs: code location", run_list(location="reports")),
        Path("runs: tag team=data (1 in 5)", run_list(tags={"team": "data"})),
        Path("runs: tag priority=high (1 in 100)", run_list(tags={"priority": "high"})),
        Path("runs: one day, mid-year", run_list(after=after, before=before)),
        Path("runs: a page near the oldest (by key)", run_list(cursor=store.deep_cursor)),
        Path(
            "runs: FAILURE, near the oldest",
            run_list((RunStatus.FAILURE,), cursor=store.deep_cursor),
        ),
        Path(
            "runs: tag team=data, near the oldest",
            run_list(tags={"team": "data"}, cursor=store.deep_cursor),
        ),
        Path("run page (run, steps, 500 events)", run_page),
        Path("run events from the start (1000)", run_events(0)),
        Path("run events from the end (1000)", run_events(max(store.big_run_last_seq - 1000, 0))),
        Path("overview", overview),
        Path(f"scheduler pass ({SCHEDULES} ticks due)", scheduler_pass),
        Path("admission (runs.admit, 1 slot free)", admission, prepare=free_a_slot),
        Path("agent poll (claim 1 request)", poll, prepare=pending_request),
        Path("agent poll (nothing pending)", poll),
        Path("monitor pass (timeouts, admit_all)", monitor),
        Path("sensor: a run-status sensor's tick (runs ended since its cursor)", sensor_tick),
    ]


# --- query plans ---------------------------------------------------------------------------


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
