"""The asset catalog's ingestion: a batch of fresh run events (services/events.py ``ingest``)
becomes rows of its history, and the asset and partition state rows move with it, in the
batch's own transaction.

Only asset events and step failures are looked at (``wants``): a batch of log lines costs
one set lookup per event. ``ingest`` calls this with the events it stored for the first
time, under the run's row lock, so a batch delivered twice is counted once."""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tether_api.assets import ASSET_EVENT_TYPES, AssetPartitionStatus, AssetStatus
from tether_api.enums import EventType
from tether_api.run_worker_api import RunEvent
from tether_api.runtags import run_partition
from tether_controlplane.services.asset_definitions import catalog
from tether_controlplane.tables import DeploymentRow, RunRow, utcnow
from tether_controlplane.tables_assets import (
    ASSET_KEY_LENGTH,
    PARTITION_KEY_LENGTH,
    AssetEventRow,
    AssetPartitionRow,
    AssetSummaryRow,
)

log = logging.getLogger("tether.controlplane.assets")

WANTED = frozenset({*ASSET_EVENT_TYPES, EventType.STEP_FAILURE})
# Rows looked up per IN (...): well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 500


def wants(event: RunEvent) -> bool:
    return event.type in WANTED


@dataclass
class _Failure:
    asset_key: str
    partition: str | None
    at: datetime


def _key(value: Any, limit: int) -> str | None:
    """A usable asset or partition key, or None (what the catalog cannot store it skips; the
    run's own events keep it)."""
    if isinstance(value, str) and 0 < len(value) <= limit:
        return value
    return None


def record(session: Session, dep: DeploymentRow, run: RunRow, events: Sequence[RunEvent]) -> None:
    """Add ``events`` (fresh, in seq order; any type: the unwanted ones are skipped) to the
    catalog."""
    changes: list[AssetEventRow | _Failure] = []
    for event in events:
        if event.type in ASSET_EVENT_TYPES:
            row = _event_row(dep, run, event)
            if row is not None:
                changes.append(row)
        elif event.type == EventType.STEP_FAILURE:
            changes.extend(_failures(session, dep, run, event))
    if not changes:
        return
    keys = sorted({c.asset_key for c in changes})
    summaries = _lock_summaries(session, dep, run, keys)
    events_rows = [c for c in changes if isinstance(c, AssetEventRow)]
    session.add_all(events_rows)
    session.flush()  # their ids: what a partition and a summary point at
    wanted = {(c.asset_key, c.partition) for c in changes if _changes_partition(c)}
    partitions = _partitions(session, dep, wanted)
    now = utcnow()
    for change in changes:
        summary = summaries[change.asset_key]
        summary.code_location = run.code_location
        summary.updated_at = now
        if isinstance(change, _Failure):
            _apply_failure(session, dep, run, summary, partitions, change)
        else:
            _apply_event(session, dep, run, summary, partitions, change)


def _changes_partition(change: AssetEventRow | _Failure) -> bool:
    if change.partition is None:
        return False
    return isinstance(change, _Failure) or change.type == EventType.ASSET_MATERIALIZATION


def _event_row(dep: DeploymentRow, run: RunRow, event: RunEvent) -> AssetEventRow | None:
    data = event.data or {}
    asset_key = _key(data.get("asset_key"), ASSET_KEY_LENGTH)
    if asset_key is None:
        log.warning("run %s: %s without a usable asset_key left out", run.id, event.type.value)
        return None
    partition = data.get("partition")
    if partition is not None and _key(partition, PARTITION_KEY_LENGTH) is None:
        log.warning("run %s: %s of %s with a bad partition left out", run.id, event.type, asset_key)
        return None
    metadata = data.get("metadata")
    row = AssetEventRow(
        deployment_id=dep.id,
        asset_key=asset_key,
        type=event.type,
        partition=partition,
        run_id=run.id,
        job=run.job,
        code_location=run.code_location,
        step=event.step,
        timestamp=event.timestamp,
        metadata_=metadata if isinstance(metadata, dict) else {},
    )
    if event.type == EventType.ASSET_CHECK_EVALUATION:
        check = data.get("check")
        row.check_name = check[:200] if isinstance(check, str) else None
        passed = data.get("passed")
        row.passed = passed if isinstance(passed, bool) else None
        severity = data.get("severity")
        row.severity = severity[:20] if isinstance(severity, str) else None
    return row


