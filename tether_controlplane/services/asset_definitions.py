"""The assets a deployment's code locations declare, from their last snapshots: each
asset's definition, the jobs that materialize it, and the lineage between them.

Parsing a snapshot of a thousand assets costs more than every query of an asset page, so
the parsed view is kept per deployment and rebuilt only when a location's snapshot changes
(``snapshot_updated_at``); each replica keeps its own."""

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether_api.enums import CodeLocationKind
from tether_api.snapshot import AssetSnapshot, DefinitionsSnapshot, JobSnapshot
from tether_controlplane.tables import CodeLocationRow, DeploymentRow

# Deployments whose parsed view is kept (least recently used dropped first).
CACHED_DEPLOYMENTS = 32


@dataclass(frozen=True)
class DeclaredAsset:
    definition: AssetSnapshot
    code_location: str
    kind: CodeLocationKind
    # The jobs of its location that materialize it, smallest first (fewest assets, then
    # steps, then by name): the one a materialization of it runs.
    jobs: tuple[str, ...]


@dataclass(frozen=True)
class DeclaredLocation:
    name: str
    kind: CodeLocationKind
    jobs: dict[str, JobSnapshot]
    # Each job's assets (what its steps materialize).
    job_assets: dict[str, frozenset[str]]


@dataclass(frozen=True)
class Catalog:
    assets: dict[str, DeclaredAsset] = field(default_factory=dict)
    locations: dict[str, DeclaredLocation] = field(default_factory=dict)
    # key -> the assets that depend on it (declared or not).
    downstream: dict[str, list[str]] = field(default_factory=dict)

    def upstream_of(self, key: str) -> list[str]:
        found = self.assets.get(key)
        return list(found.definition.deps) if found else []


def job_assets(job: JobSnapshot) -> frozenset[str]:
    held: set[str] = set()
    for step in job.steps:
        held.update(step.asset_keys or ([step.asset_key] if step.asset_key else []))
    return frozenset(held)


def _build(snapshots: list[tuple[str, DefinitionsSnapshot]]) -> Catalog:
    catalog = Catalog()
    for name, snapshot in snapshots:
        jobs = {j.name: j for j in snapshot.jobs}
        held = {j.name: job_assets(j) for j in snapshot.jobs}
        catalog.locations[name] = DeclaredLocation(name, snapshot.kind, jobs, held)
        for definition in snapshot.assets:
            materializers = sorted(
                (j for j in snapshot.jobs if definition.key in held[j.name]),
                key=lambda j: (len(held[j.name]), len(j.steps), j.name),
            )
            declared = DeclaredAsset(
                definition, name, snapshot.kind, tuple(j.name for j in materializers)
            )
            known = catalog.assets.get(definition.key)
            # One key declared twice (an external AssetSpec here, its real asset there): the
            # one that some job materializes wins, else the first location by name.
            if known is None or (not known.jobs and declared.jobs):
                catalog.assets[definition.key] = declared
    for key, asset in sorted(catalog.assets.items()):
        for dep in asset.definition.deps:
            catalog.downstream.setdefault(dep, []).append(key)
    return catalog


# (database, deployment id) -> (each location's (id, snapshot time), the view built from them)
_Versions = tuple[tuple[int, datetime | None], ...]
_cache: "OrderedDict[tuple[str, int], tuple[_Versions, Catalog]]" = OrderedDict()
_lock = threading.Lock()


def catalog(session: Session, dep: DeploymentRow) -> Catalog:
    """The deployment's declared assets, from its locations' last snapshots (removed
    locations left out)."""
    versions: _Versions = tuple(
        (row_id, updated)
        for row_id, updated in session.execute(
            select(CodeLocationRow.id, CodeLocationRow.snapshot_updated_at)
            .where(
                CodeLocationRow.deployment_id == dep.id,
                CodeLocationRow.removed.is_(False),
                CodeLocationRow.snapshot.is_not(None),
            )
            .order_by(CodeLocationRow.name)
        )
    )
    key = (str(session.get_bind().engine.url), dep.id)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == versions:
            _cache.move_to_end(key)
            return cached[1]
    rows = session.execute(
        select(CodeLocationRow.name, CodeLocationRow.snapshot)
        .where(CodeLocationRow.id.in_([v[0] for v in versions]))
        .order_by(CodeLocationRow.name)
    ).all()
    built = _build([(name, DefinitionsSnapshot.model_validate(raw)) for name, raw in rows if raw])
    with _lock:
        _cache[key] = (versions, built)
        _cache.move_to_end(key)
        while len(_cache) > CACHED_DEPLOYMENTS:
            _cache.popitem(last=False)
    return built
