"""The asset catalog's reads: a deployment's assets (declared by its locations' snapshots,
joined with their stored state), one asset's page, its history and its partitions.

Every read is by index: the list reads one summary row per asset, an asset's page its
summary, its last checks and materializations, and a partition page the rows of the keys it
shows. Nothing scans the history. ``statuses`` is what a backfill's "missing" and "failed"
selections read."""

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether_api import partitions as partition_keys
from tether_api.assets import (
    METADATA_SERIES_LENGTH,
    AssetCheckResult,
    AssetDetail,
    AssetEvent,
    AssetEventPage,
    AssetLineage,
    AssetList,
    AssetOutcome,
    AssetPartition,
    AssetPartitionPage,
    AssetPartitionStatus,
    AssetStatus,
    AssetSummary,
    LineageEdge,
    LineageNode,
    MetadataPoint,
    PartitionCounts,
)
from tether_api.enums import EventType
from tether_api.snapshot import PartitionsSnapshot
from tether_controlplane.errors import Invalid, NotFound
from tether_controlplane.services.asset_definitions import Catalog, DeclaredAsset, catalog
from tether_controlplane.tables import DeploymentRow, utcnow
from tether_controlplane.tables_assets import AssetEventRow, AssetPartitionRow, AssetSummaryRow

log = logging.getLogger("tether.controlplane.assets")

# Rows looked up per IN (...).
CHUNK = 500
# How many of an asset's latest check evaluations its page reads to find each check's last.
CHECK_EVALUATIONS_READ = 200


def statuses(
    session: Session, deployment_id: int, asset_keys: Sequence[str]
) -> dict[str, dict[str, AssetPartitionStatus]]:
    """asset key -> partition -> its stored status (MATERIALIZED or FAILED); a key of the
    definition that is absent is MISSING. Every asset of ``asset_keys`` is in the answer."""
    found: dict[str, dict[str, AssetPartitionStatus]] = {k: {} for k in asset_keys}
    keys = sorted(found)
    for start in range(0, len(keys), CHUNK):
        rows = session.execute(
            select(
                AssetPartitionRow.asset_key, AssetPartitionRow.partition, AssetPartitionRow.status
            ).where(
                AssetPartitionRow.deployment_id == deployment_id,
                AssetPartitionRow.asset_key.in_(keys[start : start + CHUNK]),
            )
        )
        for asset_key, partition, status in rows:
            found[asset_key][partition] = status
    return found


def _outcome(at: datetime | None, run_id: str | None, partition: str | None) -> AssetOutcome | None:
    if at is None or run_id is None:
        return None
    return AssetOutcome(at=at, run_id=run_id, partition=partition)


def _summary(
    key: str, declared: DeclaredAsset | None, row: AssetSummaryRow | None
) -> dict[str, Any]:
    """The fields an AssetSummary and an AssetDetail share."""
    fields: dict[str, Any] = {"key": key, "declared": declared is not None}
    if declared is not None:
        d = declared.definition
        fields.update(
            code_location=declared.code_location,
            group=d.group,
            description=d.description,
            kinds=list(d.kinds),
            partitioned=d.partitions is not None,
            jobs=list(declared.jobs),
        )
    elif row is not None:
        fields["code_location"] = row.code_location
    if row is None:
        fields["status"] = AssetStatus.NEVER
        return fields
    fields.update(
        status=row.status,
        last_materialization=_outcome(
            row.last_materialized_at,
            row.last_materialization_run_id,
            row.last_materialization_partition,
        ),
        last_failure=_outcome(
            row.last_failure_at, row.last_failure_run_id, row.last_failure_partition
        ),
    )
    if declared is None and row.last_materialization_partition is not None:
        fields["partitioned"] = True
    return fields


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_assets(
    session: Session,
    dep: DeploymentRow,
    group: str | None = None,
    code_location: str | None = None,
    prefix: str | None = None,
    after: str | None = None,
    limit: int = 1000,
) -> AssetList:
    """Declared assets and those with events that no location declares any more, by key, a
    page at a time (``after``: the last key of the previous page)."""
    declared = catalog(session, dep).assets
    # Only the keys and locations of every stored asset (1,000 short tuples), then the page's
    # own rows: the summaries of assets the page does not show are never loaded.
    query = select(AssetSummaryRow.asset_key, AssetSummaryRow.code_location).where(
        AssetSummaryRow.deployment_id == dep.id
    )
    if prefix:
        query = query.where(AssetSummaryRow.asset_key.like(f"{_escape_like(prefix)}%", escape="\\"))
    # No "asset_key > after" here: the database's collation may order keys otherwise than
    # the page's order below (Python's), which would skip some.
    stored_at: dict[str, str] = {key: where for key, where in session.execute(query).tuples()}
    keys = sorted(
        k
        for k in {*declared, *stored_at}
        if (prefix is None or k.startswith(prefix)) and (after is None or k > after)
    )
    shown: list[str] = []
    more = False
    for key in keys:
        found = declared.get(key)
        if group is not None and (found is None or found.definition.group != group):
            continue
        where = found.code_location if found else stored_at.get(key)
        if code_location is not None and where != code_location:
            continue
        if len(shown) == limit:
            more = True
            break
        shown.append(key)
    rows = _summary_rows(session, dep, [k for k in shown if k in stored_at])
    items = [AssetSummary(**_summary(k, declared.get(k), rows.get(k))) for k in shown]
    return AssetList(assets=items, next_cursor=shown[-1] if more else None)