def _failures(
    session: Session,
    dep: DeploymentRow,
    run: RunRow,
    event: RunEvent,
) -> list[_Failure]:
    """The (asset, partition) pairs a failed step was to materialize: from its event (the
    Tether SDK says them), else from the job's snapshot and the run's partition tag (Dagster)."""
    data = event.data or {}
    raw_keys = data.get("asset_keys")
    if isinstance(raw_keys, list):
        asset_keys = [k for k in raw_keys if _key(k, ASSET_KEY_LENGTH)]
    else:
        asset_keys = _step_assets(session, dep, run, event.step)
    if not asset_keys:
        return []
    raw_partitions = data.get("partitions")
    partitions: list[str | None]
    if isinstance(raw_partitions, list) and raw_partitions:
        partitions = [p for p in raw_partitions if _key(p, PARTITION_KEY_LENGTH)]
    else:
        tagged = run_partition(run.tags)
        partitions = [tagged if _key(tagged, PARTITION_KEY_LENGTH) else None]
    return [_Failure(k, p, event.timestamp) for k in asset_keys for p in partitions]


def _step_assets(session: Session, dep: DeploymentRow, run: RunRow, step: str | None) -> list[str]:
    """The assets a step of the run's job materializes, from its location's snapshot as the
    catalog keeps it parsed (a Dagster failure says none itself)."""
    if step is None:
        return []
    location = catalog(session, dep).locations.get(run.code_location)
    job = location.jobs.get(run.job) if location else None
    if job is None:
        return []
    name = step.split("[", 1)[0]  # a mapped Dagster step runs as name[key]
    for s in job.steps:
        if s.name == name:
            keys = s.asset_keys or ([s.asset_key] if s.asset_key else [])
            return [k for k in keys if _key(k, ASSET_KEY_LENGTH)]
    return []


