"""User API: backfills, their partitions, cancel and resume."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from tether_api.audit import AuditAction
from tether_api.backfills import (
    Backfill,
    BackfillCancel,
    BackfillCreate,
    BackfillPage,
    BackfillPartitionPage,
    BackfillPartitionStatus,
    BackfillStatus,
)
from tether_api.wire import INT32
from tether_controlplane.api.deps import DbDep, UserScope
from tether_controlplane.api.responses import LOOKUP, LOOKUP_OR_CONFLICT
from tether_controlplane.services import audit, backfills

router = APIRouter(prefix="/api/v1/deployments/{dep}/backfills", tags=["backfills"])

BackfillIdPath = Annotated[str, Path(min_length=1, max_length=36, description="The backfill's ID.")]


@router.post("", status_code=201, responses=LOOKUP_OR_CONFLICT)
def create_backfill(body: BackfillCreate, scope: UserScope, db: DbDep) -> Backfill:
    """Launch a backfill: one run per partition of a job (or of the job that materializes
    ``assets``), under the deployment's concurrency limit, at most ``max_in_flight`` at once
    and ``runs_per_minute`` (when given). Its partitions are resolved now; the control plane's
    loop launches them. 422 names what is wrong (an unknown job or key, an unpartitioned job,
    a bad range, nothing to backfill); 409 while the location has reported no definitions."""
    with db.write() as s:
        dep = scope.deployment(s)
        row = backfills.create(s, dep, scope.principal, body)
        details: dict[str, object] = {
            "code_location": row.code_location,
            "job": row.job,
            "selection": row.selection,
            "partitions": row.partition_count,
            "run_config_keys": sorted(body.run_config),
        }
        if body.assets:
            details["assets"] = body.assets
        audit.record(
            s, scope.principal, AuditAction.BACKFILL_LAUNCH, row.public_id, details, deployment=dep
        )
        return backfills.to_model(dep, row)


@router.get("", responses=LOOKUP)
def list_backfills(
    scope: UserScope,
    db: DbDep,
    status: Annotated[
        list[BackfillStatus], Query(description="Only backfills in these statuses (repeat it).")
    ] = [],  # noqa: B006 - FastAPI copies defaults
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,18}$", description="next_cursor of a previous page")
    ] = None,
) -> BackfillPage:
    """Newest first. Pass ``next_cursor`` back as ``cursor`` for older ones."""
    with db.read() as s:
        return backfills.list_page(s, scope.deployment(s), status, limit, cursor)


@router.get("/{backfill_id}", responses=LOOKUP)
def get_backfill(backfill_id: BackfillIdPath, scope: UserScope, db: DbDep) -> Backfill:
    """A backfill with its partitions' counts by status."""
    with db.read() as s:
        dep = scope.deployment(s)
        return backfills.to_model(dep, backfills.find(s, dep, backfill_id))


@router.get("/{backfill_id}/partitions", responses=LOOKUP)
def list_backfill_partitions(
    backfill_id: BackfillIdPath,
    scope: UserScope,
    db: DbDep,
    status: Annotated[
        list[BackfillPartitionStatus],
        Query(description="Only partitions in these statuses (repeat it)."),
    ] = [],  # noqa: B006
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=INT32,
            description="Only partitions after this position: the next_cursor of a previous page.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=backfills.MAX_PAGE)] = 100,
) -> BackfillPartitionPage:
    """Each partition with its status, attempt and run, in position order."""
    with db.read() as s:
        dep = scope.deployment(s)
        row = backfills.find(s, dep, backfill_id)
        return backfills.partitions_page(s, row, status, after, limit)


@router.post("/{backfill_id}/cancel", responses=LOOKUP_OR_CONFLICT)
def cancel_backfill(
    backfill_id: BackfillIdPath, scope: UserScope, db: DbDep, body: BackfillCancel | None = None
) -> Backfill:
    """Launch no more of its runs: its pending partitions are CANCELED. With ``terminate``,
    its runs in flight are terminated too; it is CANCELING until they have ended. 409 once it
    has completed."""
    terminate = body.terminate if body is not None else False
    with db.write() as s:
        dep = scope.deployment(s)
        row = backfills.find(s, dep, backfill_id, lock=True)
        backfills.cancel(s, dep, row, terminate)
        details = {"terminate": terminate, "status": row.status.value}
        audit.record(
            s, scope.principal, AuditAction.BACKFILL_CANCEL, row.public_id, details, deployment=dep
        )
        return backfills.to_model(dep, row)


@router.post("/{backfill_id}/resume", responses=LOOKUP_OR_CONFLICT)
def resume_backfill(backfill_id: BackfillIdPath, scope: UserScope, db: DbDep) -> Backfill:
    """Launch its FAILURE and CANCELED partitions again (each as a new attempt); nothing
    else is relaunched. 409 when none failed or was canceled."""
    with db.write() as s:
        dep = scope.deployment(s)
        row = backfills.find(s, dep, backfill_id, lock=True)
        again = row.failed + row.canceled
        backfills.resume(s, dep, row)
        audit.record(
            s,
            scope.principal,
            AuditAction.BACKFILL_RESUME,
            row.public_id,
            {"partitions": again},
            deployment=dep,
        )
        return backfills.to_model(dep, row)