def _summary_rows(
    session: Session, dep: DeploymentRow, keys: list[str]
) -> dict[str, AssetSummaryRow]:
    found: dict[str, AssetSummaryRow] = {}
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        found.update(
            (r.asset_key, r)
            for r in session.scalars(
                select(AssetSummaryRow).where(
                    AssetSummaryRow.deployment_id == dep.id, AssetSummaryRow.asset_key.in_(chunk)
                )
            )
        )
    return found


def _summary_row(session: Session, dep: DeploymentRow, key: str) -> AssetSummaryRow | None:
    return session.scalar(
        select(AssetSummaryRow).where(
            AssetSummaryRow.deployment_id == dep.id, AssetSummaryRow.asset_key == key
        )
    )


def _not_found(dep: DeploymentRow, key: str) -> NotFound:
    return NotFound(
        f"asset {key!r} not found in deployment {dep.name!r}: no code location declares it "
        "and no run has materialized it (`tether assets list` lists its assets)"
    )


def _lineage(cat: Catalog, key: str) -> AssetLineage:
    """Everything upstream and downstream of ``key``, transitively, and the edges among them."""
    nodes: set[str] = {key}
    edges: set[tuple[str, str]] = set()
    for upward in (True, False):
        todo = [key]
        seen = {key}
        while todo:
            current = todo.pop()
            for other in cat.upstream_of(current) if upward else cat.downstream.get(current, []):
                up, down = (other, current) if upward else (current, other)
                edges.add((up, down))
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        nodes |= seen
    return AssetLineage(
        nodes=[
            LineageNode(
                key=n,
                code_location=cat.assets[n].code_location if n in cat.assets else None,
                group=cat.assets[n].definition.group if n in cat.assets else None,
                declared=n in cat.assets,
            )
            for n in sorted(nodes)
        ],
        edges=[LineageEdge(upstream=u, downstream=d) for u, d in sorted(edges)],
    )


def _checks(
    session: Session, dep: DeploymentRow, key: str, declared: DeclaredAsset | None
) -> list[AssetCheckResult]:
    rows = session.scalars(
        select(AssetEventRow)
        .where(
            AssetEventRow.deployment_id == dep.id,
            AssetEventRow.asset_key == key,
            AssetEventRow.type == EventType.ASSET_CHECK_EVALUATION,
        )
        .order_by(AssetEventRow.id.desc())
        .limit(CHECK_EVALUATIONS_READ)
    )
    latest: dict[str, AssetEventRow] = {}
    for row in rows:
        if row.check_name is not None:
            latest.setdefault(row.check_name, row)
    results: dict[str, AssetCheckResult] = {}
    for check in declared.definition.checks if declared else []:
        results[check.name] = AssetCheckResult(
            name=check.name, description=check.description, blocking=check.blocking
        )
    for name, row in latest.items():
        result = results.setdefault(name, AssetCheckResult(name=name))
        result.passed, result.severity = row.passed, row.severity
        result.at, result.run_id, result.metadata = row.timestamp, row.run_id, row.metadata_
    return sorted(results.values(), key=lambda r: r.name)