def _lock_summaries(
    session: Session, dep: DeploymentRow, run: RunRow, keys: list[str]
) -> dict[str, AssetSummaryRow]:
    """The summary rows of ``keys``, made if new and locked (in key order: two batches never
    wait on each other in a cycle). The lock serializes every change to an asset's partition
    rows too."""
    connection = session.connection()
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    values = [
        {
            "deployment_id": dep.id,
            "asset_key": k,
            "code_location": run.code_location,
            "status": AssetStatus.NEVER,
            "materializations": 0,
            "observations": 0,
            "check_evaluations": 0,
            "failures": 0,
            "partitions_materialized": 0,
            "partitions_failed": 0,
            "updated_at": now,
        }
        for k in keys
    ]
    for start in range(0, len(values), CHUNK):
        session.execute(
            insert(AssetSummaryRow)
            .values(values[start : start + CHUNK])
            .on_conflict_do_nothing(index_elements=["deployment_id", "asset_key"])
        )
    found: dict[str, AssetSummaryRow] = {}
    for start in range(0, len(keys), CHUNK):
        rows = session.scalars(
            select(AssetSummaryRow)
            .where(
                AssetSummaryRow.deployment_id == dep.id,
                AssetSummaryRow.asset_key.in_(keys[start : start + CHUNK]),
            )
            .order_by(AssetSummaryRow.asset_key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        found.update((r.asset_key, r) for r in rows)
    return found


def _partitions(
    session: Session, dep: DeploymentRow, wanted: Iterable[tuple[str, str | None]]
) -> dict[tuple[str, str], AssetPartitionRow]:
    pairs = sorted((k, p) for k, p in wanted if p is not None)
    found: dict[tuple[str, str], AssetPartitionRow] = {}
    for start in range(0, len(pairs), CHUNK):
        chunk = pairs[start : start + CHUNK]
        rows = session.scalars(
            select(AssetPartitionRow).where(
                AssetPartitionRow.deployment_id == dep.id,
                tuple_(AssetPartitionRow.asset_key, AssetPartitionRow.partition).in_(chunk),
            )
        )
        found.update(((r.asset_key, r.partition), r) for r in rows)
    return found


def _set_partition(
    session: Session,
    dep: DeploymentRow,
    summary: AssetSummaryRow,
    partitions: dict[tuple[str, str], AssetPartitionRow],
    partition: str,
    status: AssetPartitionStatus,
    run_id: str,
    at: datetime,
    event_id: int | None,
) -> None:
    """Set one partition's status, keeping the summary's counts of each in step."""
    row = partitions.get((summary.asset_key, partition))
    if row is None:
        row = AssetPartitionRow(
            deployment_id=dep.id,
            asset_key=summary.asset_key,
            partition=partition,
            status=status,
            run_id=run_id,
            at=at,
            event_id=event_id,
        )
        session.add(row)
        partitions[(summary.asset_key, partition)] = row
        _count(summary, status, +1)
    elif _newest(at, row.at):
        if row.status != status:
            _count(summary, row.status, -1)
            _count(summary, status, +1)
        row.status, row.run_id, row.at, row.event_id = status, run_id, at, event_id


def _newest(at: datetime, than: datetime | None) -> bool:
    """Whether what happened at ``at`` is at least as new as what ``than`` recorded. Two runs'
    batches may arrive in either order (a worker retrying after an outage): the newer fact
    sets an asset's or a partition's state, whichever arrived last; at the same instant, the
    later arrival."""
    # Both are aware UTC: events' timestamps by their model's validator, stored ones by
    # UTCDateTime.
    return than is None or at >= than


def _unpartitioned_status(summary: AssetSummaryRow) -> AssetStatus:
    """The newer of its last materialization and its last failure."""
    done, failed = summary.last_materialized_at, summary.last_failure_at
    if failed is None:
        return AssetStatus.MATERIALIZED if done is not None else summary.status
    if done is None:
        return AssetStatus.FAILED
    return AssetStatus.MATERIALIZED if _newest(done, failed) else AssetStatus.FAILED


def _count(summary: AssetSummaryRow, status: AssetPartitionStatus, delta: int) -> None:
    if status == AssetPartitionStatus.MATERIALIZED:
        summary.partitions_materialized += delta
    elif status == AssetPartitionStatus.FAILED:
        summary.partitions_failed += delta


def _partitioned_status(summary: AssetSummaryRow) -> AssetStatus:
    if summary.partitions_failed > 0:
        return AssetStatus.FAILED
    return AssetStatus.MATERIALIZED if summary.partitions_materialized > 0 else summary.status


def _apply_event(
    session: Session,
    dep: DeploymentRow,
    run: RunRow,
    summary: AssetSummaryRow,
    partitions: dict[tuple[str, str], AssetPartitionRow],
    row: AssetEventRow,
) -> None:
    if row.type == EventType.ASSET_OBSERVATION:
        summary.observations += 1
        summary.last_observed_at = row.timestamp
        return
    if row.type == EventType.ASSET_CHECK_EVALUATION:
        summary.check_evaluations += 1
        return
    summary.materializations += 1
    if _newest(row.timestamp, summary.last_materialized_at):
        summary.last_materialization_id = row.id
        summary.last_materialized_at = row.timestamp
        summary.last_materialization_run_id = run.id
        summary.last_materialization_partition = row.partition
    if row.partition is None:
        summary.status = _unpartitioned_status(summary)
        return
    _set_partition(
        session,
        dep,
        summary,
        partitions,
        row.partition,
        AssetPartitionStatus.MATERIALIZED,
        run.id,
        row.timestamp,
        row.id,
    )
    summary.status = _partitioned_status(summary)


def _apply_failure(
    session: Session,
    dep: DeploymentRow,
    run: RunRow,
    summary: AssetSummaryRow,
    partitions: dict[tuple[str, str], AssetPartitionRow],
    failure: _Failure,
) -> None:
    summary.failures += 1
    if _newest(failure.at, summary.last_failure_at):
        summary.last_failure_at = failure.at
        summary.last_failure_run_id = run.id
        summary.last_failure_partition = failure.partition
    if failure.partition is None:
        summary.status = _unpartitioned_status(summary)
        return
    _set_partition(
        session,
        dep,
        summary,
        partitions,
        failure.partition,
        AssetPartitionStatus.FAILED,
        run.id,
        failure.at,
        None,
    )
    summary.status = _partitioned_status(summary)
