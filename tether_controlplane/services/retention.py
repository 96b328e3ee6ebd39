"""Forgetting what only piles up, by each deployment's rules (tether_api.retention) and the
control plane's own (finished agent requests, SKIPPED sensor ticks, the audit log).

A pass walks each kind of row oldest first along an index it already has (a deployment's
runs by ``pk``, a schedule's ticks by ``id`` ...), a batch at a time, each batch in its own
short transaction: nothing is ever scanned whole, no lock is held long, and ingestion goes on
between batches. The walk stops at the first row too young for the rule (the rows after it
are younger still); rows the rule spares (a run that has not ended, a tick being evaluated,
an alert not sent yet) are stepped over. A run's events go in transactions of their own
before the run, its tags and its run token go together. A pass stops after
``retention_pass_max_seconds`` and the next one goes on where the rules say.

What is kept whatever its age: runs that have not ended; active backfills; pending alerts;
ticks being evaluated; each code location's newest 50 status changes (its page) and the ones
its current outage is dated from (so an outage still alerts once); the asset catalog's
current state and each asset's and partition's latest materialization; sensors' run keys
(deleting one would let its sensor start that run again).

The audit log refuses DELETE by a trigger; the pass alone gets past it, through a gate row it
inserts and removes inside its own transaction (see tables_retention.py).
"""

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from tether_api.alerts import DeliveryStatus
from tether_api.enums import (
    TERMINAL_RUN_STATUSES,
    CodeLocationStatus,
    RequestStatus,
    TickStatus,
)
from tether_api.retention import RetentionSettings
from tether_controlplane.db import Database
from tether_controlplane.services.locations import HISTORY_IN_VIEW
from tether_controlplane.settings import Settings
from tether_controlplane.tables import (
    AlertRow,
    AuditRow,
    CodeLocationRow,
    CodeLocationStatusRow,
    DeploymentRow,
    RequestRow,
    RunEventRow,
    RunRow,
    RunTagRow,
    ScheduleRow,
    ScheduleTickRow,
    SensorRow,
    SensorTickRow,
    TokenRow,
    utcnow,
)
from tether_controlplane.tables_assets import AssetEventRow, AssetPartitionRow, AssetSummaryRow
from tether_controlplane.tables_backfills import BackfillPartitionRow, BackfillRow
from tether_controlplane.tables_retention import GATE_ID, AuditRetentionGateRow
from tether_controlplane.token_secrets import TokenKind

log = logging.getLogger("tether.controlplane")

# The pause after each write transaction on SQLite (see Pass.write).
SQLITE_PAUSE_SECONDS = 0.005

# What ends a location's outage (services/locations._outage_start dates an outage from the
# first ERROR after the last of these): that change and that first ERROR are kept.
OUTAGE_ENDS = (CodeLocationStatus.RUNNING, CodeLocationStatus.STOPPED)


class Verdict(Enum):
    DELETE = "delete"
    KEEP = "keep"  # spared by the rule (not ended, pending ...): stepped over
    STOP = "stop"  # too young: so are all the rows after it