def _metadata_series(
    session: Session, dep: DeploymentRow, key: str
) -> dict[str, list[MetadataPoint]]:
    rows = session.execute(
        select(
            AssetEventRow.timestamp,
            AssetEventRow.run_id,
            AssetEventRow.partition,
            AssetEventRow.metadata_,
        )
        .where(
            AssetEventRow.deployment_id == dep.id,
            AssetEventRow.asset_key == key,
            AssetEventRow.type == EventType.ASSET_MATERIALIZATION,
        )
        .order_by(AssetEventRow.id.desc())
        .limit(METADATA_SERIES_LENGTH)
    ).all()
    series: dict[str, list[MetadataPoint]] = {}
    for at, run_id, partition, metadata in reversed(rows):
        for name, value in (metadata or {}).items():
            # Numbers only (a bool is no measurement).
            if isinstance(value, int | float) and not isinstance(value, bool):
                point = MetadataPoint(at=at, value=value, run_id=run_id, partition=partition)
                series.setdefault(name, []).append(point)
    return series


def _counts(
    partitions: PartitionsSnapshot | None, row: AssetSummaryRow | None, now: datetime
) -> PartitionCounts | None:
    if partitions is None:
        return None
    try:
        total = partition_keys.count_keys(partitions, now)
    except ValueError:  # a definition the control plane cannot compute (its timezone)
        total = 0
    materialized = row.partitions_materialized if row else 0
    failed = row.partitions_failed if row else 0
    # Stored partitions the definition no longer has would count twice: never below 0.
    return PartitionCounts(
        total=total,
        materialized=materialized,
        failed=failed,
        missing=max(total - materialized - failed, 0),
    )


def get_asset(session: Session, dep: DeploymentRow, key: str) -> AssetDetail:
    cat = catalog(session, dep)
    declared = cat.assets.get(key)
    row = _summary_row(session, dep, key)
    if declared is None and row is None:
        raise _not_found(dep, key)
    fields = _summary(key, declared, row)
    definition = declared.definition if declared else None
    return AssetDetail(
        **fields,
        owners=list(definition.owners) if definition else [],
        metadata=dict(definition.metadata) if definition else {},
        deps=list(definition.deps) if definition else [],
        downstream=sorted(cat.downstream.get(key, [])),
        partitions=definition.partitions if definition else None,
        lineage=_lineage(cat, key),
        checks=_checks(session, dep, key, declared),
        materializations=row.materializations if row else 0,
        observations=row.observations if row else 0,
        failures=row.failures if row else 0,
        last_observed_at=row.last_observed_at if row else None,
        partition_counts=_counts(definition.partitions if definition else None, row, utcnow()),
        metadata_series=_metadata_series(session, dep, key),
    )


def _exists(session: Session, dep: DeploymentRow, key: str) -> DeclaredAsset | None:
    """The asset's definition (None: undeclared, with events); NotFound for neither."""
    declared = catalog(session, dep).assets.get(key)
    if declared is None and _summary_row(session, dep, key) is None:
        raise _not_found(dep, key)
    return declared


def _event_model(row: AssetEventRow) -> AssetEvent:
    return AssetEvent(
        id=row.id,
        type=row.type,
        asset_key=row.asset_key,
        partition=row.partition,
        run_id=row.run_id,
        job=row.job,
        code_location=row.code_location,
        step=row.step,
        timestamp=row.timestamp,
        metadata=row.metadata_ or {},
        check=row.check_name,
        passed=row.passed,
        severity=row.severity,
    )


