"""The store: a deployment's year of runs, events, ticks and requests, made in bulk on both
backends (``COPY`` on PostgreSQL, ``executemany`` on SQLite) through the store's own schema
(the migrations), so what is read is what the control plane would have written."""

from __future__ import annotations

import io
import itertools
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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
    sensors,
)
from tether_controlplane.tables import (
    AgentRow,
    CodeLocationRow,
    DeploymentRow,
    Organization,
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
    sensor_id: int = 0  # a run-status sensor of SUCCESS (most runs), its cursor a month old


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
            # A month back: past the backlog at the newest end (runs not ended yet), so that a
            # tick finds ended runs to hand over (MAX_RUNS_PER_TICK of them).
            cursor=sensors.run_cursor(now - timedelta(days=30), 0),
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
