"""User API: the asset catalog (a deployment's assets, an asset's history and partitions)
and launching a materialization.

Asset keys may hold "/" (Dagster's ``raw/orders``): one asset is ``assets/{key:path}``, and
its history and partitions take the key as a query parameter."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from tether_api.assets import (
    ASSET_EVENT_TYPES,
    MAX_ASSET_KEY,
    MAX_PARTITION_KEY,
    AssetDetail,
    AssetEventPage,
    AssetList,
    AssetMaterializationCreate,
    AssetPartitionPage,
    AssetPartitionStatus,
)
from tether_api.audit import AuditAction
from tether_api.enums import EventType
from tether_api.user_api import Run
from tether_api.wire import Text
from tether_controlplane.api.deps import DbDep, UserScope
from tether_controlplane.api.responses import LOOKUP, LOOKUP_OR_CONFLICT
from tether_controlplane.errors import Invalid
from tether_controlplane.services import asset_launch, assets, audit, runs

router = APIRouter(prefix="/api/v1/deployments/{dep}", tags=["assets"])

AssetKeyQuery = Annotated[
    Text,
    Query(min_length=1, max_length=MAX_ASSET_KEY, description="The asset key, e.g. raw/orders."),
]


@router.get("/assets", responses=LOOKUP)
def list_assets(
    scope: UserScope,
    db: DbDep,
    group: Annotated[Text | None, Query(max_length=200, description="Only this group's.")] = None,
    code_location: Annotated[
        Text | None, Query(max_length=63, description="Only this code location's.")
    ] = None,
    prefix: Annotated[
        Text | None, Query(max_length=MAX_ASSET_KEY, description="Only keys starting with it.")
    ] = None,
    after: Annotated[
        Text | None,
        Query(max_length=MAX_ASSET_KEY, description="next_cursor of a previous page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> AssetList:
    """Every asset the deployment's code locations declare, with its last materialization
    and status, and the assets with events that no location declares any more
    (``declared: false``). By key; pass ``next_cursor`` back as ``after`` for more."""
    with db.read() as s:
        return assets.list_assets(
            s, scope.deployment(s), group, code_location, prefix, after, limit
        )


@router.get("/assets/{key:path}", responses=LOOKUP)
def get_asset(
    key: Annotated[str, Path(min_length=1, max_length=MAX_ASSET_KEY)],
    scope: UserScope,
    db: DbDep,
) -> AssetDetail:
    """One asset: its definition, state, lineage (upstream and downstream across the
    deployment), checks with their latest results, partition counts, and its numeric
    metadata over its last materializations."""
    with db.read() as s:
        return assets.get_asset(s, scope.deployment(s), key)


@router.get("/asset-events", responses=LOOKUP)
def list_asset_events(
    key: AssetKeyQuery,
    scope: UserScope,
    db: DbDep,
    type: Annotated[
        list[EventType],
        Query(
            description="Only events of these types (repeat it): ASSET_MATERIALIZATION, "
            "ASSET_OBSERVATION, ASSET_CHECK_EVALUATION; all three when absent."
        ),
    ] = [],  # noqa: B006 - FastAPI copies defaults
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="next_cursor of a previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AssetEventPage:
    """The asset's materializations, observations and check evaluations, newest first.
    Pass ``next_cursor`` back as ``before`` for older ones."""
    wrong = [t.value for t in type if t not in ASSET_EVENT_TYPES]
    if wrong:
        raise Invalid(
            f"type {wrong[0]} is not an asset event: use "
            + ", ".join(t.value for t in ASSET_EVENT_TYPES),
            loc=("query", "type"),
        )
    with db.read() as s:
        return assets.history(s, scope.deployment(s), key, type, before, limit)


@router.get("/asset-partitions", responses=LOOKUP)
def list_asset_partitions(
    key: AssetKeyQuery,
    scope: UserScope,
    db: DbDep,
    status: Annotated[
        AssetPartitionStatus | None, Query(description="Only partitions in this status.")
    ] = None,
    after: Annotated[
        Text | None,
        Query(max_length=MAX_PARTITION_KEY, description="next_cursor of a previous page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AssetPartitionPage:
    """Each partition of the asset with its status (MATERIALIZED, FAILED or MISSING), in
    the definition's order, and how many are in each. Pass ``next_cursor`` back as
    ``after`` for more."""
    with db.read() as s:
        return assets.partitions_page(s, scope.deployment(s), key, status, after, limit)


@router.post(
    "/asset-materializations",
    status_code=201,
    responses={201: {"description": "The run was created."}, **LOOKUP_OR_CONFLICT},
)
def materialize_assets(body: AssetMaterializationCreate, scope: UserScope, db: DbDep) -> Run:
    """Launch a run that materializes the given assets (of one code location): the
    smallest job of their location that holds them all, with the asset-selection tag when
    it holds more, and the partition's (or range's) tags. Checked as any run is (config,
    partition); 422 names what is wrong."""
    with db.write() as s:
        dep = scope.deployment(s)
        run = asset_launch.materialize(s, dep, body)
        details: dict[str, object] = {
            "code_location": run.code_location,
            "job": run.job,
            "tags": run.tags,
            "run_config_keys": sorted(body.run_config),
            "assets": list(dict.fromkeys(body.assets)),
        }
        audit.record(s, scope.principal, AuditAction.RUN_SUBMIT, run.id, details, deployment=dep)
        return runs.to_model(s, dep, run)