def history(
    session: Session,
    dep: DeploymentRow,
    key: str,
    types: Sequence[EventType] = (),
    before: int | None = None,
    limit: int = 50,
) -> AssetEventPage:
    """The asset's events, newest first, a page at a time by id (``before``: the
    next_cursor of the previous page)."""
    _exists(session, dep, key)
    query = select(AssetEventRow).where(
        AssetEventRow.deployment_id == dep.id, AssetEventRow.asset_key == key
    )
    if types:
        query = query.where(AssetEventRow.type.in_(list(types)))
    if before is not None:
        query = query.where(AssetEventRow.id < before)
    rows = session.scalars(query.order_by(AssetEventRow.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return AssetEventPage(
        events=[_event_model(r) for r in rows],
        next_cursor=str(rows[-1].id) if more and rows else None,
    )


def _stored(
    session: Session,
    dep: DeploymentRow,
    key: str,
    partitions: Sequence[str],
    status: AssetPartitionStatus | None = None,
) -> dict[str, AssetPartitionRow]:
    """The stored rows of these partitions of the asset (of ``status`` only, when given)."""
    found: dict[str, AssetPartitionRow] = {}
    for start in range(0, len(partitions), CHUNK):
        query = select(AssetPartitionRow).where(
            AssetPartitionRow.deployment_id == dep.id,
            AssetPartitionRow.asset_key == key,
            AssetPartitionRow.partition.in_(list(partitions[start : start + CHUNK])),
        )
        if status is not None:
            query = query.where(AssetPartitionRow.status == status)
        found.update((r.partition, r) for r in session.scalars(query))
    return found


def _matching(
    session: Session,
    dep: DeploymentRow,
    key: str,
    keys: Sequence[str],
    status: AssetPartitionStatus,
    limit: int,
) -> tuple[list[AssetPartition], bool]:
    """The first ``limit`` of ``keys`` in ``status``, and whether more follow: the keys are
    looked up a chunk at a time, in order, until the page is full (never all the asset's
    rows at once)."""
    items: list[AssetPartition] = []
    missing = status == AssetPartitionStatus.MISSING
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        stored = _stored(session, dep, key, chunk, None if missing else status)
        for k in chunk:
            row = stored.get(k)
            if (row is None) != missing:
                continue
            if len(items) == limit:
                return items, True
            items.append(_partition(k, row))
    return items, False


def _partition(key: str, row: AssetPartitionRow | None) -> AssetPartition:
    if row is None:
        return AssetPartition(key=key, status=AssetPartitionStatus.MISSING)
    return AssetPartition(key=key, status=row.status, run_id=row.run_id, at=row.at)


def partitions_page(
    session: Session,
    dep: DeploymentRow,
    key: str,
    status: AssetPartitionStatus | None = None,
    after: str | None = None,
    limit: int = 100,
) -> AssetPartitionPage:
    """Each partition of the asset with its status, in the definition's order (MISSING ones
    too), a page at a time (``after``: the last key of the previous page). An asset no
    location declares any more: its stored partitions, by key."""
    declared = _exists(session, dep, key)
    row = _summary_row(session, dep, key)
    definition = declared.definition.partitions if declared else None
    now = utcnow()
    if definition is None:
        return _stored_page(session, dep, key, row, status, after, limit)
    try:
        keys = partition_keys.all_keys(definition, now)
    except ValueError as exc:
        raise Invalid(f"the partitions of asset {key!r} cannot be listed here: {exc}") from None
    counts = _counts(definition, row, now)
    assert counts is not None
    start = 0
    if after is not None:
        try:
            start = keys.index(after) + 1
        except ValueError:
            raise Invalid(
                f"after={after!r} is not a partition of asset {key!r}: pass the next_cursor "
                "of a previous page",
                loc=("query", "after"),
            ) from None
    rest = keys[start:]
    if status is None:
        shown = rest[:limit]
        stored = _stored(session, dep, key, shown)
        items = [_partition(k, stored.get(k)) for k in shown]
        more = len(rest) > limit
    elif _none_stored(counts, status):
        items, more = [], False
    else:
        items, more = _matching(session, dep, key, rest, status, limit)
    return AssetPartitionPage(
        partitions=items,
        counts=counts,
        next_cursor=items[-1].key if more and items else None,
    )


def _none_stored(counts: PartitionCounts, status: AssetPartitionStatus) -> bool:
    """Whether the asset has no stored partition in ``status`` (MISSING: never known so, its
    count being the definition's keys less the stored ones, which may hold old keys)."""
    if status == AssetPartitionStatus.MATERIALIZED:
        return counts.materialized == 0
    return status == AssetPartitionStatus.FAILED and counts.failed == 0


def _stored_page(
    session: Session,
    dep: DeploymentRow,
    key: str,
    row: AssetSummaryRow | None,
    status: AssetPartitionStatus | None,
    after: str | None,
    limit: int,
) -> AssetPartitionPage:
    materialized = row.partitions_materialized if row else 0
    failed = row.partitions_failed if row else 0
    counts = PartitionCounts(
        total=materialized + failed, materialized=materialized, failed=failed, missing=0
    )
    if status == AssetPartitionStatus.MISSING:
        return AssetPartitionPage(partitions=[], counts=counts)
    query = select(AssetPartitionRow).where(
        AssetPartitionRow.deployment_id == dep.id, AssetPartitionRow.asset_key == key
    )
    if status is not None:
        query = query.where(AssetPartitionRow.status == status)
    if after is not None:
        query = query.where(AssetPartitionRow.partition > after)
    rows = session.scalars(query.order_by(AssetPartitionRow.partition).limit(limit + 1)).all()
    more = len(rows) > limit
    items = [_partition(r.partition, r) for r in rows[:limit]]
    return AssetPartitionPage(
        partitions=items, counts=counts, next_cursor=items[-1].key if more and items else None
    )