@dataclass
class Pass:
    """One retention pass: its clock, its limits (rows per transaction, until when) and what
    it has removed so far, by kind."""

    db: Database
    settings: Settings
    now: datetime
    deadline: float
    removed: Counter[str] = field(default_factory=Counter)

    @property
    def batch(self) -> int:
        return self.settings.retention_batch_size

    def spent(self) -> bool:
        return time.monotonic() >= self.deadline

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One batch's write transaction. On SQLite, where a writer holds the whole database,
        a short pause after it lets the writers that queued meanwhile (event ingestion, an
        agent's poll) in first: SQLite's busy handler makes them back off in growing sleeps,
        which a purge taking the lock again at once would stretch (bench_retention.py)."""
        with self.db.write() as session:
            yield session
        if self.db.sqlite:
            time.sleep(SQLITE_PAUSE_SECONDS)

    def cutoff(self, days: float) -> datetime | None:
        """The time before which a rule of ``days`` removes rows; None: 0, kept forever."""
        return self.now - timedelta(days=days) if days > 0 else None


def deployment_rule(dep: DeploymentRow) -> RetentionSettings:
    return RetentionSettings.model_validate(dep.retention or {})


Kind = Callable[[Pass, int, RetentionSettings], None]


def run_pass(db: Database, settings: Settings, now: datetime | None = None) -> Counter[str]:
    """One retention pass over every deployment, and the control plane's own rules.
    Returns how many rows of each kind went. ``now``: the clock (tests move it)."""
    p = Pass(db, settings, now or utcnow(), time.monotonic() + settings.retention_pass_max_seconds)
    with db.read() as s:
        rules = [(d.id, deployment_rule(d)) for d in s.scalars(select(DeploymentRow))]
    # The small kinds first, for every deployment, then the bulk (runs, backfills, asset
    # history): a backlog of runs never starves the rest, and each pass moves each forward.
    small: list[Kind] = [_requests, _schedule_ticks, _sensor_ticks, _status_history, _alerts]
    bulk: list[Kind] = [_runs, _backfills, _asset_events]
    for kinds in (small, bulk):
        for kind in kinds:
            for dep_id, rule in rules:
                if p.spent():
                    log.info("retention pass stopped at its time limit; the next goes on")
                    return p.removed
                kind(p, dep_id, rule)
        if kinds is small:
            _audit(p)
    return p.removed


# --- the walk -------------------------------------------------------------------------------


def _walk(
    p: Pass,
    what: str,
    read: Callable[[Session, Any, int], Sequence[Any]],
    verdict: Callable[[Any], Verdict],
    remove: Callable[[Session, list[Any]], int],
) -> None:
    """Walk rows oldest first, ``read(session, after, limit)`` a batch at a time (keyed by
    their first column), and remove the ones ``verdict`` condemns by that key: read in a
    read transaction, removed in a short write transaction (``remove`` re-states the
    condition that may have changed meanwhile). Counted in ``p.removed[what]``."""
    after: Any = 0
    while not p.spent():
        with p.db.read() as s:
            rows = read(s, after, p.batch)
        doomed: list[Any] = []
        stop = len(rows) < p.batch
        for row in rows:
            decided = verdict(row)
            if decided is Verdict.STOP:
                stop = True
                break
            if decided is Verdict.DELETE:
                doomed.append(row[0])
            after = row[0]
        if doomed:
            with p.write() as s:
                p.removed[what] += remove(s, doomed)
        if stop:
            return


def _deleted(s: Session, statement: Any) -> int:
    result = s.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def _by_id(table: Any, *still: Any) -> Callable[[Session, list[Any]], int]:
    """Remove rows of ``table`` by id, those ``still`` condemns (what may have changed since
    the read: a tick's status, an alert's delivery)."""

    def remove(s: Session, ids: list[Any]) -> int:
        return _deleted(s, delete(table).where(table.id.in_(ids), *still))

    return remove


def _aged(at: datetime, before: datetime | None) -> bool:
    return before is not None and at < before


# --- runs -----------------------------------------------------------------------------------


def _runs(p: Pass, dep_id: int, rule: RetentionSettings) -> None:
    """Finished runs past the age or beyond the count, oldest first along the deployment's
    pk index: their events in transactions of their own, then their tags, run tokens and
    the runs in one."""
    before = p.cutoff(rule.run_days)
    beyond: int | None = None
    if rule.max_runs:
        with p.db.read() as s:
            # The newest run beyond the count: an index-only walk of max_runs entries.
            beyond = s.scalar(
                select(RunRow.pk)
                .where(RunRow.deployment_id == dep_id)
                .order_by(RunRow.pk.desc())
                .offset(rule.max_runs)
                .limit(1)
            )
    if before is None and beyond is None:
        return
    after = 0
    while not p.spent():
        with p.db.read() as s:
            rows = s.execute(
                select(RunRow.pk, RunRow.id, RunRow.status, RunRow.created_at)
                .where(RunRow.deployment_id == dep_id, RunRow.pk > after)
                .order_by(RunRow.pk)
                .limit(p.batch)
            ).all()
        doomed: list[tuple[int, str]] = []
        stop = len(rows) < p.batch
        for pk, run_id, status, created_at in rows:
            if not (_aged(created_at, before) or (beyond is not None and pk <= beyond)):
                stop = True  # pks grow with time: every later run is younger
                break
            if status in TERMINAL_RUN_STATUSES:  # final: it never runs again
                doomed.append((pk, run_id))
            after = pk
        if doomed:
            p.removed["run_events"] += _run_events(p, [pk for pk, _ in doomed])
            with p.write() as s:
                p.removed["runs"] += _remove_runs(s, doomed)
        if stop:
            return


def _run_events(p: Pass, pks: list[int]) -> int:
    """The runs' events, ``p.batch`` rows a transaction (one run may have 100,000)."""
    gone = 0
    while True:
        with p.write() as s:
            chunk = select(RunEventRow.id).where(RunEventRow.run_pk.in_(pks)).limit(p.batch)
            count = _deleted(
                s, delete(RunEventRow).where(RunEventRow.id.in_(chunk.scalar_subquery()))
            )
        gone += count
        if count < p.batch:
            return gone


def _remove_runs(s: Session, doomed: list[tuple[int, str]]) -> int:
    pks = [pk for pk, _ in doomed]
    # An event that arrived after the chunks (a late batch of a finished run) goes too.
    s.execute(delete(RunEventRow).where(RunEventRow.run_pk.in_(pks)))
    s.execute(delete(RunTagRow).where(RunTagRow.run_pk.in_(pks)))
    # Run tokens are only ever the run worker's (never an audit actor): they go with the run.
    s.execute(
        delete(TokenRow).where(
            TokenRow.run_id.in_([run_id for _, run_id in doomed]), TokenRow.kind == TokenKind.RUN
        )
    )
    return _deleted(
        s, delete(RunRow).where(RunRow.pk.in_(pks), RunRow.status.in_(TERMINAL_RUN_STATUSES))
    )


# --- ticks, status histories, alerts, requests -------------------------------------------------


def _schedule_ticks(p: Pass, dep_id: int, rule: RetentionSettings) -> None:
    before = p.cutoff(rule.tick_days)
    if before is None:
        return
    T = ScheduleTickRow
    with p.db.read() as s:
        schedules = list(
            s.scalars(select(ScheduleRow.id).where(ScheduleRow.deployment_id == dep_id))
        )

    def verdict(row: Any) -> Verdict:
        if not _aged(row.tick_time, before):
            return Verdict.STOP
        return Verdict.KEEP if row.status == TickStatus.EVALUATING else Verdict.DELETE

    for schedule_id in schedules:

        def read(s: Session, after: Any, limit: int, sid: int = schedule_id) -> Sequence[Any]:
            return s.execute(
                select(T.id, T.tick_time, T.status)
                .where(T.schedule_id == sid, T.id > after)
                .order_by(T.id)
                .limit(limit)
            ).all()

        _walk(p, "schedule_ticks", read, verdict, _by_id(T, T.status != TickStatus.EVALUATING))


def _sensor_ticks(p: Pass, dep_id: int, rule: RetentionSettings) -> None:
    """Ticks past the deployment's rule, and SKIPPED ones past the control plane's
    ``skipped_tick_retention_days`` (a sensor every 30 s skips 2,880 times a day)."""
    before = p.cutoff(rule.tick_days)
    skipped_before = p.now - timedelta(days=p.settings.skipped_tick_retention_days)
    # Rows younger than the later of the two cutoffs fall under neither rule.
    stop_at = max(c for c in (before, skipped_before) if c is not None)
    T = SensorTickRow
    with p.db.read() as s:
        sensors = list(s.scalars(select(SensorRow.id).where(SensorRow.deployment_id == dep_id)))

    def verdict(row: Any) -> Verdict:
        if row.tick_time >= stop_at:
            return Verdict.STOP
        if row.status == TickStatus.EVALUATING:
            return Verdict.KEEP
        if _aged(row.tick_time, before) or (
            row.status == TickStatus.SKIPPED and row.tick_time < skipped_before
        ):
            return Verdict.DELETE
        return Verdict.KEEP

    for sensor_id in sensors:

        def read(s: Session, after: Any, limit: int, sid: int = sensor_id) -> Sequence[Any]:
            return s.execute(
                select(T.id, T.tick_time, T.status)
                .where(T.sensor_id == sid, T.id > after)
                .order_by(T.id)
                .limit(limit)
            ).all()

        _walk(p, "sensor_ticks", read, verdict, _by_id(T, T.status != TickStatus.EVALUATING))


def _status_history(p: Pass, dep_id: int, rule: RetentionSettings) -> None:
    before = p.cutoff(rule.status_history_days)
    if before is None:
        return
    C = CodeLocationStatusRow
    with p.db.read() as s:
        locations = list(
            s.scalars(select(CodeLocationRow.id).where(CodeLocationRow.deployment_id == dep_id))
        )
    for location_id in locations:
        with p.db.read() as s:
            newest = list(
                s.scalars(
                    select(C.id)
                    .where(C.code_location_id == location_id)
                    .order_by(C.id.desc())
                    .limit(HISTORY_IN_VIEW)
                )
            )
            if len(newest) < HISTORY_IN_VIEW:
                continue  # nothing beyond what its page shows
            # What locations._outage_start dates the current outage from. New changes only
            # ever come after these, so sparing them now spares them for good.
            ended = s.scalar(
                select(func.max(C.id)).where(
                    C.code_location_id == location_id, C.status.in_(OUTAGE_ENDS)
                )
            )
            first_error = s.scalar(
                select(func.min(C.id)).where(
                    C.code_location_id == location_id,
                    C.status == CodeLocationStatus.ERROR,
                    C.id > (ended or 0),
                )
            )
        spared = {i for i in (ended, first_error) if i is not None}
        shown = min(newest)

        def read(s: Session, after: Any, limit: int, lid: int = location_id) -> Sequence[Any]:
            return s.execute(
                select(C.id, C.at)
                .where(C.code_location_id == lid, C.id > after)
                .order_by(C.id)
                .limit(limit)
            ).all()

        def verdict(row: Any, shown: int = shown, spared: set[int] = spared) -> Verdict:
            if row.id >= shown or not _aged(row.at, before):
                return Verdict.STOP
            return Verdict.KEEP if row.id in spared else Verdict.DELETE

        _walk(p, "status_changes", read, verdict, _by_id(C))


def _alerts(p: Pass, dep_id: int, rule: RetentionSettings) -> None:
    before = p.cutoff(rule.alert_days)
    if before is None:
        return

    def read(s: Session, after: Any, limit: int) -> Sequence[Any]:
        return s.execute(
            select(AlertRow.id, AlertRow.created_at, AlertRow.status)
            .where(AlertRow.deployment_id == dep_id, AlertRow.id > after)
            .order_by(AlertRow.id)
            .limit(limit)
        ).all()

    def verdict(row: Any) -> Verdict:
        if not _aged(row.created_at, before):
            return Verdict.STOP
        return Verdict.KEEP if row.status == DeliveryStatus.PENDING else Verdict.DELETE

    _walk(p, "alerts", read, verdict, _by_id(AlertRow, AlertRow.status != DeliveryStatus.PENDING))


def _requests(p: Pass, dep_id: int, rule: RetentionSettings) -> None:
    """Finished agent requests (the control plane's ``request_retention_hours``), along the
    agent poll's (deployment, status, id) index."""
    before = p.now - timedelta(hours=p.settings.request_retention_hours)

    def verdict(row: Any) -> Verdict:
        if row.finished_at is None:
            return Verdict.KEEP
        return Verdict.DELETE if row.finished_at < before else Verdict.STOP

    for status in (RequestStatus.DONE, RequestStatus.FAILED):

        def read(s: Session, after: Any, limit: int, st: RequestStatus = status) -> Sequence[Any]:
            return s.execute(
                select(RequestRow.id, RequestRow.finished_at)
                .where(
                    RequestRow.deployment_id == dep_id,
                    RequestRow.status == st,
                    RequestRow.id > after,
                )
                .order_by(RequestRow.id)
                .limit(limit)
            ).all()

        _walk(p, "requests", read, verdict, _by_id(RequestRow, RequestRow.status == status))


# --- backfills and the asset catalog --------------------------------------------------------


def _backfills(p: Pass, dep_id: int, rule: RetentionSettings) -> None:
    """Finished backfills ended before the cutoff: their partitions a batch a transaction,
    each re-checking under the backfill's row lock that it is still finished (a resume
    makes it active again: it is kept then, whatever it has lost)."""
    before = p.cutoff(rule.backfill_days)
    if before is None:
        return
    with p.db.read() as s:
        backfills = s.execute(
            select(BackfillRow.id, BackfillRow.ended_at, BackfillRow.created_at)
            .where(BackfillRow.deployment_id == dep_id)
            .order_by(BackfillRow.id)
            .limit(p.batch)
        ).all()
    P = BackfillPartitionRow
    for backfill_id, ended_at, created_at in backfills:
        if created_at >= before:
            return  # it, and every later one, ended after the cutoff
        if ended_at is None or ended_at >= before:
            continue
        while not p.spent():
            with p.write() as s:
                row = s.scalars(
                    select(BackfillRow).where(BackfillRow.id == backfill_id).with_for_update()
                ).first()
                if row is None or row.ended_at is None or row.ended_at >= before:
                    break
                ours = delete(P).where(P.backfill_id == backfill_id)
                # The position a batch past the first: its partitions go in this batch.
                upto = s.scalar(
                    select(P.position)
                    .where(P.backfill_id == backfill_id)
                    .order_by(P.position)
                    .offset(p.batch)
                    .limit(1)
                )
                if upto is not None:
                    _deleted(s, ours.where(P.position < upto))
                    continue
                _deleted(s, ours)
                s.delete(row)
                p.removed["backfills"] += 1
                break


def _asset_events(p: Pass, dep_id: int, rule: RetentionSettings) -> None:
    """An asset's history past the rule, along its (deployment, asset, id) index, but never
    its own or a partition's latest materialization (what the catalog's state points at)."""
    before = p.cutoff(rule.asset_event_days)
    if before is None:
        return
    with p.db.read() as s:
        assets = s.execute(
            select(AssetSummaryRow.asset_key, AssetSummaryRow.last_materialization_id).where(
                AssetSummaryRow.deployment_id == dep_id
            )
        ).all()
    E = AssetEventRow
    A = AssetPartitionRow
    for asset_key, latest in assets:

        def read(s: Session, after: Any, limit: int, key: str = asset_key) -> Sequence[Any]:
            return s.execute(
                select(E.id, E.timestamp)
                .where(E.deployment_id == dep_id, E.asset_key == key, E.id > after)
                .order_by(E.id)
                .limit(limit)
            ).all()

        def verdict(row: Any, kept: int | None = latest) -> Verdict:
            if not _aged(row.timestamp, before):
                return Verdict.STOP
            return Verdict.KEEP if row.id == kept else Verdict.DELETE

        def remove(s: Session, ids: list[Any], key: str = asset_key) -> int:
            # Read here, in the write transaction: a partition's latest may have just moved.
            pointed = select(A.event_id).where(
                A.deployment_id == dep_id, A.asset_key == key, A.event_id.in_(ids)
            )
            latest_now = select(AssetSummaryRow.last_materialization_id).where(
                AssetSummaryRow.deployment_id == dep_id,
                AssetSummaryRow.asset_key == key,
                AssetSummaryRow.last_materialization_id.is_not(None),  # NOT IN (NULL): none
            )
            return _deleted(
                s,
                delete(E).where(
                    E.id.in_(ids),
                    E.id.not_in(pointed.scalar_subquery()),
                    E.id.not_in(latest_now.scalar_subquery()),
                ),
            )

        _walk(p, "asset_events", read, verdict, remove)


# --- the audit log ---------------------------------------------------------------------------


def _audit(p: Pass) -> None:
    """Entries older than ``audit_retention_days``, oldest first by id, through the gate
    (see tables_retention): opened and closed again inside each batch's transaction."""
    before = p.cutoff(p.settings.audit_retention_days)
    if before is None:
        return

    def read(s: Session, after: Any, limit: int) -> Sequence[Any]:
        return s.execute(
            select(AuditRow.id, AuditRow.at)
            .where(AuditRow.id > after)
            .order_by(AuditRow.id)
            .limit(limit)
        ).all()

    def verdict(row: Any) -> Verdict:
        return Verdict.DELETE if row.at < before else Verdict.STOP

    def remove(s: Session, ids: list[Any]) -> int:
        # If anything fails in between, the rollback takes the gate row with it.
        s.execute(insert(AuditRetentionGateRow).values(id=GATE_ID))
        gone = _deleted(s, delete(AuditRow).where(AuditRow.id.in_(ids)))
        s.execute(delete(AuditRetentionGateRow).where(AuditRetentionGateRow.id == GATE_ID))
        return gone

    _walk(p, "audit_entries", read, verdict, remove)
